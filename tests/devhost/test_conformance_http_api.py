"""Conformance: the Durable HTTP API, the client binding and the HTTP host, over real HTTP
(docs/DEVHOST-CONFORMANCE.md, "HTTP API", "Client binding JSON", "HTTP-triggered functions
and host configuration", "What the devhost does not support"). Each test names the code it
reproduces; C# names are in azure-functions-durable-extension,
src/WebJobs.Extensions.DurableTask/, at a7c6d69 (HttpApiHandler unless said otherwise).

The conformance fixture app is served on a free port with a manual clock; episodes and
activities run on the host's background runner, hence the short polls.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from devhost import DevHost, ManualClock
from devhost.__main__ import banner
from devhost.testing import wait_until
from tests.support.http import call

from .conftest import APPS
from .helpers import execution_of

WEBHOOKS = "/runtime/webhooks/durabletask"
CHECK_STATUS_KEYS = ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                     "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"]


@pytest.fixture
def api(conformance_api):
    return conformance_api


def start(api, name, body=None, instance_id=None, query=""):
    url = f"{api.webhooks}/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "") + query
    reply = call("POST", url, raw=body)
    assert reply.status == 202, reply.text
    return reply.json["id"]


def status_of(api, instance_id, query=""):
    return call("GET", f"{api.webhooks}/instances/{quote(instance_id)}{query}")


def settled(api, instance_id, *statuses):
    def check():
        reply = status_of(api, instance_id)
        return reply.json if reply.status != 404 and reply.json["runtimeStatus"] in statuses else None
    return wait_until(check, what=f"{instance_id} to reach {statuses}")


def running(api, name="plain_wait", instance_id=None):
    """A started instance whose first episode has run (Running, waiting for "Go")."""
    instance_id = start(api, name, instance_id=instance_id)
    settled(api, instance_id, "Running")
    return instance_id


def failed(api):
    instance_id = start(api, "fails")
    settled(api, instance_id, "Failed")
    return instance_id


def completed(api, body=b'{"n": 1}'):
    instance_id = start(api, "echo_input", body)
    settled(api, instance_id, "Completed")
    return instance_id


# -- H3: Retry-After -----------------------------------------------------------------------

def test_h3_retry_after_is_10_on_check_status_and_5_on_a_running_status(api):
    """CreateCheckStatusResponseMessage: ``RetryAfter = TimeSpan.FromSeconds(10)``;
    HandleGetStatusRequestAsync: 202 with ``Location = request.RequestUri`` and
    ``RetryAfter = 5`` while running, neither header once the instance is done."""
    started = call("POST", f"{api.webhooks}/orchestrators/plain_wait")
    assert started.status == 202 and started.headers["Retry-After"] == "10"
    instance_id = started.json["id"]
    settled(api, instance_id, "Running")
    url = f"{api.webhooks}/instances/{instance_id}?showInput=false"
    reply = call("GET", url)
    assert reply.status == 202
    assert reply.headers["Retry-After"] == "5"
    assert reply.headers["Location"] == url
    assert call("POST", f"{api.webhooks}/instances/{instance_id}/raiseEvent/Go", "x").status == 202
    settled(api, instance_id, "Completed")
    done = status_of(api, instance_id)
    assert done.status == 200
    assert "Retry-After" not in done.headers and "Location" not in done.headers


# -- H6: start and wait ------------------------------------------------------------------

def test_h6_a_start_that_waits_answers_200_with_the_output_once_completed(api):
    """HandleStartOrchestratorRequestAsync with ``timeout`` and ``pollingInterval`` calls
    WaitForCompletionOrCreateCheckStatusResponseAsync: Completed gives
    ``CreateResponse(OK, status.Output)``."""
    reply = call("POST", f"{api.webhooks}/orchestrators/echo_input?timeout=5&pollingInterval=0.05",
                 raw=b'{"x": [1]}')
    assert reply.status == 200
    assert reply.text == '{"x":[1]}'
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Location" not in reply.headers


def test_h6_an_output_of_null_is_the_body_null(api):
    """``CreateResponse(OK, status.Output)`` of a null output writes the JSON ``null``."""
    reply = call("POST", f"{api.webhooks}/orchestrators/echo_input?timeout=5&pollingInterval=0.05")
    assert reply.status == 200
    assert reply.text == "null"
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"


def test_h6_another_final_status_gives_200_with_the_status_body(api):
    """WaitForCompletionOrCreateCheckStatusResponseAsync: Failed, Canceled or Terminated go
    to HandleGetStatusRequestAsync with returnInternalServerErrorOnFailure = false, whatever
    the query says: 200 with the status object."""
    reply = call("POST",
                 f"{api.webhooks}/orchestrators/fails?timeout=5&pollingInterval=0.05"
                 "&returnInternalServerErrorOnFailure=true")
    assert reply.status == 200
    body = reply.json
    assert (body["name"], body["runtimeStatus"]) == ("fails", "Failed")
    assert body["output"] == "Orchestrator function 'fails' failed: this orchestration fails"
    assert "Location" not in reply.headers


def test_h6_running_past_the_timeout_gives_the_check_status_reply(api):
    """WaitForCompletionOrCreateCheckStatusResponseAsync: still running when ``timeout``
    has elapsed, it answers as CreateCheckStatusResponseMessage does (H2, H3)."""
    began = time.monotonic()
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait?timeout=0.3&pollingInterval=0.1")
    elapsed = time.monotonic() - began
    assert reply.status == 202
    assert list(reply.json) == CHECK_STATUS_KEYS
    assert reply.headers["Location"] == reply.json["statusQueryGetUri"]
    assert reply.headers["Retry-After"] == "10"
    assert elapsed < 2


def test_h6_the_wait_lasts_the_whole_timeout(api):
    """HttpApiHandler.WaitForCompletionOrCreateCheckStatusResponseAsync (the Stopwatch loop:
    ``Task.Delay(remainingTime > retryInterval ? retryInterval : remainingTime)``)."""
    began = time.monotonic()
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait?timeout=1&pollingInterval=0.6")
    assert reply.status == 202
    assert time.monotonic() - began >= 1


def test_h6_a_polling_interval_above_the_timeout_is_400_after_the_start(api):
    """WaitForCompletionOrCreateCheckStatusResponseAsync throws ArgumentException
    ``Total timeout {timeout.TotalSeconds} should be bigger than retry timeout
    {retryInterval.TotalSeconds}``; HandleRequestAsync answers 400. StartNewAsync ran
    before, so the instance exists."""
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait/waited?timeout=0.5&pollingInterval=1.5")
    assert reply.status == 400
    assert reply.json == {"Message": "One or more of the arguments submitted is incorrect",
                          "ExceptionMessage": "Total timeout 0.5 should be bigger than retry timeout 1.5",
                          "ExceptionType": "System.ArgumentException", "StackTrace": None}
    assert settled(api, "waited", "Running")["name"] == "plain_wait"


def test_h6_whole_seconds_are_written_as_dotnet_writes_a_double(api):
    """HttpApiHandler.WaitForCompletionOrCreateCheckStatusResponseAsync (string
    interpolation of double TotalSeconds)."""
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait?timeout=1&pollingInterval=2")
    assert reply.status == 400
    assert reply.json["ExceptionMessage"] == "Total timeout 1 should be bigger than retry timeout 2"


# -- H8: returnInternalServerErrorOnFailure -----------------------------------------------

@pytest.mark.parametrize("flag, expected", [("", 200), ("true", 500), ("TRUE", 500),
                                            ("false", 200), ("yes", 200)],
                         ids=["absent", "true", "TRUE", "false", "not a bool"])
def test_h8_a_failed_instance_is_500_only_when_asked(api, flag, expected):
    """HandleGetStatusRequestAsync: ``finalReturnInternalServerErrorOnFailure`` from
    bool.TryParse (any case; anything else is false); Failed answers 500 then, 200
    otherwise, without Location either way."""
    instance_id = failed(api)
    query = f"?returnInternalServerErrorOnFailure={flag}" if flag else ""
    reply = status_of(api, instance_id, query)
    assert reply.status == expected
    assert reply.json["runtimeStatus"] == "Failed"
    assert "Location" not in reply.headers and "Retry-After" not in reply.headers


def test_h8_the_flag_does_not_change_other_statuses(api):
    done = completed(api)
    assert status_of(api, done, "?returnInternalServerErrorOnFailure=true").status == 200
    waiting = running(api)
    assert status_of(api, waiting, "?returnInternalServerErrorOnFailure=true").status == 202


# -- H15: raised event content type -------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx"])
def test_h15_a_raised_event_that_is_not_application_json_is_400(api, content_type):
    """HandleRaiseEventRequestAsync: ``request.Content.Headers.ContentType?.MediaType`` must
    equal application/json (OrdinalIgnoreCase), else CreateErrorResponse(400, ...)."""
    instance_id = running(api)
    reply = call("POST", f"{api.webhooks}/instances/{instance_id}/raiseEvent/Go",
                 headers={"Content-Type": content_type}, raw=b'"x"')
    assert reply.status == 400
    assert reply.json == {"Message": "Only application/json request content is supported"}
    assert status_of(api, instance_id).json["runtimeStatus"] == "Running"


def test_h15_the_media_type_ignores_case_and_parameters(api):
    instance_id = running(api)
    reply = call("POST", f"{api.webhooks}/instances/{instance_id}/raiseEvent/Go",
                 headers={"Content-Type": "Application/JSON; charset=utf-8"}, raw=b'"x"')
    assert (reply.status, reply.text) == (202, "")
    assert settled(api, instance_id, "Completed")["output"] == "x"


def test_h15_the_content_type_is_checked_after_existence_and_status(api):
    """HandleRaiseEventRequestAsync checks GetStatusAsync (404, 410) first."""
    plain = {"Content-Type": "text/plain"}
    assert call("POST", f"{api.webhooks}/instances/ghost/raiseEvent/Go", headers=plain, raw=b"x").status == 404
    done = completed(api)
    assert call("POST", f"{api.webhooks}/instances/{done}/raiseEvent/Go", headers=plain, raw=b"x").status == 410


# -- H18: suspend and resume in the wrong state ------------------------------------------

def test_h18_suspending_a_suspended_or_resuming_a_running_instance_is_500(api):
    """DurableClient.SuspendAsync / ResumeAsync throw InvalidOperationException when the
    instance is not suspendable / not suspended; HandleRequestAsync's catch-all answers
    CreateErrorResponse(500, "Something went wrong while processing your request", e)."""
    instance_id = running(api)
    base = f"{api.webhooks}/instances/{instance_id}"
    again = call("POST", base + "/resume")
    assert again.status == 500
    assert again.json["Message"] == "Something went wrong while processing your request"
    assert again.json["ExceptionType"] == "System.InvalidOperationException"
    assert call("POST", base + "/suspend").status == 202
    settled(api, instance_id, "Suspended")
    twice = call("POST", base + "/suspend")
    assert twice.status == 500
    assert twice.json["Message"] == "Something went wrong while processing your request"
    assert twice.json["ExceptionType"] == "System.InvalidOperationException"
    assert status_of(api, instance_id).json["runtimeStatus"] == "Suspended"


def test_h18_the_wrong_state_message_is_the_extensions(api):
    """DurableClient.SuspendAsync, ResumeAsync (the InvalidOperationException messages)."""
    instance_id = running(api)
    base = f"{api.webhooks}/instances/{instance_id}"
    assert call("POST", base + "/resume").json["ExceptionMessage"] == (
        f"Cannot resume the orchestration instance {instance_id} because instance is in the Running state.")
    call("POST", base + "/suspend")
    settled(api, instance_id, "Suspended")
    assert call("POST", base + "/suspend").json["ExceptionMessage"] == (
        f"Cannot suspend the orchestration instance {instance_id} because instance is in the Suspended state.")


# -- H19: restart --------------------------------------------------------------------------

def test_h19_restart_starts_the_same_orchestrator_with_the_same_input_under_a_new_id(api):
    """HandleRestartInstanceRequestAsync; DurableClient.RestartAsync: GetStatusAsync(showInput)
    then StartNewAsync(status.Name, status.Input); restartWithNewInstanceId defaults to true.
    The answer is CreateCheckStatusResponse for the new id."""
    old = completed(api, b'{"n": 1}')
    reply = call("POST", f"{api.webhooks}/instances/{old}/restart")
    assert reply.status == 202
    body = reply.json
    assert list(body) == CHECK_STATUS_KEYS
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"]) and body["id"] != old
    assert reply.headers["Location"] == body["statusQueryGetUri"]
    assert reply.headers["Retry-After"] == "10"
    new = settled(api, body["id"], "Completed")
    assert (new["name"], new["input"], new["output"]) == ("echo_input", {"n": 1}, {"n": 1})
    assert status_of(api, old).json["runtimeStatus"] == "Completed"


def test_h19_restart_with_the_same_id_replaces_the_finished_instance(api):
    """RestartAsync(instanceId, restartWithNewInstanceId: false): StartNewAsync with the same
    id, which a finished instance does not block (R12)."""
    old = completed(api, b'{"n": 3}')
    first_execution = execution_of(api, old)
    reply = call("POST", f"{api.webhooks}/instances/{old}/restart?restartWithNewInstanceId=false")
    assert reply.status == 202 and reply.json["id"] == old
    wait_until(lambda: execution_of(api, old) != first_execution
               and api.status(old)["runtimeStatus"] == "Completed", what="the restarted execution")
    assert status_of(api, old).json["output"] == {"n": 3}


def test_h19_restart_can_wait_like_a_start(api):
    """HandleRestartInstanceRequestAsync honours ``timeout`` and ``pollingInterval`` as a
    start does (H6)."""
    old = completed(api, b'{"n": 2}')
    reply = call("POST", f"{api.webhooks}/instances/{old}/restart?timeout=5&pollingInterval=0.05")
    assert (reply.status, reply.json) == (200, {"n": 2})


def test_h19_restarting_an_unknown_instance_is_400(api):
    """RestartAsync throws ArgumentException("An orchestrastion with the instanceId <id> was
    not found."); HandleRestartInstanceRequestAsync answers CreateErrorResponse(400,
    "InstanceId does not match a valid orchestration instance.", e)."""
    reply = call("POST", f"{api.webhooks}/instances/nobody/restart")
    assert reply.status == 400
    body = reply.json
    assert body["Message"] == "InstanceId does not match a valid orchestration instance."
    assert body["ExceptionMessage"] == "An orchestrastion with the instanceId nobody was not found."
    assert body["ExceptionType"] == "System.ArgumentException"


def test_h19_restarting_a_running_instance_with_its_own_id_is_refused(api):
    """StartNewAsync with the id of a Running instance: OrchestrationAlreadyExistsException,
    not an ArgumentException, so HandleRequestAsync's catch-all answers 500 (R11)."""
    instance_id = running(api)
    reply = call("POST", f"{api.webhooks}/instances/{instance_id}/restart?restartWithNewInstanceId=false")
    assert reply.status == 500
    assert reply.json["ExceptionType"] == "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"


