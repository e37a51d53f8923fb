"""A decision, cancel or deadline change the review can no longer take is answered 409
with what happened: the round was already decided (how, and by whom), it is being
published, the review was cancelled (and why), it timed out. Never advice that cannot
work, such as retrying a round that is over.

The first tests bind decisions to reviews read in each state, without a host; the rest
go over real HTTP against the devhost with the offline writer."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from routes.decisions import FUNCTION_KEY, Caller, bind_decision
from routes.http_helpers import HttpError
from routes.review_client import Review
from shared_code.models import Decision
from shared_code.review_status import ReviewStatus
from devhost.testing import wait_until
from tests.support.http import call

from .test_hitl_routes import awaiting, run_review, status_of
from .test_review_routes import notified_link

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
APPROVED_BY_ADA = {"round": 1, "approved": True, "feedback": "", "by": "ada@example.com", "id": "a1"}
REJECTED_BY_LINK = {"round": 1, "approved": False, "feedback": "More", "by": "review link", "id": "r1"}


def review_in(stage, runtime_status="Running", round_=1, decisions=(), **fields):
    status = ReviewStatus(stage=stage, round=round_, max_rounds=3, topic="Owls",
                          decisions=tuple(decisions), **fields)
    return Review("review-1", runtime_status, status, None, NOW, NOW)


def refusal(review, round_=None):
    with pytest.raises(HttpError) as refused:
        bind_decision(Decision(True, "", round_), review, Caller(None, FUNCTION_KEY, owner=True), now=NOW)
    assert refused.value.status == 409
    return str(refused.value)


@pytest.mark.parametrize("round_", [None, 1])
def test_a_decision_that_lost_to_an_approval_says_it_is_being_published(round_):
    reason = refusal(review_in("publishing", decisions=[APPROVED_BY_ADA]), round_)
    assert "round 1 was already decided: approved by ada@example.com" in reason
    assert "being published" in reason
    assert "retry" not in reason


def test_a_decision_that_lost_to_a_rejection_says_so_while_the_writer_revises():
    reason = refusal(review_in("revising", round_=2, decisions=[REJECTED_BY_LINK]), 1)
    assert "round 1 was already decided: rejected via review link" in reason
    assert "retry" not in reason


def test_a_decision_for_a_round_being_redrafted_is_told_when_to_come_back():
    reason = refusal(review_in("revising", round_=2, decisions=[REJECTED_BY_LINK]), 2)
    assert "round 2" in reason and "awaiting_review" in reason


def test_a_decision_that_lost_to_a_rejection_says_so_once_the_next_round_waits():
    deadline = (NOW + timedelta(hours=1)).isoformat()
    reason = refusal(review_in("awaiting_review", round_=2, decisions=[REJECTED_BY_LINK], deadline=deadline,
                               reviewable_since=NOW.isoformat()), 1)
    assert "round 1 was already decided: rejected via review link" in reason
    assert "round 2 is under review" in reason


@pytest.mark.parametrize("stage, runtime_status, fields, expected", [
    ("published", "Completed", {"decisions": (APPROVED_BY_ADA,)},
     "round 1 was already decided: approved by ada@example.com, and the review is published"),
    ("cancelled", "Failed", {"cancel": {"reason": "Topic withdrawn", "by": "function key", "id": "c1"}},
     "the review was cancelled via function key: Topic withdrawn"),
    ("timed_out", "Failed", {}, "the review timed out: round 1 was not decided before its deadline"),
    ("rejected", "Failed", {"round_": 3, "decisions": ({**REJECTED_BY_LINK, "round": 3},)},
     "the review ended without approval: round 3, the last of 3, was rejected via review link"),
    ("failed", "Failed", {"message": "The writer failed in round 1: no writer configured"},
     "the review failed: The writer failed in round 1: no writer configured"),
])
def test_a_decision_for_a_finished_review_says_how_it_ended(stage, runtime_status, fields, expected):
    assert expected in refusal(review_in(stage, runtime_status, **fields))


# -- over HTTP ---------------------------------------------------------------------------

def approve(base, instance_id, body):
    return call("POST", f"{base}/api/hitl/approve/{instance_id}", body)


def cancel(base, instance_id, reason):
    return call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": reason})


def finished(base, instance_id):
    return wait_until(lambda: (s := status_of(base, instance_id))["runtimeStatus"] in ("Completed", "Failed") and s)


def test_parallel_approvals_have_one_winner_and_the_others_are_told_it_was_decided(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(approve(base, instance_id,
                                                                      {"approved": True, "round": 1})))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in replies) == [200] + [409] * 7, [r.text for r in replies]
    for loser in (r for r in replies if r.status == 409):
        reason = loser.json["error"]
        assert "round 1 was already decided: approved via function key" in reason, reason
        assert "retry" not in reason


def test_decisions_cancels_and_extensions_after_an_approval_say_it_was_published(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    assert approve(base, instance_id, {"approved": True, "round": 1}).status == 200
    finished(base, instance_id)
    replies = {"decision": approve(base, instance_id, {"approved": False, "feedback": "late", "round": 1}),
               "cancel": cancel(base, instance_id, "too late"),
               "extend": call("POST", f"{base}/api/hitl/extend/{instance_id}", {"hours": 1})}
    for what, reply in replies.items():
        assert reply.status == 409, (what, reply.text)
        assert ("round 1 was already decided: approved via function key, and the review is published"
                in reply.json["error"]), (what, reply.text)


def test_decisions_and_extensions_after_a_cancel_say_it_was_cancelled(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    assert cancel(base, instance_id, "Topic withdrawn").status == 200
    replies = {"decision": approve(base, instance_id, {"approved": True, "round": 1}),
               "cancel": cancel(base, instance_id, "again"),
               "extend": call("POST", f"{base}/api/hitl/extend/{instance_id}", {"hours": 1})}
    for what, reply in replies.items():
        assert reply.status == 409, (what, reply.text)
        assert "the review was cancelled via function key: Topic withdrawn" in reply.json["error"], reply.text


def test_a_decision_after_the_timeout_says_it_timed_out(served_host):
    base = served_host.base_url
    instance_id = run_review(base, approval_timeout_hours=0.0003)["instanceId"]  # about a second
    finished(base, instance_id)
    late = approve(base, instance_id, {"approved": True, "round": 1})
    assert late.status == 409
    assert "the review timed out: round 1 was not decided before its deadline" in late.json["error"]


def page_decision(base, instance_id, link, body):
    token = link.split("token=", 1)[1]
    return call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token}", body)


def test_the_review_pages_decision_says_what_happened_too(served_host):
    base = served_host.base_url
    rejected_id, cancelled_id = (run_review(base)["instanceId"] for _ in range(2))
    for instance_id in (rejected_id, cancelled_id):
        wait_until(lambda: awaiting(base, instance_id, 1))
    links = {i: notified_link(served_host, i) for i in (rejected_id, cancelled_id)}

    assert approve(base, rejected_id, {"approved": False, "feedback": "Shorter", "round": 1}).status == 200
    lost = page_decision(base, rejected_id, links[rejected_id], {"approved": True})
    assert lost.status == 409, lost.text
    assert "round 1 was already decided: rejected via function key" in lost.json["error"]

    assert cancel(base, cancelled_id, "Topic withdrawn").status == 200
    late = page_decision(base, cancelled_id, links[cancelled_id], {"approved": True})
    assert late.status == 409, late.text
    assert "the review was cancelled via function key: Topic withdrawn" in late.json["error"]
