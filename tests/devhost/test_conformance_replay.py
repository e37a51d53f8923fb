"""Conformance: how orchestrations replay and entities batch (docs/DEVHOST-CONFORMANCE.md,
"Orchestration replay", "Durable entities", "Where the devhost differs", "What the devhost
does not support"). Each test names the extension, DurableTask.Core or SDK code it
reproduces; C# names are in azure-functions-durable-extension,
src/WebJobs.Extensions.DurableTask/, at a7c6d69.

Everything runs in process on the conformance fixture app with a manual clock.
"""
from __future__ import annotations

import json
import logging
import re
import sqlite3

import pytest

from devhost.entity_batches import ABORTED_BATCH_RETRY_SECONDS
from devhost.errors import InvalidArgument
from devhost.history import EventType

from .helpers import execution_of, module_of, of_type, public_history, run


@pytest.fixture
def host(conformance):
    return conformance


# -- R3: IsPlayed ------------------------------------------------------------------------

def test_r3_processed_events_are_stored_played_and_produced_ones_are_not(host):
    """DurableTask.Core TaskOrchestrationExecutor: ``ProcessEvent(e); e.IsPlayed = true``
    for every event but OrchestratorStarted (skipped with ``continue``); the scheduling
    events and ExecutionCompleted are added after the run and never processed."""
    instance_id = run(host, "every_kind")
    host.advance(seconds=1)  # the timer
    host.raise_event(instance_id, "Go", "go")
    host.run_until_idle()
    assert host.status(instance_id)["runtimeStatus"] == "Completed"
    played: dict[EventType, set] = {}
    for e in host.history(instance_id):
        played.setdefault(EventType(e["EventType"]), set()).add(e["IsPlayed"])
    assert played == {
        EventType.ORCHESTRATOR_STARTED: {False},
        EventType.EXECUTION_STARTED: {True},
        EventType.TASK_SCHEDULED: {False},
        EventType.TASK_COMPLETED: {True},
        EventType.TIMER_CREATED: {False},
        EventType.TIMER_FIRED: {True},
        EventType.EVENT_RAISED: {True},
        EventType.SUB_ORCHESTRATION_INSTANCE_CREATED: {False},
        EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED: {True},
        EventType.EVENT_SENT: {False},
        EventType.EXECUTION_COMPLETED: {False},
        EventType.ORCHESTRATOR_COMPLETED: {False},
    }


# -- R8: names match ignoring case -----------------------------------------------------

def test_r8_an_orchestrator_started_by_another_case_runs(host):
    """The extension's function registry is keyed by FunctionName, whose Equals is
    StringComparison.OrdinalIgnoreCase (DurableTaskExtension.ThrowIfFunctionDoesNotExist,
    knownOrchestrators)."""
    instance_id = run(host, "ECHO_INPUT", "loud")
    status = host.status(instance_id)
    assert (status["runtimeStatus"], status["output"]) == ("Completed", "loud")


def test_r8_activities_and_children_called_by_another_case_run(host):
    """As above for knownActivities (INameVersionObjectManager<TaskActivity>.GetObject) and
    sub-orchestrators; the history records the name as the orchestrator spelt it, as
    DurableTask.Core's ScheduleTask and CreateSubOrchestrationInstance do."""
    instance_id = run(host, "mixed_case_calls")
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"activity": "activity", "child": {"child_got": "child"}}
    history = host.history(instance_id)
    assert [e["Name"] for e in of_type(history, EventType.TASK_SCHEDULED)] == ["ECHO"]
    assert [e["Name"] for e in of_type(history, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED)] == [
        "Plain_Child"]


def test_r8_the_instance_keeps_the_name_it_was_started_with(host):
    """DurableClient.StartNewAsync passes the name as given to TaskHubClient.
    CreateOrchestrationInstanceAsync, so ExecutionStarted.Name and the status 'name' are
    the caller's spelling, for a child too (DurableTask.Core ExecutionStartedEvent.Name)."""
    instance_id = run(host, "ECHO_INPUT", "loud")
    assert host.status(instance_id)["name"] == "ECHO_INPUT"
    assert of_type(host.history(instance_id), EventType.EXECUTION_STARTED)[0]["Name"] == "ECHO_INPUT"
    run(host, "mixed_case_calls")
    assert host.status("mixed-case-child")["name"] == "Plain_Child"


