"""The review's custom status, built once per step of an execution instead of once per
replay of that step.

Every episode replays its execution from the start, and every step it passes sets the
status again. Replay is deterministic: the n-th status an execution sets is, in every
later replay, built from the same state at the same orchestration time, so it is the same
status. A review's lifecycle set 15 statuses across its five replays, five of them new,
and a status of the largest team review takes about 1.5 ms to build and cut to the
extension's limit. So each status built is kept under its execution, its place in that
execution and the orchestration time it was set at, and a replay that reaches a step
already shown sets the status kept for it.

The time is part of the key for a history that changes under a running execution (a
rewind on Azure Storage replaces the failed events): a step whose state could differ
comes after an event that arrived since, in a later episode, at a later time. An
execution is told apart by the ``ExecutionId`` of its ``ExecutionStarted`` event; a
history that does not carry one gets every status built, as before. What is kept is
bounded: the executions between two episodes need a handful each, and one whose statuses
were dropped builds them again. Orchestrators may run on several threads of the worker,
so the kept statuses are shared under a lock.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional
from weakref import WeakKeyDictionary

from azure.durable_functions.models.history import HistoryEventType

KEPT = 256


class ShownStatuses:
    def __init__(self, kept: int = KEPT):
        self.kept = kept
        self._statuses: dict[tuple, Any] = {}
        # Per replay (one SDK context each): its execution's id, and how many statuses it set.
        self._replays: "WeakKeyDictionary[Any, list]" = WeakKeyDictionary()
        self._lock = threading.Lock()

    def show(self, context, build: Callable[[], Any]) -> None:
        """Set the status ``build`` makes, or the one it made for this step of this execution."""
        with self._lock:
            replay = self._replays.get(context)
            if replay is None:
                replay = self._replays[context] = [execution_id(context), 0]
            replay[1] += 1
            key = (replay[0], replay[1], context.current_utc_datetime) if replay[0] else None
            status = self._statuses.get(key) if key else None
        if status is None:
            status = build()
            if key:
                with self._lock:
                    self._statuses[key] = status
                    if len(self._statuses) > self.kept:
                        del self._statuses[next(iter(self._statuses))]
        context.set_custom_status(status)


def execution_id(context) -> Optional[str]:
    for event in context.histories:
        if event.event_type == HistoryEventType.EXECUTION_STARTED:
            instance = getattr(event, "OrchestrationInstance", None)
            found = instance.get("ExecutionId") if isinstance(instance, dict) else None
            return found if isinstance(found, str) and found else None
    return None


SHOWN = ShownStatuses()
