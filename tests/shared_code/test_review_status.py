"""The custom status as routes, pages and benchmarks read it: every earlier shape reads."""
from __future__ import annotations

import dataclasses
import json

import pytest

from shared_code.review_status import ReviewStatus

# What the release before the typed status wrote (8b53147): no request, no deadline fields.
EARLIER_SHAPE = {"stage": "awaiting_review", "round": 2, "maxRounds": 3, "topic": "Owls",
                 "message": "Round 2 of 3: waiting for the reviewer.",
                 "draft": {"title": "Draft 2", "content": "…"}, "deadline": "2026-01-04T00:00:00+00:00",
                 "decisions": [{"round": 1, "approved": False, "feedback": "more", "by": "key"}],
                 "earlierDrafts": [], "someFieldNobodyKnows": 1}


def test_a_status_of_the_earlier_release_reads_with_defaults_for_what_it_lacks():
    status = ReviewStatus.read(EARLIER_SHAPE)
    assert (status.stage, status.round, status.max_rounds, status.topic) == ("awaiting_review", 2, 3, "Owls")
    assert status.awaiting_review and status.decisions[0]["feedback"] == "more"
    assert status.reminders == () and status.deadline_changes == () and status.escalated_at is None
    # The request it did not carry is rebuilt from the topic and the limit it did.
    assert status.request == {"topic": "Owls", "max_review_attempts": 3}


@pytest.mark.parametrize("written", [None, "not a status", [], {}, {"stage": None, "round": None}])
def test_no_status_or_a_broken_one_reads_as_the_start_of_a_review(written):
    status = ReviewStatus.read(written)
    assert (status.stage, status.round) == ("drafting", 1) and not status.awaiting_review


@pytest.mark.parametrize("written", [None, {}, EARLIER_SHAPE, {"request": "not a dict", "maxRounds": 4},
                                     {"stages": [{"name": "legal"}], "views": [], "summary": True}])
def test_a_status_read_is_the_status_its_constructor_makes_with_every_field_set(written):
    """read fills the instance directly, skipping the constructor: it must make the same
    object, every field present (a field added with a default_factory would be missing)."""
    status = ReviewStatus.read(written)
    data = written if isinstance(written, dict) else {}
    given = {name: tuple(data[key]) if isinstance(data[key], list) else data[key]
             for name, key in ReviewStatus._FIELDS if data.get(key) is not None}
    if not isinstance(given.get("request"), dict):
        given["request"] = {"topic": given.get("topic", ""), "max_review_attempts": given.get("max_rounds", 1)}
    built = ReviewStatus(**given)
    assert status == built and vars(status) == vars(built)
    assert set(vars(status)) == {f.name for f in dataclasses.fields(ReviewStatus)}


def test_what_is_written_reads_back_the_same():
    status = ReviewStatus.read(EARLIER_SHAPE)
    assert ReviewStatus.read(status.to_custom_status()) == status


def test_the_size_kept_per_field_is_the_size_of_the_whole_status():
    """within_limit measures fields one by one; the sum must be what the extension measures."""
    from shared_code.review_status import _member_size, _object_size, utf16_size

    status = {"stage": "awaiting_review", "topic": "Eulen 🦉 und Füchse", "decisions": [{"by": "ada", "n": 1}],
              "draft": None, "round": 2}
    assert _object_size({k: _member_size(k, v) for k, v in status.items()}) == utf16_size(status)
    assert _object_size({}) == utf16_size({})


@pytest.mark.parametrize("text, units", [("plain", 5), ("Füchse", 6), ("🦉 owl", 6), ("\x01", 6)])
def test_the_size_is_the_utf16_bytes_of_the_compact_json(text, units):
    """Two bytes per UTF-16 code unit of the JSON text: an astral character is two units,
    a control character is written as a six-character escape."""
    from shared_code.review_status import utf16_size

    assert utf16_size(text) == 2 * (units + 2)  # with the quotes


