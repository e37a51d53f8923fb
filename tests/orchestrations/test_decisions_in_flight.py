"""Decisions that arrive together, twice, early, late or against a cancel.

Each case runs the real SDK replay on the devhost with a manual clock. Events are raised
as the SDK client raises them (JSON text, as Azure delivers it), several before the host
runs, so they reach the orchestrator in one batch, which is where decisions used to be
lost: a stale one ended the execution and continue-as-new dropped the rest.
"""
from __future__ import annotations

import errno
import json

import pytest

from devhost.history import EventType

from .test_hitl_orchestration import custom, published_files, start

ORCHESTRATOR = "hitl_orchestration"


def decision(round_, approved=True, feedback="", id_=None, by="function key"):
    payload = {"approved": approved, "feedback": feedback or ("" if approved else "redo"),
               "round": round_, "by": by}
    if id_:
        payload["id"] = id_
    return payload


def to_round_two(host):
    instance_id = start(host)
    host.raise_event(instance_id, "ApprovalEvent", decision(1, False, "more detail", "d-1"))
    host.run_until_idle()
    assert custom(host, instance_id)["round"] == 2
    return instance_id


def test_a_valid_decision_behind_a_stale_one_in_the_same_batch_is_applied(manual_host):
    """Before: the stale round-1 event made the execution continue as new, and the round-2
    approval delivered with it was dropped."""
    instance_id = to_round_two(manual_host)
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="late-1"))
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(2, id_="valid-2"))
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert [d["id"] for d in status["output"]["decisions"]] == ["d-1", "valid-2"]
    ignored = status["customStatus"]["ignored"]
    assert [(i["id"], i["reason"]) for i in ignored] == [("late-1", "round 1 was already decided")]


def test_many_stale_events_then_a_valid_one_all_in_one_batch(manual_host):
    instance_id = to_round_two(manual_host)
    for n in range(5):
        manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_=f"stale-{n}"))
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": "yes"})
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(2, False, "again", "valid-2"))
    manual_host.run_until_idle()
    status = custom(manual_host, instance_id)
    assert status["round"] == 3 and status["stage"] == "awaiting_review"
    assert [d["id"] for d in status["decisions"]] == ["d-1", "valid-2"]
    assert len(status["ignored"]) == 6


def test_a_decision_delivered_twice_is_applied_once(manual_host):
    instance_id = start(manual_host)
    for _ in range(2):
        manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, False, "tighter", "same-id"))
    manual_host.run_until_idle()
    status = custom(manual_host, instance_id)
    assert status["round"] == 2 and [d["id"] for d in status["decisions"]] == ["same-id"]
    # The copy came in the batch after the rejection was taken: the next execution sees it
    # and, knowing the id, neither applies nor records it again.
    assert status["ignored"] == []


def test_events_during_drafting_are_recorded_not_buffered(manual_host):
    """SDK bug #507: an event with no wait open is buffered and handed to every later
    wait. The review keeps a wait open while the writer works, so the stale approval
    sent during the redraft is taken and recorded, and round 2 still waits for a decision."""
    instance_id = start(manual_host)
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, False, "shorter", "r-1"))
    manual_host.step(instance_id)  # the rejection is taken: the review continues as new
    manual_host.step(instance_id)  # the new execution starts drafting
    assert manual_host.pending_activities(instance_id) == ["write_draft"]
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="stale"))
    manual_host.run_until_idle()
    status = custom(manual_host, instance_id)
    assert status["stage"] == "awaiting_review" and status["round"] == 2
    assert [(i["id"], i["reason"]) for i in status["ignored"]] == [("stale", "round 1 was already decided")]
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(2, id_="ok"))
    manual_host.run_until_idle()
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_cancel_then_approval_in_one_batch_cancels(manual_host, offline_env):
    instance_id = start(manual_host)
    manual_host.raise_event(instance_id, "CancelEvent", {"reason": "withdrawn", "by": "owner", "id": "c-1"})
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="a-1"))
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Failed" and status["customStatus"]["stage"] == "cancelled"
    assert status["customStatus"]["cancel"]["id"] == "c-1"
    assert status["customStatus"]["decisions"] == []  # the approval came after: never applied
    assert published_files(offline_env) == []


def test_approval_then_cancel_in_one_batch_publishes_and_refuses_the_cancel(manual_host, offline_env):
    """Before: terminate won over an approval that had been answered 200, with no record."""
    instance_id = start(manual_host)
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="a-1"))
    manual_host.raise_event(instance_id, "CancelEvent", {"reason": "withdrawn", "by": "owner", "id": "c-1"})
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    ignored = status["customStatus"]["ignored"]
    assert [(i["id"], i["reason"]) for i in ignored] == [
        ("c-1", "round 1 was already approved; it is being published")]
    assert published_files(offline_env) == [f"{instance_id}.json"]


