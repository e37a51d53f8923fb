"""The engine on the fixture apps, in process, with a manual clock.

Every orchestrator runs through the SDK's real replay; the assertions look at what the
extension would have recorded (history events and task ids) as well as at the outcome.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devhost.clock import parse_iso
from devhost.errors import EngineError
from devhost.history import EventType

from .helpers import events, execution_of, module_of, of_type

START = datetime(2026, 1, 1, tzinfo=timezone.utc)  # where a ManualClock starts


def run(host, orchestrator, input=None, instance_id=None):
    instance_id = host.start(orchestrator, input, instance_id)
    host.run_until_idle()
    return instance_id


def status(host, instance_id):
    return host.status(instance_id)["runtimeStatus"]


def output(host, instance_id):
    return host.status(instance_id)["output"]


# -- chaining and fan-out --------------------------------------------------------------

def test_chaining_feeds_each_result_to_the_next_activity(make_host):
    host = make_host("chaining")
    instance_id = run(host, "chain", "world")
    assert status(host, instance_id) == "Completed"
    assert output(host, instance_id) == ["Hello world", "Hello Hello world", "HELLO HELLO WORLD"]
    names = [e["Name"] for e in host.history(instance_id) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert names == ["say_hello", "say_hello", "shout"]


def test_fan_out_schedules_every_activity_in_one_episode_then_fans_in(make_host):
    host = make_host("fan_out")
    instance_id = run(host, "fan_out_fan_in", [1, 2, 3, 4, 5])
    assert output(host, instance_id) == {"squares": [1, 4, 9, 16, 25], "total": 55}
    history = host.history(instance_id)
    first_episode_end = next(i for i, e in enumerate(history) if e["EventType"] == EventType.ORCHESTRATOR_COMPLETED)
    fanned = [e["EventId"] for e in history[:first_episode_end] if e["EventType"] == EventType.TASK_SCHEDULED]
    assert fanned == [0, 1, 2, 3, 4]
    assert events(host, instance_id)[-2:] == [(EventType.TASK_SCHEDULED, 5), (EventType.TASK_COMPLETED, 5)]


def test_fan_out_fails_when_one_branch_fails(make_host):
    host = make_host("fan_out")
    instance_id = run(host, "fan_out_fan_in", [1, -2, 3])
    assert status(host, instance_id) == "Failed"
    assert "negative input -2" in output(host, instance_id)


def test_task_any_returns_the_activity_when_it_finishes_first(make_host):
    host = make_host("fan_out")
    instance_id = run(host, "first_of", 7)
    assert output(host, instance_id) == {"winner": "square", "value": 49}


def test_task_any_returns_the_event_when_it_arrives_first(make_host):
    host = make_host("fan_out")
    instance_id = host.start("first_of", 7)
    host.raise_event(instance_id, "Stop", "halt")
    host.run_until_idle()
    # The SDK client's double encoding reaches the orchestrator as the JSON text.
    assert output(host, instance_id) == {"winner": "Stop", "value": '"halt"'}


# -- retries ---------------------------------------------------------------------------

def test_retry_uses_hidden_timers_and_task_ids_and_waits_the_interval(features):
    attempts = module_of(features, "retry_activity")["ATTEMPTS"]
    job = {"key": "r1", "fail_times": 2, "interval_ms": 5000, "max_attempts": 3}
    instance_id = run(features, "retry_activity", job)
    assert attempts["r1"] == 1
    assert events(features, instance_id) == [
        (EventType.TASK_SCHEDULED, 0), (EventType.TASK_FAILED, 0), (EventType.TIMER_CREATED, 1)]
    assert features.pending_timers(instance_id) == [START + timedelta(seconds=5)]
    [timer] = of_type(features.history(instance_id), EventType.TIMER_CREATED)
    assert timer["FireAt"] == "2026-01-01T00:00:05.000000Z"  # six fraction digits (D11)

    features.advance(milliseconds=4999)
    assert attempts["r1"] == 1  # the interval has not elapsed: no second attempt yet
    features.advance(milliseconds=1)
    assert attempts["r1"] == 2
    features.advance(seconds=5)
    assert attempts["r1"] == 3
    assert events(features, instance_id) == [
        (EventType.TASK_SCHEDULED, 0), (EventType.TASK_FAILED, 0), (EventType.TIMER_CREATED, 1), (EventType.TIMER_FIRED, 1),
        (EventType.TASK_SCHEDULED, 2), (EventType.TASK_FAILED, 2), (EventType.TIMER_CREATED, 3), (EventType.TIMER_FIRED, 3),
        (EventType.TASK_SCHEDULED, 4), (EventType.TASK_COMPLETED, 4)]
    assert status(features, instance_id) == "Completed"
    assert output(features, instance_id) == {"key": "r1", "attempt": 3}


def test_retry_gives_up_after_one_more_timer_that_fires_at_once(features):
    """DurableTask's RetryInterceptor ends with a "dummy timer for back-compat" at the
    orchestration's current time, which the SDK waits for before it reports the error."""
    attempts = module_of(features, "retry_activity")["ATTEMPTS"]
    job = {"key": "r2", "fail_times": 9, "interval_ms": 1000, "max_attempts": 2}
    instance_id = run(features, "retry_activity", job)
    features.advance(seconds=1)
    assert attempts["r2"] == 2
    assert status(features, instance_id) == "Completed"  # no interval after the last attempt
    assert "attempt 2 of r2 failed" in output(features, instance_id)["gave_up"]
    assert events(features, instance_id)[-2:] == [(EventType.TIMER_CREATED, 3), (EventType.TIMER_FIRED, 3)]
    last_timer = [e for e in features.history(instance_id) if e["EventType"] == EventType.TIMER_CREATED][-1]
    assert last_timer["FireAt"] == "2026-01-01T00:00:01.000000Z"


