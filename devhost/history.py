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

SCHEDULING_EVENTS = frozenset({EventType.TASK_SCHEDULED, EventType.TIMER_CREATED,
                               EventType.SUB_ORCHESTRATION_INSTANCE_CREATED, EventType.EVENT_SENT})
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

# Actions that take a sequence number and leave a scheduling event in the history.
SCHEDULING_ACTIONS = frozenset({ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY,
                                ActionType.CALL_SUB_ORCHESTRATOR,
                                ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
                                ActionType.CREATE_TIMER, ActionType.CALL_ENTITY,
                                ActionType.SIGNAL_ENTITY})
ENTITY_ACTIONS = frozenset({ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY})
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
