"""The Durable HTTP API over real HTTP: `/runtime/webhooks/durabletask/...`.

The host serves on a free port with a manual clock, so created times are exact and
timers fire only when a test moves the clock; episodes and activities still run on the
host's background threads, hence the short polls.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import quote

import pytest

from devhost import payloads
from devhost.durable_api import ApiReply, StatusPage
from devhost.storage import InstanceRow
from devhost.testing import wait_until
from tests.support.http import call

WEBHOOKS = "/runtime/webhooks/durabletask"


@pytest.fixture
def api(make_host):
    host = make_host("features")
    host.serve(port=0)
    host.webhooks = host.base_url + WEBHOOKS
    return host


def start(host, name, body=None, instance_id=None):
    url = f"{host.webhooks}/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
    reply = call("POST", url, body)
    assert reply.status == 202, reply.text
    return reply.json


def get(host, instance_id, query=""):
    return call("GET", f"{host.webhooks}/instances/{quote(instance_id)}{query}")


def settled(host, instance_id, *statuses):
    def check():
        reply = get(host, instance_id)
        return reply.json if reply.json["runtimeStatus"] in statuses else None
    return wait_until(check, what=f"{instance_id} to reach {statuses}")


def waiting(host, instance_id):
    """Running and parked on its first wait (the custom status is set by then)."""
    return wait_until(lambda: get(host, instance_id).json["customStatus"],
                      what=f"{instance_id} to wait")


# -- starting and following the management URLs ----------------------------------------

@pytest.fixture(params=["webhook", "app starter"])
def start_url(request, api):
    """Both ways to start: the Durable API itself, and an HTTP function that calls
    ``client.start_new`` and answers with ``create_check_status_response``."""
    if request.param == "webhook":
        return f"{api.webhooks}/orchestrators/custom_status"
    return f"{api.base_url}/api/client/start/custom_status"


def test_start_returns_management_urls_that_all_work(api, start_url):
    started = call("POST", start_url, {"ticket": 7})
    assert started.status == 202
    urls = started.json
    assert started.headers["Location"] == urls["statusQueryGetUri"]
    assert started.headers["Retry-After"]
    instance_id = urls["id"]
    assert urls["statusQueryGetUri"].startswith(f"{api.webhooks}/instances/{instance_id}")

    waiting(api, instance_id)
    status = call("GET", urls["statusQueryGetUri"])
    # A raw JSON body is stored as the object; the SDK's start_new double-encodes, and
    # the extension stores (and shows) the JSON string it received.
    expected_input = {"ticket": 7} if "webhooks" in start_url else '{"ticket": 7}'
    assert status.status == 202 and status.json["input"] == expected_input

    raised = call("POST", urls["sendEventPostUri"].replace("{eventName}", "Answer"), "yes")
    assert raised.status == 202
    done = settled(api, instance_id, "Completed")
    assert done["output"] == "yes"
    assert call("GET", urls["statusQueryGetUri"]).status == 200

    purged = call("DELETE", urls["purgeHistoryDeleteUri"])
    assert purged.status == 200 and purged.json == {"instancesDeleted": 1}
    assert get(api, instance_id).status == 404


def test_terminate_uri_terminates_with_the_reason_as_output(api, start_url):
    urls = call("POST", start_url).json
    waiting(api, urls["id"])
    reply = call("POST", urls["terminatePostUri"].replace("{text}", quote("changed my mind")))
    assert reply.status == 202
    status = settled(api, urls["id"], "Terminated")
    assert status["output"] == "changed my mind"


def test_start_with_an_instance_id_and_conflict_while_it_runs(api):
    assert start(api, "custom_status", None, "order-1")["id"] == "order-1"
    again = call("POST", f"{api.webhooks}/orchestrators/custom_status/order-1")
    assert again.status == 500
    assert again.json["ExceptionType"].endswith("OrchestrationAlreadyExistsException")
    unknown = call("POST", f"{api.webhooks}/orchestrators/no_such_orchestrator")
    assert unknown.status == 400 and "doesn't exist" in unknown.json["ExceptionMessage"]


# -- reading one instance ----------------------------------------------------------------

def test_get_instance_input_and_history_switches(api):
    instance_id = start(api, "counter", {"n": 5, "stop": 5})["id"]
    settled(api, instance_id, "Completed")

    plain = get(api, instance_id).json
    assert plain["input"] == {"n": 5, "stop": 5} and "historyEvents" not in plain
    assert plain["createdTime"].endswith("Z") and plain["lastUpdatedTime"].endswith("Z")
    assert get(api, instance_id, "?showInput=false").json["input"] is None

    history = get(api, instance_id, "?showHistory=true").json["historyEvents"]
    assert [e["EventType"] for e in history] == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    assert history[1]["FunctionName"] == "echo" and history[1]["ScheduledTime"]
    assert "Result" not in history[1]

    with_output = get(api, instance_id, "?showHistory=true&showHistoryOutput=true").json
    assert with_output["historyEvents"][1]["Result"] == 5
    assert with_output["historyEvents"][2]["Result"] == {"final": 5}


def test_unknown_instance_is_404_with_an_empty_body(api):
    reply = get(api, "nobody")
    assert reply.status == 404 and reply.text == ""


# -- queries -----------------------------------------------------------------------------

def test_query_filters_by_status_time_and_prefix(api):
    early = start(api, "custom_status", None, "batch-a")["id"]
    api.clock.advance(timedelta(hours=1))
    middle = start(api, "counter", {"n": 1, "stop": 1}, "batch-b")["id"]
    api.clock.advance(timedelta(hours=1))
    late = start(api, "custom_status", None, "other-c")["id"]
    settled(api, middle, "Completed")
    waiting(api, early)
    waiting(api, late)

    def ids(query):
        reply = call("GET", f"{api.webhooks}/instances?{query}")
        assert reply.status == 200, reply.text
        return [i["instanceId"] for i in reply.json]

    assert ids("") == [early, middle, late]
    assert ids("runtimeStatus=Running") == [early, late]
    assert ids("runtimeStatus=Completed,Failed") == [middle]
    assert ids("createdTimeFrom=2026-01-01T00:30:00Z") == [middle, late]
    assert ids("createdTimeTo=2026-01-01T01:30:00Z") == [early, middle]
    assert ids("createdTimeFrom=2026-01-01T00:30:00Z&createdTimeTo=2026-01-01T01:30:00Z") == [middle]
    assert ids("instanceIdPrefix=batch-") == [early, middle]
    # Enum.TryParse drops a status it does not know: no filter is left.
    assert ids("runtimeStatus=Sleeping") == [early, middle, late]


def test_query_pages_with_top_and_continuation_token(api):
    for n in range(5):
        start(api, "custom_status", None, f"page-{n}")
    seen, token, pages = [], None, 0
    while True:
        reply = call("GET", f"{api.webhooks}/instances?top=2",
                     headers={"x-ms-continuation-token": token} if token else {})
        assert reply.status == 200
        seen += [i["instanceId"] for i in reply.json]
        pages += 1
        token = reply.headers.get("x-ms-continuation-token")
        if not token:
            break
    assert pages == 3
    assert sorted(seen) == [f"page-{n}" for n in range(5)] and len(seen) == 5


STORED_STATUSES = [
    None, '""', "0", "-0.0", "1e+16", "NaN", "123456789012345678901234567890", "true", "[]",
    '{"a":[1,2.5,{"b":null}],"c":"quote \\" and backslash \\\\"}',
    '{"unicode":"Zürich – 東京 – 😀","control":"\\u0000\\t"}',
    '{"nested":' * 30 + "1" + "}" * 30,
]


@pytest.mark.parametrize("stored", STORED_STATUSES)
def test_a_page_written_as_text_is_the_compact_json_of_its_values(stored):
    """A query page copies each stored custom status into its text rather than reading and
    printing it again: the same characters, for every value payloads.to_text stores."""
    if stored is not None:
        assert payloads.to_text(payloads.shown(stored)) == stored  # how the host stores it
    rows = [InstanceRow(f"i-{n}", "fn", "e", "Running", '{"in":1}', out, stored,
                        "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:01.500000Z", None, None)
            for n, out in enumerate([None, '"done"', "a failure reason, not JSON"])]
    for show_input in (True, False):
        page = StatusPage(rows, show_input)
        assert page.json_text() == payloads.to_text(page.values())
        assert ApiReply(200, page).json_text() == payloads.to_text(ApiReply(200, page).value())


def test_a_null_value_is_written_null_over_http():
    """A reply whose value is null (a start that waited for an orchestration with no
    output, an entity whose state is null) has the body "null", as the extension writes
    it, never an empty body."""
    from devhost.server import _to_response
    reply = _to_response(ApiReply(200, None))
    assert reply.body == b"null" and reply.content_type == "application/json"
    assert ApiReply(200, None).value() is None


def test_a_query_reads_the_same_over_http_and_in_process(api):
    start(api, "custom_status", None, "same-a")
    start(api, "counter", {"n": 1, "stop": 1}, "same-b")
    settled(api, "same-b", "Completed")
    waiting(api, "same-a")
    over_http = call("GET", f"{api.webhooks}/instances?top=10&showInput=true").json
    in_process = asyncio.run(api.api.handle("GET", "/instances", api.base_url, "top=10&showInput=true",
                                            {}, b"")).value()
    assert over_http == in_process and {i["instanceId"] for i in in_process} == {"same-a", "same-b"}
    assert any(i["customStatus"] for i in in_process)


# -- raise event, terminate, suspend, resume ----------------------------------------------

def test_raise_event_status_codes(api):
    instance_id = start(api, "custom_status")["id"]
    waiting(api, instance_id)
    url = f"{api.webhooks}/instances/{instance_id}/raiseEvent/Answer"
    assert call("POST", url, raw=b"{not json").status == 400
    assert call("POST", f"{api.webhooks}/instances/ghost/raiseEvent/Answer", 1).status == 404
    assert call("POST", url, {"ok": True}).status == 202
    assert settled(api, instance_id, "Completed")["output"] == {"ok": True}
    assert call("POST", url, {"ok": True}).status == 410


def test_terminate_status_codes(api):
    instance_id = start(api, "custom_status")["id"]
    waiting(api, instance_id)
    url = f"{api.webhooks}/instances/{instance_id}/terminate?reason=stop"
    assert call("POST", f"{api.webhooks}/instances/ghost/terminate").status == 404
    assert call("POST", url).status == 202
    assert settled(api, instance_id, "Terminated")["output"] == "stop"
    assert call("POST", url).status == 410


def test_suspend_holds_events_until_resume(api):
    instance_id = start(api, "custom_status")["id"]
    waiting(api, instance_id)
    base = f"{api.webhooks}/instances/{instance_id}"
    assert call("POST", base + "/suspend?reason=lunch").status == 202
    settled(api, instance_id, "Suspended")
    assert call("POST", base + "/raiseEvent/Answer", 3).status == 202
    assert get(api, instance_id).json["runtimeStatus"] == "Suspended"
    assert call("POST", base + "/resume?reason=back").status == 202
    assert settled(api, instance_id, "Completed")["output"] == 3


# -- purge -------------------------------------------------------------------------------

def test_purge_one_and_by_filter(api):
    running = start(api, "custom_status", None, "keep-running")["id"]
    done = [start(api, "counter", {"n": 0, "stop": 0}, f"done-{n}")["id"] for n in range(3)]
    for instance_id in done:
        settled(api, instance_id, "Completed")
    waiting(api, running)

    assert call("DELETE", f"{api.webhooks}/instances/ghost").status == 404
    one = call("DELETE", f"{api.webhooks}/instances/{done[0]}")
    assert one.status == 200 and one.json == {"instancesDeleted": 1}

    by_filter = f"{api.webhooks}/instances?createdTimeFrom=2025-12-31T00:00:00Z&runtimeStatus=Completed"
    many = call("DELETE", by_filter)
    assert many.status == 200 and many.json == {"instancesDeleted": 2}
    assert call("DELETE", by_filter).status == 404
    assert get(api, running).status == 202
    # Purge by id does not look at the status (Azure Storage deletes the rows).
    assert call("DELETE", f"{api.webhooks}/instances/{running}").status == 200
    assert get(api, running).status == 404


# -- routing -------------------------------------------------------------------------------

def test_a_method_or_path_the_api_does_not_serve_is_an_empty_404(api):
    for url, method in ((f"{api.webhooks}/instances/some-id/terminate", "GET"),
                        (f"{api.webhooks}/orchestrators/counter", "GET"),
                        (f"{api.webhooks}/no/such/endpoint", "GET")):
        reply = call(method, url)
        assert (reply.status, reply.text) == (404, "")