# -- H22: purge by filter ------------------------------------------------------------------

def test_h22_only_final_statuses_filter_a_purge_and_none_left_purges_all(api):
    """HandleDeleteHistoryWithFiltersRequestAsync passes runtimeStatus to Azure Storage's
    AzureTableTrackingStore.PurgeInstanceHistoryAsync, which keeps only Completed,
    Terminated, Canceled and Failed; an empty list filters nothing."""
    waiting, done = running(api), completed(api)
    since = "createdTimeFrom=2000-01-01T00:00:00Z"
    mixed = call("DELETE", f"{api.webhooks}/instances?{since}&runtimeStatus=Completed,Running")
    assert (mixed.status, mixed.json) == (200, {"instancesDeleted": 1})
    assert status_of(api, done).status == 404 and status_of(api, waiting).status == 202
    again = completed(api)
    everything = call("DELETE", f"{api.webhooks}/instances?{since}&runtimeStatus=Running")
    assert (everything.status, everything.json) == (200, {"instancesDeleted": 2})
    assert status_of(api, waiting).status == 404 and status_of(api, again).status == 404


@pytest.mark.parametrize("query", ["", "?runtimeStatus=Completed", "?createdTimeFrom=yesterday"],
                         ids=["nothing", "status only", "not a date"])
