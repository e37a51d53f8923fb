"""Functions whose behaviour depends on the Python worker: how it converts a request and a
reply, which thread it runs a function on, what it does with what a function returns."""
import functools
import json
import threading

import azure.durable_functions as df
import azure.functions as func

from probes.context_probe import probes
from probes.mirror_probe import mirror

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(probes)
app.register_functions(mirror)

# The thread each function last ran on, by function name.
THREADS: dict = {}


@app.route(route="nothing")
def nothing(req: func.HttpRequest) -> func.HttpResponse:
    return None


@app.route(route="broken")
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the secret is hunter2")


@app.route(route="echo")
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"params": dict(req.params), "tag": req.headers.get("x-tag"),
                                         "body": req.get_body().decode()}),
                             mimetype="application/json")


@app.route(route="parse", methods=["POST"])
def parse(req: func.HttpRequest) -> func.HttpResponse:
    try:
        req.get_json()
    except json.JSONDecodeError:
        return func.HttpResponse("not JSON", status_code=400)
    return func.HttpResponse("JSON")


@app.route(route="parse_error", methods=["POST"])
def parse_error(req: func.HttpRequest) -> func.HttpResponse:
    try:
        req.get_json()
    except ValueError as error:
        return func.HttpResponse(f"{type(error).__name__}: {error}")
    return func.HttpResponse("JSON")


@app.route(route="cookies")
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("two cookies")
    response.headers.add("Set-Cookie", "first=1; Path=/api")
    response.headers.add("Set-Cookie", 'second="two words"; HttpOnly; SameSite=Strict')
    return response


@app.route(route="thread")
def thread(req: func.HttpRequest) -> func.HttpResponse:
    THREADS["thread"] = threading.get_ident()
    return func.HttpResponse("ok")


@app.activity_trigger(input_name="name")
def record_thread(name: str) -> str:
    THREADS["record_thread"] = threading.get_ident()
    return name


def not_async_aware(function):
    """A decorator that calls the function and returns what it returns: for an ``async
    def`` function, a coroutine nobody awaits."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        return function(*args, **kwargs)
    return call


@app.activity_trigger(input_name="name")
@not_async_aware
async def greet_later(name: str) -> str:
    return f"hello {name}"


@app.orchestration_trigger(context_name="context")
def call_activity(context: df.DurableOrchestrationContext):
    activity, value = context.get_input()
    return (yield context.call_activity(activity, value))