# -- R9, D7, D8: calls to functions the app lacks -----------------------------------------

@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")  # the unawaited event
@pytest.mark.parametrize("orchestrator, kind, missing, scheduling_event", [
    ("calls_unknown_activity", "activity", "no_such_activity", EventType.TASK_SCHEDULED),
    ("calls_unknown_child", "orchestrator", "no_such_orchestrator",
     EventType.SUB_ORCHESTRATION_INSTANCE_CREATED),
], ids=["activity", "sub-orchestrator"])
def test_r9_a_call_to_a_function_the_app_lacks_leaves_the_instance_running(
        host, caplog, orchestrator, kind, missing, scheduling_event):
    """DurableOrchestrationContext.CallDurableTaskFunctionAsync is async, so the
    ArgumentException of DurableTaskExtension.ThrowIfFunctionDoesNotExist only faults its
    task, and OutOfProcOrchestrationShim.ProcessAsyncActionsV2 swallows a faulted task:
    nothing is scheduled and the orchestration waits for ever (GetInvalidActivityFunction
    Message / GetInvalidOrchestratorFunctionMessage give the text)."""
    with caplog.at_level(logging.ERROR, logger="devhost"):
        instance_id = run(host, orchestrator)
    assert host.status(instance_id)["runtimeStatus"] == "Running"
    assert host.pending_activities(instance_id) == []
    known = (host.registry.activities if kind == "activity" else host.registry.orchestrators)
    listed = ", ".join(f"'{name}'" for name in known)
    expected = (f"Instance {instance_id} is stuck: The function '{missing}' doesn't exist, is "
                f"disabled, or is not an {kind} function. Additional info: The following are the "
                f"known {kind} functions: {listed}. The Durable extension schedules nothing for "
                "this call and leaves the instance Running.")
    assert expected in [r.getMessage() for r in caplog.records]
    # D7: recorded as its scheduling event, marked unscheduled, so later replays line up.
    [recorded] = of_type(host.history(instance_id), scheduling_event)
    assert (recorded["EventId"], recorded["Name"], recorded["DevHostUnscheduled"]) == (0, missing, True)
    assert not host.step(instance_id)  # nothing was sent to it: no result will ever come
    host.raise_event(instance_id, "Unrelated", 1)  # another episode replays past the call
    host.run_until_idle()
    assert host.status(instance_id)["runtimeStatus"] == "Running"


def test_d8_unscheduled_calls_are_left_out_of_show_history(host):
    """The extension's history has no event for a call it never scheduled (R9), so the
    devhost's DevHostUnscheduled event must not reach showHistory
    (DurableClient.GetDurableOrchestrationStatusAsync shows the stored history)."""
    instance_id = run(host, "calls_unknown_activity")
    assert [e["EventType"] for e in public_history(host, instance_id)] == ["ExecutionStarted"]


def test_d8_retry_timers_and_attempts_are_shown_as_the_extension_records_them(host):
    """DurableTask.Core's RetryInterceptor schedules its retry timers and re-attempts through
    the orchestration context (CreateTimer, ScheduleTask), so they are ordinary history
    events that showHistory lists: the TimerCreated, and the attempt's TaskCompleted folded
    with its FunctionName (DurableClient.GetDurableOrchestrationStatusAsync)."""
    module_of(host, "retry_once")["ATTEMPTS"].clear()
    instance_id = run(host, "retry_once", "d8")
    host.advance(seconds=1)
    assert host.status(instance_id)["output"] == "d8 worked on attempt 2"
    shown = public_history(host, instance_id)
    assert [e["EventType"] for e in shown] == ["ExecutionStarted", "TaskFailed", "TimerCreated",
                                               "TimerFired", "TaskCompleted", "ExecutionCompleted"]
    assert shown[4]["FunctionName"] == "fails_once" and "TaskScheduledId" not in shown[4]


# -- R10: instance ids ---------------------------------------------------------------------

