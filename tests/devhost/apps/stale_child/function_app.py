"""A parent that gives up on its child and continues as new before the child finishes."""
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def impatient_parent(context: df.DurableOrchestrationContext):
    if context.get_input() == "first":
        child = context.call_sub_orchestrator("slow_child", "old")
        timer = context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        yield context.task_any([child, timer])
        context.continue_as_new("second")
        return None
    # Task 0 of the new execution is an activity: a stale child result must not answer it.
    return (yield context.call_activity("echo", "the activity's own result"))


@app.orchestration_trigger(context_name="context")
def slow_child(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=2))
    return "a stale result from the first execution's child"


@app.activity_trigger(input_name="text")
def echo(text: str) -> str:
    return text