def test_h22_a_purge_without_created_time_from_is_400(api, query):
    """HandleDeleteHistoryWithFiltersRequestAsync: when DateTime.TryParse of createdTimeFrom
    fails it answers ``request.CreateResponse(HttpStatusCode.BadRequest, "Please provide
    value for 'createdTimeFrom' parameter.")``, and CreateResponse<T> (HttpRequestMessage
    Extensions) serializes the string itself: the body is a JSON string, not an object."""
    done = completed(api)
    reply = call("DELETE", f"{api.webhooks}/instances{query}")
    assert reply.status == 400
    assert reply.text == '"Please provide value for \'createdTimeFrom\' parameter."'
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert status_of(api, done).status == 200


class SettableClock:
    """A clock a test may set to any time, earlier ones included."""

    def __init__(self, moment: datetime):
        self._now, self._lock = moment, threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def test_h22_created_time_to_defaults_to_now(make_host):
    """HandleDeleteHistoryWithFiltersRequestAsync: without createdTimeTo, ``createdTimeTo =
    DateTime.UtcNow`` (the devhost's clock): an instance created after "now" is kept."""
    noon = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    clock = SettableClock(noon)
    host = make_host("conformance", clock=clock)
    host.serve(port=0)
    host.webhooks = host.base_url + WEBHOOKS
    instance_id = running(host)
    clock.set(noon - timedelta(hours=1))
    since = f"{host.webhooks}/instances?createdTimeFrom=2026-01-01T00:00:00Z"
    assert call("DELETE", since).status == 404
    assert status_of(host, instance_id).status == 202
    clock.set(noon)
    assert call("DELETE", since).json == {"instancesDeleted": 1}


