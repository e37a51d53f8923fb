"""The review policy's rules as tables: parsing, outcomes, seats, claims."""
from __future__ import annotations

import json

import pytest

from shared_code.identity import Person
from shared_code.models import ValidationError
from shared_code.review_policy import (MAX_SEATS, MAX_STAGES, ReviewPolicy, Seat, SeatView, StageRule, claimable,
                                       place)

NOW = "2026-12-07T10:00:00+00:00"
LATER = "2026-12-07T12:00:00+00:00"
EARLIER = "2026-12-07T08:00:00+00:00"

ALICE = Person("alice@contoso.com", "oid-alice", frozenset({"editors", "brand"}))
BOB = Person("bob@contoso.com", "oid-bob", frozenset(), frozenset({"g-legal"}))
CAROL = Person("Carol@Contoso.com", "", frozenset({"brand"}))
DAVE = Person("dave@contoso.com")


def policy(*stages):
    return ReviewPolicy.from_json({"stages": list(stages)})


def stage(name="legal", reviewers=("user:bob@contoso.com",), require="any", **extra):
    return {"name": name, "reviewers": list(reviewers), "require": require, **extra}


def test_the_issue_example_parses_and_round_trips():
    example = {"stages": [stage("editor", ["role:editors"], "any"),
                          stage("legal", ["user:bob@contoso.com", "user:carol@contoso.com"], "all"),
                          stage("brand", ["role:brand", "role:brand", "role:brand"], 2)]}
    parsed = ReviewPolicy.from_json(example)
    assert [s.name for s in parsed.stages] == ["editor", "legal", "brand"]
    assert parsed.stages[2].seats == (Seat("role", "brand"),) * 3 and parsed.stages[2].approvals_needed == 2
    assert ReviewPolicy.from_json(parsed.to_json()) == parsed
    assert not parsed.is_default and ReviewPolicy.default().is_default


@pytest.mark.parametrize("value, reason", [
    ({}, "needs \"stages\""),
    ({"stages": []}, "needs \"stages\""),
    ({"stages": [stage()] * (MAX_STAGES + 1)}, f"at most {MAX_STAGES} are allowed"),
    ({"stages": [stage(), stage()]}, "names the stage 'legal' twice"),
    ({"stages": [stage("Legal"), stage("legal")]}, "twice"),
    ({"stages": [stage(name="")]}, "needs a \"name\""),
    ({"stages": [stage(name="<b>")]}, "must be 1-40 letters"),
    ({"stages": [stage(reviewers=[])]}, "needs \"reviewers\""),
    ({"stages": [stage(reviewers=["role:x"] * (MAX_SEATS + 1))]}, f"at most {MAX_SEATS} are allowed"),
    ({"stages": [stage(reviewers=["team:x"])]}, "unknown seat kind 'team'"),
    ({"stages": [stage(reviewers=["bob"])]}, "is not a seat"),
    ({"stages": [stage(reviewers=["user:"])]}, "is not a seat"),
    ({"stages": [stage(reviewers=[7])]}, "a seat is a string"),
    ({"stages": [stage(reviewers=["user:bob", "user:BOB"])]}, "names user:bob twice"),
    ({"stages": [stage(require="most")]}, "must be \"any\", \"all\" or a number"),
    ({"stages": [stage(require=True)]}, "must be \"any\", \"all\" or a number"),
    ({"stages": [stage(require=0)]}, "use a number from 1 to 1"),
    ({"stages": [stage(require=2)]}, "it has 1 seat(s)"),
    ({"stages": [stage(hours=0)]}, "\"hours\" must be a number"),
    ({"stages": [stage(hours=10_000)]}, "\"hours\" must be a number"),
    ({"stages": [stage(owner="x")]}, "unknown field(s) in 'review' stage 1: owner"),
    ({"stages": [stage()], "mode": "fast"}, "unknown field(s) in 'review': mode"),
    ("editor then legal", "must be a JSON object"),
])
def test_bad_policies_are_refused_with_the_reason(value, reason):
    with pytest.raises(ValidationError) as refused:
        ReviewPolicy.from_json(value)
    assert reason in str(refused.value)


@pytest.mark.parametrize("require, seats, verdicts, outcome", [
    ("any", 3, [], None), ("any", 3, [True], True), ("any", 3, [False], False), ("any", 3, [False, True], False),
    ("all", 2, [True], None), ("all", 2, [True, True], True), ("all", 2, [True, False], False),
    ("all", 2, [False], False),
    (2, 3, [True], None), (2, 3, [True, True], True), (2, 3, [False], None), (2, 3, [False, True], None),
    (2, 3, [False, False], False), (2, 3, [True, False, True], True), (2, 3, [True, False, False], False),
    (1, 3, [False, False], None), (1, 3, [False, False, False], False), (1, 3, [False, True], True),
    (3, 3, [True, True, False], False),
])
def test_a_stage_is_decided_as_its_require_says(require, seats, verdicts, outcome):
    rule = StageRule("s", (Seat("anyone"),) * seats, require)
    assert rule.outcome(verdicts) is outcome


def views(*seats, **by_index):
    shown = [SeatView(Seat.parse(s)) for s in seats]
    for index, changes in by_index.items():
        i = int(index[1:])
        shown[i] = SeatView(shown[i].seat, **changes)
    return tuple(shown)


LEGAL = StageRule("legal", (Seat.parse("user:bob@contoso.com"), Seat.parse("role:brand"), Seat.parse("group:g-legal")),
                  "all")


