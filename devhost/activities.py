"""What an activity is invoked with, and its outcome as the Durable extension records it.

Input: the extension hands the worker the orchestrator's JSON text for the input, which
the worker's ``ActivityTriggerConverter`` decodes. Output: the converter's JSON, re-printed
compactly (the extension stores ``SetOutput`` of the parsed value). Failure: the Reason and
Details that ``TaskActivityShim.RunAsync`` puts into TaskFailed (see ``failure``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import payloads
from .python_worker import WorkerFunction, succeeded, typed_data_text
from .registry import DURABLE_CLIENT_TYPES
from .worker_protocol import InvocationResponse, ParameterBinding, TypedData

log = logging.getLogger("devhost")

# System.Exception's HResult (COR_E_EXCEPTION), as .NET serializes it.
_EXCEPTION_HRESULT = -2146233088


@dataclass(frozen=True)
class ActivityOutcome:
    succeeded: bool
    result: Any = None          # TaskCompleted.Result text, or None
    reason: str = ""            # TaskFailed.Reason
    details: str = ""           # TaskFailed.Details


def inputs(function: WorkerFunction, input_text: Optional[str],
           client_binding: Optional[Callable[[], str]] = None) -> list[ParameterBinding]:
    """What an activity is invoked with: its input text, and the JSON of each
    ``durableClient`` binding it declares (the extension binds a client in a function of
    any trigger, C6)."""
    bindings = [ParameterBinding(name=function.trigger["name"], data=TypedData(string=input_text))]
    clients = function.binding_names(*DURABLE_CLIENT_TYPES)
    if clients:
        if client_binding is None:
            raise RuntimeError(f"function '{function.name}' has a durable client binding, and this engine "
                               "has no host to give it one")
        text = client_binding()
        bindings.extend(ParameterBinding(name=name, data=TypedData(string=text)) for name in clients)
    return bindings


def outcome(name: str, response: InvocationResponse) -> ActivityOutcome:
    """TaskCompleted with the converter's JSON, or TaskFailed with what the worker reported."""
    if succeeded(response):
        return ActivityOutcome(True, payloads.to_text(payloads.read_token(typed_data_text(response.return_value))))
    exception = response.result.exception
    reason, details = failure(name, exception.message, exception.stack_trace)
    log.warning("%s\n%s", reason, exception.stack_trace.rstrip())
    return ActivityOutcome(False, None, reason, details)


def failure(name: str, worker_message: str, stack: str) -> tuple[str, str]:
    """TaskFailed's Reason and Details for an activity whose invocation failed.

    The Python worker reports ``"<type>: <message>"`` and the traceback (its
    ``serialize_exception``); the host wraps that as ``Result: Failure\\nException:
    <message>\\nStack: <stack>`` (RpcException); the extension keeps the text between the
    labels, leading space included, as the message of a new Exception whose inner exception
    is the RpcException (``OutOfProcExceptionHelpers.TryGetExceptionWithFriendlyMessage``),
    and reports ``Activity function '<name>' failed: <that message>`` with the exception
    serialized by its error converter as Details (``TaskActivityShim.RunAsync``).
    """
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
