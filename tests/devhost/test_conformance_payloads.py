"""Conformance: how payloads are read, stored and handed back (docs/DEVHOST-CONFORMANCE.md,
"Payload encoding"). Each test names the extension or SDK code it reproduces; C# names are
in azure-functions-durable-extension, src/WebJobs.Extensions.DurableTask/, at a7c6d69.

In-process tests drive the conformance fixture app with ``DevHost.start`` on a manual
clock; the raw HTTP tests serve it on a free port.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from devhost import replay
from devhost.history import EventType
from devhost.testing import wait_until
from tests.support.http import call

from .helpers import of_type, public_history, run

WEBHOOKS = "/runtime/webhooks/durabletask"


@pytest.fixture
def host(conformance):
    return conformance


@pytest.fixture
def api(conformance_api):
    return conformance_api


def running(api, instance_id):
    def check():
        reply = call("GET", f"{api.webhooks}/instances/{quote(instance_id)}")
        return reply.json if reply.status == 202 and reply.json["runtimeStatus"] == "Running" else None
    return wait_until(check, what=f"{instance_id} to run")


def settled(api, instance_id, status):
    def check():
        reply = call("GET", f"{api.webhooks}/instances/{quote(instance_id)}")
        return reply.json if reply.json["runtimeStatus"] == status else None
    return wait_until(check, what=f"{instance_id} to be {status}")


# -- P2, P5: start bodies over raw HTTP ---------------------------------------------------

@pytest.mark.parametrize("body", [b"", b"  \n\t "], ids=["empty", "whitespace"])
def test_p2_an_empty_or_blank_start_body_is_a_null_input(api, body):
    """HttpApiHandler.HandleStartOrchestratorRequestAsync: no content (ContentLength 0)
    leaves ``input`` null, and JsonConvert.DeserializeObject of blank text is null too."""
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait", raw=body)
    assert reply.status == 202, reply.text
    instance_id = reply.json["id"]
    status = running(api, instance_id)
    assert "input" in status and status["input"] is None
    started = of_type(api.history(instance_id), EventType.EXECUTION_STARTED)
    assert [e["Input"] for e in started] == [None]


def test_p5_a_start_body_with_text_after_the_value_is_an_invalid_json_400(api):
    """HttpApiHandler.HandleStartOrchestratorRequestAsync (catch JsonReaderException);
    Newtonsoft JsonTextReader.Read in State.Finished throws JsonReaderException before
    JsonSerializer's own CheckAdditionalContent could throw JsonSerializationException."""
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait", raw=b'{"a":1} x')
    assert reply.status == 400
    body = reply.json
    assert body["Message"] == "Invalid JSON content"
    assert body["ExceptionType"] == "Newtonsoft.Json.JsonReaderException"
    assert body["ExceptionMessage"].startswith(
        "Additional text encountered after finished reading JSON content: x.")


# -- P7: raised event bodies ----------------------------------------------------------------

@pytest.mark.parametrize("body, value, stored", [
    (b"1 2", 1, "1"),
    (b'{"a": 1} {"b": 2}', {"a": 1}, '{"a":1}'),
    (b'"first" trailing words', "first", '"first"'),
], ids=["numbers", "objects", "string then text"])
def test_p7_a_raised_event_keeps_only_its_first_json_value(api, body, value, stored):
    """HttpApiHandler.HandleRaiseEventRequestAsync reads the body with
    MessagePayloadDataConverter.ConvertToJToken, whose JToken.Load reads one value and does
    not look at what follows it; the token is stored compact."""
    instance_id = call("POST", f"{api.webhooks}/orchestrators/plain_wait").json["id"]
    running(api, instance_id)
    raised = call("POST", f"{api.webhooks}/instances/{instance_id}/raiseEvent/Go", raw=body)
    assert (raised.status, raised.text) == (202, "")
    assert settled(api, instance_id, "Completed")["output"] == value
    events = of_type(api.history(instance_id), EventType.EVENT_RAISED)
    assert [(e["Name"], e["Input"]) for e in events] == [("Go", stored)]


# -- P10: the TaskScheduled input --------------------------------------------------------

