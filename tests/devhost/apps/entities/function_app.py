"""Durable entities the way the Python SDK's samples use them: a counter entity, an
orchestration that calls and signals it, and HTTP routes that signal and read it through
the durable client."""
import json
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
    elif operation == "add_then_fail":
        context.set_state(value + context.get_input())
        raise ValueError("the add was kept, then this failed")
    elif operation == "slow_add":
        # Leaves a mark when it starts, so a test can kill the host in the middle of it.
        job = context.get_input()
        Path(job["mark"]).write_text("started")
        time.sleep(job["seconds"])
        value += job["by"]
    elif operation == "reset":
        value = 0
    elif operation == "get":
        context.set_result(value)
        return
    elif operation == "echo_input":
        context.set_result({"input": context.get_input()})
        return
    elif operation == "delete":
        context.destruct_on_exit()
        return
    elif operation == "fail":
        raise RuntimeError(f"cannot do that with {value}")
    else:
        raise ValueError(f"unknown operation {operation!r}")
    context.set_state(value)
    context.set_result(value)


@app.orchestration_trigger(context_name="context")
def add_and_read(context: df.DurableOrchestrationContext):
    """Calls wait for the answer; signals do not."""
    job = context.get_input()
    entity = df.EntityId("Counter", job["key"])
    context.signal_entity(entity, "add", job["signal"])
    total = yield context.call_entity(entity, "add", job["add"])
    context.signal_entity(entity, "add", 1)
    echoed = yield context.call_entity(entity, "echo_input", {"nested": [1, "two"]})
    return {"after_add": total, "echoed": echoed}


@app.orchestration_trigger(context_name="context")
def call_that_fails(context: df.DurableOrchestrationContext):
    entity = df.EntityId("Counter", context.get_input())
    try:
        yield context.call_entity(entity, "fail")
    except Exception as exc:
        return {"caught": str(exc), "after": (yield context.call_entity(entity, "get"))}
    return "no error"


@app.orchestration_trigger(context_name="context")
def fan_out_calls(context: df.DurableOrchestrationContext):
    key = context.get_input()
    entity = df.EntityId("Counter", key)
    results = yield context.task_all([context.call_entity(entity, "add", 1) for _ in range(5)])
    return sorted(results)


@app.orchestration_trigger(context_name="context")
def call_then_wait(context: df.DurableOrchestrationContext):
    """A call, then an activity and a timer around it, so ids interleave."""
    entity = df.EntityId("Counter", context.get_input())
    context.signal_entity(entity, "add", 10)
    echoed = yield context.call_activity("echo", "a")
    value = yield context.call_entity(entity, "get")
    yield context.create_timer(context.current_utc_datetime)
    return [echoed, value]


@app.orchestration_trigger(context_name="context")
def signals_an_unknown_entity(context: df.DurableOrchestrationContext):
    context.signal_entity(df.EntityId("Nobody", "k"), "add", 1)
    yield context.call_activity("echo", "after")
    return "done"


@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.route(route="counter/{key}/{op}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    value = json.loads(body) if body else None
    await client.signal_entity(df.EntityId("Counter", req.route_params["key"]),
                               req.route_params["op"], value)
    return func.HttpResponse(status_code=202)


@app.route(route="counter/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    response = await client.read_entity_state(df.EntityId("Counter", req.route_params["key"]))
    body = {"exists": response.entity_exists, "state": response.entity_state}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.orchestration_trigger(context_name="context")
def signal_and_finish(context: df.DurableOrchestrationContext):
    """Signals sent in the episode that completes the orchestration still go out."""
    job = context.get_input()
    context.signal_entity(df.EntityId("Counter", job["key"]), "add", job["add"])
    if job.get("again"):
        context.continue_as_new({"key": job["key"], "add": job["add"]})
        return None
    return "sent"


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    """What bench.entities waits for before it measures."""
    return func.HttpResponse("ok")