@pytest.mark.parametrize("value", [
    {"topic": "Eulen 🦉 und Füchse", "message": "tab\tquote\" back\\ nul\x00 del\x7f sep\u2028", "n": -3,
     "hours": 0.5, "ok": True, "none": None, "list": [1, [2, {}], ()]},
    "\ud800 a lone surrogate", {1: "a key that is not a string"}, 2 ** 70])
def test_the_size_is_what_the_standard_librarys_compact_json_measures(value):
    """The size is measured on orjson's JSON, or the standard library's where orjson
    refuses (a lone surrogate, an int key, a number beyond 64 bits): both give the
    standard library's size."""
    import json

    from shared_code.review_status import utf16_size

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert utf16_size(value) == len(text.encode("utf-16-le", "surrogatepass"))


def test_a_date_in_a_status_is_refused_as_the_standard_library_refuses_it():
    from datetime import datetime, timezone

    from shared_code.review_status import within_limit

    with pytest.raises(TypeError):
        within_limit({"deadline": datetime.now(timezone.utc)})


def test_a_status_over_the_limit_is_cut_once_and_the_cut_is_kept_for_the_next_replay():
    """The orchestrator builds the same statuses again in every replay: the cut status is
    kept, the same for an equal status built anew, and what cutting it afresh gives."""
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, _cut, utf16_size, within_limit

    def built():  # a new, equal status each time, as a replay builds it
        return {"stage": "awaiting_review", "topic": "Owls", "draft": {"title": "t", "content": "ü" * 12_000},
                "decisions": [{"round": 1, "approved": False, "feedback": "f" * 900, "by": f"p{n}"}
                              for n in range(12)]}

    first = within_limit(built())
    assert utf16_size(first) <= CUSTOM_STATUS_LIMIT_BYTES < utf16_size(built())
    assert first["draft"]["excerpt"] is True
    assert within_limit(built()) is first
    assert _cut(built(), utf16_size(built()), CUSTOM_STATUS_LIMIT_BYTES) == first
    small = {"stage": "drafting", "topic": "Owls"}
    assert within_limit(small) is small  # a status that fits is not copied


def test_a_cut_measures_only_the_fields_its_steps_change(monkeypatch):
    """A replay of the largest team review cuts a new status at every decision: the
    decisions, tens of kilobytes, are measured only by the steps that change them. Here
    the draft alone is too long, and only the draft is measured (before and after its
    excerpt), however many decisions the status holds."""
    import shared_code.review_status as review_status

    measured = []
    real = review_status._member_size
    monkeypatch.setattr(review_status, "_member_size", lambda key, value: measured.append(key) or real(key, value))
    status = {"stage": "awaiting_review", "round": 1, "topic": "Owls", "draft": {"title": "t", "content": "d" * 9_000},
              "decisions": [{"round": 1, "approved": True, "feedback": "f" * 200, "by": f"p{n}"} for n in range(15)],
              "comments": [], "changes": [], "acks": [], "seatChanges": []}
    cut = review_status._cut(status, review_status.utf16_size(status), 17_000)
    assert cut["draft"]["excerpt"] is True and cut["decisions"] is status["decisions"]
    assert review_status.utf16_size(cut) <= 17_000 < review_status.utf16_size(status)
    assert measured == ["draft", "draft"]


def test_a_kept_cut_shares_nothing_with_the_status_it_was_cut_from():
    """The cut is kept for the next replay's equal status: what the first caller does with
    its own status afterwards must not show in the cut the next caller gets."""
    from shared_code.review_status import within_limit

    def built():
        return {"stage": "awaiting_review", "round": 1, "topic": "Kept apart", "draft": {"title": "t", "content": "x" * 9_000},
                "decisions": [{"round": 1, "approved": True, "feedback": "f" * 100, "by": "ada"}]}

    first_status = built()
    first = within_limit(first_status)
    assert first["decisions"] == built()["decisions"]
    first_status["decisions"][0]["by"] = "changed"
    first_status["decisions"].append({"by": "intruder"})
    again = within_limit(built())
    assert again["decisions"] == [{"round": 1, "approved": True, "feedback": "f" * 100, "by": "ada"}]
