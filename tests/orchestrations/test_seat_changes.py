"""Claims, releases, hand-overs and reassignments, against the seats as they stand: which
are taken and why the others are refused (ReviewState.seat_change_problem), and how the
review keeps the record of those it took."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest

from orchestrations.review_state import ReviewState
from shared_code.models import Decision, SeatChange
from shared_code.stages import Stage

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
UNTIL = (NOW + timedelta(hours=8)).isoformat()
LAPSED = (NOW - timedelta(minutes=1)).isoformat()
# Stage "editor" (under review): two seats for the editors' role and one that names bob;
# stage "legal" comes after it.
POLICY = {"stages": [
    {"name": "editor", "reviewers": ["role:editors", "role:editors", "user:bob@contoso.com"], "require": "all"},
    {"name": "legal", "reviewers": ["user:carol@contoso.com"], "require": "any"}]}

ALICE = {"name": "alice@contoso.com", "roles": ["editors"]}
ZOE = {"name": "zoe@contoso.com", "roles": ["editors"]}
BOB = {"name": "bob@contoso.com"}
CAROL = {"name": "carol@contoso.com"}
MALLORY = {"name": "mallory@contoso.com"}


def waiting() -> ReviewState:
    """Round 1's draft, stage "editor" open, no seat claimed or decided."""
    return ReviewState(topic="Seat changes", policy=POLICY,
                       draft={"title": "T", "content": "C"}).open_stage(NOW - timedelta(hours=1))


def change(kind: str, seat: int, person: Optional[dict], stage: int = 0, to: str = "", until: str = "",
           owner: bool = False) -> SeatChange:
    by = person["name"] if person else "function key"
    return SeatChange(kind, stage, seat, by, to=to, until=until, person=person, owner=owner)


def claimed(person: dict, seat: int = 0, until: str = UNTIL) -> ReviewState:
    return waiting().with_seat_change(change("claim", seat, person, until=until), NOW - timedelta(minutes=30))


def decided(person: dict, seat: int) -> ReviewState:
    approval = Decision(approved=True, round=1, by=person["name"], person=person)
    return waiting().with_vote(approval, seat, NOW - timedelta(minutes=30))


STATES = {
    "waiting": waiting,
    "not open": lambda: ReviewState(topic="Seat changes", policy=POLICY, draft={"title": "T", "content": "C"}),
    "alice claims 0": lambda: claimed(ALICE),
    "alice's claim on 0 lapsed": lambda: claimed(ALICE, until=LAPSED),
    "zoe decided 0": lambda: decided(ZOE, 0),
    "bob decided 2": lambda: decided(BOB, 2),
}

