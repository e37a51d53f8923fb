"""The human-in-the-loop review: draft, notify, wait for a verdict or the deadline, repeat.

Each execution waits for at most one ``ApprovalEvent`` and then continues as new. That is
what makes stale and duplicate approvals harmless: the SDK keeps an event that arrived
before its wait and hands it to every later wait with that name (azure-functions-durable
-python#507), but a fresh execution starts with a fresh history. It also keeps the history
short, and lets the deadline be watched in timer slices of one day, which stay cancellable
(long timers are not: #573).
"""
from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from shared_code.models import APPROVAL_EVENT, Decision

from .review_state import ReviewState

bp = df.Blueprint()

TIMER_SLICE = timedelta(days=1)
WRITER_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


class ReviewEnded(Exception):
    """The review ended without approval; the message is what the status shows."""


@bp.orchestration_trigger(context_name="context")
def hitl_orchestration(context: df.DurableOrchestrationContext):
    review = ReviewState.from_input(context.get_input())

    if review.awaiting_draft:
        stage = "drafting" if review.round == 1 else "revising"
        context.set_custom_status(review.status(stage, f"Writing the draft for round {review.round}."))
        draft = yield context.call_activity_with_retry("write_draft", WRITER_RETRY, review.writer_request())
        if draft.get("permanent"):
            context.set_custom_status(review.status("failed", f"The writer failed: {draft['error']}"))
            raise ReviewEnded(f"The writer failed in round {review.round}: {draft['error']}")
        review = review.with_draft(draft, context.current_utc_datetime)
        notice = yield context.call_activity("notify_reviewer", review.notice_request(context.instance_id))
        review = review.with_notification(notice)

    context.set_custom_status(review.status(
        "awaiting_review", f"Round {review.round} of {review.max_rounds}: waiting for the reviewer."))
    verdict = context.wait_for_external_event(APPROVAL_EVENT)
    timer = context.create_timer(min(review.deadline_at(), context.current_utc_datetime + TIMER_SLICE))
    winner = yield context.task_any([verdict, timer])
    if winner is timer:
        # A decision that arrived together with the timer comes later in the same batch of
        # events; one more race against a timer that is already due lets it in, instead of
        # dropping it with this execution's history.
        timer = context.create_timer(context.current_utc_datetime)
        winner = yield context.task_any([verdict, timer])

    if winner is timer:
        if context.current_utc_datetime < review.deadline_at():
            context.continue_as_new(review.to_input())  # next slice of the same wait
            return None
        context.set_custom_status(review.status("timed_out", "No decision before the deadline."))
        raise ReviewEnded(f"Review timed out: no decision for round {review.round} "
                          f"within {review.timeout_hours:g} hour(s).")

    timer.cancel()
    decision = Decision.from_event(verdict.result)
    if not review.is_for_this_round(decision):
        context.continue_as_new(review.with_ignored_event().to_input())
        return None

    review = review.with_decision(decision, context.current_utc_datetime)
    if decision.approved:
        context.set_custom_status(review.status("publishing", "Approved; publishing."))
        yield context.call_activity("publish_content", review.publication(context.instance_id))
        context.set_custom_status(review.status("published", f"Published after {review.round} round(s)."))
        return review.output()

    if not review.rounds_left:
        context.set_custom_status(review.status("rejected", "Rejected in every round."))
        raise ReviewEnded(f"Content was not approved after {review.max_rounds} review round(s).")

    next_round = review.next_round()
    context.set_custom_status(next_round.status("revising", f"Writing the draft for round {next_round.round}."))
    context.continue_as_new(next_round.to_input())
    return None
