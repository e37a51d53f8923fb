"""The review routes over real HTTP against the devhost, offline writer."""
from __future__ import annotations

from datetime import datetime, timezone

from devhost import ManualClock
from devhost.testing import TestingHost, wait_until
from tests.support.http import call
from tests.support.principals import principal_header


def run_review(base, **fields):
    reply = call("POST", f"{base}/api/hitl/run", {"topic": "Durable timers", **fields})
    assert reply.status == 202, reply.text
    return reply.json


def status_of(base, instance_id):
    return call("GET", f"{base}/api/hitl/status/{instance_id}").json


def awaiting(base, instance_id, round_):
    body = status_of(base, instance_id)
    stage = body["customStatus"]
    return body if stage.get("stage") == "awaiting_review" and stage.get("round") == round_ else None


def reviewable_for(base, instance_id, seconds) -> bool:
    """Whether the draft under review has been reviewable for ``seconds``, by the clock the
    routes read when they bind a decision without "round"."""
    since = status_of(base, instance_id)["customStatus"].get("reviewableSince")
    if since is None:
        return False
    return (datetime.now(timezone.utc) - datetime.fromisoformat(since)).total_seconds() >= seconds


def test_walkthrough_reject_then_approve(served_host):
    base = served_host.base_url
    started = run_review(base)
    assert set(started) == {"message", "topic", "instanceId", "statusQueryGetUri"}
    instance_id = started["instanceId"]
    assert started["statusQueryGetUri"] == f"{base}/api/hitl/status/{instance_id}"
    first = wait_until(lambda: awaiting(base, instance_id, 1))
    assert first["runtimeStatus"] == "Running"
    assert first["workflowStatus"] == first["customStatus"]["message"]
    assert first["input"] == {"topic": "Durable timers", "max_review_attempts": 3,
                              "approval_timeout_hours": 72.0}

    rejected = call("POST", f"{base}/api/hitl/approve/{instance_id}",
                    {"approved": False, "feedback": "Cover retries", "round": 1})
    assert rejected.status == 200, rejected.text
    assert rejected.json["approved"] is False and rejected.json["instanceId"] == instance_id
    assert "was applied" in rejected.json["message"]
    decision = rejected.json["decision"]
    assert {k: decision[k] for k in ("approved", "feedback", "round", "by")} == {
        "approved": False, "feedback": "Cover retries", "round": 1, "by": "function key"}
    second = wait_until(lambda: awaiting(base, instance_id, 2))
    assert "Cover retries" in second["customStatus"]["draft"]["content"]

    approved = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 2})
    assert approved.status == 200
    done = wait_until(lambda: (s := status_of(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert done["output"]["rounds"] == 2 and done["output"]["content"]
    assert done["customStatus"]["stage"] == "published"


def test_stale_round_and_finished_instance_get_409(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    stale = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 2})
    assert stale.status == 409 and "round 1 is under review" in stale.json["error"]
    call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 1})
    wait_until(lambda: status_of(base, instance_id)["runtimeStatus"] == "Completed")
    late = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True})
    assert late.status == 409 and "approved via function key, and the review is published" in late.json["error"]


def test_roundless_decision_is_refused_for_a_draft_that_just_appeared(served_host, monkeypatch):
    """A double-click or a retry without "round" must not land on the next draft."""
    from routes import decisions as hitl_routes

    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    quick = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True})
    assert quick.status == 409 and 'Send "round": 1' in quick.json["error"]
    assert status_of(base, instance_id)["customStatus"]["decisions"] == []

    monkeypatch.setattr(hitl_routes, "ROUNDLESS_DECISION_GRACE_SECONDS", 0.3)
    wait_until(lambda: reviewable_for(base, instance_id, hitl_routes.ROUNDLESS_DECISION_GRACE_SECONDS),
               what="the grace period to pass")
    later = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True})
    assert later.status == 200, later.text
    assert later.json["round"] == 1


def test_timeout_example_fails_with_timed_out(served_host):
    base = served_host.base_url
    instance_id = run_review(base, approval_timeout_hours=0.0003)["instanceId"]  # about a second
    done = wait_until(lambda: (s := status_of(base, instance_id))["runtimeStatus"] == "Failed" and s)
    assert "timed out" in done["error"]
    assert done["customStatus"]["stage"] == "timed_out"


def test_reviewer_identity_from_app_service_authentication(served_host, monkeypatch):
    base = served_host.base_url
    spoofed_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, spoofed_id, 1))
    spoofed = call("POST", f"{base}/api/hitl/approve/{spoofed_id}", {"approved": True, "round": 1},
                   headers={"X-MS-CLIENT-PRINCIPAL-NAME": "ceo@example.com"})
    assert spoofed.json["decision"]["by"] == "function key"  # no EasyAuth: the header is the caller's
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    signed_in = {"X-MS-CLIENT-PRINCIPAL-NAME": "ada@example.com",  # as App Service sends both
                 "X-MS-CLIENT-PRINCIPAL": principal_header("ada@example.com")}
    reply = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 1},
                 headers=signed_in)
    assert reply.json["decision"]["by"] == "ada@example.com"
    done = wait_until(lambda: (s := status_of(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert done["output"]["decisions"][0]["by"] == "ada@example.com"


def test_health(served_host):
    reply = call("GET", f"{served_host.base_url}/api/health")
    assert reply.status == 200 and reply.json["status"] == "ok"


def test_decision_after_the_deadline_gets_409(offline_env, tmp_path):
    # The manual clock starts in January 2026, so every deadline it sets is already past.
    with TestingHost.served(".", data_dir=tmp_path / "late", clock=ManualClock()) as host:
        base = host.base_url
        instance_id = run_review(base)["instanceId"]
        wait_until(lambda: awaiting(base, instance_id, 1))
        late = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True})
        assert late.status == 409 and "deadline for round 1 has passed" in late.json["error"]
        assert status_of(base, instance_id)["customStatus"]["decisions"] == []
