"""The reviewers' events, listened for whenever the review waits on anything.

The Python SDK hands an external event to a wait that is open when the event is
processed. An event that finds no open wait is buffered, only the latest per name, and
handed to every later wait with that name at once (azure-functions-durable-python#507);
at continue-as-new it is dropped. So the review never waits on anything, whether an
activity, a timer or a retry, without a fresh wait for each reviewer event racing it:
every event that reaches an execution is taken by a wait and considered, one at a time,
in the order it arrived. Nothing is buffered, so #507 cannot happen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generator, Union

from shared_code.models import APPROVAL_EVENT, CANCEL_EVENT, EXTEND_EVENT, SEAT_EVENT

REVIEWER_EVENTS = (APPROVAL_EVENT, CANCEL_EVENT, EXTEND_EVENT, SEAT_EVENT)


@dataclass(frozen=True)
class Arrival:
    name: str
    payload: Any


class ReviewerInbox:
    def __init__(self, context):
        self._context = context

    def next(self, *tasks) -> Generator[Any, Any, Union[Arrival, Any]]:
        """Yield until one of ``tasks`` finishes or a reviewer event arrives; returns the
        event, or the task that finished (raising the error it failed with). ``None``
        among the tasks is skipped."""
        running = [task for task in tasks if task is not None]
        waits = [(name, self._context.wait_for_external_event(name)) for name in REVIEWER_EVENTS]
        winner = yield self._context.task_any([*running, *(wait for _, wait in waits)])
        for name, wait in waits:
            if winner is wait:
                return Arrival(name, wait.result)
        if isinstance(winner.result, Exception):  # how the SDK holds a failed task's error
            raise winner.result
        return winner