@pytest.mark.parametrize("person, seats, only_seat, expected", [
    (BOB, views("user:bob@contoso.com", "role:brand", "group:g-legal"), None, 0),        # his own seat first
    (ALICE, views("user:bob@contoso.com", "role:brand", "group:g-legal"), None, 1),      # by her role
    (CAROL, views("user:bob@contoso.com", "role:brand", "group:g-legal"), None, 1),
    (DAVE, views("user:bob@contoso.com", "role:brand", "group:g-legal"), None, "fills no open seat"),
    (None, views("user:bob@contoso.com", "role:brand", "group:g-legal"), None, "a decision nobody named"),
    (None, views("anyone"), None, 0),
    (None, views("role:brand", "anyone"), None, 1),
    # a link grants its seat to a holder nobody signed in; a signed-in holder must fill it
    (None, views("user:bob@contoso.com", "role:brand"), 1, 1),
    (DAVE, views("user:bob@contoso.com", "role:brand"), 1, "fills no open seat"),
    (ALICE, views("user:bob@contoso.com", "role:brand"), 1, 1),
    (ALICE, views("role:brand", "role:brand", s0={"decided": True, "approved": True, "decided_by": "x"}), None, 1),
    (ALICE, views("role:brand", s0={"claimed_by": "carol@contoso.com", "claim_until": LATER}), None,
     "claimed by carol@contoso.com"),
    (ALICE, views("role:brand", s0={"claimed_by": "carol@contoso.com", "claim_until": EARLIER}), None, 0),  # lapsed
    (ALICE, views("role:brand", "role:brand", s1={"claimed_by": "alice@contoso.com", "claim_until": LATER}), None, 1),
    (CAROL, views("role:brand", "role:brand", s0={"claimed_by": "Carol@Contoso.com", "claim_until": LATER}), None, 0),
])
def test_a_decision_fills_the_seat_the_rules_give_it(person, seats, only_seat, expected):
    placement = place(LEGAL, seats, person, NOW, only_seat)
    if isinstance(expected, int):
        assert placement.seat == expected and not placement.refusal and not placement.duplicate
    else:
        assert placement.seat is None and expected in placement.refusal


def test_a_second_decision_by_the_same_person_is_a_duplicate():
    seats = views("role:brand", "role:brand", s0={"decided": True, "approved": False, "decided_by": "alice@contoso.com"})
    placement = place(LEGAL, seats, ALICE, NOW)
    assert placement.duplicate and placement.seat == 0


def test_names_compare_without_case_and_object_ids_count():
    assert Seat.parse("user:CAROL@contoso.com").admits(CAROL)
    assert Seat.parse("user:oid-bob").admits(BOB)
    assert Seat.parse("group:G-LEGAL").admits(BOB)
    assert not Seat.parse("role:editors").admits(BOB)


@pytest.mark.parametrize("person, seats, expected", [
    (ALICE, views("user:bob@contoso.com", "role:brand"), 1),
    (ALICE, views("role:brand", s0={"claimed_by": "alice@contoso.com", "claim_until": LATER}), 0),   # already hers
    (ALICE, views("role:brand", s0={"claimed_by": "carol@contoso.com", "claim_until": LATER}), "claimed by carol"),
    (BOB, views("user:bob@contoso.com"), "needs no claim"),
    (DAVE, views("role:brand"), "can be claimed"),
    (ALICE, views("role:brand", "role:brand", s0={"decided": True, "approved": True, "decided_by": "alice@contoso.com"}),
     "already decided"),
])
def test_claims_take_an_open_shared_seat(person, seats, expected):
    placement = claimable(LEGAL, seats, person, NOW)
    if isinstance(expected, int):
        assert placement.seat == expected
    else:
        assert expected in placement.refusal


def test_a_policy_read_from_a_state_is_read_once_for_equal_json_and_never_for_other_json():
    """Every replay reads the review's input afresh: an equal policy in another object is
    the policy read before; one that differs in any value is read on its own, and a value
    that is not plain JSON is refused as from_json refuses it."""
    first = {"stages": [stage("legal", ["user:bob@contoso.com", "role:editors"], 2, hours=4)]}
    read = ReviewPolicy.of_state(first)
    assert ReviewPolicy.of_state(json.loads(json.dumps(first))) is read
    assert read == ReviewPolicy.from_json(first)
    other = {"stages": [stage("legal", ["user:bob@contoso.com", "role:editors"], 2, hours=4.5)]}
    assert ReviewPolicy.of_state(other).stages[0].hours == 4.5
    assert ReviewPolicy.of_state({"stages": [stage("legal", ["user:bob@contoso.com", "role:editors"], 1,
                                                   hours=4)]}).stages[0].require == 1
    with pytest.raises(ValidationError, match="hours"):
        ReviewPolicy.of_state({"stages": [stage("legal", ["user:bob@contoso.com"], hours=float("nan"))]})
    assert ReviewPolicy.of_state(None) is ReviewPolicy.default()


def test_what_a_policy_reads_as_does_not_depend_on_the_policies_read_before():
    """Values that write the same JSON (a tuple is written as a list) share a key, so
    they must read alike whichever came first."""
    from shared_code import review_policy

    as_list = {"stages": [stage("brand", ["user:ann@contoso.com", "role:brand"], 2)]}
    as_tuple = {"stages": tuple(as_list["stages"])}
    review_policy._READ_POLICIES.clear()
    first = ReviewPolicy.of_state(as_tuple)
    review_policy._READ_POLICIES.clear()
    ReviewPolicy.of_state(as_list)
    assert ReviewPolicy.of_state(as_tuple) == first == ReviewPolicy.from_json(as_list)
