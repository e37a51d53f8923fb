"""Fan-out/fan-in: N activities at once with task_all, and a race with task_any.

``add_up`` is async; ``LOOPS`` keeps the event loop each call ran on, so tests can see
that a host runs async activities on one loop of its own, as the Functions worker does.
"""
import asyncio

import azure.durable_functions as df
import azure.functions as func

LOOPS: list = []

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    tasks = [context.call_activity("square", n) for n in context.get_input()]
    squares = yield context.task_all(tasks)
    total = yield context.call_activity("add_up", squares)
    return {"squares": squares, "total": total}


@app.orchestration_trigger(context_name="context")
def first_of(context: df.DurableOrchestrationContext):
    work = context.call_activity("square", context.get_input())
    stop = context.wait_for_external_event("Stop")
    winner = yield context.task_any([work, stop])
    return {"winner": "square" if winner is work else "Stop", "value": winner.result}


@app.activity_trigger(input_name="n")
def square(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative input {n}")
    return n * n


@app.activity_trigger(input_name="values")
async def add_up(values: list) -> int:
    LOOPS.append(asyncio.get_running_loop())
    await asyncio.sleep(0)
    return sum(values)
