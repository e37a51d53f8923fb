"""The app's own HTTP functions over real HTTP: routing, request and response mapping,
durable starters and the durable client SDK talking back to the host."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from devhost.testing import wait_until
from tests.support.http import call


@pytest.fixture
def blueprints(make_host):
    host = make_host("blueprints", clock=None)
    host.serve(port=0)
    return host


@pytest.fixture(params=["client in process", "client over http"])
def features_served(make_host, request):
    """Both ways the app's Durable client can reach the host must behave the same."""
    host = make_host("features", clock=None, client_over_http=request.param == "client over http")
    host.serve(port=0)
    return host


def completed(url):
    def check():
        body = call("GET", url).json
        return body if body["runtimeStatus"] in ("Completed", "Failed", "Terminated") else None
    return wait_until(check, what=url)


# -- plain HTTP functions ------------------------------------------------------------------

def test_sync_function_gets_route_query_and_headers(blueprints):
    reply = call("GET", f"{blueprints.base_url}/api/items/books/42?fields=title,author",
                 headers={"X-Trace-Id": "abc-123"})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"  # no charset, as the worker sends
    assert reply.headers["X-Item-Id"] == "42"
    assert reply.json == {"category": "books", "id": 42, "fields": "title,author", "trace": "abc-123"}


def test_route_constraint_rejects_a_non_integer(blueprints):
    assert call("GET", f"{blueprints.base_url}/api/items/books/forty-two").status == 404


def test_async_function_sets_status_code_and_headers(blueprints):
    reply = call("POST", f"{blueprints.base_url}/api/items/books", {"id": 7, "title": "Dune"})
    assert reply.status == 201
    assert reply.headers["Location"] == "/api/items/books/7"
    assert reply.json == {"id": 7, "title": "Dune"}
    bad = call("POST", f"{blueprints.base_url}/api/items/books", raw=b"{oops")
    assert bad.status == 400 and bad.text == "body must be JSON"


def test_optional_route_parameter_custom_status_and_mimetype(blueprints):
    named = call("GET", f"{blueprints.base_url}/api/teapot/ada")
    assert named.status == 418 and named.text == "no coffee for ada"
    assert named.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert call("GET", f"{blueprints.base_url}/api/teapot").text == "no coffee for nobody"


def test_function_may_return_a_plain_string(blueprints):
    reply = call("GET", f"{blueprints.base_url}/api/ping")
    assert reply.status == 200 and reply.text == "pong"
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_unknown_route_is_404_and_wrong_method_is_405(blueprints):
    assert call("GET", f"{blueprints.base_url}/api/nothing/here").status == 404
    assert call("GET", f"{blueprints.base_url}/items/books/1").status == 404  # outside the route prefix
    wrong = call("DELETE", f"{blueprints.base_url}/api/teapot/ada")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "GET"


def test_function_that_raises_gives_a_short_generic_500(blueprints):
    reply = call("GET", f"{blueprints.base_url}/api/broken")
    assert reply.status == 500
    assert len(reply.text) < 100
    assert "hunter2" not in reply.text and "Traceback" not in reply.text


# -- durable starters ----------------------------------------------------------------------

def test_chaining_starter_returns_check_status_response(make_host):
    host = make_host("chaining", clock=None)
    host.serve(port=0)
    reply = call("POST", f"{host.base_url}/api/orchestrators/chain", "devhost")
    assert reply.status == 202
    urls = reply.json
    assert reply.headers["Location"] == urls["statusQueryGetUri"]
    assert urls["statusQueryGetUri"].startswith(f"{host.base_url}/runtime/webhooks/durabletask/instances/")
    status = completed(urls["statusQueryGetUri"])
    assert status["output"] == ["Hello devhost", "Hello Hello devhost", "HELLO HELLO DEVHOST"]


def test_blueprint_starter_on_a_plain_function_app(blueprints):
    reply = call("POST", f"{blueprints.base_url}/api/greetings", ["Ada", "Linus"])
    assert reply.status == 202
    status = completed(reply.json["statusQueryGetUri"])
    assert status["name"] == "greet_all"
    assert status["output"] == ["Hello, Ada!", "Hello, Linus!"]


def test_starter_that_waits_for_completion_returns_the_output(blueprints):
    order = {"lines": [{"qty": 2, "price": 1.25}, {"qty": 1, "price": 4.5}]}
    reply = call("PUT", f"{blueprints.base_url}/api/orders/o-17", order)
    assert reply.status == 200
    assert reply.json == {"order": "o-17", "total": 7.0}


# -- the durable client SDK inside HTTP functions ------------------------------------------

def test_client_sdk_calls_work_against_the_devhost(features_served):
    api = f"{features_served.base_url}/api/client"
    started = call("POST", f"{api}/start/custom_status/sdk-1", {"from": "sdk"})
    assert started.status == 202 and started.json["id"] == "sdk-1"

    def status():
        return call("GET", f"{api}/status/sdk-1").json
    wait_until(lambda: status()["customStatus"] == {"stage": "waiting"}, what="the wait")
    # start_new double-encodes; the status shows the JSON string the extension stored.
    assert status()["input"] == '{"from": "sdk"}'

    assert call("GET", f"{api}/by-status?status=Running").json == ["sdk-1"]
    assert call("POST", f"{api}/raise/sdk-1/Answer", {"v": 1}).status == 202
    wait_until(lambda: status()["runtimeStatus"] == "Completed", what="completion")
    assert status()["output"] == '{"v": 1}'  # raise_event double-encodes too
    assert status()["history"] == ["ExecutionStarted", "EventRaised", "ExecutionCompleted"]

    gone = call("POST", f"{api}/raise/sdk-1/Answer", {"v": 2})
    assert gone.status == 409 and "is gone" in gone.json["error"]
    missing = call("POST", f"{api}/raise/nobody/Answer", {"v": 2})
    assert "No instance with ID nobody found" in missing.json["error"]
    assert call("GET", f"{api}/status/nobody").status == 404

    assert call("DELETE", f"{api}/purge/sdk-1").json == {"deleted": 1}
    assert call("DELETE", f"{api}/purge/sdk-1").json == {"deleted": 0}


def test_client_sdk_terminate_and_status_by_prefix(features_served):
    api = f"{features_served.base_url}/api/client"
    for instance_id in ("job-1", "job-2", "other-1"):
        assert call("POST", f"{api}/start/custom_status/{instance_id}").status == 202
    wait_until(lambda: len(call("GET", f"{api}/by-status?status=Running").json) == 3, what="three waits")
    assert call("GET", f"{api}/by-status?status=Running&prefix=job-").json == ["job-1", "job-2"]

    reply = call("POST", f"{api}/terminate/job-1?reason={quote('too slow')}")
    assert reply.status == 202
    wait_until(lambda: call("GET", f"{api}/status/job-1").json["runtimeStatus"] == "Terminated",
               what="termination")
    assert call("GET", f"{api}/status/job-1").json["output"] == "too slow"
    assert call("GET", f"{api}/by-status?status=Terminated").json == ["job-1"]
    assert call("POST", f"{api}/terminate/ghost").status == 409
