"""Comments on passages from round to round (pure)."""
from __future__ import annotations

from orchestrations import review_comments as comments
from shared_code.models import ReviewNote

NEW = ({"quote": "first passage", "comment": "too long"}, {"quote": "second passage", "comment": "wrong"})


def made():
    return comments.added((), NEW, 1, None, "bob", "2026-01-01T00:00:00+00:00")


def test_new_comments_are_numbered_on_and_open():
    first = made()
    more = comments.added(first, NEW[:1], 2, "legal", "carol", "t")
    assert [c["id"] for c in more] == ["c1", "c2", "c3"]
    assert more[2]["stage"] == "legal" and all(c["state"] == "open" for c in more)


def test_the_writer_is_given_every_comment_not_resolved_and_each_gets_an_answer():
    answered = comments.answered(made(), [{"id": "c1", "answer": "cut it", "changed": True, "quote": "gone"}], 2)
    assert [c["state"] for c in answered] == ["answered", "answered"]
    assert answered[0]["answers"] == [{"round": 2, "answer": "cut it", "changed": True, "quote": "gone"}]
    assert answered[1]["answers"][0]["answer"] == "no answer from the writer"
    resolved = comments.with_state(answered, ReviewNote("resolve", 2, comment="c1", by="bob"), "t")
    assert [c["id"] for c in comments.for_writer(resolved)] == ["c2"]


def test_a_comment_is_resolved_or_reopened_once_answered():
    answered = comments.answered(made(), [], 2)
    note = ReviewNote("reopen", 2, comment="c2", by="bob")
    assert comments.note_problem(answered, note, 2) is None
    reopened = comments.with_state(answered, note, "t")
    assert reopened[1]["state"] == "open" and reopened[1]["changes"] == [
        {"round": 2, "state": "open", "by": "bob", "at": "t"}]
    assert "already open" in comments.note_problem(reopened, note, 2)
    assert "no comment 'c9'" in comments.note_problem(answered, ReviewNote("resolve", 2, comment="c9"), 2)
    assert "round 1" in comments.note_problem(answered, ReviewNote("resolve", 1, comment="c1"), 2)
    assert "this round's draft" in comments.note_problem(made(), ReviewNote("resolve", 1, comment="c1"), 1)


def test_the_status_shows_the_latest_answer_and_who_changed_the_state():
    answered = comments.answered(made(), [{"id": "c1", "answer": "a", "changed": False, "quote": "unchanged"}], 2)
    shown = comments.shown(comments.with_state(answered, ReviewNote("resolve", 2, comment="c1", by="ann"), "t"))
    assert shown[0] == {"id": "c1", "round": 1, "state": "resolved", "quote": "first passage", "comment": "too long",
                        "by": "bob", "answerRound": 2, "answer": "a", "changed": False, "quoteState": "unchanged",
                        "stateBy": "ann", "stateAt": "t"}
