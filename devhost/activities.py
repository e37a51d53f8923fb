"""Running activity functions as the Python worker runs them, and reporting their outcome
as the Durable extension records it.

Input: the worker's ``ActivityTriggerConverter`` decodes the text the extension hands it,
which is the orchestrator's JSON for the input. Output: the converter's JSON, re-printed
compactly (the extension stores ``SetOutput`` of the parsed value). Failure: the Reason and
Details that ``TaskActivityShim.RunAsync`` puts into TaskFailed (see ``failure``).
"""
from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from azure.functions.durable_functions import ActivityTriggerConverter
from azure.functions.meta import Datum

from . import payloads

log = logging.getLogger("devhost")

# System.Exception's HResult (COR_E_EXCEPTION), as .NET serializes it.
_EXCEPTION_HRESULT = -2146233088


@dataclass(frozen=True)
class ActivityOutcome:
    succeeded: bool
    result: Any = None          # TaskCompleted.Result text, or None
    reason: str = ""            # TaskFailed.Reason
    details: str = ""           # TaskFailed.Details


def call(param: str, fn: Callable, input_text: str):
    """Invoke the activity; returns its result, or an awaitable for an ``async def`` one."""
    value = ActivityTriggerConverter.decode(Datum(input_text, "string"), trigger_metadata={})
    return fn(**{param: value})


def succeeded(result: Any) -> ActivityOutcome:
    encoded = ActivityTriggerConverter.encode(result, expected_type=None).value
    return ActivityOutcome(True, payloads.to_text(payloads.read_token(encoded)))


def failed(name: str, exc: BaseException) -> ActivityOutcome:
    reason, details = failure(name, exc)
    log.warning("%s\n%s", reason, traceback.format_exc().rstrip())
    return ActivityOutcome(False, None, reason, details)


def failure(name: str, exc: BaseException) -> tuple[str, str]:
    """TaskFailed's Reason and Details for an activity that raised ``exc``.

    The Python worker reports ``"<type>: <message>"`` (its dispatcher's
    ``_serialize_exception``); the host wraps that as ``Result: Failure\\nException:
    <message>\\nStack: <stack>`` (RpcException); the extension keeps the text between the
    labels, leading space included, as the message of a new Exception whose inner exception
    is the RpcException (``OutOfProcExceptionHelpers.TryGetExceptionWithFriendlyMessage``),
    and reports ``Activity function '<name>' failed: <that message>`` with the exception
    serialized by its error converter as Details (``TaskActivityShim.RunAsync``).
    """
    worker_message = f"{type(exc).__name__}: {exc}"
    stack = "".join(traceback.format_exception(exc)).rstrip()
    friendly = f" {worker_message}"
    rpc = _serialized_exception("Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException",
                                "Microsoft.Azure.WebJobs.Script",
                                f"Result: Failure\nException: {worker_message}\nStack: {stack}", None)
    details = _serialized_exception("System.Exception", "System.Private.CoreLib", friendly, rpc)
    return f"Activity function '{name}' failed: {friendly}", json.dumps(details)


def _serialized_exception(class_name: str, assembly: str, message: str, inner) -> dict:
    """The ISerializable fields Newtonsoft writes for an exception (TypeNameHandling.Objects).
    The field list is .NET's, not the extension's; the devhost reproduces its shape."""
    return {"$type": f"{class_name}, {assembly}", "ClassName": class_name, "Message": message,
            "Data": None, "InnerException": inner, "HelpURL": None, "StackTraceString": None,
            "RemoteStackTraceString": None, "RemoteStackIndex": 0, "ExceptionMethod": None,
            "HResult": _EXCEPTION_HRESULT, "Source": None, "WatsonBuckets": None}
