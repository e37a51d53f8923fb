"""The review state handed from one execution to the next, across releases."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrations import review_state
from orchestrations.review_state import STATE_VERSION, ReviewState, UnreadableState
from shared_code.models import RunRequest

SAMPLES = Path(__file__).parent / "state_samples"


def sample(name: str):
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def test_every_shipped_version_is_read():
    """Version 1 states were read back with ReviewState(**data): any field change broke them."""
    waiting = ReviewState.read(sample("v1-awaiting-round-2.json"))
    assert waiting.round == 2 and waiting.max_rounds == 3 and waiting.draft["title"].startswith("Draft 2")
    assert waiting.decisions[0]["by"] == "function key"  # version 1 said "key"
    assert waiting.ignored_count == 0
    request = ReviewState.read(sample("v1-run-request.json"))
    assert (request.topic, request.max_rounds, request.timeout_hours, request.round) == (
        "A request, as the first execution reads it", 2, 48.0, 1)
    current = ReviewState.read(sample(f"v{STATE_VERSION}-awaiting-round-2.json"))
    assert current.round == 2 and current.reviewable_since


def test_version_5_records_whether_slack_messages_are_sent_and_version_4_reads_as_not():
    assert ReviewState.read(sample("v4-awaiting-round-2.json")).slack is False
    assert ReviewState.read(sample("v5-awaiting-round-2.json")).slack is True
    run = RunRequest.from_json({"topic": "Sagas"})
    assert ReviewState.read(run.to_start_input(slack=True)).slack is True
    assert ReviewState.read(run.to_start_input()).slack is False
    assert "slack" not in run.to_start_input()


def test_the_current_version_round_trips():
    state = ReviewState.read(sample(f"v{STATE_VERSION}-awaiting-round-2.json"))
    again = ReviewState.read(json.loads(json.dumps(state.to_input())))
    assert again == state and again.to_input()["version"] == STATE_VERSION


def test_initial_state_comes_from_the_run_request():
    run = RunRequest.from_json({"topic": "Sagas", "max_review_attempts": 4, "approval_timeout_hours": 6})
    state = ReviewState.initial(run)
    assert (state.topic, state.max_rounds, state.timeout_hours, state.round) == ("Sagas", 4, 6.0, 1)
    assert state.request() == run.to_json()


@pytest.mark.parametrize("data, reason", [
    ({"version": 99, "topic": "x"}, "newer than this release"),
    ("a string", "JSON object"),
])
def test_unknown_states_are_refused_with_the_reason(data, reason):
    with pytest.raises(UnreadableState, match=reason):
        ReviewState.read(data)


def test_fields_a_later_release_adds_are_left_out_not_fatal():
    data = {**ReviewState.read(sample(f"v{STATE_VERSION}-awaiting-round-2.json")).to_input(),
            "field_from_the_future": True}
    assert ReviewState.read(data).round == 2


def test_the_status_stays_under_16_kb_with_twenty_comments_and_every_aid_at_its_limit():
    """The largest status the aids can make: a draft and topic at their limits, twenty
    comments with the longest quote, comment and answer, twelve house rules with the
    longest texts, eight changes."""
    from activities.writer_backends import MAX_ANSWER_CHARS, MAX_CHANGE_CHARS, MAX_CHANGES
    from shared_code.house_rules import MAX_PASSAGE_CHARS, MAX_REASON_CHARS, MAX_RULE_CHARS, MAX_RULES
    from shared_code.models import (MAX_COMMENT_CHARS, MAX_COMMENTS_PER_DECISION, MAX_CONTENT_CHARS, MAX_QUOTE_CHARS,
                                    MAX_TOPIC_CHARS)
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, utf16_size
    from shared_code.stages import Stage

    wide = "é"  # two bytes in UTF-8, one UTF-16 unit: what the extension counts
    comments = tuple({"id": f"c{n}", "round": 1, "quote": wide * MAX_QUOTE_CHARS, "comment": wide * MAX_COMMENT_CHARS,
                      "by": "reviewer@contoso.com", "at": "2026-01-01T00:00:00+00:00", "state": "answered",
                      "answers": [{"round": 2, "answer": wide * MAX_ANSWER_CHARS, "changed": True, "quote": "changed"}],
                      "changes": []} for n in range(1, MAX_COMMENTS_PER_DECISION + 1))
    results = [{"rule": wide * MAX_RULE_CHARS, "verdict": "fail", "reason": wide * MAX_REASON_CHARS,
                "passage": wide * MAX_PASSAGE_CHARS, "by": "model"} for _ in range(MAX_RULES)]
    state = ReviewState(topic=wide * MAX_TOPIC_CHARS, round=2,
                        draft={"title": wide * 300, "content": wide * MAX_CONTENT_CHARS},
                        deadline="2026-01-04T00:00:00+00:00", reviewable_since="2026-01-01T00:00:00+00:00",
                        decisions=({"round": 1, "approved": False, "feedback": wide * 4000, "by": "x", "at": "t"},),
                        comments=comments, draft_changes=tuple(wide * MAX_CHANGE_CHARS for _ in range(MAX_CHANGES)),
                        check={"status": "checked", "results": results, "checker": "azure"},
                        house_rules=tuple(wide * MAX_RULE_CHARS for _ in range(MAX_RULES)))
    status = state.status(Stage.AWAITING_REVIEW, "Round 2 of 3: waiting for the reviewer.")
    assert utf16_size(status) <= CUSTOM_STATUS_LIMIT_BYTES, utf16_size(status)
    # What a reader needs is still there: every comment's id and state, every verdict.
    assert [(c["id"], c["state"], c["quoteState"]) for c in status["comments"]] == [
        (f"c{n}", "answered", "changed") for n in range(1, 21)]
    assert [r["verdict"] for r in status["check"]["results"]] == ["fail"] * MAX_RULES


def test_a_changed_copy_is_what_dataclasses_replace_makes_and_forgets_the_cached_seats():
    """Each step makes a changed copy without the dataclass's __init__: it must still be
    the same value, and seats kept from the old stage must not follow it to the next."""
    from dataclasses import replace

    run = RunRequest.from_json({"topic": "Stages", "review": {"stages": [
        {"name": "editor", "reviewers": ["user:ann@contoso.com"]},
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:cy@contoso.com"], "require": "all"}]}})
    state = ReviewState.initial(run)
    assert len(state.seat_views()) == 1  # cached for stage 0
    moved = state.next_stage()
    assert moved == replace(state, stage=1, deadline=None, deadline_set_at=None, reviewable_since=None,
                            **{k: getattr(moved, k) for k in ("notification", "notified_at", "views",
                                                              "seats_counted", "check", "notice_retry")})
    assert len(moved.seat_views()) == 2 and moved.rules is state.rules
    assert moved.stage == 1 and state.stage == 0
    other = state._with(policy=None)
    assert other.rules is not state.rules and len(other.rules.stages) == 1
    with pytest.raises(TypeError, match="no field nonsense"):
        state._with(nonsense=1)


def test_a_copy_with_other_decisions_works_its_seats_records_and_outcome_out_again():
    """A state keeps the seats, the stage's records and its outcome once worked out; a
    copy with another decision or round must not carry them over."""
    run = RunRequest.from_json({"topic": "Stages", "review": {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:cy@contoso.com"], "require": "all"}]}})
    state = ReviewState.initial(run)
    vote = {"round": 1, "approved": True, "stage": "legal", "stageIndex": 0, "seatIndex": 0,
            "seat": "user:bob@contoso.com", "person": {"name": "bob@contoso.com"}}
    assert state.outcome() is None and not any(v.decided for v in state.seat_views())
    one = state._with(decisions=(vote,))
    assert [v.decided for v in one.seat_views()] == [True, False] and one.outcome() is None
    both = one._with(decisions=(vote, {**vote, "seatIndex": 1, "seat": "user:cy@contoso.com",
                                       "person": {"name": "cy@contoso.com"}}))
    assert [v.decided_by for v in both.seat_views()] == ["bob@contoso.com", "cy@contoso.com"]
    assert both.outcome() is True and one.outcome() is None
    assert both._with(round=2).outcome() is None and both._with(round=2).seat_views() == state.seat_views()
    rejected = state._with(decisions=({**vote, "approved": False},))
    assert rejected.outcome() is False
    assert [r["seatIndex"] for r in both._stage_records(0)] == [0, 1] and both._stage_records(1) == ()
    # What the seats do not read from keeps them: an acknowledgement, a fact, a notice.
    acked = one._with(acks=({"id": "e1"},), outbox=({"kind": "vote"},), notification={"status": "sent"})
    assert acked.seat_views() is one.seat_views() and acked.outcome() is None
    # A value worked out from other fields would need them in _SEAT_FIELDS, or copies
    # would carry it stale: adding one must come with a look there.
    assert review_state._DERIVED_FROM_FIELDS == ("_current_seats", "_records_by_stage", "_stage_outcome")
    claimed = one._with(seat_changes=({"stage": 0, "seat": 1, "change": "claim", "by": "cy@contoso.com",
                                        "until": "2999-01-01T00:00:00+00:00"},))
    assert claimed.seat_views()[1].claimed_by == "cy@contoso.com" and one.seat_views()[1].claimed_by == ""


def _largest_review(seat_name, person_name):
    """A review at the limits the product allows: the largest policy (5 stages of 20 seats)
    in its last stage with 19 decisions and every earlier stage's 20, each with the longest
    feedback and actor; 50 comments with the longest texts, some resolved; twelve house
    rules checked with the longest texts; eight changes; a draft and topic at their limits."""
    from activities.writer_backends import MAX_ANSWER_CHARS, MAX_CHANGE_CHARS, MAX_CHANGES
    from shared_code.house_rules import MAX_PASSAGE_CHARS, MAX_REASON_CHARS, MAX_RULE_CHARS, MAX_RULES
    from shared_code.models import (MAX_ACTOR_CHARS, MAX_COMMENT_CHARS, MAX_COMMENTS_PER_REVIEW, MAX_CONTENT_CHARS,
                                    MAX_FEEDBACK_CHARS, MAX_QUOTE_CHARS, MAX_TITLE_CHARS, MAX_TOPIC_CHARS)
    from shared_code.review_policy import MAX_SEATS, MAX_STAGES

    wide = "é"
    policy = {"stages": [{"name": f"stage {s}", "reviewers": [seat_name(s, i) for i in range(MAX_SEATS)],
                          "require": "all"} for s in range(MAX_STAGES)]}
    state = ReviewState.initial(RunRequest.from_json({"topic": wide * MAX_TOPIC_CHARS, "max_review_attempts": 10,
                                                      "review": policy}))
    last = MAX_STAGES - 1
    decisions = tuple({"round": 3, "approved": True, "feedback": wide * MAX_FEEDBACK_CHARS,
                       "by": person_name(s, i), "channel": "review link", "at": "2026-01-02T00:00:00+00:00",
                       "stage": f"stage {s}", "stageIndex": s, "seat": seat_name(s, i), "seatIndex": i,
                       "person": {"name": person_name(s, i)}, "id": f"{s:02}{i:02}" + "e" * 28}
                      for s in range(MAX_STAGES) for i in range(MAX_SEATS if s < last else MAX_SEATS - 1))
    comments = tuple({"id": f"c{n}", "round": 1 + n // 20, "quote": wide * MAX_QUOTE_CHARS,
                      "comment": wide * MAX_COMMENT_CHARS, "by": wide * MAX_ACTOR_CHARS, "stage": "stage 0",
                      "at": "2026-01-01T00:00:00+00:00", "state": "resolved" if n % 5 == 0 else "answered",
                      "answers": [{"round": 3, "answer": wide * MAX_ANSWER_CHARS, "changed": True, "quote": "changed"}],
                      "changes": [{"round": 3, "state": "resolved", "by": wide * MAX_ACTOR_CHARS,
                                   "at": "2026-01-02T00:00:00+00:00"}] if n % 5 == 0 else []}
                     for n in range(1, MAX_COMMENTS_PER_REVIEW + 1))
    results = [{"rule": wide * MAX_RULE_CHARS, "verdict": "fail", "reason": wide * MAX_REASON_CHARS,
                "passage": wide * MAX_PASSAGE_CHARS, "by": "model"} for _ in range(MAX_RULES)]
    return state._with(round=3, stage=last, draft={"title": wide * MAX_TITLE_CHARS, "content": wide * MAX_CONTENT_CHARS},
                       deadline="2026-01-04T00:00:00+00:00", reviewable_since="2026-01-02T00:00:00+00:00",
                       decisions=decisions, comments=comments,
                       draft_changes=tuple(wide * MAX_CHANGE_CHARS for _ in range(MAX_CHANGES)),
                       check={"status": "checked", "results": results, "checker": "azure"},
                       house_rules=tuple(wide * MAX_RULE_CHARS for _ in range(MAX_RULES)))


def test_the_status_of_the_largest_review_fits_and_still_places_decisions():
    """50 comments at their longest and 100 seats' decisions with the longest feedback
    and actors: the status stays under the limit, and still tells the routes the stage's
    seats, its decisions and how many comments the review holds."""
    from routes.decisions import stage_under_review
    from shared_code.models import MAX_ACTOR_CHARS, MAX_COMMENTS_PER_REVIEW
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, ReviewStatus, utf16_size
    from shared_code.stages import Stage

    state = _largest_review(lambda s, i: f"role:stage-{s}-seat-{i}", lambda s, i: f"{s}.{i}." + "é" * MAX_ACTOR_CHARS)
    status = state.status(Stage.AWAITING_REVIEW, "Round 3 of 10: waiting for the reviewers.")
    assert utf16_size(status) <= CUSTOM_STATUS_LIMIT_BYTES, utf16_size(status)
    read = ReviewStatus.read(status)
    assert read.comments_held == MAX_COMMENTS_PER_REVIEW and not read.all_comments_shown
    assert sum(read.comments_left_out.values()) == MAX_COMMENTS_PER_REVIEW - len(read.comments)
    rule, seats = stage_under_review(read)
    assert [s.seat.spec for s in seats] == [f"role:stage-4-seat-{i}" for i in range(20)]
    assert [s.decided for s in seats] == [True] * 19 + [False]
    # The full comments stay in the state the next execution reads, and in the output.
    assert ReviewState.read(json.loads(json.dumps(state.to_input()))).comments == state.comments


def test_a_status_whose_seats_alone_are_over_the_limit_is_a_summary_the_routes_decide_nothing_with():
    """Seats named with the longest names in characters outside the BMP (four bytes each)
    are over the limit by themselves: the last step leaves them out, and the routes refuse
    to place a decision rather than guess at the seats."""
    from routes.decisions import stage_under_review
    from routes.http_helpers import HttpError
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, ReviewStatus, utf16_size
    from shared_code.stages import Stage

    owl = "🦉"
    state = _largest_review(lambda s, i: f"role:{s}{i:02}" + owl * 190, lambda s, i: f"{s}.{i}." + owl * 190)
    status = state.status(Stage.AWAITING_REVIEW, "Round 3 of 10: waiting for the reviewers.")
    assert utf16_size(status) <= CUSTOM_STATUS_LIMIT_BYTES, utf16_size(status)
    read = ReviewStatus.read(status)
    assert read.summary and read.stage_index == 4 and read.comments_held == 50
    assert [s["name"] for s in read.stages] == [f"stage {s}" for s in range(5)]
    with pytest.raises(HttpError, match="too large to list the seats of stage 'stage 4'"):
        stage_under_review(read)
