"""Two hand-made review loops for the replay-cost benchmark (bench/engine_rounds.py).

Both do the same work in every round as the HITL orchestration does: one activity (the
draft), then a race between the decision event and a deadline timer, then the timer is
cancelled. They differ only in what happens between rounds:

- ``long_loop`` keeps every round in one execution, so its history grows by about nine
  events a round and every episode replays all earlier rounds: the cost of a decision
  grows with the round number.
- ``bounded_loop`` continues as new after every round, as hitl_orchestration does, so
  each episode replays one round at most: the cost should stay flat.

Each round waits for its own event name ("Decision-<round>"): with one shared name the
SDK would hand an early event to every later wait (azure-functions-durable-python#507),
which the HITL orchestration avoids by continuing as new and this loop avoids by naming.
"""
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

DEADLINE = timedelta(days=1)


def _round(context: df.DurableOrchestrationContext, number: int):
    """One review round; a generator the orchestrators delegate to with ``yield from``."""
    yield context.call_activity("draft_round", number)
    decision = context.wait_for_external_event(f"Decision-{number}")
    timer = context.create_timer(context.current_utc_datetime + DEADLINE)
    winner = yield context.task_any([decision, timer])
    if winner is decision:
        timer.cancel()


@app.orchestration_trigger(context_name="context")
def long_loop(context: df.DurableOrchestrationContext):
    rounds = context.get_input()["rounds"]
    for number in range(1, rounds + 1):
        yield from _round(context, number)
    return rounds


@app.orchestration_trigger(context_name="context")
def bounded_loop(context: df.DurableOrchestrationContext):
    state = context.get_input()
    number = state.get("round", 1)
    yield from _round(context, number)
    if number >= state["rounds"]:
        return number
    context.continue_as_new({"rounds": state["rounds"], "round": number + 1})
    return None


@app.activity_trigger(input_name="number")
def draft_round(number: int) -> dict:
    return {"round": number, "title": f"Draft {number}", "content": "text " * 40}
