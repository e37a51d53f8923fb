"""An execution's history as a timeline, for the dashboard: each activity, sub-orchestration,
timer, entity call and external event as a bar from when it began to when it ended.

Pure: it reads the stored history of the current execution (the events the engine wrote,
with their task ids) and what else the store says about the instance, and computes.

Waiting is shown as waiting. A timer's bar runs from its creation to when it fired, or
on to its due time while it is pending. The history does not record when an orchestrator
began waiting for an external event (no event marks a wait), so an event's bar starts
when the orchestration last went idle before the event arrived (the end of its latest
episode by then) and ends at the arrival: the time it spent waiting with nothing else to
do until the event came, never a zero-length mark.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from .history import ORCHESTRATION_STATUS_NAMES, EventType

# Bars beyond this many are left out (and counted): the page draws each one.
MAX_BARS = 1000

_SCHEDULING_KINDS = {EventType.TASK_SCHEDULED: "activity",
                     EventType.SUB_ORCHESTRATION_INSTANCE_CREATED: "sub-orchestration",
                     EventType.TIMER_CREATED: "timer",
                     EventType.EVENT_SENT: "entity"}
_SUCCEEDED = {EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED}
_FAILED = {EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_INSTANCE_FAILED}


def build(history: list[dict], *, runtime_status: str, created_time: str, now: str,
          pending_timer_ids: Iterable[int] = (), earlier_executions: Iterable[tuple] = (),
          execution_id: str = "") -> dict:
    """The timeline of the current execution.

    ``history``: its stored events, in order; ``pending_timer_ids``: the task ids of its
    timers still waiting to fire; ``earlier_executions``: (generation, execution id,
    started, ended) of the executions before it that are still noted, oldest first.
    """
    pending_timers = set(pending_timer_ids)
    bars: dict[int, dict] = {}          # by task id, in scheduling order
    events: list[dict] = []             # external events, by arrival
    entity_calls: dict[str, dict] = {}  # open entity calls, by request id
    started = ended = None
    outcome: dict[str, Any] = {}
    last_step_end = None                # the end of the latest episode so far
    for item in history:
        kind = item["EventType"]
        at = item["Timestamp"]
        if kind == EventType.EXECUTION_STARTED:
            started = at
        elif kind == EventType.ORCHESTRATOR_COMPLETED:
            last_step_end = at
        elif kind == EventType.EXECUTION_COMPLETED:
            ended = at
            outcome = {"status": ORCHESTRATION_STATUS_NAMES.get(item.get("OrchestrationStatus"), ""),
                       "result": item.get("Result")}
        elif kind in _SCHEDULING_KINDS:
            bar = _scheduled_bar(item, _SCHEDULING_KINDS[kind])
            bars[item["EventId"]] = bar
            request_id = bar.pop("requestId", None)
            if request_id and bar["state"] == "running":
                entity_calls[request_id] = bar
        elif kind in _SUCCEEDED or kind in _FAILED:
            bar = bars.get(item.get("TaskScheduledId"))
            if bar is not None:
                bar["end"] = at
                if kind in _SUCCEEDED:
                    bar["state"] = "completed"
                else:
                    bar["state"] = "failed"
                    bar["failure"] = {"reason": item.get("Reason"), "details": item.get("Details")}
        elif kind == EventType.TIMER_FIRED:
            bar = bars.get(item.get("TimerId"))
            if bar is not None:
                bar["end"], bar["state"] = at, "fired"
        elif kind == EventType.EVENT_RAISED:
            call = entity_calls.pop(item.get("Name"), None)
            if call is not None:
                _answer_entity_call(call, item)
            else:
                events.append({"kind": "event", "name": item.get("Name"), "taskId": None,
                               "start": min(last_step_end or started or at, at), "end": at,
                               "state": "received", "waiting": True})
    for task_id, bar in bars.items():
        if bar["end"] is not None:
            continue
        if ended is not None:
            # Whatever was still open when the execution ended was dropped with it.
            bar["end"] = ended
            if bar["state"] != "stuck":
                bar["state"] = "not fired" if bar["kind"] == "timer" else "not finished"
        elif bar["kind"] == "timer" and task_id not in pending_timers:
            # Cancelled in one of the episodes since; the latest is as late as it can be.
            bar["end"], bar["state"] = last_step_end or bar["start"], "cancelled"
    every = sorted([*bars.values(), *events], key=lambda bar: bar["start"])
    return {
        "now": now,
        "execution": {"id": execution_id, "start": started or created_time, "end": ended,
                      "runtimeStatus": runtime_status, **outcome},
        "generations": _generations(list(earlier_executions), execution_id, started, created_time),
        "bars": every[:MAX_BARS],
        "omitted": max(0, len(every) - MAX_BARS),
    }


def _scheduled_bar(item: dict, kind: str) -> dict:
    bar: dict[str, Any] = {"kind": kind, "name": item.get("Name"), "taskId": item["EventId"],
                           "start": item["Timestamp"], "end": None, "state": "running",
                           "waiting": kind == "timer"}
    if item.get("DevHostHidden"):
        bar["retry"] = True  # a retry's delay or its next attempt
    if kind == "timer":
        bar["name"] = "retry delay" if item.get("DevHostHidden") else "timer"
        bar["state"], bar["fireAt"] = "waiting", item.get("FireAt")
    elif kind == "sub-orchestration":
        bar["instanceId"] = item.get("InstanceId")
    elif kind == "entity":
        request = _request_of(item)
        bar["instanceId"] = item.get("InstanceId")
        bar["name"] = request.get("op") or item.get("Name")
        if request.get("signal"):
            bar["end"], bar["state"] = item["Timestamp"], "sent"
        else:
            bar["requestId"] = request.get("id")
    if item.get("DevHostUnscheduled"):
        # A call to a function the app lacks: never scheduled, the instance waits for ever.
        bar["end"], bar["state"] = None, "stuck"
    return bar


def _request_of(item: dict) -> dict:
    """The RequestMessage an EventSent carries (its input, JSON text)."""
    try:
        request = json.loads(item.get("Input") or "{}")
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def _answer_entity_call(call: dict, item: dict) -> None:
    call["end"] = item["Timestamp"]
    try:
        response = json.loads(item.get("Input") or "{}")
    except ValueError:
        response = {}
    if isinstance(response, dict) and response.get("exceptionType"):
        call["state"] = "failed"
        call["failure"] = {"reason": response.get("exceptionType"), "details": response.get("result")}
    else:
        call["state"] = "completed"


def _generations(earlier: list[tuple], execution_id: str, started: Optional[str], created_time: str) -> dict:
    """The executions before this one, and this one's number. An instance that continued
    as new before the devhost noted executions started its current one after it was created."""
    listed = [{"generation": g, "executionId": e, "start": s, "end": end} for g, e, s, end in earlier]
    current = (listed[-1]["generation"] + 1) if listed else 1
    unrecorded = not listed and started is not None and started != created_time
    return {"earlier": listed, "current": {"generation": None if unrecorded else current,
                                           "executionId": execution_id, "start": started},
            "earlierNotRecorded": unrecorded}
