"""The review orchestration on the devhost engine, with a manual clock.

These run the SDK's real replay, so event buffering (#507), timers and continue-as-new
behave as they do on Azure; nothing here is mocked.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from devhost.history import EventType

ORCHESTRATOR = "hitl_orchestration"


def start(host, topic="Durable timers", attempts=3, hours=72.0):
    instance_id = host.start(ORCHESTRATOR, {"topic": topic, "max_review_attempts": attempts,
                                            "approval_timeout_hours": hours})
    host.run_until_idle()
    return instance_id


def decide(host, instance_id, approved, feedback="", round_=None, settle=True):
    payload = {"approved": approved, "feedback": feedback}
    if round_ is not None:
        payload["round"] = round_
    host.raise_event(instance_id, "ApprovalEvent", payload)
    if settle:
        host.run_until_idle()


def custom(host, instance_id):
    return host.status(instance_id)["customStatus"]


def published_files(offline_env):
    folder = offline_env / "published"
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def test_first_draft_waits_for_review_with_deadline(manual_host):
    instance_id = start(manual_host)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    stage = status["customStatus"]
    assert stage["stage"] == "awaiting_review" and stage["round"] == 1 and stage["maxRounds"] == 3
    assert stage["draft"]["title"] and "Durable timers" in stage["draft"]["content"]
    assert stage["deadline"].startswith("2026-01-04T00:00:00")  # 72 h after the manual clock's start


def test_approve_in_round_one_publishes_once(manual_host, offline_env):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, True, round_=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    output = status["output"]
    assert output["rounds"] == 1 and output["title"].startswith("Draft 1")
    assert [d["approved"] for d in output["decisions"]] == [True]
    assert output["decisions"][0]["at"].startswith("2026-01-01")
    assert custom(manual_host, instance_id)["stage"] == "published"
    assert published_files(offline_env) == [f"{instance_id}.json"]
    assert manual_host.pending_timers(instance_id) == []  # the decision cancelled the timer


def test_reject_then_revise_then_approve_passes_feedback_to_writer(manual_host):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, False, "Add a section on retries", round_=1)
    stage = custom(manual_host, instance_id)
    assert stage["stage"] == "awaiting_review" and stage["round"] == 2
    assert "Add a section on retries" in stage["draft"]["content"]
    decide(manual_host, instance_id, True, round_=2)
    output = manual_host.status(instance_id)["output"]
    assert output["rounds"] == 2
    assert [(d["round"], d["approved"], d["feedback"]) for d in output["decisions"]] == [
        (1, False, "Add a section on retries"), (2, True, "")]


def test_carried_state_keeps_the_latest_drafts_and_every_decision(manual_host):
    instance_id = start(manual_host, attempts=8)
    inputs = []
    for round_ in range(1, 7):
        decide(manual_host, instance_id, False, f"feedback {round_}", round_=round_)
        inputs.append(len(json.dumps(manual_host.status(instance_id)["input"])))
    stage = custom(manual_host, instance_id)
    assert stage["round"] == 7
    assert [d["round"] for d in stage["earlierDrafts"]] == [4, 5, 6]
    assert [d["feedback"] for d in stage["decisions"]] == [f"feedback {r}" for r in range(1, 7)]
    # once the excerpts stop piling up, a round adds only its decision (and the note that
    # it was taken, kept for the latest 20) to the input
    assert inputs[-1] - inputs[-2] < 400 < inputs[2] - inputs[1]


def test_rejection_limit_fails_with_reason(manual_host, offline_env):
    instance_id = start(manual_host, attempts=2)
    decide(manual_host, instance_id, False, "no", round_=1)
    decide(manual_host, instance_id, False, "still no", round_=2)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "not approved after 2" in status["output"]
    assert status["customStatus"]["stage"] == "rejected"
    assert published_files(offline_env) == []


def test_timeout_after_72_virtual_hours(manual_host):
    instance_id = start(manual_host, hours=72)
    manual_host.advance(hours=71, minutes=59)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Running"
    manual_host.advance(minutes=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "timed out" in status["output"]
    assert status["customStatus"]["stage"] == "timed_out"


def test_stale_approval_sent_while_redrafting_is_ignored(manual_host):
    instance_id = start(manual_host)
    # The reviewer rejects, then an old approval of round 1 arrives before round 2 is drafted.
    decide(manual_host, instance_id, False, "shorter", round_=1, settle=False)
    decide(manual_host, instance_id, True, round_=1, settle=False)
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    assert status["customStatus"]["stage"] == "awaiting_review"
    assert status["customStatus"]["round"] == 2
    assert [d["round"] for d in status["customStatus"]["decisions"]] == [1]


def test_double_clicked_rejection_applies_once_and_never_loops(manual_host):
    instance_id = start(manual_host)
    for _ in range(3):
        decide(manual_host, instance_id, False, "more examples", round_=1, settle=False)
    episodes = manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["customStatus"]["round"] == 2
    assert len(status["customStatus"]["decisions"]) == 1
    assert episodes < 20  # each stale copy costs one short execution, not an endless redraft
    decide(manual_host, instance_id, True, round_=2)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_decision_without_round_or_malformed_is_ignored(manual_host):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, True)  # no round: could be meant for any draft
    decide(manual_host, instance_id, "yes", round_=1)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    ignored = status["customStatus"]["ignored"]
    assert [i["reason"].split(":")[0] for i in ignored] == ["not a decision"] * 2
    decide(manual_host, instance_id, True, round_=1)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_text_that_is_not_valid_unicode_sent_past_the_routes_is_ignored(manual_host):
    # The Durable API takes any JSON, and "\\ud800" is valid JSON for a lone surrogate,
    # which nothing can publish: the review must ignore it, not fail on it later.
    instance_id = start(manual_host)
    manual_host.raise_event(instance_id, "ApprovalEvent",
                            {"approved": True, "feedback": "\ud800", "round": 1, "by": "\udfff"})
    manual_host.raise_event(instance_id, "CancelEvent", {"reason": "\ud800"})
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed" and status["customStatus"]["stage"] == "cancelled"
    assert "\ud800" not in json.dumps(status)
    assert [i["reason"].split(":")[0] for i in status["customStatus"]["ignored"]] == ["not a decision"]


def test_thirty_day_timeout_is_cancelled_by_a_decision(manual_host):
    instance_id = start(manual_host, hours=720)
    manual_host.advance(days=10)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    assert status["customStatus"]["deadline"].startswith("2026-01-31")
    # one slice of at most a day
    assert manual_host.pending_timers(instance_id) == [datetime(2026, 1, 12, tzinfo=timezone.utc)]
    decide(manual_host, instance_id, True, round_=1)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"
    assert manual_host.pending_timers(instance_id) == []


def test_timeout_counts_from_each_draft_not_from_the_start(manual_host):
    instance_id = start(manual_host, hours=48)
    manual_host.advance(hours=47)
    decide(manual_host, instance_id, False, "again", round_=1)
    manual_host.advance(hours=47)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running" and status["customStatus"]["round"] == 2


def test_replaying_a_finished_history_gives_the_same_result(manual_host):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, True, round_=1)
    replayed = manual_host.replay(instance_id)
    assert replayed.problem is None and replayed.done
    assert replayed.output == manual_host.status(instance_id)["output"]
    scheduled = [e["Name"] for e in manual_host.history(instance_id) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert replayed.scheduled == scheduled == ["write_draft", "notify_reviewer", "publish_content"]


def test_permanent_writer_failure_fails_fast_without_retries(manual_host, monkeypatch):
    monkeypatch.setenv("HITL_WRITER", "openai")  # and no endpoint: a configuration error
    instance_id = start(manual_host)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "no writer configured" in status["output"]
    assert status["customStatus"]["stage"] == "failed"
    attempts = [e for e in manual_host.history(instance_id) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert len(attempts) == 1


def test_notification_channel_down_is_shown_and_a_decision_still_completes(manual_host, monkeypatch):
    import activities.notify_reviewer as notify_module
    from tests.support.webhook import WebhookReceiver

    monkeypatch.setattr(notify_module, "RETRY_DELAYS_SECONDS", (0.0, 0.0, 0.0))
    with WebhookReceiver(default_status=503) as hook:
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", hook.url)
        instance_id = start(manual_host)
        stage = custom(manual_host, instance_id)
        assert stage["stage"] == "awaiting_review"
        assert stage["notification"]["status"] == "failed"
        assert "answered 503" in stage["notification"]["reason"]
        assert len(hook.received) == 4 and hook.delivered == []
    decide(manual_host, instance_id, True, round_=1)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_decision_arriving_with_the_timer_slice_is_not_dropped(manual_host):
    from datetime import timedelta
    instance_id = start(manual_host, hours=72)
    manual_host.clock.advance(timedelta(days=1))  # the slice timer is due, not yet run
    decide(manual_host, instance_id, True, round_=1, settle=False)
    manual_host.run_until_idle()
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_decision_arriving_with_the_deadline_is_not_dropped(manual_host):
    from datetime import timedelta
    instance_id = start(manual_host, hours=12)
    manual_host.clock.advance(timedelta(hours=12))
    decide(manual_host, instance_id, False, "late but in time", round_=1, settle=False)
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running" and status["customStatus"]["round"] == 2


def test_status_says_revising_as_soon_as_a_rejection_is_taken(manual_host):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, False, "again", round_=1, settle=False)
    assert manual_host.step(instance_id)  # only the decision's episode
    assert manual_host.pending_activities(instance_id) == []
    stage = custom(manual_host, instance_id)
    assert stage["stage"] == "revising" and stage["round"] == 2


def test_the_longest_review_keeps_its_custom_status_under_the_extensions_16_kb(manual_host):
    """Before: the custom status carried every draft and feedback whole, and the Durable
    extension fails an orchestration whose custom status passes 16 KB of UTF-16."""
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, utf16_size

    instance_id = start(manual_host, topic="t" * 2000, attempts=10)
    for round_ in range(1, 10):
        decide(manual_host, instance_id, False, f"{round_} " + "f" * 3990, round_=round_)
        status = manual_host.status(instance_id)
        assert status["runtimeStatus"] == "Running", status["output"]
        assert utf16_size(status["customStatus"]) <= CUSTOM_STATUS_LIMIT_BYTES
    decide(manual_host, instance_id, True, round_=10)
    output = manual_host.status(instance_id)["output"]
    assert output["rounds"] == 10 and [len(d["feedback"]) for d in output["decisions"][:9]] == [3992] * 9


def test_the_largest_team_policy_keeps_its_custom_status_under_16_kb(manual_host):
    """5 stages of 20 seats, every decision with the longest feedback, a topic at its
    limit: the status shrinks (excerpts, the stage under review's decisions, tallies) and
    the review goes on to publication."""
    from shared_code.review_policy import MAX_SEATS, MAX_STAGES
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, utf16_size

    names = [f"stage-{n}" for n in range(MAX_STAGES)]
    policy = {"stages": [{"name": name, "reviewers": [f"role:{name}"] * MAX_SEATS, "require": "all"}
                         for name in names]}
    instance_id = manual_host.start(ORCHESTRATOR, {"topic": "t" * 2000, "max_review_attempts": 2,
                                                   "approval_timeout_hours": 72, "review": policy})
    manual_host.run_until_idle()
    sizes = []

    def vote(round_, stage, person, approved):
        feedback = f"{person} ".ljust(4000, "f")  # the longest feedback a decision can carry
        payload = {"approved": approved, "feedback": feedback, "round": round_, "stage_index": stage,
                   "by": person, "channel": "function key",
                   "person": {"name": person, "roles": [names[stage]]}, "id": f"r{round_}s{stage}{person}"}
        manual_host.raise_event(instance_id, "ApprovalEvent", payload)
        manual_host.run_until_idle()
        status = manual_host.status(instance_id)
        assert status["runtimeStatus"] in ("Running", "Completed"), status["output"]
        sizes.append(utf16_size(status["customStatus"]))

    for stage in range(MAX_STAGES):
        for seat in range(MAX_SEATS if stage < MAX_STAGES - 1 else 1):
            vote(1, stage, f"p{seat}@contoso.com", approved=stage < MAX_STAGES - 1)
    assert custom(manual_host, instance_id)["round"] == 2
    for stage in range(MAX_STAGES):
        for seat in range(MAX_SEATS):
            vote(2, stage, f"p{seat}@contoso.com", approved=True)
    assert max(sizes) <= CUSTOM_STATUS_LIMIT_BYTES
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert len(status["output"]["decisions"]) == 4 * MAX_SEATS + 1 + MAX_STAGES * MAX_SEATS
    state_chars = len(json.dumps(status["input"]))
    assert state_chars < 200_000, state_chars  # closed stages keep excerpts of their comments


def test_the_episode_that_continues_as_new_shows_the_decision_it_took(manual_host):
    """An execution ends after DECISIONS_PER_EXECUTION decisions, and after the last one of
    a stage. The status it leaves shows the decision it took last, so a route watching for
    that decision answers after this episode, not after the next execution's first; after
    a stage's last, it shows that stage approved until the next execution opens the next."""
    from orchestrations.hitl_orchestration import DECISIONS_PER_EXECUTION

    seats = DECISIONS_PER_EXECUTION + 1
    names = ["legal", "brand"]
    policy = {"stages": [{"name": name, "reviewers": [f"role:{name}"] * seats, "require": "all"} for name in names]}
    instance_id = manual_host.start(ORCHESTRATOR, {"topic": "Owls", "max_review_attempts": 1,
                                                   "approval_timeout_hours": 72, "review": policy})
    manual_host.run_until_idle()

    def vote(stage, seat):
        event_id = f"s{stage}p{seat}"
        manual_host.raise_event(instance_id, "ApprovalEvent", {
            "approved": True, "round": 1, "stage_index": stage, "by": f"p{seat}", "channel": "function key",
            "person": {"name": f"p{seat}", "roles": [names[stage]]}, "id": event_id})
        assert manual_host.step(instance_id)  # only the episode that takes the decision
        return event_id

    for seat in range(DECISIONS_PER_EXECUTION):
        event_id = vote(0, seat)
    status = custom(manual_host, instance_id)
    assert status["decisions"][-1]["id"] == event_id and status["stage"] == "awaiting_review"
    assert manual_host.step(instance_id)  # the next execution had not run yet
    manual_host.run_until_idle()

    event_id = vote(0, DECISIONS_PER_EXECUTION)
    status = custom(manual_host, instance_id)
    assert any(d["id"] == event_id for d in status["decisions"])
    assert (status["stageIndex"], status["stages"][0]["state"]) == (0, "approved")
    assert status["message"] == "Round 1 of 1, stage 1 of 2 (legal): approved; the next stage opens."
    assert manual_host.step(instance_id)
    manual_host.run_until_idle()
    assert custom(manual_host, instance_id)["stageIndex"] == 1