def test_parallel_retries_number_their_hidden_tasks_in_completion_order(features):
    jobs = [{"key": "p-a", "fail_times": 1}, {"key": "p-b", "fail_times": 2}]
    instance_id = run(features, "retry_fan_out", jobs)
    for _ in range(3):
        features.advance(seconds=1)
    assert output(features, instance_id) == [
        {"key": "p-a", "attempt": 2}, {"key": "p-b", "attempt": 3}, "plain"]
    assert events(features, instance_id) == [
        (EventType.TASK_SCHEDULED, 0), (EventType.TASK_SCHEDULED, 1), (EventType.TASK_SCHEDULED, 2),
        (EventType.TASK_FAILED, 0), (EventType.TASK_FAILED, 1), (EventType.TASK_COMPLETED, 2),
        (EventType.TIMER_CREATED, 3), (EventType.TIMER_CREATED, 4), (EventType.TIMER_FIRED, 3), (EventType.TIMER_FIRED, 4),
        (EventType.TASK_SCHEDULED, 5), (EventType.TASK_SCHEDULED, 6), (EventType.TASK_COMPLETED, 5), (EventType.TASK_FAILED, 6),
        (EventType.TIMER_CREATED, 7), (EventType.TIMER_FIRED, 7), (EventType.TASK_SCHEDULED, 8), (EventType.TASK_COMPLETED, 8)]


# -- timers ----------------------------------------------------------------------------

def test_cancelled_timer_is_removed_and_never_fires(features):
    instance_id = run(features, "timer_race", 60)
    assert features.pending_timers(instance_id) == [START + timedelta(minutes=1)]
    [timer] = of_type(features.history(instance_id), EventType.TIMER_CREATED)
    assert timer["FireAt"] == "2026-01-01T00:01:00.000000Z"  # six fraction digits (D11)
    features.raise_event(instance_id, "Go", {"by": "reviewer"})
    features.run_until_idle()
    assert output(features, instance_id) == {"event": '{"by": "reviewer"}'}
    assert features.pending_timers(instance_id) == []
    length = len(features.history(instance_id))
    features.advance(minutes=5)
    assert len(features.history(instance_id)) == length
    assert not any(e["EventType"] == EventType.TIMER_FIRED for e in features.history(instance_id))


def test_timer_fires_at_its_virtual_time(features):
    instance_id = run(features, "timer_race", 60)
    features.advance(seconds=59)
    assert status(features, instance_id) == "Running"
    features.advance(seconds=1)
    assert output(features, instance_id) == "timeout"
    finished = parse_iso(features.status(instance_id)["lastUpdatedTime"])
    assert finished == datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)


