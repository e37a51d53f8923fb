"""The pure part of an episode: run the orchestrator on a history, read what it wants.

Nothing here writes. ``replay`` builds the context the extension sends
(``OrchestrationTriggerAttributeBindingProvider.OrchestrationContextToString``), runs
the SDK's executor on it and returns the state the SDK produced, plus the SDK context,
whose open tasks tell the ids of hidden retry tasks. This is the fast path: it calls the
SDK's ``Orchestrator`` on the handle the worker registered, where the Functions host
invokes the function through the worker. A ``Replayer`` given a check (``orchestrator_check``,
DEVHOST-CONFORMANCE.md W11) hands it every episode's context JSON and result, and the
check invokes the orchestrator the host's way too and compares the states.
``determinism_problem`` compares the actions with the history, as DurableTask.Core does
when it replays an episode.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Optional

from . import payloads, sdk_seams
from .history import (SCHEDULED_KIND_OF_ACTION, SCHEDULED_KIND_OF_EVENT, SCHEDULING_ACTIONS,
                      SCHEDULING_EVENTS, EventType, flatten)
from .storage import InstanceRow

log = logging.getLogger("devhost")

OUT_OF_PROC_LABEL = "$OutOfProcData$:"


@dataclass(frozen=True)
class TimerSettings:
    """What Azure Storage tells the SDK about timers (AzureStorageDurabilityProvider)."""
    long_timer_interval: timedelta = timedelta(days=3)
    max_short_timer: timedelta = timedelta(days=6)
    http_sleep_milliseconds: int = 30000


@dataclass
class Replay:
    state: dict                     # the SDK's orchestrator state (isDone, actions, ...)
    # The SDK context after the run, for its open tasks; None when the orchestrator raised
    # outside the SDK's protocol, and ``state`` is then a stand-in with no actions.
    context: Optional[Any]
    error: Optional[str] = None     # the orchestrator's failure, as the extension reports it


def state_in_failure(message: str) -> Optional[dict]:
    """The SDK's state in the text of the exception it raises for a failed orchestrator
    (``TaskOrchestrationExecutor.get_orchestrator_state_str``: the error, the label, the
    state's JSON), as ``TaskOrchestrationShim`` recovers it: parsed with ``JObject.Parse``,
    which reads ISO dates as dates (``payloads.with_newtonsoft_dates``). None when the text
    has no label."""
    if OUT_OF_PROC_LABEL not in message:
        return None
    return payloads.with_newtonsoft_dates(json.loads(message.split(OUT_OF_PROC_LABEL, 1)[1]))


def dotnet_timespan(delta: timedelta) -> str:
    hours, rest = divmod(int(delta.total_seconds()) % 86400, 3600)
    return f"{delta.days}.{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def context_fields(row: InstanceRow, history: list[dict], timers: TimerSettings) -> dict:
    """The ten fields of the extension's context JSON, as values (what ``json.loads`` of
    that JSON gives): ``input`` is the stored input parsed once, so an SDK-started
    instance, whose stored input is a JSON string, hands the SDK that string."""
    started = next((e for e in history if e["EventType"] == EventType.EXECUTION_STARTED), None)
    return {
        "history": history,
        "input": payloads.read_token(row.input),
        "instanceId": row.instance_id,
        "isReplaying": bool(started and started["IsPlayed"]),
        "parentInstanceId": row.parent_instance_id,
        "upperSchemaVersion": 1,      # SchemaVersion.V2, written as its number
        "upperSchemaVersionNew": 2,   # SchemaVersion.V3
        "longRunningTimerIntervalDuration": dotnet_timespan(timers.long_timer_interval),
        "maximumShortTimerDuration": dotnet_timespan(timers.max_short_timer),
        "defaultHttpAsyncRequestSleepTimeMillseconds": timers.http_sleep_milliseconds,
    }


# What a Replayer hands its check after each replay: the instance, the context JSON the
# extension would send for it, and the replay's result.
ReplayCheck = Callable[[InstanceRow, str, Replay], None]


class Replayer:
    """Runs orchestrators through the SDK, keeping one reusable executor per function.
    ``check``, when given, sees every replay (``orchestrator_check.WorkerCheck``)."""

    def __init__(self, timers: TimerSettings = TimerSettings(), check: Optional[ReplayCheck] = None):
        self.timers = timers
        self.check = check
        self._orchestrators: dict[int, Any] = {}

    def replay(self, handle: Callable, row: InstanceRow, history: list[dict]) -> Replay:
        fields = context_fields(row, history, self.timers)
        # Written before the SDK reads the fields, so the check is handed what this replay was.
        context_json = json.dumps(fields) if self.check is not None else ""
        replay = self._replay(handle, row, fields)
        if self.check is not None:
            self.check(row, context_json, replay)
        return replay

    def _replay(self, handle: Callable, row: InstanceRow, fields: dict) -> Replay:
        context = sdk_seams.orchestration_context(handle, fields)
        try:
            state = json.loads(self._orchestrator(handle).handle(context))
            return Replay(state, context)
        except Exception as exc:  # the SDK reports an orchestrator's failure by raising
            message = str(exc)
            state = state_in_failure(message)
            if state is None:
                log.debug("orchestrator %s raised outside the SDK protocol", row.name, exc_info=True)
                return Replay({"isDone": False, "actions": []}, None, f"{type(exc).__name__}: {exc}")
            return Replay(state, context, state.get("error") or message)

    def _orchestrator(self, handle: Callable):
        orchestrator = self._orchestrators.get(id(handle))
        if orchestrator is None:
            orchestrator = self._orchestrators[id(handle)] = sdk_seams.new_orchestrator(handle)
        return sdk_seams.reset_orchestrator(orchestrator)


def actions_of(state: dict) -> list[dict]:
    """V2/V3 states hold one inner list with every action since the execution started."""
    outer = state.get("actions") or [[]]
    return flatten(outer[0] if outer else [])


def _recorded_signature(event: dict) -> tuple[str, Optional[str]]:
    kind = SCHEDULED_KIND_OF_EVENT[event["EventType"]]
    # An entity operation is known by its target, "@name@key": EventSent's InstanceId.
    name = event.get("InstanceId") if kind == "entity operation" else event.get("Name")
    return kind, (None if kind == "timer" else name)


def _produced_signature(action: dict) -> tuple[str, Optional[str]]:
    kind = SCHEDULED_KIND_OF_ACTION[action["actionType"]]
    name = action.get("instanceId") if kind == "entity operation" else action.get("functionName")
    return kind, (None if kind == "timer" else name)


def determinism_problem(actions: list[dict], history: list[dict]) -> Optional[str]:
    """Why the replay's actions do not match the tasks the history already scheduled."""
    recorded = [_recorded_signature(e) for e in history
                if e["EventType"] in SCHEDULING_EVENTS and not e.get("DevHostHidden")]
    produced = [_produced_signature(a) for a in actions if a.get("actionType") in SCHEDULING_ACTIONS]
    for index, expected in enumerate(recorded):
        got = produced[index] if index < len(produced) else None
        if got != expected:
            shown = f"{got[0]} '{got[1]}'" if got and got[1] else (got[0] if got else "nothing")
            want = f"{expected[0]} '{expected[1]}'" if expected[1] else expected[0]
            return (f"the history has {want} as task #{index + 1}, but the replay "
                    f"scheduled {shown}. Orchestrator code must be deterministic.")
    return None
