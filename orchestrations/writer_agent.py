"""The writer as a conversational agent: one orchestration run per message of a thread.

A thread's instance id is reused for every turn: the route starts a new run only when the
previous one has finished, handing it the earlier turns. Nothing waits on external events,
so no message can be lost to event buffering, and each run's history stays tiny.

Each turn carries the id the route gave its message, in the custom status, the output and
the turns kept: the next message's run can replace a finished turn before its sender has
read it, and the id is how the route finds that sender's own reply.
"""
from __future__ import annotations

import azure.durable_functions as df

from .writer_retries import WriterTries, next_step, unexpected_failure

bp = df.Blueprint()

MAX_TURNS_KEPT = 20


class WriterTurnFailed(Exception):
    """The writer could not answer this message; the message is the one-line reason."""


@bp.orchestration_trigger(context_name="context")
def writer_agent_turn(context: df.DurableOrchestrationContext):
    turn = context.get_input()
    turns = turn["turns"]
    message_id = turn.get("message_id")
    number = turn_number(turns)
    context.set_custom_status({"stage": "writing", "turn": number, "message_id": message_id})
    tries = WriterTries()
    while True:
        try:
            reply = yield context.call_activity("write_draft", writer_request(turns, turn["message"]))
        except Exception as exc:  # the activity raised: a bug, not a writer answer
            reply = {"error": unexpected_failure(exc), "permanent": True}
        step = next_step(reply, tries)
        if step.give_up is not None:
            raise WriterTurnFailed(f"The writer failed: {step.give_up}")
        if step.pause is None:
            break
        tries = step.tries
        yield context.create_timer(context.current_utc_datetime + step.pause)
    turns = [*turns, {"turn": number, "message_id": message_id, "message": turn["message"],
                      "title": reply["title"], "content": reply["content"], "writer": reply.get("writer")}]
    context.set_custom_status({"stage": "replied", "turn": number, "message_id": message_id})
    return {"thread_id": context.instance_id, "turn": number, "message_id": message_id,
            "title": reply["title"], "response": reply["content"], "writer": reply.get("writer"),
            "turns": turns[-MAX_TURNS_KEPT:]}


def turn_number(turns: list) -> int:
    """The number of the turn after ``turns``, which keep only the latest MAX_TURNS_KEPT
    (turns kept before they were numbered count by position)."""
    if not turns:
        return 1
    return (turns[-1].get("turn") or len(turns)) + 1


def writer_request(turns: list, message: str) -> dict:
    """The first message is the topic; every later one is feedback on the latest reply."""
    if not turns:
        return {"topic": message, "round": 1, "previous_draft": None, "feedback": []}
    last = turns[-1]
    feedback = [t["message"] for t in turns[1:]] + [message]
    return {"topic": turns[0]["message"], "round": len(turns) + 1,
            "previous_draft": {"title": last["title"], "content": last["content"]},
            "feedback": feedback}