# (state, the change, None when it is taken, else words of the reason it is refused)
CASES = {
    # claims
    "claim an open role seat": ("waiting", change("claim", 0, ALICE, until=UNTIL), None),
    "claim again what one holds": ("alice claims 0", change("claim", 0, ALICE, until=UNTIL), None),
    "claim a seat whose claim lapsed": ("alice's claim on 0 lapsed", change("claim", 0, ZOE, until=UNTIL), None),
    "claim before the stage opens": ("not open", change("claim", 0, ALICE), "'editor' and not open yet"),
    "claim in a stage not under review": ("waiting", change("claim", 0, CAROL, stage=1),
                                          "a claim is for the stage under review, 'editor'"),
    "claim a seat the stage lacks": ("waiting", change("claim", 3, ALICE), "no such seat"),
    "claim in a stage the policy lacks": ("waiting", change("claim", 0, ALICE, stage=2), "no such seat"),
    "claim with nobody named": ("waiting", change("claim", 0, None), "a claim needs a person"),
    "claim a decided seat": ("zoe decided 0", change("claim", 0, ALICE), "seat role:editors of stage 'editor' "
                                                                         "has decided in this round"),
    "claim what another holds": ("alice claims 0", change("claim", 0, ZOE), "claimed by alice@contoso.com"),
    "claim a seat one cannot fill": ("waiting", change("claim", 0, MALLORY), "you fill no open seat"),
    "claim the seat that names one": ("waiting", change("claim", 2, BOB), "your seat names you"),
    "claim after deciding the stage": ("zoe decided 0", change("claim", 1, ZOE),
                                       "you have already decided stage 'editor'"),
    # releases
    "release one's own claim": ("alice claims 0", change("release", 0, ALICE), None),
    "the owner releases anyone's claim": ("alice claims 0", change("release", 0, None, owner=True), None),
    "release another's claim": ("alice claims 0", change("release", 0, ZOE),
                                "only alice@contoso.com or the owner can release"),
    "release an unclaimed seat": ("waiting", change("release", 0, ALICE), "is not claimed"),
    "release a lapsed claim": ("alice's claim on 0 lapsed", change("release", 0, ALICE), "is not claimed"),
    "release before the stage opens": ("not open", change("release", 0, ALICE), "not open yet"),
    # hand-overs
    "hand on the seat that names one": ("waiting", change("delegate", 2, BOB, to="user:dave@contoso.com"), None),
    "hand on the seat one claimed": ("alice claims 0", change("delegate", 0, ALICE, to="user:dave@contoso.com"), None),
    "hand on one's seat of a later stage": ("waiting", change("delegate", 0, CAROL, stage=1,
                                                              to="user:dave@contoso.com"), None),
    "hand on a seat another claimed": ("alice claims 0", change("delegate", 0, ZOE, to="user:dave@contoso.com"),
                                       "only the person who fills seat role:editors of stage 'editor'"),
    "hand on an unclaimed role seat": ("waiting", change("delegate", 0, ALICE, to="user:dave@contoso.com"),
                                       "only the person who fills seat"),
    "hand on after one's claim lapsed": ("alice's claim on 0 lapsed",
                                         change("delegate", 0, ALICE, to="user:dave@contoso.com"),
                                         "only the person who fills seat"),
    "hand on a seat naming another": ("waiting", change("delegate", 2, MALLORY, to="user:dave@contoso.com"),
                                      "only the person who fills seat user:bob@contoso.com"),
    "hand on a decided seat": ("bob decided 2", change("delegate", 2, BOB, to="user:dave@contoso.com"),
                               "has decided in this round"),
    "hand on to an unknown seat kind": ("waiting", change("delegate", 2, BOB, to="team:dave"),
                                        "unknown seat kind 'team'"),
    # reassignments
    "the owner reassigns a seat": ("alice claims 0", change("reassign", 0, None, to="user:erin@contoso.com",
                                                            owner=True), None),
    "the owner reassigns a later stage's seat": ("waiting", change("reassign", 0, None, stage=1, to="role:legal",
                                                                   owner=True), None),
    "a reviewer reassigns": ("waiting", change("reassign", 2, BOB, to="user:erin@contoso.com"),
                             "only the owner can reassign a seat"),
    "the owner reassigns a decided seat": ("zoe decided 0", change("reassign", 0, None, to="user:erin@contoso.com",
                                                                   owner=True), "has decided in this round"),
    "the owner reassigns to no seat": ("waiting", change("reassign", 0, None, to="erin", owner=True),
                                       "'erin' is not a seat"),
    "the owner reassigns a seat the stage lacks": ("waiting", change("reassign", 5, None, to="anyone", owner=True),
                                                   "no such seat"),
}


@pytest.mark.parametrize("state, seat_change, refusal", CASES.values(), ids=CASES.keys())
def test_a_seat_change_is_taken_or_refused_with_its_reason(state, seat_change, refusal):
    problem = STATES[state]().seat_change_problem(seat_change, NOW)
    if refusal is None:
        assert problem is None
    else:
        assert problem is not None and refusal in problem


def test_what_is_no_seat_change_is_refused():
    assert "not a seat change" in waiting().seat_change_problem(None, NOW)


def test_the_status_shows_the_latest_five_seat_changes_and_the_state_keeps_every_one():
    """Each change is checked as the orchestrator checks it, then recorded with who made
    it, what it did and when."""
    steps = [
        (change("claim", 0, ALICE, until=UNTIL), {"change": "claim", "by": "alice@contoso.com", "until": UNTIL}),
        (change("release", 0, ALICE), {"change": "release", "by": "alice@contoso.com"}),
        (change("claim", 0, ALICE, until=UNTIL), {"change": "claim", "by": "alice@contoso.com", "until": UNTIL}),
        (change("delegate", 0, ALICE, to="user:dave@contoso.com"),
         {"change": "delegate", "by": "alice@contoso.com", "to": "user:dave@contoso.com"}),
        (change("delegate", 2, BOB, to="user:frank@contoso.com"),
         {"change": "delegate", "by": "bob@contoso.com", "to": "user:frank@contoso.com"}),
        (change("reassign", 2, None, to="user:erin@contoso.com", owner=True),
         {"change": "reassign", "by": "function key", "to": "user:erin@contoso.com", "owner": True}),
    ]
    state, expected = waiting(), []
    for minute, (seat_change, record) in enumerate(steps):
        at = NOW + timedelta(minutes=minute)
        assert state.seat_change_problem(seat_change, at) is None, seat_change
        state = state.with_seat_change(seat_change, at)
        expected.append({"stage": 0, "seat": seat_change.seat, "at": at.isoformat(), **record})

    assert list(state.seat_changes) == expected
    kept = ReviewState.read(json.loads(json.dumps(state.to_input())))  # as the next execution reads it
    assert list(kept.seat_changes) == expected
    shown = state.status(Stage.AWAITING_REVIEW, "Waiting for the editors.")["seatChanges"]
    assert shown == expected[-5:]
    assert [view.seat.spec for view in kept.seat_views()] == [
        "user:dave@contoso.com", "role:editors", "user:erin@contoso.com"]