# -- H23, U2: rewind -----------------------------------------------------------------------

def test_h23_rewind_answers_404_and_410_as_the_extension(api):
    """HandleRewindInstanceRequestAsync: GetStatusAsync null is 404; Canceled, Terminated
    and Completed are 410, each with an empty body."""
    assert (lambda r: (r.status, r.text))(call("POST", f"{api.webhooks}/instances/ghost/rewind")) == (404, "")
    done = completed(api)
    reply = call("POST", f"{api.webhooks}/instances/{done}/rewind?reason=again")
    assert (reply.status, reply.text) == (410, "")
    stopped = running(api)
    call("POST", f"{api.webhooks}/instances/{stopped}/terminate")
    settled(api, stopped, "Terminated")
    reply = call("POST", f"{api.webhooks}/instances/{stopped}/rewind")
    assert (reply.status, reply.text) == (410, "")


def test_h23_rewinding_a_running_instance_is_500(api):
    """DurableClient.RewindAsync throws InvalidOperationException for a status other than
    Failed; HandleRequestAsync's catch-all answers 500."""
    instance_id = running(api)
    reply = call("POST", f"{api.webhooks}/instances/{instance_id}/rewind")
    assert reply.status == 500
    assert reply.json == {"Message": "Something went wrong while processing your request",
                          "ExceptionMessage": "The rewind operation is only supported on failed "
                                              "orchestration instances.",
                          "ExceptionType": "System.InvalidOperationException", "StackTrace": None}


