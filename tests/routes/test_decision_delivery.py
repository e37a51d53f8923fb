"""What a decision's reply means: 200 only once the review applied it.

Over real HTTP against the devhost with the offline writer, whose drafts appear within
milliseconds: the worst case for a decision meant for the previous draft.
"""
from __future__ import annotations

import threading

import pytest

from devhost.testing import wait_until
from tests.support.http import call

from .test_hitl_routes import awaiting, reviewable_for, run_review, status_of


def approve(base, instance_id, body):
    return call("POST", f"{base}/api/hitl/approve/{instance_id}", body)


def test_double_clicked_rejection_without_round_never_lands_on_the_next_draft(served_host, monkeypatch):
    """Before: the second click was applied to round 2, whose draft appeared milliseconds
    earlier, and the review failed "not approved" though nobody saw draft 2."""
    from routes import decisions as hitl_routes

    monkeypatch.setattr(hitl_routes, "ROUNDLESS_DECISION_GRACE_SECONDS", 0.5)
    base = served_host.base_url
    instance_id = run_review(base, max_review_attempts=2)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    wait_until(lambda: reviewable_for(base, instance_id, hitl_routes.ROUNDLESS_DECISION_GRACE_SECONDS),
               what="the reviewer to read draft 1")
    first = approve(base, instance_id, {"approved": False, "feedback": "Needs a table"})
    second = approve(base, instance_id, {"approved": False, "feedback": "Needs a table"})
    assert first.status == 200, first.text
    assert second.status == 409, second.text
    status = wait_until(lambda: awaiting(base, instance_id, 2))
    assert [d["round"] for d in status["customStatus"]["decisions"]] == [1]
    assert status["runtimeStatus"] == "Running"


def test_an_approval_right_after_another_reviewers_rejection_is_refused(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    rejected = approve(base, instance_id, {"approved": False, "feedback": "No", "round": 1})
    assert rejected.status == 200
    late = approve(base, instance_id, {"approved": True})  # meant for draft 1
    assert late.status == 409
    assert '"round": 2' in late.json["error"]  # how to decide the draft that is coming
    status = status_of(base, instance_id)
    assert [d["round"] for d in status["customStatus"]["decisions"]] == [1]


def test_an_approval_for_a_decided_round_gets_409_with_the_reason(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    replies = []
    threads = [threading.Thread(target=lambda b=body: replies.append(approve(base, instance_id, b)))
               for body in ({"approved": False, "feedback": "first", "round": 1},
                            {"approved": False, "feedback": "second", "round": 1})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in replies)
    assert statuses == [200, 409], [r.text for r in replies]
    loser = next(r for r in replies if r.status == 409)
    # Refused when it was bound (another decision had moved the review on) or when the
    # review considered it (round 1 was decided by then): either way, saying how it went.
    assert "round 1 was already decided: rejected via function key" in loser.json["error"]


@pytest.mark.parametrize("attempt", range(6))
def test_cancel_racing_an_approval_has_one_winner_and_the_loser_gets_409(served_host, attempt):
    """Before: in about half of such races the approval got 200, the cancel 202, and the
    review ended Terminated with no record of the approval."""
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    replies = {}
    calls = {"approve": lambda: approve(base, instance_id, {"approved": True, "round": 1}),
             "cancel": lambda: call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "race"})}
    order = ["approve", "cancel"] if attempt % 2 else ["cancel", "approve"]
    threads = [threading.Thread(target=lambda n=name: replies.__setitem__(n, calls[n]())) for name in order]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in replies.values()) == [200, 409], {k: v.text for k, v in replies.items()}
    final = wait_until(lambda: (s := status_of(base, instance_id))["runtimeStatus"] in ("Completed", "Failed") and s)
    if replies["approve"].status == 200:
        assert final["runtimeStatus"] == "Completed"
        # Refused when the cancel was considered after the approval, or when the review
        # had already been published by the time the cancel arrived: either way, saying so.
        assert "round 1 was already decided: approved via function key" in replies["cancel"].json["error"]
    else:
        assert final["customStatus"]["stage"] == "cancelled"
        assert final["customStatus"]["decisions"] == []


def test_a_thread_id_can_never_address_a_review(served_host):
    """Before: the agent route started a writer turn on a finished review's id and its
    audit trail was gone."""
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    approve(base, instance_id, {"approved": True, "round": 1})
    wait_until(lambda: status_of(base, instance_id)["runtimeStatus"] == "Completed")
    reply = call("POST", f"{base}/api/agents/WriterAgent/run", {"message": "hi", "thread_id": instance_id})
    assert reply.status == 404
    assert status_of(base, instance_id)["output"]["decisions"][0]["round"] == 1
    assert call("GET", f"{base}/api/agents/WriterAgent/threads/{instance_id}").status == 404


def test_a_state_that_cannot_be_written_gets_503_not_409(served_host):
    """Before: a full data disk made decisions answer 409 'finished' while the review was
    Running, and cancel answer 500."""
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    with served_host.state_unavailable():
        decision = approve(base, instance_id, {"approved": True, "round": 1})
        assert decision.status == 503 and decision.headers.get("Retry-After")
        assert "retry" in decision.json["error"]
        cancel = call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "full"})
        assert cancel.status == 503
    assert status_of(base, instance_id)["runtimeStatus"] == "Running"
    assert approve(base, instance_id, {"approved": True, "round": 1}).status == 200
