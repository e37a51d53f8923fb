"""Who the inbox says may act on a review ("Waiting for me"), as a table: ``can_act`` on
one card, and the index's ``_actionable``, which answers from its seat index and asks
``can_act`` only for cards with a claim or an earlier decision; both must agree. And what
a large refresh does to the index's rows for the garbage collector."""
from __future__ import annotations

import gc
import weakref
from datetime import datetime, timezone

import pytest

from routes import inbox_index
from routes.inbox_index import InboxIndex, can_act
from shared_code.identity import Person
from tests.routes.test_entity_feed import follow_a_backend

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LATER = "2026-03-01T13:00:00+00:00"     # a claim that still holds at NOW
EARLIER = "2026-03-01T11:00:00+00:00"   # a claim that has lapsed by NOW

DAN = Person("dan@contoso.com", roles=frozenset({"brand"}))
ERIN = Person("Erin@Contoso.com", roles=frozenset({"Brand"}))
BOB = Person("bob@contoso.com", object_id="0b0b-id")
GRETA = Person("greta@contoso.com", groups=frozenset({"9f3e-legal"}))
MALLORY = Person("mallory@contoso.com", roles=frozenset({"readers"}))


def card(*seats, deciders=()):
    return {"topic": "Quarterly report", "round": 1, "deadline": "2026-03-02T12:00:00+00:00",
            "since": "2026-03-01T10:00:00+00:00",
            "seats": [{"n": n, **seat} for n, seat in enumerate(seats, 1)], "deciders": list(deciders)}


def claimed(spec, by, until=LATER):
    return {"seat": spec, "claimedBy": by, "claimUntil": until}


BRAND_CLAIMED_BY_DAN = card(claimed("role:brand", "dan@contoso.com"))
DAN_DECIDED = card({"seat": "role:brand"}, deciders=["dan@contoso.com"])
CASES = [
    # the card, the person, whether they may act; the id says why
    pytest.param(card({"seat": "anyone"}), MALLORY, True, id="an open seat admits anyone"),
    pytest.param(card({"seat": "user:bob@contoso.com"}), BOB, True, id="a user seat admits the person it names"),
    pytest.param(card({"seat": "user:BOB@contoso.com"}), BOB, True, id="a user seat names people without case"),
    pytest.param(card({"seat": "user:0B0B-ID"}), BOB, True, id="a user seat may name the Entra object id"),
    pytest.param(card({"seat": "user:bob@contoso.com"}), DAN, False, id="a user seat admits nobody else"),
    pytest.param(card({"seat": "role:brand"}), DAN, True, id="a role seat admits who holds the role"),
    pytest.param(card({"seat": "role:brand"}), ERIN, True, id="roles compare without case"),
    pytest.param(card({"seat": "role:brand"}), MALLORY, False, id="a role seat admits nobody without it"),
    pytest.param(card({"seat": "group:9f3e-legal"}), GRETA, True, id="a group seat admits a member"),
    pytest.param(card({"seat": "group:9f3e-legal"}), DAN, False, id="a group seat admits nobody else"),
    pytest.param(BRAND_CLAIMED_BY_DAN, ERIN, False, id="a seat claimed by another is theirs"),
    pytest.param(BRAND_CLAIMED_BY_DAN, DAN, True, id="a claimed seat stays its claimer's"),
    pytest.param(card(claimed("role:brand", "erin@contoso.com")), ERIN, True, id="claimers compare without case"),
    pytest.param(card(claimed("role:brand", "dan@contoso.com", EARLIER)), ERIN, True,
                 id="a lapsed claim holds nobody off"),
    pytest.param(card(claimed("role:brand", "dan@contoso.com"), {"seat": "role:brand"}), ERIN, True,
                 id="another seat left unclaimed still admits"),
    pytest.param(DAN_DECIDED, DAN, False, id="a decider has nothing left to do in the stage"),
    pytest.param(DAN_DECIDED, ERIN, True, id="the others of a stage someone decided still may"),
    pytest.param(card({"seat": "role:brand"}, deciders=["erin@contoso.com"]), ERIN, False,
                 id="deciders compare without case"),
    pytest.param(card(), DAN, False, id="no open seat at all"),
]


@pytest.mark.parametrize("shown, person, expected", CASES)
def test_who_may_act_on_a_card(shown, person, expected):
    assert can_act(shown, person, NOW.isoformat()) is expected
    index = InboxIndex(clock=lambda: NOW)
    index.apply("review-1", shown)
    assert set(index._actionable(person, NOW.isoformat())) == ({"review-1"} if expected else set())


