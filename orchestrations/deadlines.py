"""The deadline of the stage under review: what is due now, and when the review must wake
next. Pure: the state and the moment go in, the answer comes out.

A stage's deadline is absolute (set when the stage opened, moved only by the owner or by an
escalation), so slices of the wait and ignored events never extend it. Reminders are owed
for the current deadline only, and only those that fall after the moment it was set: a
deadline moved late does not send every earlier reminder at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Optional


class Due(Enum):
    NOTHING = "nothing"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    TIMEOUT = "timeout"
    NOTICE_RETRY = "notice retry"


@dataclass(frozen=True)
class StageDeadline:
    deadline: datetime
    set_at: datetime
    remind_before_hours: tuple = ()
    # (hours before, deadline it was for) of the reminders sent for this stage
    reminded: frozenset = frozenset()
    escalates: bool = False
    escalated: bool = False
    # When a notice whose channels failed is tried again, if one is owed.
    retry_at: Optional[datetime] = None

    def owed_reminders(self) -> list[tuple[float, datetime]]:
        """(hours before the deadline, when) of the reminders the deadline still owes."""
        key = self.deadline.isoformat()
        times = [(h, self.deadline - timedelta(hours=h)) for h in self.remind_before_hours]
        return [(h, at) for h, at in times if at > self.set_at and (h, key) not in self.reminded]

    def due(self, now: datetime) -> tuple[Due, Optional[float]]:
        """What is due at ``now``: the deadline first, then the earliest owed reminder."""
        if now >= self.deadline:
            return (Due.ESCALATION, None) if self.escalates and not self.escalated else (Due.TIMEOUT, None)
        reminders = sorted((at, h) for h, at in self.owed_reminders() if at <= now)
        if reminders:
            return Due.REMINDER, reminders[0][1]
        if self.retry_at is not None and now >= self.retry_at:
            return Due.NOTICE_RETRY, None
        return Due.NOTHING, None

    def wake_at(self, now: datetime, longest_wait: timedelta) -> datetime:
        """When the next timer must fire: the deadline, the next reminder or the end of the
        slice, whichever comes first."""
        coming = [at for _, at in self.owed_reminders() if at > now]
        if self.retry_at is not None and self.retry_at > now:
            coming.append(self.retry_at)
        return min([self.deadline, now + longest_wait, *coming])


def room_to_extend(opened: datetime, deadline: datetime, hours: float, longest: timedelta) -> Optional[float]:
    """None when the deadline may move by ``hours``; otherwise how many hours it may still
    move (a stage waits at most ``longest`` from when it opened)."""
    if deadline + timedelta(hours=hours) - opened <= longest:
        return None
    return max((opened + longest - deadline).total_seconds() / 3600, 0.0)