def test_p10_task_scheduled_input_is_the_one_element_parameters_array(host):
    """DurableTask.Core TaskOrchestrationContext.ScheduleTask serializes its parameters
    array, ``new object[] { input }``, where input is the SDK's JSON text (the action's
    ``input``); DurableClient.GetDurableOrchestrationStatusAsync copies that text to the
    completion's ``Input`` (AddScheduledEventDataAndAggregate)."""
    instance_id = run(host, "echo_input", {"a": 1})
    assert host.status(instance_id)["output"] == {"a": 1}
    history = host.history(instance_id)
    assert [e["Input"] for e in of_type(history, EventType.TASK_SCHEDULED)] == ['["{\\"a\\": 1}"]']
    completed = [e for e in public_history(host, instance_id) if e["EventType"] == "TaskCompleted"]
    assert [(e["FunctionName"], e["Input"], e["Result"]) for e in completed] == [
        ("echo", '["{\\"a\\": 1}"]', {"a": 1})]


def test_p10_a_failed_task_shows_the_same_input_text(host):
    """As above, for TaskFailed: the TaskScheduled's Input is folded into it."""
    instance_id = run(host, "catches_activity_failure", "boom")
    failed = [e for e in public_history(host, instance_id) if e["EventType"] == "TaskFailed"]
    assert [(e["FunctionName"], e["Input"]) for e in failed] == [("explode", '["\\"boom\\""]')]


# -- P13: TaskFailed's Reason and Details -------------------------------------------------

def test_p13_task_failed_reason_and_details_are_the_extensions(host):
    """TaskActivityShim.RunAsync: ``Activity function '<name>' failed: <message>``, where the
    message is what OutOfProcExceptionHelpers.TryGetExceptionWithFriendlyMessage cuts from
    the host's RpcException text between "\\nException:" and "\\nStack:" (leading space
    kept, hence two spaces); Details is Utils.SerializeCause of that new Exception, whose
    InnerException is the RpcException (ErrorSerializerSettingsFactory: TypeNameHandling.Objects)."""
    instance_id = run(host, "catches_activity_failure", "boom")
    [failed] = of_type(host.history(instance_id), EventType.TASK_FAILED)
    assert failed["Reason"] == "Activity function 'explode' failed:  ValueError: boom"
    details = json.loads(failed["Details"])
    assert details["$type"] == "System.Exception, System.Private.CoreLib"
    assert details["ClassName"] == "System.Exception"
    assert details["Message"] == " ValueError: boom"
    assert details["HResult"] == -2146233088
    inner = details["InnerException"]
    assert inner["ClassName"] == "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"
    assert inner["$type"] == ("Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException, "
                              "Microsoft.Azure.WebJobs.Script")
    assert inner["Message"].startswith("Result: Failure\nException: ValueError: boom\nStack: ")
    # the worker's traceback as it sent it, its last line and newline included
    assert inner["Message"].endswith("ValueError: boom\n")
    assert inner["InnerException"] is None
    # The orchestrator's exception text holds the reason (P12).
    assert host.status(instance_id)["output"]["caught"].startswith(failed["Reason"])


# -- P19: dates in a failing episode's state ----------------------------------------------

def test_p19_dates_in_a_failing_episodes_custom_status_come_back_in_newtonsoft_form(host):
    """TaskOrchestrationShim.InvokeUserCodeAndHandleResults: the state is recovered from
    the exception (OutOfProcExceptionHelpers.TryExtractOutOfProcStateJson) and parsed with
    JObject.Parse (DateParseHandling.DateTime), then written back by SetCustomStatus."""
    instance_id = run(host, "dates_in_status", "fail")
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["customStatus"] == {"offset": "2025-12-31T22:00:00+00:00",
                                      "fraction": "2026-01-01T00:00:00.5Z",
                                      "plain": "not a date"}


def test_p19_a_successful_episode_keeps_the_date_strings(host):
    """The same status from an episode that does not fail reaches the extension as a
    JObject the host parsed with DateParseHandling.None: the strings stay as they are."""
    instance_id = run(host, "dates_in_status", "wait")
    assert host.status(instance_id)["customStatus"] == {"offset": "2026-01-01T00:00:00+02:00",
                                                        "fraction": "2026-01-01T00:00:00.500Z",
                                                        "plain": "not a date"}


# -- P21, P22: custom status ------------------------------------------------------------

