"""Conformance: the worker side (docs/DEVHOST-CONFORMANCE.md, "The Python worker").

What an app sees of Microsoft's Python worker (azure-functions-runtime 1.3.0, the runtime
Azure loads on Python 3.13, and -v1 1.2.0 for v1 apps) and of the Functions host's half
of the HTTP binding. Sources: ``azure_functions_runtime/...`` is the worker runtime,
C# names are azure-functions-host (``src/WebJobs.Script.Grpc``, ``src/WebJobs.Script``).
"""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devhost import DevHost
from devhost.history import SCHEDULING_EVENTS, EventType
from devhost.python_worker import AppLoadError, succeeded, typed_data_text
from devhost.replay import TimerSettings, context_fields, state_in_failure
from devhost.testing import wait_until
from devhost.worker_protocol import ParameterBinding, TypedData, WorkerRequest
from tests.support.http import call

from . import functions_host
from .conftest import APPS
from .helpers import REPO, run

HTTP_APP = """import typing
import azure.functions as func
{imports}
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

@app.route(route="ok")
def ok(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")

@app.route(route="probe")
def {signature}:
    return func.HttpResponse("never reached")
"""


def raw_request(base_url: str, method: str, path: str, headers: list[tuple[str, str]],
                body: bytes = b"", chunked: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
    """A request with repeated headers or a chunked body, which urllib cannot send."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest(method, path)
        for name, value in headers:
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            connection.send(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        else:
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


@pytest.fixture
def worker_app(make_host):
    """The worker fixture app, served over HTTP on the system clock."""
    host = make_host("worker", clock=None)
    host.serve(port=0)
    return host


# -- W1: indexing ----------------------------------------------------------------------------

@pytest.mark.parametrize("imports, signature, reason", [
    ("", "probe(req: func.HttpRequest, verbose: bool = False) -> func.HttpResponse",
     "the following parameters are declared in Python but not in the function definition "
     "(function.json or function decorators):  {'verbose'}"),
    ("", "probe(req: func.HttpRequest, **kwargs) -> func.HttpResponse",
     "the following parameters are declared in Python but not in the function definition "
     "(function.json or function decorators):  {'kwargs'}"),
    ("", "probe(req: dict) -> func.HttpResponse",
     "binding type \"'req'\" and dataType \"httpTrigger\" in the binding decorator do not match the "
     "corresponding function parameter's Python type annotation dict"),
    ("", "probe(req: func.HttpRequest) -> dict",
     'Python return annotation "dict" does not match binding type "http"'),
    ("if typing.TYPE_CHECKING:\n    from decimal import Decimal\n",
     "probe(req: func.HttpRequest, amount: 'Decimal' = None) -> func.HttpResponse",
     "NameError: name 'Decimal' is not defined"),
])
def test_w1_a_function_the_worker_refuses_leaves_the_app_with_no_functions(tmp_path, imports, signature, reason):
    """``functions.Registry.add_indexed_function`` (``validate_function_params``,
    ``get_function_return_type``; ``typing.get_type_hints`` for the annotations) raises
    while ``handle_event.worker_init_request`` indexes the app, which then has no
    functions: the devhost refuses to start, with the worker's reason naming the function."""
    (tmp_path / "function_app.py").write_text(HTTP_APP.format(imports=imports, signature=signature))
    with pytest.raises(AppLoadError) as refusal:
        DevHost(tmp_path, data_dir=tmp_path / "state", local_settings=False)
    assert str(refusal.value).startswith("Worker failed to index functions: ")
    assert reason in str(refusal.value)
    if "NameError" not in reason:
        assert "FunctionLoadError: cannot load the probe function: " in str(refusal.value)
    else:  # the worker's NameError names the type only: the devhost names the function
        assert str(refusal.value).endswith("(in the annotations of the function 'probe')")


def test_w1_the_cli_prints_the_workers_reason_and_exits_non_zero(tmp_path):
    (tmp_path / "function_app.py").write_text(HTTP_APP.format(
        imports="", signature="probe(req: func.HttpRequest, verbose: bool = False) -> func.HttpResponse"))
    done = subprocess.run([sys.executable, "-m", "devhost", str(tmp_path), "--port", "0",
                           "--data", str(tmp_path / "state")], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert ("devhost: cannot load the app: Worker failed to index functions: FunctionLoadError: "
            "cannot load the probe function: the following parameters are declared in Python") in done.stderr


# -- W2, W13: what an HTTP function returns, and a failed one ----------------------------

def test_w2_an_http_function_that_returns_none_fails_with_500(worker_app):
    """``HttpResponseConverter.encode`` has no encoding for None, so
    ``bindings.meta.get_datum`` raises TypeError and the invocation fails."""
    reply = call("GET", worker_app.base_url + "/api/nothing")
    assert (reply.status, reply.text) == (500, "")


def test_w13_a_failed_invocation_is_a_500_with_no_body(worker_app):
    """``ExceptionMiddleware.Invoke`` sets 500 and writes nothing; the traceback goes to the log."""
    reply = call("GET", worker_app.base_url + "/api/broken")
    assert (reply.status, reply.text) == (500, "")
    assert "Content-Type" not in reply.headers


# -- W3: an async activity behind a decorator that is not async-aware -----------------------

# The coroutine is never awaited, on Azure as here: Python says so when it is collected.
@pytest.mark.filterwarnings("ignore:coroutine 'greet_later' was never awaited:RuntimeWarning")
def test_w3_a_coroutine_returned_by_a_sync_looking_activity_fails_the_activity(make_host):
    """``FunctionInfo.is_async`` is ``inspect.iscoroutinefunction`` of the registered
    function: the wrapper is not one, so ``handle_event.invocation_request`` runs it on the
    thread pool and ``ActivityTriggerConverter.encode`` refuses the coroutine it returns."""
    host = make_host("worker")
    instance_id = run(host, "call_activity", ["greet_later", "ann"])
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "activity trigger output must be json serializable (<coroutine object" in status["output"]


# -- W4, W5, W7, W9: the request as the function gets it -----------------------------------

def test_w4_get_json_on_a_body_that_is_not_json_raises_the_workers_value_error(worker_app):
    """``HttpRequestConverter.decode`` builds ``azure.functions.http.HttpRequest``, whose
    ``get_json`` raises ``ValueError("HTTP request does not contain valid JSON data")``, not
    ``json.JSONDecodeError``: code that catches JSONDecodeError fails with a 500."""
    not_json = [("Content-Type", "application/json")], b"not json"
    assert raw_request(worker_app.base_url, "POST", "/api/parse", *not_json)[::2] == (500, b"")
    assert raw_request(worker_app.base_url, "POST", "/api/parse_error", *not_json)[::2] == (
        200, b"ValueError: HTTP request does not contain valid JSON data")


def test_w5_w7_query_values_and_headers_as_the_host_sends_them(worker_app):
    """``GrpcMessageConversionExtensions.ToRpcHttp``: a query key whose value is empty is
    left out, and a query key or header sent several times has its values joined with
    commas (``StringValues.ToString``)."""
    status, _, body = raw_request(worker_app.base_url, "GET", "/api/echo?q=&a=1&a=2&b=x+y",
                                  [("X-Tag", "one"), ("X-Tag", "two")])
    assert status == 200
    assert json.loads(body) == {"params": {"a": "1,2", "b": "x y"}, "tag": "one,two", "body": ""}


def test_w7_query_keys_that_differ_in_case_are_one_key(worker_app):
    """ASP.NET Core's query collection (``QueryHelpers``, ``KeyValueAccumulator`` with
    ``StringComparer.OrdinalIgnoreCase``) matches keys ignoring case and keeps the spelling
    it met first; ``ToRpcHttp`` joins the values."""
    status, _, body = raw_request(worker_app.base_url, "GET", "/api/echo?k=1&K=2&k=3&Other=x", [])
    assert status == 200
    assert json.loads(body)["params"] == {"k": "1,2,3", "Other": "x"}


def test_w9_a_chunked_body_without_content_length_reaches_the_function_as_no_body(worker_app):
    """``ToRpcHttp`` passes a body only when ``request.ContentLength > 0``."""
    status, _, body = raw_request(worker_app.base_url, "POST", "/api/echo", [], b"hello", chunked=True)
    assert status == 200 and json.loads(body)["body"] == ""
    status, _, body = raw_request(worker_app.base_url, "POST", "/api/echo", [], b"hello")
    assert status == 200 and json.loads(body)["body"] == "hello"


# -- W8: cookies -------------------------------------------------------------------------------

def test_w8_every_set_cookie_header_is_sent(worker_app):
    """``HttpResponseConverter.encode`` turns each ``Set-Cookie`` into a cookie
    (``datumdef.parse_to_rpc_http_cookie_list``); the host appends each one
    (``RpcHttpCookieConverter``, ``ResponseCookies.Append``): the value escaped, attributes
    the cookie does not set written empty, the path ``/`` when none is given."""
    status, headers, body = raw_request(worker_app.base_url, "GET", "/api/cookies", [])
    assert (status, body) == (200, b"two cookies")
    assert [value for name, value in headers if name.lower() == "set-cookie"] == [
        "first=1; domain=; path=/api",
        "second=two%20words; domain=; path=; samesite=strict; httponly",
    ]


# -- U4: a plain string that reads as JSON ------------------------------------------------------

@pytest.mark.parametrize("text", ['{"a": 1, "b": [true]}', '{"body": "x", "status": 404}', '"quoted"', "true"])
def test_u4_a_plain_string_that_reads_as_json_is_written_as_it_is(worker_app, text):
    """The Functions host reads such a string as JSON first (``HttpBinding.CreateResult``);
    the devhost does not, and writes it as it is."""
    status, headers, body = raw_request(worker_app.base_url, "GET", "/api/mirror/text/u4",
                                        [("X-Reply", json.dumps({"text": text}))])
    assert (status, body.decode()) == (200, text)
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"


# -- W10: the context -------------------------------------------------------------------------

def test_w10_the_context_is_the_workers_own(worker_app):
    """``bindings.context.get_context``: the worker's Context class, a retry context from
    the request (zeros without a retry policy), the invocation id on the thread-local
    storage (``invocation_request``), and the folder of the file that defines the function
    (``functions.Registry.add_indexed_function``: ``inspect.getfile``)."""
    reply = call("GET", worker_app.base_url + "/api/context")
    assert reply.status == 200
    assert reply.json == {"class": "azure_functions_runtime.bindings.context.Context",
                          "retry": [0, 0], "thread_local": True,
                          "directory": str(APPS / "worker" / "probes")}


# -- W12: threads and the worker's settings ----------------------------------------------------

def test_w12_one_thread_pool_runs_every_sync_function(make_host, monkeypatch):
    """``utils.threadpool.start_threadpool_executor`` sizes the one pool from
    ``PYTHON_THREADPOOL_THREAD_COUNT``; ``invocation_request`` runs every sync function
    there, HTTP functions and activities alike."""
    monkeypatch.setenv("PYTHON_THREADPOOL_THREAD_COUNT", "1")
    host = make_host("worker", clock=None)
    host.serve(port=0)
    assert call("GET", host.base_url + "/api/thread").status == 200
    instance_id = host.start("call_activity", ["record_thread", "x"])
    threads = sys.modules["function_app"].THREADS
    wait_until(lambda: host.status(instance_id)["runtimeStatus"] == "Completed", what="the activity")
    assert threads["thread"] == threads["record_thread"] != threading.get_ident()


def test_w12_python_script_file_name_names_the_apps_script(tmp_path, monkeypatch):
    """``handle_event.load_function_metadata`` indexes ``PYTHON_SCRIPT_FILE_NAME``."""
    (tmp_path / "main_app.py").write_text(HTTP_APP.format(
        imports="", signature="probe(req: func.HttpRequest) -> func.HttpResponse"))
    monkeypatch.setenv("PYTHON_SCRIPT_FILE_NAME", "main_app.py")
    with DevHost(tmp_path, data_dir=tmp_path / "state", local_settings=False) as host:
        reply = call("GET", host.serve(port=0) + "/api/probe")
    assert (reply.status, reply.text) == (200, "never reached")


# -- W11: orchestrators, replayed and invoked through the worker ---------------------------------

EPISODE_ENDS = SCHEDULING_EVENTS | {EventType.EXECUTION_COMPLETED, EventType.ORCHESTRATOR_COMPLETED,
                                    EventType.ORCHESTRATOR_STARTED}


def episode_histories(history: list[dict]):
    """The history each recorded episode replayed: everything before its OrchestratorStarted,
    that event and the new events after it, up to what the episode itself added."""
    for start, started in enumerate(history):
        if started["EventType"] == EventType.ORCHESTRATOR_STARTED:
            end = next((i for i in range(start + 1, len(history))
                        if history[i]["EventType"] in EPISODE_ENDS), len(history))
            yield history[:end]


def as_the_functions_host_invokes_the_orchestrator(host, name: str, context_json: str):
    """The InvocationRequest the Functions host sends for an orchestration trigger
    (``ToRpcInvocationRequest``; the binding's value is the extension's context JSON, a
    string), handed to the runtime's ``invocation_request`` on the worker's loop."""
    worker = host.engine.registry.worker
    function = next(f for f in worker.indexed_functions() if f.name == name)
    inputs = [ParameterBinding(name=function.trigger["name"], data=TypedData(string=context_json))]
    message = functions_host.invocation_request(function.function_id, inputs)
    return worker.run(worker.runtime.invocation_request(WorkerRequest("FunctionInvocationRequest", message)))


def drive_activity(host, instance_id):
    host.wait_for_instance(instance_id)


def drive_event(host, instance_id):
    host.run_until_idle()
    host.raise_event(instance_id, "Answer", {"ok": True})
    host.wait_for_instance(instance_id)


def drive_timer_race(host, instance_id):
    host.run_until_idle()
    host.raise_event(instance_id, "Go", 1)
    host.wait_for_instance(instance_id)


@pytest.mark.parametrize("app, orchestrator, input, drive", [
    ("features", "counter", {"n": 1, "stop": 2}, drive_activity),       # activities, continue-as-new
    ("features", "sleepy_chain", {"seconds": 90}, drive_activity),      # a timer between activities
    ("features", "long_timer", 7, drive_activity),                      # a timer the SDK splits
    ("features", "timer_race", 60, drive_timer_race),                   # an event beats a timer
    ("features", "custom_status", None, drive_event),                   # an external event, a custom status
    ("features", "raises", {"why": "no"}, drive_activity),              # an orchestrator that raises
    ("features", "parent", {"key": "w11-parent"}, drive_activity),      # sub-orchestrations, one retried
    ("features", "retry_activity", {"key": "w11", "fail_times": 2, "interval_ms": 1000,
                                    "max_attempts": 3}, drive_activity),  # hidden retry timers
    ("entities", "call_then_wait", "w11", drive_activity),              # entity calls and a signal
    ("entities", "call_that_fails", "w11", drive_activity),             # an entity call that fails
])
def test_w11_each_episode_through_the_worker_gives_the_replays_state(make_host, app, orchestrator, input, drive):
    """The devhost replays an orchestrator on the handle the worker registered; the
    Functions host invokes it through the worker instead. azure-functions-python-worker,
    ``runtimes/v2/azure_functions_runtime/handle_event.py`` (``invocation_request``): each
    input is decoded by ``bindings/meta.py`` (``from_incoming_proto``) with the converter
    of its binding, ``azure/functions/durable_functions.py``'s
    ``OrchestrationTriggerConverter.decode`` (an ``OrchestrationContext`` of the string),
    the sync handle runs on the thread pool, and its return value is encoded by the same
    converter (``encode``: ``json``); an exception becomes the response's
    ``serialize_exception`` message, ``<type>: <message>``, in which the SDK wrote the state
    after ``$OutOfProcData$:``. Every recorded episode of every instance, replayed and
    invoked so, gives the same state."""
    host = make_host(app)
    instance_id = host.start(orchestrator, input)
    drive(host, instance_id)
    invoked = {"json": 0, "failed": 0}
    for row in host.engine.instances():
        for history in episode_histories(host.history(row.instance_id)):
            replay = host.engine.replay(row, history)
            context_json = json.dumps(context_fields(row, history, TimerSettings()))
            response = as_the_functions_host_invokes_the_orchestrator(host, row.name, context_json)
            if succeeded(response):
                assert response.return_value.WhichOneof("data") == "json"
                assert replay.error is None
                state = json.loads(typed_data_text(response.return_value))
                invoked["json"] += 1
            else:
                message = response.result.exception.message
                assert message.startswith("Exception: ") and replay.error is not None
                state = state_in_failure(message)
                invoked["failed"] += 1
            assert state == replay.state, (row.instance_id, row.name, len(history))
    assert invoked["json"] >= 1
    assert (invoked["failed"] >= 1) == (orchestrator in ("raises", "parent"))  # parent's child_fails