def test_r10_a_new_instance_id_is_32_lowercase_hex_digits(host):
    """DurableClient.StartNewAsync: ``Guid.NewGuid().ToString("N")`` for a null or empty id."""
    ids = [host.start("plain_wait"), host.start("plain_wait", None, "")]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]


@pytest.mark.parametrize("instance_id, message", [
    ("@entity-like", "instanceId (Parameter 'Orchestration instance ids must not start with @.')"),
    ("a/b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a\\b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a#b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a?b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a\x00b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a\x1fb", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a\x7fb", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("a\x9fb", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"),
    ("x" * 257, "Instance ID lengths must not exceed 256 characters."),
], ids=["at", "slash", "backslash", "hash", "question", "nul", "us", "del", "c1-end", "257"])
def test_r10_bad_instance_ids_are_refused(host, instance_id, message):
    """DurableClient.StartNewAsync: StartsWith("@"), IsInvalidCharacter (/ \\ ? # and
    char.IsControl: U+0000-U+001F, U+007F-U+009F) and MaxInstanceIdLength 256, each an
    ArgumentException; the first two swap its arguments, so .NET's message is
    "instanceId (Parameter '<text>')"."""
    with pytest.raises(InvalidArgument) as refused:
        host.start("plain_wait", None, instance_id)
    assert str(refused.value) == message
    assert host.status(instance_id) is None


@pytest.mark.parametrize("instance_id", ["x" * 256, "a\xa0b", "email@example.com", "ünïcödé"],
                         ids=["256", "nbsp", "at-inside", "unicode"])
def test_r10_ids_within_the_rules_are_accepted(host, instance_id):
    assert host.start("plain_wait", None, instance_id) == instance_id


# -- R12: starting over a finished instance --------------------------------------------

def test_r12_starting_with_the_id_of_a_finished_instance_replaces_it(host):
    """DurableClient.StartNewAsync: the dedupe statuses (OverridableExistingInstanceStates
    NonRunningStates) let a finished instance be overwritten by a new execution."""
    run(host, "echo_input", "first", "reused")
    first = execution_of(host, "reused")
    assert (host.status("reused")["runtimeStatus"], host.status("reused")["output"]) == ("Completed", "first")

    assert run(host, "echo_input", "second", "reused") == "reused"
    second = execution_of(host, "reused")
    assert second != first
    status = host.status("reused")
    # The SDK-started input is the JSON string of the SDK's text (P3).
    assert (status["runtimeStatus"], status["input"], status["output"]) == (
        "Completed", '"second"', "second")
    history = host.history("reused")
    [started] = of_type(history, EventType.EXECUTION_STARTED)
    assert started["OrchestrationInstance"]["ExecutionId"] == second
    assert [e["Result"] for e in of_type(history, EventType.TASK_COMPLETED)] == ['"second"']


def test_r12_the_replaced_instances_work_is_deleted(host):
    """As above: an activity taken by the old execution is gone when the id is reused, so
    its late result never reaches the new execution's task 0."""
    host.start("activity_or_event", "finish", "replaced")
    [old_work] = host.engine.run_episodes(["replaced"])  # scheduled, not yet run
    host.terminate("replaced", "make room")
    host.step("replaced")
    assert host.status("replaced")["runtimeStatus"] == "Terminated"
    host.start("activity_or_event", "second", "replaced")
    host.step("replaced")
    stale = host.engine.execute_activity(old_work)
    host.engine.complete_activities([(old_work, stale)])
    host.run_until_idle()
    assert host.status("replaced")["output"] == "second execution"
    assert [e["Result"] for e in of_type(host.history("replaced"), EventType.TASK_COMPLETED)] == [
        '"second execution"']


# -- R22, R23: children that fail to start or are terminated --------------------------------

def test_r22_a_child_that_cannot_be_started_fails_the_parents_task(host):
    """devhost: the child id is Running, so its start is refused (R11's text), and the
    parent gets SubOrchestrationInstanceFailed with the refusal as Reason."""
    run(host, "plain_wait", None, "busy-child")
    parent = run(host, "parent_of", {"child": "plain_wait", "id": "busy-child"})
    status = host.status(parent)
    assert status["runtimeStatus"] == "Completed"
    refusal = "An Orchestration instance with the status Running already exists."
    assert status["output"]["failed"].startswith(refusal)
    [failed] = of_type(host.history(parent), EventType.SUB_ORCHESTRATION_INSTANCE_FAILED)
    assert (failed["TaskScheduledId"], failed["Reason"]) == (0, refusal)
    assert host.status("busy-child")["runtimeStatus"] == "Running"  # the running child is untouched