def test_cancel_while_the_writer_drafts_ends_the_review(manual_host):
    instance_id = manual_host.start(ORCHESTRATOR, {"topic": "Cancelled early"})
    manual_host.step(instance_id)
    assert manual_host.pending_activities(instance_id) == ["write_draft"]  # scheduled, not run
    manual_host.raise_event(instance_id, "CancelEvent", {"reason": "changed plans", "id": "c-9"})
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["customStatus"]["stage"] == "cancelled"
    assert "changed plans" in status["output"]


def test_publishing_retries_a_full_disk_until_it_has_room(manual_host, offline_env, monkeypatch):
    """Before: a full publish disk failed an approved review for good."""
    import activities.publish_content as publish_module

    real_publish, failures = publish_module.publish, []

    def full_disk_twice(request, settings):
        if len(failures) < 2:
            failures.append(1)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_publish(request, settings)

    monkeypatch.setattr(publish_module, "publish", full_disk_twice)
    instance_id = start(manual_host)
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="a-1"))
    manual_host.run_until_idle()
    status = custom(manual_host, instance_id)
    assert status["stage"] == "publishing" and "No space left on device" in status["retrying"]
    assert "retrying" in status["message"]
    manual_host.advance(seconds=10)
    assert len(failures) == 2 and custom(manual_host, instance_id)["stage"] == "publishing"
    manual_host.advance(seconds=30)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"
    assert published_files(offline_env) == [f"{instance_id}.json"]


def test_too_many_ignored_events_continue_as_new_and_keep_waiting(manual_host):
    from orchestrations.hitl_orchestration import EVENTS_PER_EXECUTION

    instance_id = start(manual_host)
    for n in range(EVENTS_PER_EXECUTION + 3):
        manual_host.raise_event(instance_id, "ApprovalEvent", decision(3, id_=f"wrong-{n}"))
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running" and status["customStatus"]["stage"] == "awaiting_review"
    history = manual_host.history(instance_id)
    assert sum(1 for e in history if e["EventType"] == EventType.EVENT_RAISED) <= EVENTS_PER_EXECUTION
    manual_host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="right"))
    manual_host.run_until_idle()
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def _decided_while_the_notice_is_out(host, start_input):
    """A review whose notice has been scheduled and has not returned when a decision comes."""
    instance_id = host.start(ORCHESTRATOR, start_input)
    host.step(instance_id)  # the draft is asked for
    [draft] = host.engine.pending_work()
    host.engine.complete_activities([(draft, host.engine.execute_activity(draft))])
    host.step(instance_id)  # the notice goes out
    assert "notify_reviewer" in host.pending_activities(instance_id)
    host.raise_event(instance_id, "ApprovalEvent", decision(1, id_="while-out"))
    host.step(instance_id)
    return [e for e in host.history(instance_id) if e["EventType"] == EventType.EVENT_SENT]


def test_a_decision_while_the_notice_is_out_tells_the_messages_entity_when_slack_messages_are_sent(manual_host):
    """The notice may be posting Slack messages the review does not know of yet: the
    entity hears of the decision at once, and closes them when the notice reports them."""
    from shared_code.models import RunRequest
    sent = _decided_while_the_notice_is_out(manual_host, RunRequest.from_json({"topic": "Timers"})
                                            .to_start_input(slack=True))
    told = [e for e in sent if e["InstanceId"].startswith("@seat_messages@")]
    assert len(told) == 1
    # The request message carries the operation input as the SDK encoded it: JSON text in a JSON string.
    update = json.loads(json.loads(json.loads(told[0]["Input"])["input"]))
    assert update["messages"] == [] and update["decided"] is True
    assert [d["approved"] for d in update["decisions"]] == [True]


@pytest.mark.parametrize("version", [5, 4])
def test_without_slack_or_from_an_earlier_release_a_decision_while_the_notice_is_out_tells_nobody(
        manual_host, version):
    """A review that sends no Slack messages has no entity to tell; one whose start an
    earlier release wrote (version 4) replays exactly as that release recorded it."""
    from shared_code.models import RunRequest
    start_input = {**RunRequest.from_json({"topic": "Timers"}).to_start_input(), "version": version}
    sent = _decided_while_the_notice_is_out(manual_host, start_input)
    assert not [e for e in sent if e["InstanceId"].startswith("@seat_messages@")]