def test_long_timer_is_split_by_the_sdk_and_completes_at_the_right_time(features):
    instance_id = run(features, "long_timer", 10)
    fired_pieces = []
    for day in range(1, 10):
        features.advance(days=1)
        fired_pieces = [e["FireAt"][:10] for e in features.history(instance_id)
                        if e["EventType"] == EventType.TIMER_FIRED]
    assert fired_pieces == ["2026-01-04", "2026-01-07"]  # 3-day pieces until 6 days remain
    assert features.pending_timers(instance_id) == [datetime(2026, 1, 11, tzinfo=timezone.utc)]
    features.advance(hours=23, minutes=59)
    assert status(features, instance_id) == "Running"
    features.advance(minutes=1)
    assert status(features, instance_id) == "Completed"
    assert output(features, instance_id).startswith("2026-01-11T00:00:00")
    assert [tid for kind, tid in events(features, instance_id) if kind == EventType.TIMER_CREATED] == [0, 1, 2]


# -- continue-as-new and sub-orchestrations ---------------------------------------------

def test_continue_as_new_restarts_with_fresh_history_until_done(features):
    instance_id = run(features, "counter", {"n": 0, "stop": 3})
    described = features.status(instance_id)
    assert described["runtimeStatus"] == "Completed"
    assert described["output"] == {"final": 3}
    # ContinueAsNew stores the SDK's JSON text as a string; the status shows that string.
    assert described["input"] == '{"n": 3, "stop": 3}'
    history = features.history(instance_id)
    assert [e["EventType"] for e in history].count(EventType.EXECUTION_STARTED) == 1
    assert events(features, instance_id) == [(EventType.TASK_SCHEDULED, 0), (EventType.TASK_COMPLETED, 0)]


def test_sub_orchestrations_complete_fail_and_retry(features):
    instance_id = run(features, "parent", {"key": "s1"})
    assert status(features, instance_id) == "Running"  # the flaky child failed once; retry timer pending
    features.advance(milliseconds=999)
    assert status(features, instance_id) == "Running"
    features.advance(milliseconds=1)
    result = output(features, instance_id)
    assert status(features, instance_id) == "Completed"
    assert result["ok"] == {"child": f"{instance_id}-ok", "parent": instance_id, "loud": "HI"}
    assert "child could not handle 42" in result["failure"]
    assert result["retried"] == {"key": "s1", "attempt": 2}
    created = EventType.SUB_ORCHESTRATION_INSTANCE_CREATED
    completed = EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED
    failed = EventType.SUB_ORCHESTRATION_INSTANCE_FAILED
    assert events(features, instance_id) == [
        (created, 0), (completed, 0), (created, 1), (failed, 1),
        (created, 2), (failed, 2), (EventType.TIMER_CREATED, 3), (EventType.TIMER_FIRED, 3),
        (created, 4), (completed, 4)]
    # Children without an id are "<parent execution id>:<task id>" (DurableTask.Core).
    execution = features.history(instance_id)[1]["OrchestrationInstance"]["ExecutionId"]
    assert status(features, f"{execution}:1") == "Failed"
    assert status(features, f"{execution}:2") == "Failed"
    assert status(features, f"{execution}:4") == "Completed"


# -- custom status, failures, unsupported features --------------------------------------

def test_custom_status_is_visible_while_running_and_after(features):
    instance_id = run(features, "custom_status")
    assert features.status(instance_id)["customStatus"] == {"stage": "waiting"}
    features.raise_event(instance_id, "Answer", 42)
    features.run_until_idle()
    described = features.status(instance_id)
    assert described["customStatus"] == {"stage": "done", "answer": "42"}
    assert described["output"] == "42"


def test_orchestrator_exception_fails_the_instance_with_its_message(features):
    instance_id = run(features, "raises", {"a": 1})
    assert status(features, instance_id) == "Failed"
    assert output(features, instance_id) == (
        "Orchestrator function 'raises' failed: the input was rejected: {\"a\": 1}")
    completed = features.history(instance_id)[-2]
    assert completed["EventType"] == EventType.EXECUTION_COMPLETED
    assert completed["OrchestrationStatus"] == 3  # DurableTask.Core OrchestrationStatus.Failed