@pytest.mark.parametrize("value", [0, "", {}, []], ids=["zero", "empty string", "empty object", "empty list"])
def test_p21_a_falsy_custom_status_is_stored_as_null(host, value):
    """azure/durable_functions/models/OrchestratorState.py to_json: ``if self._custom_status``
    leaves a falsy status out; OutOfProcOrchestrationShim.ScheduleDurableTaskEvents then
    never calls SetCustomStatus, so the status is null."""
    instance_id = run(host, "status_then_wait", value)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    assert "customStatus" in status and status["customStatus"] is None
    assert host.store.get_instance(instance_id).custom_status is None


def test_p21_a_status_never_set_is_null_and_a_truthy_one_is_kept(host):
    never = run(host, "plain_wait")
    assert host.status(never)["customStatus"] is None
    truthy = run(host, "status_then_wait", "x")
    assert host.status(truthy)["customStatus"] == "x"


def test_p22_a_custom_status_of_8703_utf16_units_passes(host):
    """DurableOrchestrationContext.SetCustomStatus: MessagePayloadDataConverter.Serialize
    (value, 16) refuses ``(int)(Encoding.Unicode.GetByteCount(json) / 1024.0) > 16``; the
    JSON of 8,701 letters is 8,703 UTF-16 units, 17,406 bytes, 16 KB."""
    instance_id = run(host, "big_status", 8701)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Completed" and status["output"] == "kept"
    assert status["customStatus"] == "a" * 8701


def test_p22_a_custom_status_of_8704_utf16_units_fails_and_schedules_nothing(host):
    """As above: 8,704 units are 17,408 bytes, 17 KB. SetCustomStatus throws the
    ArgumentException before ReplayOOProcOrchestration schedules anything, and
    TaskOrchestrationShim's catch-all fails the orchestration with its message."""
    instance_id = run(host, "big_status", 8702)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Orchestrator function 'big_status' failed: The UTF-16 size of the JSON-serialized "
        "payload must not exceed 16 KB. The current payload size is 17 KB.")
    assert status["customStatus"] is None
    history = host.history(instance_id)
    assert of_type(history, EventType.TASK_SCHEDULED) == []
    assert host.pending_activities(instance_id) == []


# -- P24: how a terminate reason is shown ---------------------------------------------

@pytest.mark.parametrize("reason, shown", [
    ("42", 42),
    (quote('{"a": 1}'), {"a": 1}),
    ("true", True),
    ("%20%20", ""),
    ("changed+my+mind", "changed my mind"),
], ids=["number", "object", "true", "whitespace", "text"])
def test_p24_a_terminate_reason_is_shown_as_json_when_it_parses(api, reason, shown):
    """DurableClient.ParseToJToken: the stored reason (the output) is trimmed; empty text
    is shown as ""; text that parses (ConvertToJToken) is shown as JSON; anything else as
    the string itself (the JsonReaderException fallback)."""
    instance_id = call("POST", f"{api.webhooks}/orchestrators/plain_wait").json["id"]
    running(api, instance_id)
    reply = call("POST", f"{api.webhooks}/instances/{instance_id}/terminate?reason={reason}")
    assert (reply.status, reply.text) == (202, "")
    status = settled(api, instance_id, "Terminated")
    assert status["output"] == shown and type(status["output"]) is type(shown)


# -- P26: isReplaying in the context JSON --------------------------------------------------

def test_p26_is_replaying_is_whether_execution_started_was_already_played(host, monkeypatch):
    """OrchestrationTriggerAttributeBindingProvider.OrchestrationContextToString writes
    ``arg.IsReplaying``, which DurableTaskExtension.OrchestrationMiddleware sets from
    ``ExecutionStartedEvent.IsPlayed``: false in the first episode, true in every later one."""
    seen = []
    original = replay.context_fields

    def recording(row, history, timers):
        fields = original(row, history, timers)
        started = [e for e in history if e["EventType"] == EventType.EXECUTION_STARTED]
        seen.append((fields["isReplaying"], [e["IsPlayed"] for e in started]))
        return fields

    monkeypatch.setattr(replay, "context_fields", recording)
    instance_id = run(host, "plain_wait")
    host.raise_event(instance_id, "Go", "now")
    host.run_until_idle()
    assert host.status(instance_id)["runtimeStatus"] == "Completed"
    assert seen == [(False, [False]), (True, [True])]