def test_r23_a_terminated_child_fails_the_parents_task_with_the_reason(host):
    """DurableTask.Core TaskOrchestrationDispatcher: a child that ends in any status but
    Completed sends SubOrchestrationInstanceFailed with its completion Result, which for a
    terminated child is the termination reason."""
    parent = run(host, "parent_of", {"child": "plain_wait", "id": "doomed-child"})
    assert host.status(parent)["runtimeStatus"] == "Running"
    host.terminate("doomed-child", "halted by test")
    host.run_until_idle()
    assert host.status("doomed-child")["runtimeStatus"] == "Terminated"
    status = host.status(parent)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["failed"].startswith("halted by test")
    [failed] = of_type(host.history(parent), EventType.SUB_ORCHESTRATION_INSTANCE_FAILED)
    assert (failed["TaskScheduledId"], failed["Reason"]) == (0, "halted by test")


# -- R30: results of ended executions ----------------------------------------------------

def _end_by_event(host, instance_id):
    host.raise_event(instance_id, "Go", "now")
    host.step(instance_id)


def _end_by_terminate(host, instance_id):
    host.terminate(instance_id, "stop")
    host.step(instance_id)


@pytest.mark.parametrize("mode, end, status, output", [
    ("finish", _end_by_event, "Completed", "event won"),
    ("finish", _end_by_terminate, "Terminated", "stop"),
    ("renew", _end_by_event, "Completed", "second execution"),
    ("finish", lambda host, instance_id: host.purge(instance_id), None, None),
], ids=["finished", "terminated", "continued as new", "purged"])
def test_r30_an_activity_result_for_an_ended_execution_is_dropped(host, mode, end, status, output):
    """DurableTask.Core: an activity's TaskCompleted is addressed to the execution that
    scheduled it; once that execution has ended, the message is discarded."""
    instance_id = host.start("activity_or_event", mode, "r30")
    [work] = host.engine.run_episodes([instance_id])  # echo("first execution") is taken
    end(host, instance_id)
    late = host.engine.execute_activity(work)
    assert late.succeeded and late.result == '"first execution"'
    host.engine.complete_activities([(work, late)])
    host.run_until_idle()
    if status is None:
        assert host.status(instance_id) is None and host.history(instance_id) == []
        assert not host.step(instance_id)
        return
    described = host.status(instance_id)
    assert (described["runtimeStatus"], described["output"]) == (status, output)
    results = [e["Result"] for e in of_type(host.history(instance_id), EventType.TASK_COMPLETED)]
    assert '"first execution"' not in results


# -- R33: failures outside the SDK's protocol ----------------------------------------------

def test_r33_an_orchestrator_that_fails_outside_the_sdks_protocol(host):
    """TaskOrchestrationShim.InvokeUserCodeAndHandleResults: no ``$OutOfProcData$:`` state in
    the exception (OutOfProcExceptionHelpers.TryExtractOutOfProcStateJson is false), so the
    catch-all fails it with ``Orchestrator function '<name>' failed: <e.Message>``. The
    devhost writes the worker's ``<Type>: <message>`` there; on Azure the text is the .NET
    exception's Message around it, which the extension source alone does not fix."""
    instance_id = run(host, "not_a_generator")
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == ("Orchestrator function 'not_a_generator' failed: "
                                "ValueError: raised outside the SDK's protocol")
    assert status["customStatus"] is None
    completed = of_type(host.history(instance_id), EventType.EXECUTION_COMPLETED)
    assert [(e["OrchestrationStatus"], e["Result"]) for e in completed] == [(3, status["output"])]


# -- E12: a batch the SDK cannot run --------------------------------------------------------

