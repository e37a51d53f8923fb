"""What the dashboard's tests look at: an order whose payment fails until the payment
service is up (a file says it is), an approval that waits for an event or a deadline, a
loop that continues as new, a parent that calls an entity and a child, a retry, a timer
given up while the instance goes on waiting, and a call to an activity the app lacks."""
import os
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def order_flow(context: df.DurableOrchestrationContext):
    order = context.get_input()
    receipt = yield context.call_activity("charge_card", order)
    yield context.call_activity("pack", order)
    return receipt


@app.activity_trigger(input_name="order")
def charge_card(order: dict) -> str:
    if not os.path.exists(order["payments_up_file"]):
        raise ConnectionError("the payment service is down")
    return f"charged {order['amount']}"


@app.activity_trigger(input_name="order")
def pack(order: dict) -> str:
    return "packed"


@app.orchestration_trigger(context_name="context")
def approval_flow(context: df.DurableOrchestrationContext):
    deadline = context.create_timer(context.current_utc_datetime + timedelta(days=1))
    answer = context.wait_for_external_event("Approval")
    if (yield context.task_any([answer, deadline])) is deadline:
        return "expired"
    deadline.cancel()
    return answer.result


@app.orchestration_trigger(context_name="context")
def rounds_flow(context: df.DurableOrchestrationContext):
    round_number = context.get_input() or 1
    yield context.call_activity("pack", {"round": round_number})
    if round_number < 3:
        context.continue_as_new(round_number + 1)
        return None
    return round_number


@app.orchestration_trigger(context_name="context")
def parent_flow(context: df.DurableOrchestrationContext):
    visits = df.EntityId("counter", "visits")
    yield context.call_entity(visits, "add", 1)
    context.signal_entity(visits, "add", 10)
    return (yield context.call_sub_orchestrator("order_flow", context.get_input(), "child-of-parent"))


@app.orchestration_trigger(context_name="context")
def retry_flow(context: df.DurableOrchestrationContext):
    return (yield context.call_activity_with_retry("charge_card", df.RetryOptions(1000, 2),
                                                   context.get_input()))


@app.orchestration_trigger(context_name="context")
def reminder_flow(context: df.DurableOrchestrationContext):
    reminder = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    if (yield context.task_any([context.wait_for_external_event("Snooze"), reminder])) is not reminder:
        reminder.cancel()
    return (yield context.wait_for_external_event("Done"))


@app.orchestration_trigger(context_name="context")
def lost_flow(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("no_such_activity", None))


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    elif context.operation_name == "reset":
        value = 0
    context.set_state(value)
    context.set_result(value)