def test_u2_rewinding_a_failed_instance_is_501(api):
    """devhost: the extension would rewind it (DurableClient.RewindAsync, marked obsolete)."""
    instance_id = failed(api)
    reply = call("POST", f"{api.webhooks}/instances/{instance_id}/rewind?reason=retry")
    assert reply.status == 501
    assert reply.json == {"Message": "The devhost does not support rewind (the extension marks it obsolete)."}
    assert status_of(api, instance_id).json["runtimeStatus"] == "Failed"


# -- R10 over HTTP --------------------------------------------------------------------------

def test_r10_a_bad_instance_id_is_a_400_argument_exception(api):
    """DurableClient.StartNewAsync throws ArgumentException; HandleRequestAsync answers
    CreateErrorResponse(400, "One or more of the arguments submitted is incorrect", e)."""
    too_long = call("POST", f"{api.webhooks}/orchestrators/plain_wait/{'x' * 257}")
    assert too_long.status == 400
    assert too_long.json == {"Message": "One or more of the arguments submitted is incorrect",
                             "ExceptionMessage": "Instance ID lengths must not exceed 256 characters.",
                             "ExceptionType": "System.ArgumentException", "StackTrace": None}
    at = call("POST", f"{api.webhooks}/orchestrators/plain_wait/@x")
    assert at.status == 400
    assert at.json["Message"] == "One or more of the arguments submitted is incorrect"
    assert at.json["ExceptionType"] == "System.ArgumentException"
    assert call("GET", f"{api.webhooks}/instances").json == []