def test_e12_a_batch_the_sdk_cannot_run_is_retried_and_its_callers_keep_waiting(host, caplog):
    """When the out-of-proc entity function fails as a whole, TaskEntityShim.
    ExecuteOutOfProcBatch throws; DurableTaskExtension.EntityMiddleware captures it as an
    internal error and AbortOnInternalError abandons the work item, so the batch runs
    again later and no request is answered (only the timeout branch fails every request)."""
    host.signal_entity("Tally", "calls", "add", 5)
    host.run_until_idle()
    with caplog.at_level(logging.ERROR, logger="devhost"):
        instance_id = run(host, "calls_tally", "unserializable")
        host.signal_entity("Tally", "calls", "add", 1)   # arrives behind the broken batch
        host.run_until_idle()
        assert host.status(instance_id)["runtimeStatus"] == "Running"
        assert host.entity_state("Tally", "calls") == (True, 5)
        host.advance(seconds=ABORTED_BATCH_RETRY_SECONDS)
    # The first attempt, then the retry, which the later signal has joined.
    assert "entity @tally@calls: the batch of 1 operation(s) could not run" in caplog.text
    assert "entity @tally@calls: the batch of 2 operation(s) could not run" in caplog.text
    assert host.status(instance_id)["runtimeStatus"] == "Running"
    assert host.entity_state("Tally", "calls") == (True, 5)   # the later signal still waits
    queued = host.store.due_messages("@tally@calls", float("inf"))
    assert [json.loads(m.event["Input"])["op"] for m in queued] == ["unserializable", "add"]


def test_e13_requests_for_an_entity_the_app_no_longer_has_wait_for_an_app_that_has_it(make_host, caplog):
    """EntityMiddleware finds no function to run and fails inside: the batch is abandoned
    like any batch that cannot run (E12), so the requests wait, answered by none."""
    with_counter = make_host("entities")
    with_counter.signal_entity("Counter", "kept", "add", 4)
    with_counter.close()                    # before it ran: the request is still queued
    without = make_host("conformance", data_dir=with_counter.data_dir)
    with caplog.at_level(logging.ERROR, logger="devhost"):
        without.run_until_idle()
    assert "The function 'counter' doesn't exist, is disabled, or is not an entity function" in caplog.text
    assert without.entity_state("Counter", "kept") == (False, None)
    without.close()
    again = make_host("entities", data_dir=with_counter.data_dir)
    again.advance(seconds=ABORTED_BATCH_RETRY_SECONDS)
    assert again.entity_state("Counter", "kept") == (True, 4)
    with sqlite3.connect(again.store.path) as state:   # the hold ended with the batch
        assert state.execute("SELECT instance_id FROM held_instances").fetchall() == []


# -- D9: the entity batch limit ------------------------------------------------------------

def test_d9_an_entity_runs_at_most_100_requests_per_batch(host):
    """devhost (the extension's MaxEntityOperationBatchSize defaults to 5,000 outside the
    Consumption plan; DurableTaskExtension.EntityMiddleware stops the batch there)."""
    for _ in range(150):
        host.signal_entity("Tally", "d9", "add", 1)
    first = host.engine.run_episodes(host.engine.due_instances())
    assert [(w.kind, w.instance_id, len(json.loads(w.input))) for w in first] == [
        ("entity", "@tally@d9", 100)]
    host.engine.complete_activities([(w, host.engine.execute_activity(w)) for w in first])
    assert host.entity_state("Tally", "d9") == (True, 100)
    second = host.engine.run_episodes(host.engine.due_instances())
    assert [len(json.loads(w.input)) for w in second] == [50]
    host.run_until_idle()
    assert host.entity_state("Tally", "d9") == (True, 150)


# -- U1: durable HTTP ----------------------------------------------------------------------

def test_u1_call_http_fails_the_orchestration(host):
    """devhost (Azure runs it with TaskHttpActivityShim): the CallHttp action fails the
    orchestration before anything is scheduled."""
    instance_id = run(host, "uses_call_http")
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == ("Orchestrator function 'uses_call_http' failed: the devhost does "
                                "not support durable HTTP (call_http).")
    assert of_type(host.history(instance_id), EventType.TASK_SCHEDULED) == []
    assert host.pending_activities(instance_id) == []

