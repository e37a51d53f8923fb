"""Check mode: every orchestrator episode also invoked through the Python worker.

The devhost replays an orchestrator by calling the SDK's ``Orchestrator`` on the handle
the worker registered (``replay.Replayer``), which skips the way the Functions host
invokes it: an InvocationRequest whose ``orchestrationTrigger`` binding carries the
context JSON the Durable extension writes (``OrchestrationContextToString``) as a string,
decoded by the runtime's ``from_incoming_proto`` with ``azure.functions``'
``OrchestrationTriggerConverter`` into an ``OrchestrationContext`` for the registered
function, whose JSON return value the converter encodes (``json``). Going that way for
every episode costs about 0.8 ms an episode against 0.17 ms for a replay
(DEVHOST-CONFORMANCE.md, W11), so it is a mode a test run turns on: ``WorkerCheck``
sends each episode's context JSON through the worker exactly so, reads the state in what
the worker returns (its JSON, or, when the orchestrator failed, the state in the
failure's message, recovered as ``TaskOrchestrationShim`` recovers it) and compares it
with the replay's. Any difference raises ``OrchestratorCheckFailed`` naming the
instance, the function and the first field that differs.

Only the state is compared: the SDK context that gives hidden retry tasks their ids
(R13-R15) still comes from the replay, as the worker hands the host nothing else.

Switched on with the host option ``check_orchestrators="worker"`` (``DevHost``,
``TestingHost``, the pytest plugin's ``devhost_check_orchestrators`` fixture) or the
setting ``DEVHOST_CHECK_ORCHESTRATORS=worker``.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterator, Mapping, Optional

from .python_worker import succeeded, typed_data_text
from .registry import Registry
from .replay import Replay, state_in_failure
from .storage import InstanceRow
from .worker_protocol import InvocationResponse, ParameterBinding, TypedData

CHECK_SETTING = "DEVHOST_CHECK_ORCHESTRATORS"
WORKER = "worker"
CHECK_MODES = (WORKER,)


class CheckModeError(ValueError):
    """A check mode the devhost does not know."""


def check_mode(option: Optional[str], env: Mapping[str, str]) -> Optional[str]:
    """The check asked for: the host's option when given (``""`` for none), else the
    setting; None when there is none."""
    value = env.get(CHECK_SETTING, "") if option is None else option
    value = value.strip()
    if not value:
        return None
    if value.lower() not in CHECK_MODES:
        source = "check_orchestrators" if option is not None else CHECK_SETTING
        raise CheckModeError(f"{source} must be {' or '.join(repr(m) for m in CHECK_MODES)} "
                             f"(or empty, for no check), got {value!r}")
    return value.lower()


class OrchestratorCheckFailed(AssertionError):
    """An episode whose state through the worker differs from the replay's."""

    def __init__(self, instance_id: str, function: str, field: str, replayed: Any, invoked: Any):
        self.instance_id, self.function, self.field = instance_id, function, field
        self.replayed, self.invoked = replayed, invoked
        if isinstance(replayed, str) and isinstance(invoked, str):
            at = next((i for i, (a, b) in enumerate(zip(replayed, invoked)) if a != b),
                      min(len(replayed), len(invoked)))
            values = (f"from character {at} the replay has {_excerpt(replayed, at)}, "
                      f"the worker {_excerpt(invoked, at)}")
        else:
            values = f"the replay has {_shown(replayed)}, the worker {_shown(invoked)}"
        super().__init__(
            f"orchestrator check: instance {instance_id}, function '{function}': the state "
            f"invoked through the worker differs from the replay's at {field}: {values}. "
            f"{NONDETERMINISM_HINT}")


# Both invocations of an episode run the same code on the same history, so what differs is
# most often the orchestrator's own doing.
NONDETERMINISM_HINT = ("Orchestrator code that reads the clock, random numbers or new ids "
                       "itself, rather than through its context (current_utc_datetime, "
                       "new_uuid), gives a different state each time it runs.")


def _excerpt(text: str, at: int) -> str:
    start = max(at - 40, 0)
    return json.dumps(("..." if start else "") + text[start:at + 60] + ("..." if at + 60 < len(text) else ""),
                      ensure_ascii=False)


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


MISSING = _Missing()


def _shown(value: Any) -> str:
    text = "nothing" if value is MISSING else json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 300 else text[:300] + "..."


def first_difference(replayed: Any, invoked: Any, path: str = "") -> Optional[tuple[str, Any, Any]]:
    """Where two JSON values first differ, depth first, keys in the replay's order, then the
    keys only the worker's has: (path, replay's value, worker's value), or None. The path
    reads as the state is written: ``actions[0][1].functionName``. ``True`` and ``1`` differ."""
    if isinstance(replayed, dict) and isinstance(invoked, dict):
        for key in _keys(replayed, invoked):
            found = first_difference(replayed.get(key, MISSING), invoked.get(key, MISSING),
                                     f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(replayed, list) and isinstance(invoked, list):
        for index in range(max(len(replayed), len(invoked))):
            found = first_difference(replayed[index] if index < len(replayed) else MISSING,
                                     invoked[index] if index < len(invoked) else MISSING,
                                     f"{path}[{index}]")
            if found:
                return found
        return None
    if type(replayed) is not type(invoked) or (replayed != invoked and not _both_nan(replayed, invoked)):
        return path or "the state", replayed, invoked
    return None


def _both_nan(first: Any, second: Any) -> bool:
    # NaN is a value JSON payloads may carry (Python's json reads and writes it), and equal
    # to itself here even though it compares unequal.
    return isinstance(first, float) and isinstance(second, float) and math.isnan(first) and math.isnan(second)


def _keys(first: dict, second: dict) -> Iterator[str]:
    yield from first
    yield from (key for key in second if key not in first)


class WorkerCheck:
    """A ``Replayer``'s check: each episode invoked through the worker as the Functions
    host invokes it, its state compared with the replay's."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.episodes = 0   # episodes checked

    def __call__(self, row: InstanceRow, context_json: str, replay: Replay) -> None:
        function = self.registry.orchestrator_function(row.name)
        response = function.invoke_here(
            [ParameterBinding(name=function.trigger["name"], data=TypedData(string=context_json))])
        self.episodes += 1
        replayed = _replay_outcome(replay)
        invoked = _worker_outcome(response)
        found = first_difference(replayed, invoked)
        if found:
            raise OrchestratorCheckFailed(row.instance_id, function.name, *found)


def _replay_outcome(replay: Replay) -> Any:
    """The replay's state; for an orchestrator that raised outside the SDK's protocol, the
    error it reported instead, as ``{"error": ...}`` (the worker reports such an error in
    the same words: its ``serialize_exception`` writes ``<type>: <message>``)."""
    if replay.context is None:
        return {"error": replay.error}
    return replay.state


def _worker_outcome(response: InvocationResponse) -> Any:
    """The state in the worker's answer: the function's return value (the SDK's state
    JSON) or, when it failed, the state in the exception's message."""
    if succeeded(response):
        return json.loads(typed_data_text(response.return_value) or "null")
    message = response.result.exception.message
    state = state_in_failure(message)
    return {"error": message} if state is None else state
