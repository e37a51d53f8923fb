"""The deadline fields of /api/hitl/run and the owner's /api/hitl/extend/{id}, over HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devhost.testing import wait_until
from tests.support.http import call

from .test_hitl_routes import awaiting, run_review, status_of


def extend(base, instance_id, body):
    return call("POST", f"{base}/api/hitl/extend/{instance_id}", body)


def test_extend_moves_the_deadline_and_is_audited(served_host):
    base = served_host.base_url
    instance_id = run_review(base, approval_timeout_hours=10)["instanceId"]
    before = wait_until(lambda: awaiting(base, instance_id, 1))["customStatus"]["deadline"]
    reply = extend(base, instance_id, {"hours": 24})
    assert reply.status == 200, reply.text
    moved = datetime.fromisoformat(reply.json["deadline"]) - datetime.fromisoformat(before)
    assert moved == timedelta(hours=24)
    status = status_of(base, instance_id)["customStatus"]
    assert status["deadline"] == reply.json["deadline"]
    assert [(c["hours"], c["by"]) for c in status["deadlineChanges"]] == [(24.0, "function key")]


def test_extend_is_refused_once_the_round_is_decided(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    assert call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 1}).status == 200
    late = extend(base, instance_id, {"hours": 1})
    assert late.status == 409 and "deadline" in late.json["error"]


def test_extend_beyond_a_rounds_thirty_days_is_refused_with_the_room_left(served_host):
    base = served_host.base_url
    instance_id = run_review(base, approval_timeout_hours=700)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    reply = extend(base, instance_id, {"hours": 30})
    assert reply.status == 409 and "at most 720 hours" in reply.json["error"]


@pytest.mark.parametrize("body, reason", [
    ({}, "'hours' is required"), ({"hours": 0}, "greater than 0"), ({"hours": -3}, "greater than 0"),
    ({"hours": "5"}, "must be a number"), ({"hours": 721}, "at most 720"), ({"hours": 1, "x": 1}, "unknown field"),
])
def test_bad_extend_requests_get_400(served_host, body, reason):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    reply = extend(base, instance_id, body)
    assert reply.status == 400 and reason in reply.json["error"]


@pytest.mark.parametrize("fields, reason", [
    ({"remind_before_hours": 80}, "less than approval_timeout_hours"),
    ({"remind_before_hours": [1, 2, 3, 4, 5, 6]}, "at most 5"),
    ({"remind_before_hours": ["1"]}, "must be a number"),
    ({"on_timeout": "retry"}, "'on_timeout' must be one of fail, escalate"),
    ({"escalation_hours": 5}, "needs \"on_timeout\": \"escalate\""),
    ({"on_timeout": "escalate", "escalation_hours": 0}, "greater than 0"),
])
def test_bad_deadline_fields_get_400(served_host, fields, reason):
    reply = call("POST", f"{served_host.base_url}/api/hitl/run", {"topic": "t", **fields})
    assert reply.status == 400 and reason in reply.json["error"], reply.text


def test_the_request_shows_the_deadline_fields_only_when_used(served_host):
    base = served_host.base_url
    plain = run_review(base)["instanceId"]
    fancy = run_review(base, remind_before_hours=[2, 24], on_timeout="escalate", escalation_hours=6)["instanceId"]
    assert set(wait_until(lambda: awaiting(base, plain, 1))["input"]) == {
        "topic", "max_review_attempts", "approval_timeout_hours"}
    assert wait_until(lambda: awaiting(base, fancy, 1))["input"] == {
        "topic": "Durable timers", "max_review_attempts": 3, "approval_timeout_hours": 72.0,
        "remind_before_hours": [24.0, 2.0], "on_timeout": "escalate", "escalation_hours": 6.0}


def test_the_app_wide_reminders_apply_to_reviews_that_name_none(served_host, monkeypatch):
    monkeypatch.setenv("HITL_REMIND_BEFORE_HOURS", "24, 2")
    base = served_host.base_url
    short = run_review(base, approval_timeout_hours=12)["instanceId"]
    chosen = run_review(base, remind_before_hours=[])["instanceId"]
    # Only the reminders that fit before a 12-hour deadline; a review's own list wins.
    assert wait_until(lambda: awaiting(base, short, 1))["input"]["remind_before_hours"] == [2.0]
    assert "remind_before_hours" not in wait_until(lambda: awaiting(base, chosen, 1))["input"]


def test_a_bad_app_wide_reminder_setting_is_refused_with_its_name(served_host, monkeypatch):
    monkeypatch.setenv("HITL_REMIND_BEFORE_HOURS", "24,soon")
    reply = call("POST", f"{served_host.base_url}/api/hitl/run", {"topic": "t"})
    assert reply.status == 503 and "misconfigured: HITL_REMIND_BEFORE_HOURS" in reply.text, reply.text
    assert "Traceback" not in reply.text