def test_r10_the_at_sign_message_is_the_extensions(api):
    """DurableClient.StartNewAsync; .NET ArgumentException(message, paramName).Message."""
    reply = call("POST", f"{api.webhooks}/orchestrators/plain_wait/@x")
    assert reply.json["ExceptionMessage"] == (
        "instanceId (Parameter 'Orchestration instance ids must not start with @.')")


# -- E24: the entity list's time window --------------------------------------------------

def test_e24_the_entity_list_filters_by_last_operation_time(api):
    """HandleListEntitiesRequestAsync: lastOperationTimeFrom and lastOperationTimeTo
    (DateTime.TryParse) become EntityQuery.LastOperationFrom / LastOperationTo."""
    def signal(key):
        reply = call("POST", f"{api.webhooks}/entities/Tally/{key}?op=add", raw=json.dumps("1").encode())
        assert reply.status == 202
        wait_until(lambda: api.entity_state("Tally", key) == (True, 1), what=f"tally {key}")

    signal("early")
    api.advance(hours=2)
    signal("late")

    def keys(query):
        reply = call("GET", f"{api.webhooks}/entities/Tally?{query}")
        assert reply.status == 200, reply.text
        return [e["entityId"]["key"] for e in reply.json]

    assert keys("") == ["early", "late"]
    assert keys("lastOperationTimeTo=2026-01-01T01:00:00Z") == ["early"]
    assert keys("lastOperationTimeFrom=2026-01-01T01:00:00Z") == ["late"]
    assert keys("lastOperationTimeFrom=2026-01-01T01:00:00Z&lastOperationTimeTo=2026-01-01T03:00:00Z") == ["late"]
    assert keys("lastOperationTimeFrom=2025-12-31T00:00:00Z&lastOperationTimeTo=2025-12-31T23:00:00Z") == []
    assert keys("lastOperationTimeTo=not-a-date") == ["early", "late"]  # TryParse failed: no filter


# -- E26: the unknown-entity message --------------------------------------------------------

