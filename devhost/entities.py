"""Durable entities as the extension runs them for a Python app, the pure part.

An entity is an instance whose id is ``@<name, lowercased>@<key>`` (EntityId). Requests
reach it as messages named ``op`` holding a RequestMessage (``{"op", "signal", "input",
"id", "parent", "parentExecution", ...}``); the extension runs the queued requests of one
entity as a batch, one batch at a time, by sending the Python worker the context JSON of
``EntityTriggerAttributeBindingProvider.EntityContextToString`` (``self``, ``exists``,
``state``, ``batch``) and reading back ``entityExists``, ``entityState`` and ``results``
(``TaskEntityShim.ExecuteOutOfProcBatch``; the SDK's ``signals`` stay empty, as its entity
context cannot signal). The state after the batch is
whatever the SDK reports: an operation that raises after changing the state keeps the
change, as in the extension. Each request that is not a signal gets a ResponseMessage
(``{"result", "exceptionType": "Error"}``), raised on its caller as an event named by
the request id.

Nothing here writes; ``entity_batches`` stores what a batch did.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from . import payloads
from .history import EventType, event

REQUEST_EVENT = "op"                 # EntityMessageEventNames.RequestMessageEventName
# TaskEntityShim: the exceptionType of the answer to an operation that raised.
FAILED_OPERATION = "Error"


class EntityRequestError(ValueError):
    """A request the extension would refuse (ArgumentException)."""


def scheduler_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


def split_scheduler_id(instance_id: str) -> tuple[str, str]:
    name, _, key = instance_id[1:].partition("@")
    return name, key


def is_entity(instance_id: str) -> bool:
    return instance_id.startswith("@")


def has_invalid_character(text: str) -> bool:
    """DurableClient.IsInvalidCharacter, for instance ids and entity keys alike: /, \\, #, ?
    and .NET's char.IsControl (U+0000-U+001F, U+007F-U+009F)."""
    return any(c in "/\\#?" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def request_event(request: dict, moment) -> dict:
    """How a request travels to its entity: an event named "op" whose input is the
    RequestMessage."""
    return event(EventType.EVENT_RAISED, moment, Name=REQUEST_EVENT, Input=payloads.to_text(request))


def check_key(key: str) -> None:
    # DurableClient.SignalEntityAsyncInternal (its ArgumentException swaps message and name)
    if has_invalid_character(key):
        raise EntityRequestError("entityKey (Parameter 'Entity keys must not contain /, \\, #, ?, "
                                 "or control characters.')")


def request_id(instance_id: str, execution_id: str, task_id: int) -> str:
    """The id of an orchestration's request. The extension takes it from the orchestration's
    replay-safe NewGuid; the SDK reads it back from the EventSent event, so what an app can
    observe is only that it is unique and the same on every replay, which a name-based
    GUID of the execution and the task id gives."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{instance_id}/{execution_id}/{task_id}"))


def dotnet_round_trip(moment: datetime) -> str:
    # DateTime.ToString("o") of a UTC time: seven fraction digits and a Z.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def request_message(operation: str, input_text: Optional[str], request_guid: str, *,
                    signal: bool, parent: Optional[str], parent_execution: Optional[str],
                    moment: datetime) -> dict:
    """A RequestMessage as the extension serializes it (empty fields left out)."""
    message: dict = {"op": operation}
    if signal:
        message["signal"] = True
    if input_text is not None:
        message["input"] = input_text
    message["id"] = request_guid
    if parent:
        message["parent"] = parent
    if parent_execution:
        message["parentExecution"] = parent_execution
    message["Timestamp"] = dotnet_round_trip(moment)
    return message


def request_input(value) -> Optional[str]:
    """RequestMessage.SetInput: a JSON token is kept as its compact text, anything else
    (a .NET string, such as the SDK's JSON text of the input) is serialized."""
    if value is None:
        return None
    return payloads.to_text(value)


@dataclass(frozen=True)
class EntityOutcome:
    exists: bool
    state: Optional[str]
    results: tuple                # ((is_error, result text), ...), one per request
    aborted: Optional[str] = None  # why the batch as a whole could not run: it runs again


def context_json(name: str, key: str, exists: bool, state: Optional[str], requests: list[dict]) -> str:
    """EntityTriggerAttributeBindingProvider.EntityContextToString."""
    batch = [{"name": r.get("op"), "input": r.get("input"), "isSignal": bool(r.get("signal"))}
             for r in requests]
    return json.dumps({"self": {"name": name, "key": key}, "exists": exists, "state": state,
                       "batch": batch})


def read_reply(reply: Optional[str], exists: bool, state: Optional[str],
               requests: list[dict]) -> EntityOutcome:
    """The entity function's answer (the SDK's JSON, returned through the worker's
    entityTrigger converter) as an outcome. A reply of the wrong shape means the batch
    could not run at all, as when the entity function failed outside the SDK's handling:
    it is aborted, no request is answered and the state is kept, for the batch to run
    again (TaskEntityShim.ExecuteOutOfProcBatch throws; EntityMiddleware captures it as an
    internal error and AbortOnInternalError abandons the work item)."""
    try:
        answer = json.loads(reply)
        results = tuple((bool(r.get("isError")), r.get("result")) for r in answer["results"])
        if len(results) != len(requests):
            raise ValueError(f"{len(results)} results for {len(requests)} operations")
        return EntityOutcome(bool(answer.get("entityExists")), answer.get("entityState"), results)
    except Exception as exc:
        return EntityOutcome(exists, state, (), aborted=f"{type(exc).__name__}: {exc}")


def failed_batch(exists: bool, state: Optional[str], count: int, message: str) -> EntityOutcome:
    """Every operation of the batch fails with ``message``; the state stays as it was."""
    return EntityOutcome(exists, state, tuple((True, json.dumps(message)) for _ in range(count)))


def response_message(is_error: bool, result: Optional[str]) -> dict:
    """TaskEntityShim: the ResponseMessage a caller gets for its request."""
    message = {"result": result}
    if is_error:
        message["exceptionType"] = FAILED_OPERATION
    return message