def test_nondeterministic_orchestrator_fails_on_replay(features):
    choice = module_of(features, "nondeterministic")["CHOICE"]
    instance_id = run(features, "nondeterministic")
    assert status(features, instance_id) == "Running"
    choice["activity"] = "shout"  # the code now takes another path than its history
    features.raise_event(instance_id, "Continue", 1)
    features.run_until_idle()
    assert status(features, instance_id) == "Failed"
    message = output(features, instance_id)
    assert "Non-Deterministic" in message
    assert "'echo'" in message and "'shout'" in message


def test_call_to_an_entity_the_app_lacks_leaves_the_instance_waiting_and_says_why(features, caplog):
    # CallDurableTaskFunctionAsync's ThrowIfFunctionDoesNotExist faults only the task, and
    # OutOfProcOrchestrationShim.ProcessAsyncActionsV2 ignores a faulted task.
    instance_id = run(features, "uses_entity")
    assert status(features, instance_id) == "Running"
    assert "The function 'counter' doesn't exist, is disabled, or is not an entity function" in caplog.text


# -- control operations ----------------------------------------------------------------

def test_suspended_instance_keeps_its_events_until_resumed(features):
    instance_id = run(features, "custom_status")
    features.suspend(instance_id, "maintenance")
    features.run_until_idle()
    assert status(features, instance_id) == "Suspended"
    features.raise_event(instance_id, "Answer", "later")
    features.run_until_idle()  # must settle: the queued event is not offered while suspended
    assert status(features, instance_id) == "Suspended"
    features.resume(instance_id, "done")
    features.run_until_idle()
    assert status(features, instance_id) == "Completed"
    assert output(features, instance_id) == '"later"'


def test_terminate_records_the_reason_and_drops_pending_timers(features):
    instance_id = run(features, "timer_race", 60)
    features.terminate(instance_id, "no longer needed")
    features.run_until_idle()
    assert status(features, instance_id) == "Terminated"
    assert output(features, instance_id) == "no longer needed"
    assert features.pending_timers(instance_id) == []


# -- SDK bug #507, reproduced on purpose ------------------------------------------------

def test_naive_loop_reuses_a_buffered_event_for_every_later_wait(features):
    """The devhost must show #507 as Azure does: it must not work around it."""
    instance_id = run(features, "naive_approvals", 3)
    features.raise_event(instance_id, "Approval", "first")
    features.step(instance_id)  # "first" completes the wait; echo is scheduled
    features.raise_event(instance_id, "Approval", "second")
    with pytest.warns(UserWarning, match="Potential duplicate Task completion"):
        features.step(instance_id)  # no wait is open: the SDK buffers "second"
        features.run_until_idle()
    assert status(features, instance_id) == "Completed"
    # Only two events were raised, yet the third wait completed at once with the old payload.
    assert output(features, instance_id) == ['"first"', '"second"', '"second"']
    raised = [e["Input"] for e in features.history(instance_id) if e["EventType"] == EventType.EVENT_RAISED]
    assert raised == ['"\\"first\\""', '"\\"second\\""']


def test_two_events_in_one_episode_also_hit_the_buffering_bug(features):
    instance_id = run(features, "naive_approvals", 4)
    features.raise_event(instance_id, "Approval", "a")
    features.raise_event(instance_id, "Approval", "b")
    with pytest.warns(UserWarning, match="Potential duplicate Task completion"):
        features.run_until_idle()
    assert output(features, instance_id) == ['"a"', '"b"', '"b"', '"b"']


def test_starting_an_unknown_orchestrator_is_refused(features):
    with pytest.raises(EngineError, match="'missing' doesn't exist"):
        features.start("missing")


def test_child_result_for_an_execution_that_continued_as_new_is_dropped(make_host):
    host = make_host("stale_child")
    instance_id = host.start("impatient_parent", "first")
    host.run_until_idle()
    first_execution = execution_of(host, instance_id)
    host.advance(minutes=3)  # the parent's timer wins at 1 min, the child finishes at 2 min
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "the activity's own result"
    child = host.status(f"{first_execution}:0")
    assert child["runtimeStatus"] == "Completed"