def one_function_app(folder, trigger: str, name: str):
    """A v1 app with one function of this trigger (a generator for orchestrators)."""
    code = {"orchestrationTrigger": "import azure.durable_functions as df\n"
                                    "def run(context):\n    yield context.call_activity('x')\n"
                                    "main = df.Orchestrator.create(run)\n",
            "entityTrigger": "import azure.durable_functions as df\n"
                             "def run(context):\n    context.set_result(None)\n"
                             "main = df.Entity.create(run)\n"}[trigger]
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(code)
    (folder / name / "function.json").write_text(json.dumps({"bindings": [{"type": trigger, "name": "context"}]}))
    return folder


@pytest.mark.parametrize("trigger, listed", [
    # The message tests the number of orchestrators, not entities, before listing entities.
    ("orchestrationTrigger", "The following are the known entity functions: ''."),
    ("entityTrigger", "No entity functions are currently registered!"),
])
def test_e26_the_unknown_entity_message_counts_orchestrators(tmp_path, trigger, listed):
    """DurableTaskExtension.GetInvalidEntityFunctionMessage checks knownOrchestrators."""
    app = one_function_app(tmp_path / "app", trigger, "Only")
    with DevHost(app, data_dir=tmp_path / "state", local_settings=False) as host:
        base = host.serve(port=0)
        reply = call("POST", f"{base}/runtime/webhooks/durabletask/entities/missing/k?op=add")
    assert reply.status == 400
    assert reply.json["Message"] == (
        "The function 'missing' doesn't exist, is disabled, or is not an entity function. "
        f"Additional info: {listed}")


# -- C5: the client binding's JSON -----------------------------------------------------

def expected_binding(base: str) -> dict:
    webhooks = base + WEBHOOKS
    root, q = f"{webhooks}/instances/INSTANCEID", "taskHub=TestHubName&connection=Storage"
    create = webhooks + "/orchestrators/{functionName}[/{instanceId}]"
    return {
        "taskHubName": "TestHubName",
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri": create + "?",
            "createAndWaitOnNewInstancePostUri":
                create + "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{root}?{q}",
            "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}?{q}",
            "terminatePostUri": f"{root}/terminate?reason={{text}}&{q}",
            "rewindPostUri": f"{root}/rewind?reason={{text}}&{q}",
            "purgeHistoryDeleteUri": f"{root}?{q}",
            "restartPostUri": f"{root}/restart?{q}",
            "suspendPostUri": f"{root}/suspend?reason={{text}}&{q}",
            "resumePostUri": f"{root}/resume?reason={{text}}&{q}",
        },
        "baseUrl": webhooks,
        "requiredQueryStringParameters": "",
        "rpcBaseUrl": f"{base}{WEBHOOKS}/",
        "httpBaseUrl": None,
    }


def test_c5_the_binding_holds_the_extensions_fields_in_order_with_nulls(api):
    """BindingHelper.DurableOrchestrationClientToString: OrchestrationClientInputData in
    property order (nulls kept: Newtonsoft's default NullValueHandling.Include);
    GetInstanceCreationLinks ends the URIs with "?" and "...&" plus the (empty) universal
    query; HttpManagementPayload in its property order, for the id INSTANCEID."""
    reply = call("GET", api.base_url + "/api/binding")
    assert reply.status == 200
    binding = json.loads(reply.text)
    expected = expected_binding(api.base_url)
    assert binding == expected
    assert list(binding) == list(expected)
    assert list(binding["creationUrls"]) == list(expected["creationUrls"])
    assert list(binding["managementUrls"]) == list(expected["managementUrls"])


def test_c5_the_binding_text_is_compact_json(api):
    """BindingHelper.DurableOrchestrationClientToString (JsonConvert.SerializeObject)."""
    reply = call("GET", api.base_url + "/api/binding")
    assert reply.text == json.dumps(expected_binding(api.base_url), separators=(",", ":"))


