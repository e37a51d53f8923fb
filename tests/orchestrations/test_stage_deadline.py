"""The deadline rules of orchestrations/deadlines.py as tables: a stage's deadline and the
moment in, what is due and when to wake out; how far an owner may move a deadline."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrations.deadlines import Due, StageDeadline, room_to_extend

DEADLINE = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
OPENED = DEADLINE - timedelta(hours=72)
EARLIER_DEADLINE = DEADLINE - timedelta(hours=48)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def clock(**fields) -> StageDeadline:
    """A stage opened 72 hours before its deadline, reminded 24 and 2 hours before it."""
    return StageDeadline(**{"deadline": DEADLINE, "set_at": OPENED, "remind_before_hours": (24.0, 2.0), **fields})


OWED = {
    "every reminder after the deadline was set": (clock(), [24.0, 2.0]),
    "no reminders asked for": (clock(remind_before_hours=()), []),
    "one sent for this deadline": (clock(reminded=frozenset({(24.0, DEADLINE.isoformat())})), [2.0]),
    "one sent for an earlier deadline": (clock(reminded=frozenset({(24.0, EARLIER_DEADLINE.isoformat())})),
                                         [24.0, 2.0]),
    "deadline set 10 hours before it": (clock(set_at=DEADLINE - hours(10)), [2.0]),
    "deadline set at a reminder's moment": (clock(set_at=DEADLINE - hours(24)), [2.0]),
    "deadline set after every reminder's moment": (clock(set_at=DEADLINE - hours(1)), []),
}


@pytest.mark.parametrize("deadline, owed", OWED.values(), ids=OWED.keys())
def test_the_reminders_a_deadline_owes(deadline, owed):
    assert deadline.owed_reminders() == [(h, DEADLINE - hours(h)) for h in owed]


DUE = {
    "before any reminder": (clock(), DEADLINE - hours(30), (Due.NOTHING, None)),
    "a reminder's moment": (clock(), DEADLINE - hours(24), (Due.REMINDER, 24.0)),
    "two reminders owed: the earlier first": (clock(), DEADLINE - hours(1), (Due.REMINDER, 24.0)),
    "the first reminder sent": (clock(reminded=frozenset({(24.0, DEADLINE.isoformat())})), DEADLINE - hours(1),
                                (Due.REMINDER, 2.0)),
    "every reminder sent": (clock(reminded=frozenset({(24.0, DEADLINE.isoformat()), (2.0, DEADLINE.isoformat())})),
                            DEADLINE - hours(1), (Due.NOTHING, None)),
    "the deadline": (clock(), DEADLINE, (Due.TIMEOUT, None)),
    "past the deadline with reminders owed": (clock(), DEADLINE + hours(1), (Due.TIMEOUT, None)),
    "the deadline of a stage that escalates": (clock(escalates=True), DEADLINE, (Due.ESCALATION, None)),
    "the deadline after the escalation": (clock(escalates=True, escalated=True), DEADLINE, (Due.TIMEOUT, None)),
    "a notice retry owed": (clock(retry_at=DEADLINE - hours(40)), DEADLINE - hours(30), (Due.NOTICE_RETRY, None)),
    # The timer set for a retry fires at its moment: the retry must be due then.
    "a notice retry at its moment": (clock(retry_at=DEADLINE - hours(30)), DEADLINE - hours(30),
                                     (Due.NOTICE_RETRY, None)),
    "a notice retry not yet owed": (clock(retry_at=DEADLINE - hours(29)), DEADLINE - hours(30), (Due.NOTHING, None)),
    "a reminder before a notice retry": (clock(retry_at=DEADLINE - hours(30)), DEADLINE - hours(20),
                                         (Due.REMINDER, 24.0)),
    "the deadline before a notice retry": (clock(retry_at=DEADLINE - hours(30)), DEADLINE, (Due.TIMEOUT, None)),
}


@pytest.mark.parametrize("deadline, now, due", DUE.values(), ids=DUE.keys())
def test_what_is_due_at_a_moment(deadline, now, due):
    assert deadline.due(now) == due


WAKE = {
    "the next reminder": (clock(), DEADLINE - hours(30), hours(100), DEADLINE - hours(24)),
    "the end of the slice first": (clock(), DEADLINE - hours(30), hours(3), DEADLINE - hours(27)),
    "the reminder after one already due": (clock(), DEADLINE - hours(20), hours(100), DEADLINE - hours(2)),
    "the deadline once no reminder is left": (clock(), DEADLINE - hours(1), hours(100), DEADLINE),
    "the deadline with no reminders": (clock(remind_before_hours=()), DEADLINE - hours(30), hours(100), DEADLINE),
    "a notice retry first": (clock(retry_at=DEADLINE - hours(29)), DEADLINE - hours(30), hours(100),
                             DEADLINE - hours(29)),
    "not a notice retry already past": (clock(retry_at=DEADLINE - hours(31)), DEADLINE - hours(30), hours(100),
                                        DEADLINE - hours(24)),
    "not a reminder sent": (clock(reminded=frozenset({(24.0, DEADLINE.isoformat())})), DEADLINE - hours(30),
                            hours(100), DEADLINE - hours(2)),
}


@pytest.mark.parametrize("deadline, now, longest_wait, wake", WAKE.values(), ids=WAKE.keys())
def test_when_the_review_must_wake(deadline, now, longest_wait, wake):
    assert deadline.wake_at(now, longest_wait) == wake


LONGEST = hours(720)
EXTEND = {
    "well within the longest wait": (OPENED + hours(72), 24, None),
    "to the longest wait exactly": (OPENED + hours(700), 20, None),
    "past the longest wait": (OPENED + hours(700), 30, 20.0),
    "from a deadline already at the longest wait": (OPENED + hours(720), 1, 0.0),
    "from a deadline an escalation moved past it": (OPENED + hours(730), 1, 0.0),
}


@pytest.mark.parametrize("deadline, by, room", EXTEND.values(), ids=EXTEND.keys())
def test_how_far_a_deadline_may_move(deadline, by, room):
    assert room_to_extend(OPENED, deadline, by, LONGEST) == room
