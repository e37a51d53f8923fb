"""One orchestrator per Durable feature the devhost must reproduce, plus HTTP routes
that drive the durable client SDK against the host.

Attempt counters live at module level, where a test can read how often an activity
really ran.
"""
import json
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

ATTEMPTS: dict = {}
# Which activity `nondeterministic` calls first; a test flips it between episodes.
CHOICE = {"activity": "echo"}


def _count(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    return ATTEMPTS[key]


# -- activities ------------------------------------------------------------------------

@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.activity_trigger(input_name="value")
def shout(value):
    return str(value).upper()


@app.activity_trigger(input_name="job")
def flaky(job: dict) -> dict:
    attempt = _count(job["key"])
    if attempt <= job["fail_times"]:
        raise RuntimeError(f"attempt {attempt} of {job['key']} failed")
    return {"key": job["key"], "attempt": attempt}


@app.activity_trigger(input_name="job")
def slow_step(job: dict) -> str:
    """Logs each start to a file, so a test can tell whether a crash made it run again."""
    with open(job["log"], "a", encoding="utf-8") as log:
        log.write(job["label"] + "\n")
    time.sleep(job["seconds"])
    return job["label"]


# -- retries ---------------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def retry_activity(context: df.DurableOrchestrationContext):
    job = context.get_input()
    options = df.RetryOptions(job["interval_ms"], job["max_attempts"])
    try:
        return (yield context.call_activity_with_retry("flaky", options, job))
    except Exception as error:
        return {"gave_up": str(error)}


@app.orchestration_trigger(context_name="context")
def retry_fan_out(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(1000, 5)
    tasks = [context.call_activity_with_retry("flaky", options, job) for job in context.get_input()]
    return (yield context.task_all([*tasks, context.call_activity("echo", "plain")]))


# -- timers and slow work -------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def timer_race(context: df.DurableOrchestrationContext):
    seconds = context.get_input()
    deadline = context.current_utc_datetime + timedelta(seconds=seconds)
    timer = context.create_timer(deadline)
    event = context.wait_for_external_event("Go")
    winner = yield context.task_any([event, timer])
    if winner is event:
        timer.cancel()
        return {"event": event.result}
    return "timeout"


@app.orchestration_trigger(context_name="context")
def long_timer(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(days=context.get_input()))
    return context.current_utc_datetime.isoformat()


@app.orchestration_trigger(context_name="context")
def slow_job(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("slow_step", context.get_input()))


@app.orchestration_trigger(context_name="context")
def sleepy_chain(context: df.DurableOrchestrationContext):
    """A short timer between two activities, for crash-recovery tests on the real clock."""
    job = context.get_input()
    first = yield context.call_activity("echo", "before")
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=job["seconds"]))
    second = yield context.call_activity("echo", "after")
    return [first, second]


# -- continue-as-new -------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    state = context.get_input()
    seen = yield context.call_activity("echo", state["n"])
    if seen < state["stop"]:
        context.continue_as_new({"n": seen + 1, "stop": state["stop"]})
        return None
    return {"final": seen}


# -- sub-orchestrations ----------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def child_ok(context: df.DurableOrchestrationContext):
    loud = yield context.call_activity("shout", context.get_input())
    return {"child": context.instance_id, "parent": context.parent_instance_id, "loud": loud}


@app.orchestration_trigger(context_name="context")
def child_fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo", "about to fail")
    raise ValueError(f"child could not handle {context.get_input()!r}")


@app.orchestration_trigger(context_name="context")
def child_flaky(context: df.DurableOrchestrationContext):
    # The count lives in an activity: orchestrator code re-runs on every replay.
    return (yield context.call_activity("flaky", context.get_input()))


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    job = context.get_input()
    ok = yield context.call_sub_orchestrator("child_ok", "hi", instance_id=f"{context.instance_id}-ok")
    try:
        yield context.call_sub_orchestrator("child_fails", 42)
        failure = None
    except Exception as error:
        failure = str(error)
    retried = yield context.call_sub_orchestrator_with_retry(
        "child_flaky", df.RetryOptions(1000, 3), {"key": job["key"], "fail_times": 1})
    return {"ok": ok, "failure": failure, "retried": retried}


# -- status, failures, unsupported features ---------------------------------------------

@app.orchestration_trigger(context_name="context")
def custom_status(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting"})
    answer = yield context.wait_for_external_event("Answer")
    context.set_custom_status({"stage": "done", "answer": answer})
    return answer


@app.orchestration_trigger(context_name="context")
def raises(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo", 1)
    raise ValueError("the input was rejected: " + json.dumps(context.get_input()))


@app.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext):
    first = yield context.call_activity(CHOICE["activity"], "x")
    second = yield context.wait_for_external_event("Continue")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def uses_entity(context: df.DurableOrchestrationContext):
    return (yield context.call_entity(df.EntityId("Counter", "c1"), "add", 1))


# -- SDK bug #507: events raised without a waiter stay buffered forever -----------------

@app.orchestration_trigger(context_name="context")
def naive_approvals(context: df.DurableOrchestrationContext):
    """The reference-style loop: wait, act, wait again, all in one execution."""
    decisions = []
    for _ in range(context.get_input()):
        decision = yield context.wait_for_external_event("Approval")
        decisions.append(decision)
        yield context.call_activity("echo", decision)
    return decisions


# -- the durable client SDK, called from HTTP functions ----------------------------------

def _json(value, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status, mimetype="application/json")


@app.route(route="client/start/{name}/{instance_id?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def client_start(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], req.route_params.get("instance_id"),
                                         json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@app.route(route="client/status/{instance_id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def client_status(req: func.HttpRequest, client) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"], show_history=True,
                                     show_history_output=True, show_input=True)
    if status.runtime_status is None:
        return _json({"message": status.message}, 404)
    return _json({"name": status.name, "runtimeStatus": status.runtime_status.value,
                  "input": status.input_, "output": status.output,
                  "customStatus": status.custom_status,
                  "history": [e["EventType"] for e in status.historyEvents or []]})


@app.route(route="client/raise/{instance_id}/{event}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def client_raise(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        await client.raise_event(req.route_params["instance_id"], req.route_params["event"],
                                 req.get_json())
    except Exception as error:  # the SDK turns 404/410 into exceptions with a message
        return _json({"error": str(error)}, 409)
    return _json({"raised": True}, 202)


@app.route(route="client/terminate/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def client_terminate(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        await client.terminate(req.route_params["instance_id"], req.params.get("reason", ""))
    except Exception as error:
        return _json({"error": str(error)}, 409)
    return _json({"terminated": True}, 202)


@app.route(route="client/purge/{instance_id}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def client_purge(req: func.HttpRequest, client) -> func.HttpResponse:
    result = await client.purge_instance_history(req.route_params["instance_id"])
    return _json({"deleted": result.instances_deleted})


@app.route(route="client/by-status", methods=["GET"])
@app.durable_client_input(client_name="client")
async def client_by_status(req: func.HttpRequest, client) -> func.HttpResponse:
    wanted = [df.OrchestrationRuntimeStatus(s) for s in req.params["status"].split(",")]
    statuses = await client.get_status_by(runtime_status=wanted,
                                          instance_id_prefix=req.params.get("prefix"))
    return _json(sorted(s.instance_id for s in statuses))