def test_c6_an_activity_gets_the_same_binding_for_the_host_it_runs_on(api):
    """DurableTaskExtension registers the durableClient binding rule for a function of any
    trigger (AddBindingRule<DurableClientAttribute>), and BindingHelper writes the same
    JSON whatever invoked the function: here the host's announced address (F5) for the
    public URLs and its own loopback address for rpcBaseUrl. Another activity reads its
    own instance through the SDK's client built from it."""
    instance_id = start(api, "activity_client")
    output = settled(api, instance_id, "Completed")["output"]
    port = api.base_url.rsplit(":", 1)[1]
    expected = expected_binding(f"http://localhost:{port}")
    expected["rpcBaseUrl"] = f"{api.base_url}{WEBHOOKS}/"
    assert output["binding"] == json.dumps(expected, separators=(",", ":"))
    assert output["seen"] == {"name": "activity_client", "runtimeStatus": "Running"}


def test_c6_an_activity_of_a_host_on_every_interface_calls_it_over_loopback(tmp_path):
    """The binding's rpcBaseUrl is where this process reaches its server: bound to every
    interface, that is the loopback address; the client's calls go over HTTP here."""
    with DevHost(APPS / "conformance", data_dir=tmp_path / "state", clock=ManualClock(), local_settings=False,
                 client_over_http=True) as host:
        base = host.serve(host="0.0.0.0", port=0)
        port = base.rsplit(":", 1)[1]
        instance_id = host.start("activity_client")
        status = wait_until(lambda: (s := host.status(instance_id)) and s["runtimeStatus"] not in ("Pending", "Running")
                            and s)
        assert status["runtimeStatus"] == "Completed", status
        binding = json.loads(status["output"]["binding"])
        assert binding["rpcBaseUrl"] == f"http://127.0.0.1:{port}{WEBHOOKS}/"
        assert binding["baseUrl"] == f"http://localhost:{port}{WEBHOOKS}"
        assert status["output"]["seen"]["runtimeStatus"] == "Running"


def test_c6_an_activity_in_a_host_that_is_not_serving_calls_its_host_in_process(conformance):
    """devhost: a host run in process has no address; its activities' clients are answered
    in process at a name no network resolves (a call that left the process would fail)."""
    instance_id = conformance.start("activity_client")
    conformance.run_until_idle()
    status = conformance.status(instance_id)
    assert status["runtimeStatus"] == "Completed", status
    binding = json.loads(status["output"]["binding"])
    assert re.fullmatch(r"http://devhost-[0-9a-f]+\.invalid/runtime/webhooks/durabletask/", binding["rpcBaseUrl"])
    assert status["output"]["seen"] == {"name": "activity_client", "runtimeStatus": "Running"}


# -- F5, F10, U3: the HTTP host ----------------------------------------------------------

def test_f5_website_hostname_is_this_host_while_serving(tmp_path, monkeypatch):
    """Core Tools StartHostAction.GetConfigurationSettings: ``settings.Add(Constants
    .WebsiteHostname, uri.Authority)`` for its ``http://localhost:<port>`` base address.
    The devhost puts the variable back when it stops."""
    monkeypatch.setenv("WEBSITE_HOSTNAME", "before.example:1")
    with DevHost(APPS / "conformance", data_dir=tmp_path / "state", clock=ManualClock(),
                 local_settings=False) as host:
        base = host.serve(port=0)
        port = int(base.rsplit(":", 1)[1])
        assert os.environ["WEBSITE_HOSTNAME"] == f"localhost:{port}"
        reply = call("GET", base + "/api/hostname")
        assert (reply.status, reply.text) == (200, f"localhost:{port}")
    assert os.environ["WEBSITE_HOSTNAME"] == "before.example:1"


def test_u3_other_triggers_are_loaded_and_listed_as_not_run(api):
    """devhost: a timer trigger is loaded with the app but never run; the banner says so."""
    assert api.registry.unsupported == ["every_five_minutes (timerTrigger)"]
    assert "every_five_minutes" not in api.registry.orchestrators
    assert "every_five_minutes" not in api.registry.activities
    lines = banner(api).splitlines()
    assert "  every_five_minutes (timerTrigger): not run by the devhost" in lines
