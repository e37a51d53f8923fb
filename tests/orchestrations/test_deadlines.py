"""Reminders before the deadline, escalation instead of a silent failure, deadline changes.

All on the devhost's manual clock. Notices are read from the history: every
notify_reviewer call carries its kind (review, reminder, escalation).
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from devhost.history import EventType

from .test_hitl_orchestration import custom


def start(host, **fields):
    request = {"topic": "Deadlines", "max_review_attempts": 2, "approval_timeout_hours": 72, **fields}
    instance_id = host.start("hitl_orchestration", request)
    host.run_until_idle()
    return instance_id


def notice_requests(host, instance_id):
    return [json.loads(json.loads(e["Input"])[0]) for e in host.history(instance_id)
            if e["EventType"] == EventType.TASK_SCHEDULED and e["Name"] == "notify_reviewer"]


def link_expiry(host, instance_id):
    """The expiry signed into the review link of the last notice sent."""
    results = [json.loads(e["Result"]) for e in host.history(instance_id)
               if e["EventType"] == EventType.TASK_COMPLETED and "review_url" in (e.get("Result") or "")]
    token = results[-1]["review_url"].split("token=")[1].split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return datetime.fromtimestamp(payload["e"], tz=timezone.utc).isoformat()[:16]


def notices(host, instance_id):
    """(kind, moment) of every notice this execution and the earlier ones sent."""
    kinds = []
    for e in host.history(instance_id):
        if e["EventType"] == EventType.TASK_SCHEDULED and e["Name"] == "notify_reviewer":
            request = json.loads(json.loads(e["Input"])[0])
            kinds.append((request["kind"], e["Timestamp"][:16]))
    return kinds


def sent_reminders(host, instance_id):
    return [(r["beforeHours"], r["at"][:16]) for r in custom(host, instance_id).get("reminders", [])]


def test_a_review_nobody_answers_times_out(manual_host):
    instance_id = manual_host.start("hitl_orchestration", {"topic": "Durable timers"})
    status = manual_host.wait_for_instance(instance_id)  # 72 hours of reminders, skipped
    assert status["runtimeStatus"] == "Failed"
    assert status["customStatus"]["stage"] == "timed_out"


def test_without_the_new_fields_a_review_times_out_as_before(manual_host):
    instance_id = start(manual_host)
    manual_host.advance(hours=72)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed" and "timed out" in status["output"]
    assert custom(manual_host, instance_id)["reminders"] == []


def test_reminders_go_out_at_their_times_and_are_recorded(manual_host):
    instance_id = start(manual_host, remind_before_hours=[24, 2])
    manual_host.advance(hours=47, minutes=59)
    assert sent_reminders(manual_host, instance_id) == []
    manual_host.advance(minutes=1)
    assert sent_reminders(manual_host, instance_id) == [(24.0, "2026-01-03T00:00")]
    manual_host.advance(hours=22)
    assert sent_reminders(manual_host, instance_id) == [(24.0, "2026-01-03T00:00"), (2.0, "2026-01-03T22:00")]
    assert notices(manual_host, instance_id)[-1][0] == "reminder"
    assert link_expiry(manual_host, instance_id) == "2026-01-04T00:00"  # a link good until the deadline
    manual_host.advance(hours=2)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Failed"


def test_a_decision_between_reminders_cancels_the_rest(manual_host):
    instance_id = start(manual_host, remind_before_hours=[24, 2])
    manual_host.advance(hours=50)
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "id": "ok"})
    manual_host.run_until_idle()
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"
    assert manual_host.pending_timers(instance_id) == []
    assert [r["beforeHours"] for r in manual_host.status(instance_id)["customStatus"]["reminders"]] == [24.0]


def test_a_decision_that_arrives_with_a_reminder_is_taken(manual_host):
    from datetime import timedelta

    instance_id = start(manual_host, remind_before_hours=[24])
    manual_host.clock.advance(timedelta(hours=48))  # the reminder is due, not yet run
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": False, "feedback": "x", "round": 1, "id": "r"})
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "id": "stale"})
    manual_host.run_until_idle()
    status = custom(manual_host, instance_id)
    assert status["round"] == 2 and [d["id"] for d in status["decisions"]] == ["r"]


def test_the_app_wide_default_applies_where_it_fits(manual_host, monkeypatch):
    from shared_code.models import RunRequest

    run = RunRequest.from_json({"topic": "t", "approval_timeout_hours": 12}, default_reminders=(24.0, 2.0))
    assert run.remind_before_hours == (2.0,)
    explicit = RunRequest.from_json({"topic": "t", "remind_before_hours": []}, default_reminders=(24.0,))
    assert explicit.remind_before_hours == ()


def test_escalation_notifies_grants_more_time_and_a_decision_still_completes(manual_host):
    instance_id = start(manual_host, on_timeout="escalate", escalation_hours=12)
    manual_host.advance(hours=72)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    stage = status["customStatus"]
    assert stage["stage"] == "escalated" and stage["deadline"].startswith("2026-01-04T12:00")
    assert stage["notification"]["escalation"]["status"] == "sent"
    assert [k for k, _ in notices(manual_host, instance_id)][-1] == "escalation"
    # The escalation's text and link carry the extended deadline, not the one that passed.
    assert notice_requests(manual_host, instance_id)[-1]["deadline"].startswith("2026-01-04T12:00")
    assert link_expiry(manual_host, instance_id) == "2026-01-04T12:00"
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "id": "late"})
    manual_host.run_until_idle()
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_escalation_then_the_final_timeout(manual_host):
    instance_id = start(manual_host, on_timeout="escalate", escalation_hours=12)
    manual_host.advance(hours=72)
    manual_host.advance(hours=11, minutes=59)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Running"
    manual_host.advance(minutes=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "escalation window" in status["output"] and status["customStatus"]["stage"] == "timed_out"


def test_the_owner_moves_the_deadline_and_reminders_follow(manual_host):
    instance_id = start(manual_host, remind_before_hours=[2])
    manual_host.advance(hours=60)
    manual_host.raise_event(instance_id, "ExtendDeadlineEvent", {"hours": 24, "round": 1, "id": "e-1", "by": "owner"})
    manual_host.run_until_idle()
    stage = custom(manual_host, instance_id)
    assert stage["deadline"].startswith("2026-01-05T00:00")
    assert stage["deadlineChanges"][0]["from"].startswith("2026-01-04T00:00") and stage["deadlineChanges"][0]["by"] == "owner"
    # The links sent so far expire with the old deadline: the reviewer gets a fresh one.
    assert notices(manual_host, instance_id)[-1][0] == "deadline_moved"
    assert link_expiry(manual_host, instance_id) == "2026-01-05T00:00"
    assert stage["notification"]["deadlineMoved"]["status"] == "sent"
    manual_host.advance(hours=12)  # the old deadline passes: nothing happens
    assert manual_host.status(instance_id)["runtimeStatus"] == "Running"
    manual_host.advance(hours=22)
    assert [r["beforeHours"] for r in custom(manual_host, instance_id)["reminders"]] == [2.0]
    manual_host.advance(hours=2)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Failed"


def test_a_deadline_change_beyond_thirty_days_or_for_a_decided_round_is_refused(manual_host):
    instance_id = start(manual_host)
    manual_host.raise_event(instance_id, "ExtendDeadlineEvent", {"hours": 700, "round": 1, "id": "too-far"})
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": False, "feedback": "x", "round": 1, "id": "r1"})
    manual_host.raise_event(instance_id, "ExtendDeadlineEvent", {"hours": 1, "round": 1, "id": "too-late"})
    manual_host.run_until_idle()
    stage = custom(manual_host, instance_id)
    reasons = {i["id"]: i["reason"] for i in stage["ignored"]}
    assert "at most 720 hours" in reasons["too-far"]
    assert stage["round"] == 2 and stage["deadlineChanges"] == []


def test_each_stage_has_its_own_deadline_and_reminders_go_to_its_open_seats(manual_host):
    policy = {"stages": [{"name": "editor", "reviewers": ["anyone"], "hours": 10},
                         {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"],
                          "require": "all", "hours": 2}]}
    instance_id = start(manual_host, review=policy, remind_before_hours=[1])
    assert custom(manual_host, instance_id)["deadline"].startswith("2026-01-01T10:00")
    manual_host.advance(hours=3)  # editor decides three hours in
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "stage_index": 0, "id": "e"})
    manual_host.run_until_idle()
    legal = custom(manual_host, instance_id)
    assert legal["stages"][legal["stageIndex"]]["name"] == "legal"
    assert legal["deadline"].startswith("2026-01-01T05:00")  # legal's own 2 hours, from when it opened
    manual_host.raise_event(instance_id, "ApprovalEvent", {
        "approved": True, "round": 1, "stage_index": 1, "person": {"name": "bob@contoso.com"},
        "by": "bob@contoso.com", "id": "b"})
    manual_host.run_until_idle()
    manual_host.advance(hours=1)
    reminder = notice_requests(manual_host, instance_id)[-1]
    assert reminder["kind"] == "reminder" and reminder["stage"] == "legal"
    assert reminder["seats"] == [{"index": 1, "seat": "user:carol@contoso.com"}]  # only the seat still open
    manual_host.advance(hours=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "no decision for stage 'legal' of round 1 within 2 hour(s)" in status["output"]


ESCALATING_STAGES = {"stages": [
    {"name": "editor", "reviewers": ["anyone"], "hours": 10},
    {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all", "hours": 2}]}


def approve(host, instance_id, stage_index, who, event_id):
    host.raise_event(instance_id, "ApprovalEvent", {
        "approved": True, "round": 1, "stage_index": stage_index, "id": event_id,
        **({"person": {"name": who}, "by": who} if who else {})})
    host.run_until_idle()


def legal_waits_with_bob_decided(host):
    """A two-stage review that escalates: the editor approves three hours in, so legal
    opens at 03:00 with its own deadline (05:00); Bob approves at once, Carol does not."""
    instance_id = start(host, review=ESCALATING_STAGES, on_timeout="escalate", escalation_hours=12)
    host.advance(hours=3)
    approve(host, instance_id, 0, None, "e")
    approve(host, instance_id, 1, "bob@contoso.com", "b")
    legal = custom(host, instance_id)
    assert legal["stageIndex"] == 1 and legal["deadline"].startswith("2026-01-01T05:00")
    return instance_id


def test_the_second_stage_escalates_at_its_own_deadline_to_its_open_seats_and_a_decision_completes(manual_host):
    instance_id = legal_waits_with_bob_decided(manual_host)
    manual_host.advance(hours=1, minutes=59)
    assert custom(manual_host, instance_id)["stage"] == "awaiting_review"
    manual_host.advance(minutes=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    legal = status["customStatus"]
    assert legal["stage"] == "escalated" and legal["stageIndex"] == 1 and legal["round"] == 1
    assert legal["escalatedAt"].startswith("2026-01-01T05:00")
    assert legal["deadline"].startswith("2026-01-01T17:00")  # legal's deadline and the 12-hour window
    assert legal["notification"]["escalation"]["status"] == "sent"
    escalation = notice_requests(manual_host, instance_id)[-1]
    assert escalation["kind"] == "escalation" and escalation["stage"] == "legal"
    assert escalation["seats"] == [{"index": 1, "seat": "user:carol@contoso.com"}]  # Bob has decided
    assert escalation["deadline"].startswith("2026-01-01T17:00")
    manual_host.advance(hours=11)
    approve(manual_host, instance_id, 1, "carol@contoso.com", "c")
    done = manual_host.status(instance_id)
    assert done["runtimeStatus"] == "Completed"
    assert [(d["stage"], d["by"]) for d in done["output"]["decisions"]] == [
        ("editor", "function key"), ("legal", "bob@contoso.com"), ("legal", "carol@contoso.com")]


def test_the_second_stage_fails_when_its_escalation_window_passes_too(manual_host):
    instance_id = legal_waits_with_bob_decided(manual_host)
    manual_host.advance(hours=2)
    assert custom(manual_host, instance_id)["stage"] == "escalated"
    manual_host.advance(hours=11, minutes=59)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Running"
    manual_host.advance(minutes=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed" and status["customStatus"]["stage"] == "timed_out"
    assert ("no decision for stage 'legal' of round 1 within 2 hour(s) and the escalation window."
            in status["output"])


def test_a_stage_decided_in_its_escalation_window_leaves_the_next_stage_its_own_deadline(manual_host):
    instance_id = start(manual_host, review=ESCALATING_STAGES, on_timeout="escalate", escalation_hours=12)
    manual_host.advance(hours=10)
    assert custom(manual_host, instance_id)["stage"] == "escalated"
    manual_host.advance(hours=1)
    approve(manual_host, instance_id, 0, None, "e")
    legal = custom(manual_host, instance_id)
    assert legal["stageIndex"] == 1 and legal["stage"] == "awaiting_review" and legal["escalatedAt"] is None
    assert legal["deadline"].startswith("2026-01-01T13:00")  # opened at 11:00, legal's 2 hours
    manual_host.advance(hours=2)
    again = custom(manual_host, instance_id)
    assert again["stage"] == "escalated" and again["deadline"].startswith("2026-01-02T01:00")
    escalation = notice_requests(manual_host, instance_id)[-1]
    assert escalation["kind"] == "escalation" and escalation["stage"] == "legal"
