"""The human-in-the-loop review: draft, notify, wait for a verdict or the deadline, repeat.

Each execution covers at most one round and one timer slice of its deadline, then
continues as new, so the history stays short and the deadline is watched in timer slices
of one day, which stay cancellable (long timers are not: azure-functions-durable-python
#573). Whenever it waits, on the writer, the notice, the publication or a timer, the
reviewer's events are listened for too (``ReviewerInbox``), so every decision that reaches
an execution is considered in the order it arrived: applied when it is for the round
under review, recorded with the reason when it is not. A cancel ends the review unless an
approval came first. Decisions carry an id; the routes look for it in the status to tell
the reviewer what became of their decision, and send it again when they see no sign of
it, so a decision can arrive twice and is applied once.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Optional

import azure.durable_functions as df

from shared_code.models import CANCEL_EVENT, EXTEND_EVENT, CancelRequest, Decision, ExtendRequest

from .review_state import ReviewState
from .reviewer_inbox import Arrival, ReviewerInbox
from .writer_retries import WriterTries, next_step, unexpected_failure

bp = df.Blueprint()

TIMER_SLICE = timedelta(days=1)
# Publishing is retried on a transient failure (a full disk, a storage outage) for about a
# day: 10 s, 30 s, 1, 2, 5, 10, 20 and 30 min, then hourly.
PUBLISH_RETRY_SECONDS = (10, 30, 60, 120, 300, 600, 1200, 1800) + (3600,) * 20
# Ignored events each add to the history; past this many in one execution it continues as
# new (a route that sees no sign of a decision sends it again).
IGNORED_PER_EXECUTION = 20


class ReviewEnded(Exception):
    """The review ended without approval; the message is what the status shows."""


@bp.orchestration_trigger(context_name="context")
def hitl_orchestration(context: df.DurableOrchestrationContext):
    review = ReviewState.read(context.get_input())
    inbox = ReviewerInbox(context)

    notice = None
    if review.awaiting_draft:
        review = yield from write_draft(context, inbox, review)
        review = review.reviewable(context.current_utc_datetime).with_notification({"sending": True})
        # The draft can be decided while the reviewer is being told: a slow channel holds
        # back nobody who already has the link.
        notice = context.call_activity("notify_reviewer", review.notice_request(context.instance_id))

    review = review.reviewable(context.current_utc_datetime)
    verdict, review = yield from await_verdict(context, inbox, review, notice)
    if verdict is None:
        return None  # continued as new: the next slice of the same wait

    if isinstance(verdict, CancelRequest):
        end_cancelled(context, review, verdict)
    review = review.with_decision(verdict, context.current_utc_datetime)
    if verdict.approved:
        review = yield from publish(context, inbox, review)
        context.set_custom_status(review.status("published", f"Published after {review.round} round(s)."))
        return review.output()

    if not review.rounds_left:
        context.set_custom_status(review.status("rejected", "Rejected in every round."))
        raise ReviewEnded(f"Content was not approved after {review.max_rounds} review round(s).")
    next_round = review.next_round()
    context.set_custom_status(next_round.status("revising", f"Writing the draft for round {next_round.round}."))
    context.continue_as_new(next_round.to_input())
    return None


# -- the steps ---------------------------------------------------------------------------

def drafting_stage(review: ReviewState) -> str:
    return "drafting" if review.round == 1 else "revising"


def write_draft(context, inbox: ReviewerInbox, review: ReviewState):
    stage = drafting_stage(review)
    message = f"Writing the draft for round {review.round}."
    tries = WriterTries()
    while True:
        context.set_custom_status(review.status(stage, message))
        task = context.call_activity("write_draft", review.writer_request())
        try:
            review, reply = yield from until_done(context, inbox, review, task, stage, message)
        except ReviewEnded:
            raise
        except Exception as exc:  # the activity raised: a bug, not a writer answer
            reply = {"error": unexpected_failure(exc), "permanent": True}
        step = next_step(reply, tries)
        if step.give_up is not None:
            fail(context, review, f"The writer failed in round {review.round}: {step.give_up}")
        if step.pause is None:
            return review.with_draft(reply, context.current_utc_datetime)
        tries = step.tries
        context.set_custom_status(review.status(stage, f"{message} Retrying: {step.retrying}.",
                                                retrying=step.retrying))
        timer = context.create_timer(context.current_utc_datetime + step.pause)
        review, _ = yield from until_done(context, inbox, review, timer, stage, message)


def await_verdict(context, inbox: ReviewerInbox, review: ReviewState, notice=None):
    """(decision or cancel, review) once one is taken; (None, review) after continuing as
    new at the end of a timer slice. Reminders go out and the deadline is kept on the way;
    a deadline change by the owner moves the timer. Raises ReviewEnded at the deadline
    (after the escalation window, when the review escalates). ``notice`` is the first
    notice of the round, still being sent: decisions are taken meanwhile."""
    ignored = 0
    if notice is not None:
        stage, message = waiting_words(review)
        context.set_custom_status(review.status(stage, message))
        verdict, review, ignored = yield from verdict_before(context, inbox, review, notice, stage, message, ignored)
        if verdict is None:
            review = review.with_notification(notice.result)
        elif isinstance(verdict, ExtendRequest):
            review, verdict = yield from move_deadline(context, inbox, review, verdict)
        if verdict is not None:
            return verdict, review
    while True:
        review, verdict = yield from deadline_actions(context, inbox, review)
        if verdict is None:
            stage, message = waiting_words(review)
            context.set_custom_status(review.status(stage, message))
            now = context.current_utc_datetime
            timer = context.create_timer(review.wake_at(now, TIMER_SLICE))
            verdict, review, ignored = yield from verdict_before(context, inbox, review, timer, stage,
                                                                 message, ignored)
            if verdict is None and ignored < IGNORED_PER_EXECUTION:
                # A decision that arrived together with the timer comes later in the same
                # batch of events; one more wait, on a timer that is already due, lets it in
                # instead of dropping it with this execution's history.
                due = context.create_timer(context.current_utc_datetime)
                verdict, review, ignored = yield from verdict_before(context, inbox, review, due, stage,
                                                                     message, ignored)
        if isinstance(verdict, ExtendRequest):
            review, verdict = yield from move_deadline(context, inbox, review, verdict)
            if verdict is None:
                continue
        if verdict is not None:
            return verdict, review
        if ignored >= IGNORED_PER_EXECUTION or not review.action_due(context.current_utc_datetime):
            context.continue_as_new(review.to_input())
            return None, review


def waiting_words(review: ReviewState) -> tuple[str, str]:
    if review.escalated_at:
        return "escalated", (f"Round {review.round} of {review.max_rounds}: escalated, waiting for a "
                             "decision until the extended deadline.")
    return "awaiting_review", f"Round {review.round} of {review.max_rounds}: waiting for the reviewer."


def deadline_actions(context, inbox: ReviewerInbox, review: ReviewState):
    """Send the reminders that are due, then, at the deadline, escalate once or end the
    review. A decision that arrives meanwhile is taken: (review, decision or None)."""
    stage, message = waiting_words(review)
    before = review.due_reminder(context.current_utc_datetime)
    while before is not None:
        notice = context.call_activity("notify_reviewer",
                                       review.notice_request(context.instance_id, "reminder"))
        verdict, review, _ = yield from verdict_before(context, inbox, review, notice, stage, message, 0)
        if verdict is not None:
            return review, verdict
        review = review.with_reminder(before, notice.result, context.current_utc_datetime)
        before = review.due_reminder(context.current_utc_datetime)
    if not review.deadline_passed(context.current_utc_datetime):
        return review, None
    if not review.may_escalate():
        context.set_custom_status(review.status("timed_out", "No decision before the deadline."))
        raise ReviewEnded(f"Review timed out: no decision for round {review.round} "
                          f"within {review.timeout_hours:g} hour(s)"
                          + (" and the escalation window." if review.escalated_at else "."))
    review = review.escalated(context.current_utc_datetime)
    stage, message = waiting_words(review)
    notice = context.call_activity("notify_reviewer", review.notice_request(context.instance_id, "escalation"))
    verdict, review, _ = yield from verdict_before(context, inbox, review, notice, stage, message, 0)
    if verdict is not None:
        return review, verdict
    return review.with_notice("escalation", notice.result), None


def move_deadline(context, inbox: ReviewerInbox, review: ReviewState, extend: ExtendRequest):
    """Apply a deadline change, then send the reviewer a fresh link: the links sent before
    expire with the old deadline. A further change that arrives meanwhile is applied too;
    a decision or a cancel is returned: (review, verdict or None)."""
    while True:
        review = review.extended(extend, context.current_utc_datetime)
        stage, message = waiting_words(review)
        notice = context.call_activity("notify_reviewer",
                                       review.notice_request(context.instance_id, "deadline_moved"))
        verdict, review, _ = yield from verdict_before(context, inbox, review, notice, stage, message, 0)
        if not isinstance(verdict, ExtendRequest):
            break
        extend = verdict
    if verdict is not None:
        return review, verdict
    return review.with_notice("deadlineMoved", notice.result), None


def verdict_before(context, inbox: ReviewerInbox, review: ReviewState, task, stage: str, message: str,
                   ignored: int):
    """Consider reviewer events until one can be taken or ``task`` (a timer, or a notice
    being sent) finishes. Returns (verdict or None, review, events ignored so far)."""
    while ignored < IGNORED_PER_EXECUTION:
        arrival = yield from inbox.next(task)
        if arrival is None:
            return None, review, ignored
        verdict, review = consider(review, arrival, context.current_utc_datetime)
        if verdict is not None:
            _cancel_timer(task)
            return verdict, review, ignored
        ignored += 1
        context.set_custom_status(review.status(stage, message))
    _cancel_timer(task)
    return None, review, ignored


def _cancel_timer(task) -> None:
    if hasattr(task, "cancel"):  # timers; an activity cannot be called back
        task.cancel()


def publish(context, inbox: ReviewerInbox, review: ReviewState):
    message = "Approved; publishing."
    for delay in (*PUBLISH_RETRY_SECONDS, None):
        context.set_custom_status(review.status("publishing", message))
        task = context.call_activity("publish_content", review.publication(context.instance_id))
        review, result = yield from until_done(context, inbox, review, task, "publishing", message)
        if not result.get("error"):
            return review
        if delay is None:
            fail(context, review, f"Publishing failed for good: {result['error']}")
        retrying = f"{result['error']}; next attempt in {delay} s"
        message = f"Approved; publishing: retrying ({retrying})."
        context.set_custom_status(review.status("publishing", message, retrying=retrying))
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        review, _ = yield from until_done(context, inbox, review, timer, "publishing", message)


def until_done(context, inbox: ReviewerInbox, review: ReviewState, task, stage: str, message: str):
    """Wait for ``task``; reviewer events that arrive meanwhile are recorded (and a cancel
    ends the review while nothing is approved yet). Returns (review, task's result)."""
    while True:
        arrival = yield from inbox.next(task)
        if arrival is None:
            return review, task.result
        review = noted_while_busy(context, review, arrival, stage)
        context.set_custom_status(review.status(stage, message))


# -- judging what arrived ----------------------------------------------------------------

def consider(review: ReviewState, arrival: Arrival, now):
    """(the decision, cancel or deadline change to take, review), or (None, review with
    the event recorded)."""
    if arrival.name == CANCEL_EVENT:
        cancel = CancelRequest.from_event(arrival.payload)
        if cancel is None:
            return None, review.with_ignored("", {"cancel": True}, "not a cancel request", now)
        return (None, review) if review.has_seen(cancel.id) else (cancel, review)
    if arrival.name == EXTEND_EVENT:
        extend = ExtendRequest.from_event(arrival.payload)
        if extend is not None and review.has_seen(extend.id):
            return None, review
        problem = review.extension_problem(extend)
        if problem is None:
            return extend, review
        summary = {"extend": True, "hours": extend.hours, "round": extend.round} if extend else {"extend": True}
        return None, review.with_ignored(extend.id if extend else "", summary, problem, now)
    decision = Decision.from_event(arrival.payload)
    if decision is not None and review.has_seen(decision.id):
        return None, review  # delivered again by a route that saw no sign of it yet
    problem = review.judge(decision)
    if problem is None:
        return decision, review
    return None, review.with_ignored(decision.id if decision else "", _summary(decision), problem, now)


def noted_while_busy(context, review: ReviewState, arrival: Arrival, stage: str) -> ReviewState:
    """Record an event that came while no draft was waiting for a decision; a cancel ends
    the review unless an approval is being published."""
    verdict, review = consider(review, arrival, context.current_utc_datetime)
    if verdict is None:
        return review
    if isinstance(verdict, CancelRequest) and stage != "publishing":
        end_cancelled(context, review, verdict)
    if stage == "publishing":
        problem = f"round {review.round} was already approved; it is being published"
    else:
        problem = f"the draft for round {review.round} was not ready for review yet"
    if isinstance(verdict, CancelRequest):
        summary = {"cancel": True, "by": verdict.by}
    elif isinstance(verdict, ExtendRequest):
        summary = {"extend": True, "hours": verdict.hours, "round": verdict.round, "by": verdict.by}
    else:
        summary = _summary(verdict)
    return review.with_ignored(verdict.id, summary, problem, context.current_utc_datetime)


def _summary(decision: Optional[Decision]) -> dict:
    if decision is None:
        return {}
    return {"round": decision.round, "approved": decision.approved, "by": decision.by}


def end_cancelled(context, review: ReviewState, cancel: CancelRequest) -> None:
    message = f"Cancelled: {cancel.reason} ({cancel.by})."
    context.set_custom_status(review.status("cancelled", message, cancel=cancel))
    raise ReviewEnded(f"Review cancelled: {cancel.reason}")


def fail(context, review: ReviewState, reason: str) -> None:
    context.set_custom_status(review.status("failed", reason))
    raise ReviewEnded(reason)
