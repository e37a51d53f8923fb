"""Durable entities: the SDK's entity functions run in batches as the extension runs them,
called and signalled from orchestrations, signalled and read through the HTTP API and the
SDK client. Each behaviour names the extension or SDK source it reproduces."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from devhost.entities import REQUEST_EVENT, request_input
from devhost.history import EventType
from devhost.testing import TestingHost, wait_until
from tests.support.http import call

from .conftest import APPS

WEBHOOKS = "/runtime/webhooks/durabletask"


@pytest.fixture
def host(make_host):
    return make_host("entities")


@pytest.fixture(params=["client in process", "client over http"])
def served(make_host, request):
    host = make_host("entities", clock=None, client_over_http=request.param == "client over http")
    host.serve(port=0)
    return host


def run(host, orchestrator, input=None):
    instance_id = host.start(orchestrator, input)
    host.run_until_idle()
    return instance_id


def test_signals_from_a_client_change_the_state_the_client_reads(host):
    assert host.entity_state("Counter", "c") == (False, None)
    for amount in (2, 3, 4):
        host.signal_entity("Counter", "c", "add", amount)
    host.run_until_idle()
    # EntityId lowercases the name: "Counter" and "counter" are one entity.
    assert host.entity_state("counter", "c") == (True, 9)


def test_queued_requests_run_as_one_batch(host):
    for amount in (1, 1, 1):
        host.signal_entity("Counter", "batched", "add", amount)
    host.engine.run_episodes(host.engine.due_instances())
    work = host.engine.pending_work()
    assert [(w.kind, w.instance_id, len(json.loads(w.input))) for w in work] == [("entity", "@counter@batched", 3)]
    # While the batch is taken, the entity's next requests wait for it.
    host.signal_entity("Counter", "batched", "add", 10)
    assert "@counter@batched" not in host.engine.due_instances()
    host.run_until_idle()
    assert host.entity_state("Counter", "batched") == (True, 13)


def test_the_last_operation_of_each_batch_is_kept_with_its_time(host):
    host.signal_entity("Counter", "last", "add", 1)
    host.run_until_idle()
    first = host.store.get_entity("@counter@last")
    assert first.last_operation_name == "add"
    host.clock.advance(timedelta(seconds=5))
    for operation in ("add", "add_then_fail", "get"):  # one batch; the failed one does not end it
        host.signal_entity("Counter", "last", operation, 1)
    host.run_until_idle()
    later = host.store.get_entity("@counter@last")
    assert later.last_operation_name == "get" and later.last_operation_time > first.last_operation_time


def test_calls_wait_for_the_answer_and_signals_do_not(host):
    instance_id = run(host, "add_and_read", {"key": "k", "signal": 2, "add": 3})
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    # The signal sent before the call ran first: the call saw 2 + 3.
    assert status["output"] == {"after_add": 5, "echoed": {"input": {"nested": [1, "two"]}}}
    assert host.entity_state("Counter", "k") == (True, 6)


def test_each_request_is_an_event_sent_with_the_next_task_id(host):
    instance_id = run(host, "add_and_read", {"key": "k", "signal": 2, "add": 3})
    history = host.history(instance_id)
    sent = [e for e in history if e["EventType"] == EventType.EVENT_SENT]
    # Signals take a task id too (the SDK's _record_fire_and_forget_action), so the
    # signal, call, signal, call are tasks 0 to 3, each an EventSent "op" to the entity.
    assert [(e["EventId"], e["InstanceId"], e["Name"]) for e in sent] == [
        (0, "@counter@k", REQUEST_EVENT), (1, "@counter@k", REQUEST_EVENT),
        (2, "@counter@k", REQUEST_EVENT), (3, "@counter@k", REQUEST_EVENT)]
    requests = [json.loads(e["Input"]) for e in sent]
    assert [(r["op"], r.get("signal", False)) for r in requests] == [
        ("add", True), ("add", False), ("add", True), ("echo_input", False)]
    # RequestMessage.SetInput serializes the SDK's JSON text of the input as a string.
    assert requests[1]["input"] == json.dumps("3")
    assert all(r["parent"] == instance_id for r in requests)
    # The answer to a call is an event named by its request id (TaskEntityShim
    # SendResponseMessage), holding a ResponseMessage whose result is the SDK's JSON.
    answers = [e for e in history if e["EventType"] == EventType.EVENT_RAISED]
    assert [a["Name"] for a in answers] == [requests[1]["id"], requests[3]["id"]]
    assert json.loads(answers[0]["Input"]) == {"result": "5"}


def test_a_failed_operation_raises_in_the_caller_and_keeps_what_it_changed(host):
    instance_id = run(host, "call_that_fails", "f")
    assert host.status(instance_id)["output"] == {"caught": "cannot do that with 0", "after": 0}
    answers = [json.loads(e["Input"]) for e in host.history(instance_id)
               if e["EventType"] == EventType.EVENT_RAISED]
    assert answers[0] == {"result": json.dumps("cannot do that with 0"), "exceptionType": "Error"}
    # The SDK's Entity.handle catches an operation's exception after its set_state, and
    # the extension stores the state the batch reports: there is no rollback.
    host.signal_entity("Counter", "f", "add_then_fail", 7)
    host.run_until_idle()
    assert host.entity_state("Counter", "f") == (True, 7)


def test_concurrent_calls_to_one_entity_are_answered_one_at_a_time(host):
    instance_id = run(host, "fan_out_calls", "fan")
    assert host.status(instance_id)["output"] == [1, 2, 3, 4, 5]


def test_entity_calls_interleave_with_activities_and_timers(host):
    instance_id = run(host, "call_then_wait", "mixed")
    assert host.status(instance_id)["output"] == ["a", 10]
    kinds = [(e["EventType"], e["EventId"]) for e in host.history(instance_id)
             if e["EventType"] in (EventType.EVENT_SENT, EventType.TASK_SCHEDULED, EventType.TIMER_CREATED)]
    assert kinds == [(EventType.EVENT_SENT, 0), (EventType.TASK_SCHEDULED, 1),
                     (EventType.EVENT_SENT, 2), (EventType.TIMER_CREATED, 3)]


def test_signal_to_an_entity_the_app_lacks_fails_the_orchestration(host):
    # SignalEntity checks its target synchronously; OutOfProcOrchestrationShim lets what
    # InvokeAPIFromAction throws surface.
    instance_id = run(host, "signals_an_unknown_entity")
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "The function 'nobody' doesn't exist, is disabled, or is not an entity function" in status["output"]


def test_deleting_an_entity_makes_it_not_exist(host):
    host.signal_entity("Counter", "gone", "add", 1)
    host.signal_entity("Counter", "gone", "delete")
    host.run_until_idle()
    assert host.entity_state("Counter", "gone") == (False, None)


def test_a_taken_batch_survives_a_restart_and_runs_once(tmp_path):
    def open_host():
        return TestingHost(APPS / "entities", data_dir=tmp_path / "state")

    with open_host() as first:
        first.signal_entity("Counter", "r", "add", 4)
        assert first.step("@counter@r")  # the batch is taken, not yet run
        assert first.entity_state("Counter", "r") == (False, None)
        assert not first.step("@counter@r")
    with open_host() as second:
        second.run_until_idle()
        assert second.entity_state("Counter", "r") == (True, 4)
        second.run_until_idle()
        assert second.entity_state("Counter", "r") == (True, 4)


# -- the HTTP API (HttpApiHandler's entity routes) -------------------------------------

def entity_url(host, path: str) -> str:
    return f"{host.base_url}{WEBHOOKS}/entities/{path}"


def wait_for_state(host, key: str, expected):
    return wait_until(lambda: host.entity_state("Counter", key) == (True, expected),
                      what=f"counter {key} = {expected}")


def test_http_signal_read_list_and_delete(served):
    assert call("POST", entity_url(served, "Counter/h?op=add"), raw=json.dumps(json.dumps(5)).encode()).status == 202
    wait_for_state(served, "h", 5)
    reply = call("GET", entity_url(served, "Counter/h"))
    assert (reply.status, reply.json) == (200, 5)
    # "$" is the empty key (HttpApiHandler.EmptyEntityKeySymbol); POST without a key uses "".
    assert call("POST", entity_url(served, "Counter?op=add"), raw=json.dumps(json.dumps(2)).encode()).status == 202
    wait_until(lambda: call("GET", entity_url(served, "Counter/$")).status == 200, what="the empty-key entity")
    assert call("GET", entity_url(served, "Counter/$")).json == 2
    assert call("GET", entity_url(served, "Counter/nobody")).status == 404
    listed = call("GET", entity_url(served, "Counter?fetchState=true")).json
    assert [(e["entityId"], e["state"]) for e in listed] == [({"name": "counter", "key": ""}, 2),
                                                             ({"name": "counter", "key": "h"}, 5)]
    first = call("GET", entity_url(served, "Counter?top=1"))
    assert [e["entityId"]["key"] for e in first.json] == [""]
    rest = call("GET", entity_url(served, "Counter?top=1"),
                headers={"x-ms-continuation-token": first.headers["x-ms-continuation-token"]})
    assert [e["entityId"]["key"] for e in rest.json] == ["h"] and not rest.headers["x-ms-continuation-token"]
    assert call("GET", entity_url(served, "Counter?lastOperationTimeFrom=2999-01-01T00:00:00Z")).json == []
    assert "state" not in call("GET", entity_url(served, "Counter")).json[0]
    assert call("DELETE", entity_url(served, "Counter/h")).status == 202
    wait_until(lambda: call("GET", entity_url(served, "Counter/h")).status == 404, what="deleted")


def test_http_body_is_parsed_when_json_and_a_string_otherwise(served):
    # Plain text arrives as a .NET string, serialized by SetInput: the entity's get_input
    # decodes it to the number. A raw JSON number is kept as a token, which the SDK's
    # get_input cannot decode (json.loads then df_loads of a non-string), so the
    # operation fails and the state stays, exactly as on Azure.
    assert call("POST", entity_url(served, "Counter/t?op=add"),
                headers={"Content-Type": "text/plain"}, raw=b"7").status == 202
    wait_for_state(served, "t", 7)
    assert call("POST", entity_url(served, "Counter/t?op=add"), raw=b"100").status == 202
    assert call("POST", entity_url(served, "Counter/t?op=add"), raw=json.dumps("1").encode()).status == 202
    wait_for_state(served, "t", 8)


def test_http_refusals_are_the_extensions(served):
    bad_json = call("POST", entity_url(served, "Counter/x?op=add"), raw=b"{nope")
    assert bad_json.status == 400 and bad_json.json["Message"].startswith("Could not parse JSON content")
    unknown = call("POST", entity_url(served, "Nobody/x?op=add"), raw=b'"1"')
    assert unknown.status == 400
    assert "The function 'Nobody' doesn't exist" in unknown.json["Message"]
    bad_key = call("POST", entity_url(served, "Counter/a%23b?op=add"), raw=b'"1"')
    assert bad_key.status == 400
    assert bad_key.json["Message"] == ("entityKey (Parameter 'Entity keys must not contain /, \\, #, ?, "
                                         "or control characters.')")
    assert call("PUT", entity_url(served, "Counter/x"), raw=b'"1"').status == 404
    nameless = call("POST", f"{served.base_url}{WEBHOOKS}/entities", raw=b'"1"')
    assert nameless.status == 400 and "entity name must not be a null or empty string" in nameless.json["Message"]


def test_the_sdk_client_signals_and_reads_through_the_app(served):
    assert call("POST", f"{served.base_url}/api/counter/sdk/add", body=6).status == 202
    wait_for_state(served, "sdk", 6)
    reply = call("GET", f"{served.base_url}/api/counter/sdk").json
    assert reply == {"exists": True, "state": 6}
    assert call("GET", f"{served.base_url}/api/counter/none").json == {"exists": False, "state": None}


def test_request_input_is_what_set_input_stores():
    # RequestMessage.SetInput: a JToken keeps its compact text; a .NET string is serialized.
    assert request_input("5") == '"5"'
    assert request_input({"a": [1, 2]}) == '{"a":[1,2]}'
    assert request_input(None) is None


@pytest.mark.parametrize("again", [False, True], ids=["completes", "continues as new"])
def test_signals_of_the_last_episode_are_delivered(host, again):
    run(host, "signal_and_finish", {"key": "last", "add": 5, "again": again})
    assert host.entity_state("Counter", "last") == (True, 10 if again else 5)
