"""The devhost's half of the worker protocol against the Functions host's, both driving
Microsoft's Python worker runtime (azure-functions-runtime).

Each case sends one request over real HTTP to the served worker fixture app, then hands
the very same request to the same runtime directly, as an InvocationRequest built the way
azure-functions-host builds it (``tests/devhost/functions_host.py``), and writes the
runtime's answer out as the host does. What the function was given (method, URL, query,
headers, route values, body, its context) and what the caller got back (status, headers,
cookies, body) must be the same both ways. Activities and entity batches are compared the
same way: their input as the Durable extension hands it to the host, taken from what the
devhost recorded.
"""
from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import sys
from urllib.parse import urlsplit

import pytest

from devhost import SystemClock
from devhost.history import EventType
from devhost.python_worker import typed_data_text
from devhost.testing import TestingHost
from devhost.worker_protocol import ParameterBinding, TypedData, WorkerRequest

from . import functions_host
from .conftest import APPS
from .functions_host import WireRequest

# What each server adds of its own to every reply (Kestrel: Date, Server, the framing).
SERVER_HEADERS = {"date", "server", "content-length", "transfer-encoding", "connection", "keep-alive"}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACE_PARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")


@pytest.fixture(scope="module")
def worker_app(tmp_path_factory):
    # Every orchestrator episode is checked through the worker too (orchestrator_check, W11).
    with TestingHost(APPS / "worker", tmp_path_factory.mktemp("state"), SystemClock(),
                     check_orchestrators="worker") as host:
        host.serve(port=0)
        yield host


def received() -> dict:
    return sys.modules["probes.mirror_probe"].RECEIVED


def framed(method: str, target: str, headers: tuple, body: bytes = b"", chunked: bool = False) -> WireRequest:
    """A request with the header line that frames its body: Transfer-Encoding when it is
    sent in chunks, else Content-Length whenever there is a body or the method has one."""
    if chunked:
        headers += (("Transfer-Encoding", "chunked"),)
    elif body or method in ("POST", "PUT", "PATCH"):
        headers += (("Content-Length", str(len(body))),)
    return WireRequest(method, target, headers, body, chunked)


def send(base_url: str, request: WireRequest) -> functions_host.WrittenReply:
    """The request over a socket with exactly its header lines."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers:
            connection.putheader(name, value)
        connection.endheaders()
        if request.chunked:
            connection.send(f"{len(request.body):x}\r\n".encode() + request.body + b"\r\n0\r\n\r\n")
        elif request.body:
            connection.send(request.body)
        response = connection.getresponse()
        return functions_host.WrittenReply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def as_the_host_invokes(host, function_name: str, inputs: list[ParameterBinding]):
    """The runtime's InvocationRequest handler, given the host's message, on the worker's loop."""
    function = next(f for f in host.engine.registry.worker.indexed_functions() if f.name == function_name)
    message = functions_host.invocation_request(function.function_id, inputs)
    worker = host.engine.registry.worker
    return worker.run(worker.runtime.invocation_request(WorkerRequest("FunctionInvocationRequest", message)))


def through_the_functions_host(host, function_name: str, request: WireRequest, route_values: dict):
    trigger = next(f for f in host.engine.registry.http if f.name == function_name).request_param
    inputs = [ParameterBinding(name=trigger,
                               data=TypedData(http=functions_host.to_rpc_http(request, route_values)))]
    return functions_host.written_reply(as_the_host_invokes(host, function_name, inputs))


def comparable(record: dict) -> dict:
    """A function's record with the values each invocation draws afresh replaced by their
    shape. The trace context's attributes are the host's Activity tags, which depend on its
    telemetry; they are left out."""
    record = copy.deepcopy(record)
    context = record["context"]
    context["invocation_id"] = bool(GUID.match(context["invocation_id"]))
    context["trace_parent"] = bool(TRACE_PARENT.match(context["trace_parent"]))
    del context["attributes"]
    return record


def the_reply(reply: functions_host.WrittenReply) -> tuple:
    headers = [(n, v) for n, v in reply.headers if n.lower() not in SERVER_HEADERS]
    return reply.status, headers, reply.body


def wanted_body(data: bytes) -> str:
    return base64.b64encode(data).decode()


