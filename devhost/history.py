"""History events as the Durable extension sends them to the Python worker.

The event and action numbers are the SDK's own enums, so the devhost and the replay
engine it drives cannot disagree about them. Events are plain dicts with the
DurableTask.Core field names (``EventType``, ``EventId``, ``IsPlayed``, ``Timestamp``
plus each type's own fields), exactly what ``JArray.FromObject(history)`` writes.
"""
from __future__ import annotations

from azure.durable_functions.models.actions import ActionType
from azure.durable_functions.models.history import HistoryEventType as EventType

from .clock import to_iso

__all__ = ["ActionType", "EventType", "event", "mark_played"]

# The kind of task each scheduling event records, and each action that schedules one asks
# for (an action takes a task id and leaves that event in the history).
SCHEDULED_KIND_OF_EVENT = {EventType.TASK_SCHEDULED: "activity", EventType.TIMER_CREATED: "timer",
                           EventType.SUB_ORCHESTRATION_INSTANCE_CREATED: "sub-orchestration",
                           EventType.EVENT_SENT: "entity operation"}
SCHEDULED_KIND_OF_ACTION = {ActionType.CALL_ACTIVITY: "activity", ActionType.CALL_ACTIVITY_WITH_RETRY: "activity",
                            ActionType.CALL_SUB_ORCHESTRATOR: "sub-orchestration",
                            ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY: "sub-orchestration",
                            ActionType.CREATE_TIMER: "timer", ActionType.CALL_ENTITY: "entity operation",
                            ActionType.SIGNAL_ENTITY: "entity operation"}
SCHEDULING_EVENTS = frozenset(SCHEDULED_KIND_OF_EVENT)
COMPLETION_EVENTS = frozenset({EventType.TASK_COMPLETED, EventType.TASK_FAILED,
                               EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                               EventType.SUB_ORCHESTRATION_INSTANCE_FAILED})
# Messages the engine acts on itself, before (or instead of) running the orchestrator.
CONTROL_EVENTS = frozenset({EventType.EXECUTION_TERMINATED, EventType.EXECUTION_SUSPENDED,
                            EventType.EXECUTION_RESUMED})
# DurableTask.Core sets IsPlayed on an event when its executor processes it
# (TaskOrchestrationExecutor: ``ProcessEvent(e); e.IsPlayed = true``), skipping
# OrchestratorStarted. What the orchestrator produced is added after the run and never
# processed, so it keeps IsPlayed false in the stored history.
NEVER_PLAYED = frozenset({EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED,
                          *SCHEDULING_EVENTS,
                          EventType.EXECUTION_COMPLETED})

SCHEDULING_ACTIONS = frozenset(SCHEDULED_KIND_OF_ACTION)
ENTITY_ACTIONS = frozenset(a for a, kind in SCHEDULED_KIND_OF_ACTION.items() if kind == "entity operation")
COMPOUND_ACTIONS = frozenset({ActionType.WHEN_ANY, ActionType.WHEN_ALL})


# DurableTask.Core's OrchestrationStatus numbers, as ExecutionCompleted carries them.
ORCHESTRATION_STATUS_NUMBERS = {"Running": 0, "Completed": 1, "ContinuedAsNew": 2, "Failed": 3,
                                "Canceled": 4, "Terminated": 5, "Pending": 6, "Suspended": 7}
ORCHESTRATION_STATUS_NAMES = {number: name for name, number in ORCHESTRATION_STATUS_NUMBERS.items()}


def event(kind: EventType, when, event_id: int = -1, **fields) -> dict:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False,
            "Timestamp": to_iso(when), **fields}


def mark_played(events: list[dict]) -> list[dict]:
    """The events of an episode as the history keeps them once the episode has run."""
    return [{**e, "IsPlayed": True} if e["EventType"] not in NEVER_PLAYED else e for e in events]


def flatten(actions: list) -> list[dict]:
    """Atomic actions in the order the SDK numbered their tasks (depth-first)."""
    flat: list[dict] = []
    for action in actions:
        if action.get("actionType") in COMPOUND_ACTIONS:
            flat.extend(flatten(action.get("compoundActions") or []))
        else:
            flat.append(action)
    return flat
