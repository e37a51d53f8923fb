"""Orchestrators, activities, an entity and HTTP routes for the conformance tests
(tests/devhost/test_conformance_*.py): each one exercises one behaviour listed in
docs/DEVHOST-CONFORMANCE.md that the other fixture apps do not reach.

Attempt counters live at module level, where a test can read and reset them.
"""
import os
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

ATTEMPTS: dict = {}


# -- activities ------------------------------------------------------------------------

@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.activity_trigger(input_name="message")
def explode(message: str):
    raise ValueError(message)


@app.activity_trigger(input_name="key")
def fails_once(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise RuntimeError(f"first attempt of {key} failed")
    return f"{key} worked on attempt {ATTEMPTS[key]}"


@app.activity_trigger(input_name="value")
@app.generic_input_binding(arg_name="client", type="durableClient")
def client_binding_seen(value, client: str) -> str:
    """An activity's durableClient binding as the worker hands it over: the JSON text."""
    return client


@app.activity_trigger(input_name="instance_id")
@app.durable_client_input(client_name="client")
async def status_by_client(instance_id: str, client: df.DurableOrchestrationClient) -> dict:
    status = await client.get_status(instance_id)
    return {"name": status.name, "runtimeStatus": status.runtime_status.value}


# -- orchestrators ---------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def activity_client(context: df.DurableOrchestrationContext):
    """Activities with a durable client: the binding they get, and a call through it."""
    binding = yield context.call_activity("client_binding_seen", None)
    seen = yield context.call_activity("status_by_client", context.instance_id)
    return {"binding": binding, "seen": seen}


@app.orchestration_trigger(context_name="context")
def plain_wait(context: df.DurableOrchestrationContext):
    """Never sets a custom status; waits for "Go" and returns what it got."""
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def status_then_wait(context: df.DurableOrchestrationContext):
    """Sets its input as the custom status, then waits for "Go"."""
    context.set_custom_status(context.get_input())
    yield context.wait_for_external_event("Go")
    return "done"


@app.orchestration_trigger(context_name="context")
def big_status(context: df.DurableOrchestrationContext):
    """A custom status of ``input`` letters ("a" * n, 2 more UTF-16 units as JSON)."""
    context.set_custom_status("a" * context.get_input())
    yield context.call_activity("echo", "after the status")
    return "kept"


@app.orchestration_trigger(context_name="context")
def dates_in_status(context: df.DurableOrchestrationContext):
    """Date-like strings in the custom status; fails in the same episode when asked to."""
    context.set_custom_status({"offset": "2026-01-01T00:00:00+02:00",
                               "fraction": "2026-01-01T00:00:00.500Z",
                               "plain": "not a date"})
    if context.get_input() == "fail":
        raise ValueError("failing with dates in the custom status")
    yield context.wait_for_external_event("Go")
    return "done"


@app.orchestration_trigger(context_name="context")
def not_a_generator(context: df.DurableOrchestrationContext):
    """Raises before the SDK's replay starts: its exception carries no $OutOfProcData$."""
    raise ValueError("raised outside the SDK's protocol")


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    raise ValueError("this orchestration fails")
    yield  # a generator, so the SDK reports the failure in its own protocol


@app.orchestration_trigger(context_name="context")
def echo_input(context: df.DurableOrchestrationContext):
    """One activity call with the input, for the TaskScheduled and TaskCompleted events."""
    return (yield context.call_activity("echo", context.get_input()))


@app.orchestration_trigger(context_name="context")
def catches_activity_failure(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("explode", context.get_input())
    except Exception as error:
        return {"caught": str(error)}
    return "no error"


@app.orchestration_trigger(context_name="context")
def calls_unknown_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("no_such_activity", 1))


@app.orchestration_trigger(context_name="context")
def calls_unknown_child(context: df.DurableOrchestrationContext):
    return (yield context.call_sub_orchestrator("no_such_orchestrator", 1))


@app.orchestration_trigger(context_name="context")
def plain_child(context: df.DurableOrchestrationContext):
    return {"child_got": context.get_input()}


@app.orchestration_trigger(context_name="context")
def mixed_case_calls(context: df.DurableOrchestrationContext):
    """Names spelt with another case than the functions were registered with."""
    loud = yield context.call_activity("ECHO", "activity")
    child = yield context.call_sub_orchestrator("Plain_Child", "child", instance_id="mixed-case-child")
    return {"activity": loud, "child": child}


@app.orchestration_trigger(context_name="context")
def parent_of(context: df.DurableOrchestrationContext):
    """Calls the child orchestrator the input names, with the id it gives; reports failure."""
    job = context.get_input()
    try:
        result = yield context.call_sub_orchestrator(job["child"], job.get("input"),
                                                     instance_id=job.get("id"))
    except Exception as error:
        return {"failed": str(error)}
    return {"ok": result}


@app.orchestration_trigger(context_name="context")
def activity_or_event(context: df.DurableOrchestrationContext):
    """An activity raced against the "Go" event; "renew" continues as new when the event
    wins, and the new execution's task 0 is another activity."""
    mode = context.get_input()
    if mode == "second":
        return (yield context.call_activity("echo", "second execution"))
    work = context.call_activity("echo", "first execution")
    go = context.wait_for_external_event("Go")
    winner = yield context.task_any([work, go])
    if winner is go and mode == "renew":
        context.continue_as_new("second")
        return None
    return "event won" if winner is go else winner.result


@app.orchestration_trigger(context_name="context")
def every_kind(context: df.DurableOrchestrationContext):
    """One of each kind of event, for IsPlayed."""
    first = yield context.call_activity("echo", 1)
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    answer = yield context.wait_for_external_event("Go")
    child = yield context.call_sub_orchestrator("plain_child", 2, instance_id="every-kind-child")
    context.signal_entity(df.EntityId("Tally", "every-kind"), "add", 1)
    return [first, answer, child]


@app.orchestration_trigger(context_name="context")
def uses_call_http(context: df.DurableOrchestrationContext):
    response = yield context.call_http("GET", "https://example.invalid/")
    return response.status_code


@app.orchestration_trigger(context_name="context")
def retry_once(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(1000, 3)
    return (yield context.call_activity_with_retry("fails_once", options, context.get_input()))


# -- entities --------------------------------------------------------------------------

@app.entity_trigger(context_name="context", entity_name="Tally")
def tally(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    elif context.operation_name == "unserializable":
        # Serialized by the SDK after the batch, outside its per-operation handling.
        context.set_state({"a set": {1, 2}})
        return
    context.set_state(value)
    context.set_result(value)


@app.orchestration_trigger(context_name="context")
def calls_tally(context: df.DurableOrchestrationContext):
    """Calls Tally with the operation the input names; reports how the call ended."""
    try:
        result = yield context.call_entity(df.EntityId("Tally", "calls"), context.get_input(), 1)
    except Exception as error:
        return {"failed": str(error)}
    return {"ok": result}


# -- HTTP routes -----------------------------------------------------------------------

@app.route(route="hostname", methods=["GET"])
def hostname(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(os.environ.get("WEBSITE_HOSTNAME", "<unset>"), mimetype="text/plain")


@app.route(route="binding", methods=["GET"])
@app.generic_input_binding(arg_name="client", type="durableClient")
def raw_binding(req: func.HttpRequest, client: str) -> func.HttpResponse:
    """The durableClient binding as the worker hands it over: the JSON text, untouched."""
    return func.HttpResponse(client, mimetype="text/plain")


# -- a trigger the devhost loads but does not run ----------------------------------------

@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def every_five_minutes(timer: func.TimerRequest) -> None:
    raise AssertionError("the devhost does not run timer triggers")