@pytest.mark.parametrize("shown, expected", [
    pytest.param(card({"seat": "anyone"}), True, id="an open seat is anyone's"),
    pytest.param(card({"seat": "role:brand"}), False, id="a role seat is not"),
    pytest.param(card({"seat": "user:bob@contoso.com"}), False, id="a user seat is not"),
])
def test_with_nobody_named_only_open_seats_are_waiting(shown, expected):
    index = InboxIndex(clock=lambda: NOW)
    index.apply("review-1", shown)
    assert set(index._actionable(None, NOW.isoformat())) == ({"review-1"} if expected else set())


def test_the_counts_are_the_actionable_reviews_and_every_review():
    index = InboxIndex(clock=lambda: NOW)
    index.apply("brand", card({"seat": "role:brand"}))
    index.apply("claimed", card(claimed("role:brand", "dan@contoso.com")))
    index.apply("legal", card({"seat": "user:bob@contoso.com"}))
    index.apply("done", {"hidden": True})
    assert index.page(sort="deadline", tab="mine", wanted="", person=ERIN, top=10).counts == {"mine": 1, "all": 3}
    assert index.page(sort="deadline", tab="mine", wanted="", person=DAN, top=10).counts == {"mine": 2, "all": 3}
    mine = index.page(sort="deadline", tab="mine", wanted="", person=BOB, top=10)
    assert [row.instance_id for row in mine.rows] == ["legal"] and mine.counts == {"mine": 1, "all": 3}
    every = index.page(sort="deadline", tab="all", wanted="", person=MALLORY, top=10)
    assert len(every.rows) == 3 and every.counts == {"mine": 0, "all": 3}


def test_a_mixed_index_counts_and_lists_for_each_person_what_can_act_says():
    """Cards with several seats each (so one review sits in several of a person's seat
    sets), claims and deciders: what the index answers from its seat sets is, for every
    person, exactly the cards ``can_act`` admits, counted once each."""
    seats = [{"seat": "anyone"}, {"seat": "role:brand"}, {"seat": "user:bob@contoso.com"},
             {"seat": "group:9f3e-legal"}, claimed("role:brand", "dan@contoso.com"),
             claimed("anyone", "greta@contoso.com"), claimed("role:brand", "erin@contoso.com", EARLIER)]
    index, cards = InboxIndex(clock=lambda: NOW), {}
    for n in range(200):
        chosen = [seats[(n * 7 + k * 3) % len(seats)] for k in range(1 + n % 3)]
        deciders = ["dan@contoso.com"] if n % 5 == 0 else []
        cards[f"review-{n:03d}"] = card(*chosen, deciders=deciders)
        index.apply(f"review-{n:03d}", cards[f"review-{n:03d}"])
    for person in (DAN, ERIN, BOB, GRETA, MALLORY):
        expected = {i for i, shown in cards.items() if can_act(shown, person, NOW.isoformat())}
        actionable = index._actionable(person, NOW.isoformat())
        assert set(actionable) == expected and len(actionable) == len(expected) and expected
        assert all((i in actionable) == (i in expected) for i in cards)
        page = index.page(sort="deadline", tab="mine", wanted="", person=person, top=500)
        assert {row.instance_id for row in page.rows} == expected and page.counts["mine"] == len(expected)


def test_a_refresh_that_took_many_cards_leaves_them_out_of_the_collectors_walks(monkeypatch):
    """A full collection walks every object of the oldest generation: with a hundred
    thousand rows there, each one stalled the worker for 30-40 ms. After a refresh that took
    FREEZE_AFTER cards, they are frozen, once the garbage there is has been collected (it
    would never be, frozen); a refresh with fewer leaves its rows to the collector as usual."""
    monkeypatch.setattr(inbox_index, "FREEZE_AFTER", 3)
    monkeypatch.setattr(inbox_index, "FRESH_SECONDS", 0)
    index = InboxIndex(clock=lambda: NOW)

    def entity(key):
        return {"entityId": {"name": "review_card", "key": key}, "state": card({"seat": "anyone"})}

    def tracked(instance_ids):
        walked = {id(o) for o in gc.get_objects()}
        return [i for i in instance_ids if id(index._rows[i]) in walked]

    async def check(base, asked):
        await index.refresh(base)
        after_many = tracked(["review-1", "review-2", "review-3"])
        await index.refresh(base)
        return after_many, tracked(["review-1", "review-4"])

    class Node:
        pass

    garbage = Node()
    garbage.itself = garbage  # a cycle: only the collector frees it
    garbage_alive = weakref.ref(garbage)
    del garbage
    gc.disable()  # no collection but the one before the freeze
    try:
        after_many, after_one = follow_a_backend(
            [(200, [entity("review-1"), entity("review-2"), entity("review-3")]), (200, [entity("review-4")])],
            check)
    finally:
        gc.unfreeze()
        gc.enable()
    assert garbage_alive() is None
    assert after_many == []
    assert after_one == ["review-4"]