CASES = [
    # (case, function, method, target, extra header lines, body, chunked, route values, reply wanted)
    ("query and repeated headers", "mirror_items", "GET",
     "/api/mirror/items/42?q=&a=1&a=2&b=x+y&c=%C3%A9&d=1%202&flag",
     [("X-Tag", "one"), ("x-tag", "two"), ("X-Empty", ""), ("Accept", "*/*")], b"", False,
     {"kind": "items", "id": "42"}, {}),
    ("query keys that differ in case", "mirror_items", "GET", "/api/mirror/items?k=1&K=2&k=3&Other=x",
     [], b"", False, {"kind": "items"}, {}),
    ("a JSON body, a created reply", "mirror_items", "POST", "/api/mirror/orders/7",
     [("Content-Type", "application/json")], b'{"qty": 2, "note": "caf\xc3\xa9"}', False,
     {"kind": "orders", "id": "7"},
     {"status": 201, "mimetype": "application/json", "body": wanted_body(b'{"id": 7}'),
      "headers": [["Location", "/api/mirror/orders/7"], ["X-Request-Cost", "3"]]}),
    ("bytes both ways", "mirror_items", "PUT", "/api/mirror/blobs/b1",
     [("Content-Type", "application/octet-stream")], bytes(range(256)), False,
     {"kind": "blobs", "id": "b1"},
     {"mimetype": "image/png", "body": wanted_body(bytes(reversed(range(256))))}),
    ("a chunked body", "mirror_items", "POST", "/api/mirror/uploads/u1",
     [("Content-Type", "text/plain")], b"sent in chunks", True, {"kind": "uploads", "id": "u1"}, {}),
    ("an empty body that says so", "mirror_items", "POST", "/api/mirror/empty/e1", [], b"", False,
     {"kind": "empty", "id": "e1"}, {}),
    ("escapes in the path and a catch-all", "mirror_files", "GET", "/api/mirror/files/a%20b/%C3%A9t%C3%A9/c.txt?x=1",
     [], b"", False, {"path": "a b/été/c.txt"}, {}),
    ("an optional value left out", "mirror_items", "DELETE", "/api/mirror/items", [], b"", False,
     {"kind": "items", "id": None}, {"status": 204}),
    ("cookies", "mirror_items", "GET", "/api/mirror/session/s1", [], b"", False, {"kind": "session", "id": "s1"},
     {"headers": [["Set-Cookie", "first=1; Path=/api"],
                  ["Set-Cookie", 'second="two words"; HttpOnly; SameSite=Strict'],
                  ["Set-Cookie", "third=x; Max-Age=60; Secure; Domain=example.org; SameSite=Lax"],
                  ["Set-Cookie", "fourth=y; Expires=Wed, 21 Oct 2026 07:28:00 GMT; SameSite=None"]]}),
    ("a plain string returned", "mirror_items", "GET", "/api/mirror/text/t1", [], b"", False,
     {"kind": "text", "id": "t1"}, {"text": "plain words, not JSON"}),
    ("a text type with its charset", "mirror_items", "PATCH", "/api/mirror/pages/p1",
     [("Content-Type", "text/plain; charset=utf-8")], "ünïcode".encode(), False, {"kind": "pages", "id": "p1"},
     {"mimetype": "text/html", "charset": "iso-8859-1", "body": wanted_body("<p>été</p>".encode("latin-1"))}),
]


@pytest.mark.parametrize("case, function, method, target, extra, body, chunked, route_values, wanted", CASES,
                         ids=[c[0] for c in CASES])
def test_the_function_and_the_caller_see_what_the_functions_host_gives_them(
        worker_app, case, function, method, target, extra, body, chunked, route_values, wanted):
    host_line = ("Host", urlsplit(worker_app.base_url).netloc)
    request = framed(method, target, (host_line, ("X-Case", case), ("X-Reply", json.dumps(wanted)), *extra),
                     body, chunked)
    by_devhost = send(worker_app.base_url, request)
    given_by_devhost = received().pop(case)
    by_functions_host = through_the_functions_host(worker_app, function, request, route_values)
    given_by_functions_host = received().pop(case)

    assert comparable(given_by_devhost) == comparable(given_by_functions_host)
    assert the_reply(by_devhost) == the_reply(by_functions_host)
    context = given_by_devhost["context"]
    assert context["invocation_id"] and context["trace_parent"] and context["function_name"] == function


@pytest.mark.parametrize("function", ["broken", "nothing"])
def test_a_failed_invocation_reaches_the_caller_as_the_functions_host_writes_it(worker_app, function):
    route = next(f for f in worker_app.engine.registry.http if f.name == function).route
    request = framed("GET", f"/api/{route}", (("Host", urlsplit(worker_app.base_url).netloc),))
    by_devhost = send(worker_app.base_url, request)
    by_functions_host = through_the_functions_host(worker_app, function, request, {})
    assert the_reply(by_devhost) == the_reply(by_functions_host) == (500, [], b"")


def test_activities_and_entities_get_their_input_as_the_extension_hands_it(worker_app):
    job = {"value": {"word": "é", "n": [1, 2.5, None], "nested": {"ok": True}}, "key": "k1", "operation": "note"}
    instance_id = worker_app.start("mirror_calls", job)
    status = worker_app.wait_for_instance(instance_id)
    assert status["runtimeStatus"] == "Completed", status
    activity_key, entity_key = json.dumps(job["value"], sort_keys=True), "@mirror@k1"
    activity_by_devhost, entity_by_devhost = received().pop(activity_key), received().pop(entity_key)
    history = worker_app.history(instance_id)

    # The activity: DurableActivityContext.GetInputAsJson reads the TaskScheduled parameters
    # array and hands the host its one element, the SDK's JSON text.
    [scheduled] = [e for e in history if e["EventType"] == EventType.TASK_SCHEDULED]
    [input_text] = json.loads(scheduled["Input"])
    response = as_the_host_invokes(worker_app, "mirror_activity",
                                   [ParameterBinding(name="value", data=TypedData(string=input_text))])
    assert comparable(received().pop(activity_key)) == comparable(activity_by_devhost)
    # TaskActivityShim keeps the output as the extension stores every payload: parsed, compact.
    [completed] = [e for e in history if e["EventType"] == EventType.TASK_COMPLETED]
    output = json.dumps(json.loads(typed_data_text(response.return_value)), separators=(",", ":"), ensure_ascii=False)
    assert output == completed["Result"]

    # The entity: its first batch, the request the orchestration sent (EventSent's input).
    [sent] = [e for e in history if e["EventType"] == EventType.EVENT_SENT]
    request = json.loads(sent["Input"])
    context = functions_host.entity_context("mirror", "k1", False, None,
                                            [{"name": request["op"], "input": request.get("input")}])
    response = as_the_host_invokes(worker_app, "mirror_entity",
                                   [ParameterBinding(name="context", data=TypedData(string=context))])
    assert received().pop(entity_key) == entity_by_devhost
    reply = json.loads(typed_data_text(response.return_value))
    assert worker_app.entity_state("Mirror", "k1") == (reply["entityExists"], json.loads(reply["entityState"]))
    assert status["output"]["entity"] == json.loads(reply["results"][0]["result"])
