"""The human-in-the-loop review: draft, ask each stage's reviewers, wait for their
decisions or the deadline, then publish or revise.

Each execution covers at most one stage of one round and one timer slice of its deadline,
then continues as new, so the history stays short and the deadline is watched in timer
slices of one day, which stay cancellable (long timers are not: azure-functions-durable-
python #573). Whenever it waits, on the writer, a notice, the publication or a timer, the
reviewers' events are listened for too (``ReviewerInbox``), so every event that reaches
an execution is considered in the order it arrived: a decision is placed in its seat when
it is for the stage under review, recorded with the reason when it is not. A cancel ends
the review unless an approval came first. Events carry an id; the routes look for it in
the status to tell the caller what became of it, and send it again when they see no sign
of it, so an event can arrive twice and is applied once.

The rules live beside the loop, each pure and tested on its own: who fills which seat and
when a stage is decided (shared_code/review_policy.py), deadlines and reminders
(deadlines.py), what to do with the writer's answer (writer_retries.py), comments on
passages (review_comments.py), the analytics facts (shared_code/review_analytics.py).

A draft is checked against the deployment's house rules while its reviewers decide, as
its notice is sent: the check informs, it never holds a decision back. The facts a review
reports at its transitions go to the day's aggregate (entities/review_stats.py) in as few
signals as the episodes allow (``send_facts``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, Generator, Optional

import azure.durable_functions as df

from shared_code.models import (CANCEL_EVENT, EXTEND_EVENT, SEAT_EVENT, CancelRequest, Decision, ExtendRequest,
                                ReviewNote, SeatChange)
from entities.review_card import HIDE, SHOW, card_entity
from entities.review_stats import ADD, stats_entity
from entities.seat_messages import UPDATE, messages_entity
from shared_code.stages import Stage

from .deadlines import Due
from .review_state import ReviewState
from .reviewer_inbox import Arrival, ReviewerInbox
from .writer_retries import WriterTries, next_step, unexpected_failure

bp = df.Blueprint()

TIMER_SLICE = timedelta(days=1)
# Publishing is retried on a transient failure (a full disk, a storage outage) for about a
# day: 10 s, 30 s, 1, 2, 5, 10, 20 and 30 min, then hourly.
PUBLISH_RETRY_SECONDS = (10, 30, 60, 120, 300, 600, 1200, 1800) + (3600,) * 20
# Every event taken adds to the history, and every decision placed in a seat to the state
# that each later episode of the execution replays: past this many events, or this many
# decisions, it continues as new (a route that sees no sign of its event sends it again).
EVENTS_PER_EXECUTION = 20
DECISIONS_PER_EXECUTION = 5


class ReviewEnded(Exception):
    """The review ended without approval; the message is what the status shows, and
    ``review`` the review as it ended."""

    def __init__(self, message: str, review: ReviewState):
        super().__init__(message)
        self.review = review


class StageResult(Enum):
    APPROVED = "approved"
    REJECTED = "rejected"
    WAITING = "waiting"      # a slice of the wait is over; the next execution goes on waiting


@dataclass(frozen=True)
class Outcome:
    """What every step of the review hands back: the review as it now stands, and what
    the step came to (a task's result, or the stage's result)."""
    review: ReviewState
    result: Any = None


Step = Generator[Any, Any, Outcome]


@bp.orchestration_trigger(context_name="context")
def hitl_orchestration(context: df.DurableOrchestrationContext):
    try:
        return (yield from run_review(context))
    except ReviewEnded as ended:
        # The inbox stops showing the review, and its facts are reported, before it fails:
        # the signals go out in an episode of their own, which completes, rather than
        # beside the failure.
        if ended.review.shows_cards:
            hide_card(context, ended.review)
            send_facts(context, ended.review)
            yield context.create_timer(context.current_utc_datetime)
        raise


def hide_card(context, review: ReviewState) -> None:
    """The review is no longer waiting for a decision: its inbox card is hidden. An
    execution that a release before the cards started (its input is an older state) is
    replayed with its history as that release recorded it, which has no signals: a signal
    there would break the replay. The next execution, started by a later release, shows
    the card (ReviewState.shows_cards)."""
    if review.shows_cards:
        context.signal_entity(card_entity(context.instance_id), HIDE)


def send_facts(context, review: ReviewState) -> ReviewState:
    """Report the facts gathered since the last report (one signal per day they fell on),
    with the seats waiting brought up to date; an execution of an earlier release reports
    nothing (ReviewState.schedules_aids)."""
    review, days = review.facts_to_send(context.current_utc_datetime)
    for day, facts in days.items():
        context.signal_entity(stats_entity(day), ADD, facts)
    return review


def run_review(context: df.DurableOrchestrationContext):
    review = ReviewState.read(context.get_input()).begun(context.current_utc_datetime)
    inbox = ReviewerInbox(context)
    notice = None
    if review.awaiting_draft:
        review = (yield from write_round_draft(context, inbox, review)).review
    if not review.stage_open:
        # The stage's reviewers can decide at once: a slow channel holds back nobody who
        # already has a link, and the notice is recorded when it is out.
        review = review.open_stage(context.current_utc_datetime)
        notice = Notice.send(context, review, "review")

    waited = yield from await_stage_decision(context, inbox, review, notice)
    review = waited.review
    # Before continuing as new, the status shows the event taken last, so that the route
    # waiting for it answers now, not after the next execution's first episode.
    if waited.result is StageResult.WAITING:
        context.set_custom_status(review.status(*waiting_words(review)))
        context.continue_as_new(send_facts(context, review).to_input())
    elif waited.result is StageResult.APPROVED and review.has_next_stage:
        hide_card(context, review)
        # The stage decided, until the next execution opens the next one and tells its
        # reviewers: a status of a stage not yet open would take decisions for it.
        context.set_custom_status(review.status(waiting_words(review)[0], f"{where(review)}: approved; "
                                                                          "the next stage opens."))
        context.continue_as_new(send_facts(context, review).next_stage().to_input())
    elif waited.result is StageResult.APPROVED:
        review = (yield from publish_approved(context, inbox, review)).review
        review = send_facts(context, review.ended("published", context.current_utc_datetime))
        hide_card(context, review)
        context.set_custom_status(review.status(Stage.PUBLISHED, f"Published after {review.round} round(s)."))
        return review.output()
    elif review.rounds_left:
        hide_card(context, review)
        next_round = send_facts(context, review).next_round()
        context.set_custom_status(next_round.status(Stage.REVISING, f"Writing the draft for round {next_round.round}."))
        context.continue_as_new(next_round.to_input())
    else:
        context.set_custom_status(review.status(Stage.REJECTED, "Rejected in every round."))
        raise ReviewEnded(f"Content was not approved after {review.max_rounds} review round(s).",
                          review.ended("rejected", context.current_utc_datetime))
    return None


# -- the steps ---------------------------------------------------------------------------

def write_round_draft(context, inbox: ReviewerInbox, review: ReviewState) -> Step:
    """The round's draft, tried again as writer_retries decides; ends the review with the
    writer's one-line reason when it gives up."""
    stage = Stage.DRAFTING if review.round == 1 else Stage.REVISING
    message = f"Writing the draft for round {review.round}."
    tries = WriterTries()
    while True:
        context.set_custom_status(review.status(stage, message))
        task = context.call_activity("write_draft", review.writer_request())
        try:
            done = yield from until_done(context, inbox, review, task, stage, message)
        except ReviewEnded:
            raise
        except Exception as exc:  # the activity raised: a bug, not a writer answer
            done = Outcome(review, {"error": unexpected_failure(exc), "permanent": True})
        review, reply = done.review, done.result
        step = next_step(reply, tries)
        if step.give_up is not None:
            fail(context, review, f"The writer failed in round {review.round}: {step.give_up}")
        if step.pause is None:
            return Outcome(review.with_draft(reply))
        tries = step.tries
        context.set_custom_status(review.status(stage, f"{message} Retrying: {step.retrying}.",
                                                retrying=step.retrying))
        timer = context.create_timer(context.current_utc_datetime + step.pause)
        review = (yield from until_done(context, inbox, review, timer, stage, message)).review


def await_stage_decision(context, inbox: ReviewerInbox, review: ReviewState, notice: Optional["Notice"]) -> Step:
    """Wait until the stage under review is decided (APPROVED or REJECTED), or until this
    execution has waited its share (WAITING). Reminders and an escalation go out on the
    way, one notice at a time; an owner's deadline change moves the timer; seat changes
    and reviewers' notes are applied; the draft is checked against the house rules
    meanwhile. Ends the review on a cancel, or at the deadline (after the escalation
    window, when the review escalates)."""
    owed: list[tuple] = []   # notices due while another one was being sent
    taken, placed_here, shown, timer = 0, 0, None, None
    cards_shown = review.shows_cards
    check = None
    if review.needs_check:
        review, check = review.checking(), context.call_activity("check_draft", review.check_request())
    while True:
        now = context.current_utc_datetime
        due, before_hours = review.clock().due(now)
        if due is Due.TIMEOUT:
            end_timed_out(context, review)
        if due is Due.ESCALATION:
            review = review.escalated(now)
            owed.append(("escalation",))
        if notice is None and due is Due.REMINDER:
            owed.insert(0, ("reminder", None, before_hours))
        if notice is None and due is Due.NOTICE_RETRY and not owed:
            owed.append(("retry",))
        if notice is None and owed:
            notice = Notice.send(context, review, *owed.pop(0))
        context.set_custom_status(review.status(*waiting_words(review)))
        # The inbox shows the stage once its first notice is out (a slow channel delays the
        # row, never the decision) and again whenever what it shows changes.
        if notice is None and cards_shown:
            card = review.card()
            if card != shown:
                shown = card
                context.signal_entity(card_entity(context.instance_id), SHOW, card)
        review = send_facts(context, review)
        if timer is None or timer.outdated(review):
            if timer is not None:
                timer.task.cancel()
            timer = StageTimer.start(context, review, now)
        # The notice before the timer: the order an earlier release scheduled them in, so
        # that its executions still in flight replay (the SDK records tasks as yielded).
        try:
            happened = yield from inbox.next(notice.task if notice else None, check, timer.task)
        except Exception:  # noqa: BLE001 - a check that failed shows "not checked", nothing more
            if check is None or not isinstance(check.result, Exception):
                raise
            happened = check
        if happened is timer.task:
            timer = None
            # Events that arrived with the timer come later in the same batch: one more
            # wait, on a timer that is already due, lets them in before the deadline is
            # judged or this execution's history is dropped.
            late = yield from inbox.next(context.create_timer(context.current_utc_datetime))
            happened = late if isinstance(late, Arrival) else None
        if isinstance(happened, Arrival):
            taken += 1
            placed = len(review.decisions)
            review, result = take(context, review, happened, owed, notice is not None)
            placed_here += len(review.decisions) - placed
            if result is not None:
                if timer is not None:
                    timer.task.cancel()
                return Outcome(review.without_pending_check(), result)
        elif notice is not None and happened is notice.task:
            review, notice = notice.recorded(review, context.current_utc_datetime, retries=cards_shown), None
        elif check is not None and happened is check:
            review, check = review.with_check(check.result), None
        quiet = (notice is None and check is None and not owed
                 and review.clock().due(context.current_utc_datetime)[0] is Due.NOTHING)
        if quiet and (timer is None or taken >= EVENTS_PER_EXECUTION or placed_here >= DECISIONS_PER_EXECUTION):
            if timer is not None:
                timer.task.cancel()
            return Outcome(review, StageResult.WAITING)


@dataclass(frozen=True)
class StageTimer:
    """The timer the stage waits on: the deadline, the next reminder or the end of the
    slice. It is kept while only events come (as an earlier release kept it, so that its
    executions in flight replay) and started again when the deadline moves."""
    task: Any
    deadline: str
    wake: Any
    started: Any

    @classmethod
    def start(cls, context, review: ReviewState, now) -> "StageTimer":
        wake = review.clock().wake_at(now, TIMER_SLICE)
        return cls(context.create_timer(wake), review.deadline, wake, now)

    def outdated(self, review: ReviewState) -> bool:
        return review.deadline != self.deadline or review.clock().wake_at(self.started, TIMER_SLICE) != self.wake


def waiting_words(review: ReviewState) -> tuple[Stage, str]:
    if review.escalated_at:
        return Stage.ESCALATED, f"{where(review)}: escalated, waiting for a decision until the extended deadline."
    if review.rules.is_default:
        return Stage.AWAITING_REVIEW, f"{where(review)}: waiting for the reviewer."
    return Stage.AWAITING_REVIEW, f"{where(review)}: waiting for {review.stage_rule.describe_require()}."


def where(review: ReviewState) -> str:
    """"Round 1 of 3", with the stage when the policy has stages: "..., stage 2 of 3 (legal)"."""
    rules = review.rules
    if rules.is_default:
        return f"Round {review.round} of {review.max_rounds}"
    return f"Round {review.round} of {review.max_rounds}, stage {review.stage + 1} of {len(rules.stages)} " \
           f"({review.stage_rule.name})"


def publish_approved(context, inbox: ReviewerInbox, review: ReviewState) -> Step:
    message = "Approved; publishing."
    for delay in (*PUBLISH_RETRY_SECONDS, None):
        context.set_custom_status(review.status(Stage.PUBLISHING, message))
        task = context.call_activity("publish_content", review.publication(context.instance_id))
        done = yield from until_done(context, inbox, review, task, Stage.PUBLISHING, message)
        review, result = done.review, done.result
        if not result.get("error"):
            return Outcome(review, result)
        if delay is None:
            fail(context, review, f"Publishing failed for good: {result['error']}")
        retrying = f"{result['error']}; next attempt in {delay} s"
        message = f"Approved; publishing: retrying ({retrying})."
        context.set_custom_status(review.status(Stage.PUBLISHING, message, retrying=retrying))
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        review = (yield from until_done(context, inbox, review, timer, Stage.PUBLISHING, message)).review


def until_done(context, inbox: ReviewerInbox, review: ReviewState, task, stage: Stage, message: str) -> Step:
    """Wait for ``task`` while no draft can be decided; events that arrive meanwhile are
    recorded (and a cancel ends the review while nothing is approved yet)."""
    while True:
        happened = yield from inbox.next(task)
        if not isinstance(happened, Arrival):
            return Outcome(review, task.result)
        review = noted_while_busy(context, review, happened, stage)
        context.set_custom_status(review.status(stage, message))


@dataclass(frozen=True)
class Notice:
    """A notice being sent to the stage's seats: the first one, a reminder, an
    escalation, a fresh link after a deadline change, or a seat handed on."""
    kind: str
    task: Any
    before_hours: Optional[float] = None

    @classmethod
    def send(cls, context, review: ReviewState, kind: str, seats: Optional[list] = None,
             before_hours: Optional[float] = None) -> "Notice":
        sent_as = "review" if kind == "seat" else kind
        request = review.notice_request(context.instance_id, sent_as, seats)
        return cls(kind, context.call_activity("notify_reviewer", request), before_hours)

    def recorded(self, review: ReviewState, now, retries: bool) -> ReviewState:
        """The review with this notice's outcome; with ``retries``, what of the stage's
        first notice failed is owed again on a durable timer (executions an earlier
        release started keep the timers it scheduled)."""
        outcome = self.task.result
        if self.kind == "review":
            review = review.with_notification(outcome, now)
            return review.with_retry_owed(outcome, now, 0) if retries else review
        if self.kind == "retry":
            return review.with_retried_notice(outcome, now)
        if self.kind == "reminder":
            return review.with_reminder(self.before_hours, outcome, now)
        return review.with_notice({"escalation": "escalation", "deadline_moved": "deadlineMoved",
                                   "seat": "seatHandedOn"}[self.kind], outcome)


# -- judging what arrived ----------------------------------------------------------------

def take(context, review: ReviewState, arrival: Arrival, owed: list,
         notice_out: bool = False) -> tuple[ReviewState, Optional[StageResult]]:
    """Apply an event to the stage under review: (review, the stage's result once a
    decision settles it). A cancel ends the review; a deadline change or a seat handed on
    owes a notice. ``notice_out``: a notice to the stage's seats is being sent."""
    now = context.current_utc_datetime
    if arrival.name == CANCEL_EVENT:
        cancel = CancelRequest.from_event(arrival.payload)
        if cancel is None:
            return review.with_ignored("", {"cancel": True}, "not a cancel request", now), None
        if not review.has_seen(cancel.id):
            end_cancelled(context, review, cancel)
        return review, None
    if arrival.name == EXTEND_EVENT:
        extend = ExtendRequest.from_event(arrival.payload)
        if extend is not None and review.has_seen(extend.id):
            return review, None
        problem = review.extension_problem(extend)
        if problem is not None:
            summary = {"extend": True, "hours": extend.hours, "round": extend.round} if extend else {"extend": True}
            return review.with_ignored(extend.id if extend else "", summary, problem, now), None
        owed.append(("deadline_moved",))
        return review.extended(extend, now), None
    if arrival.name == SEAT_EVENT:
        note = ReviewNote.from_event(arrival.payload)
        if note is not None:
            return noted(review, note, now), None
        return changed_seat(review, SeatChange.from_event(arrival.payload), owed, now), None
    decision = Decision.from_event(arrival.payload)
    if decision is not None and review.has_seen(decision.id):
        return review, None  # delivered again by a route that saw no sign of it yet
    problem = review.judge(decision)
    placement = review.place(decision, now) if problem is None else None
    if placement is not None and placement.duplicate:
        first = next((d.get("id", "") for d in review.decisions if d.get("round") == review.round
                      and d.get("stageIndex", 0) == review.stage and d.get("seatIndex") == placement.seat), "")
        return review.with_ack(decision.id, same_as=first), None
    if placement is not None and placement.refusal:
        problem = placement.refusal
    if problem is not None:
        return review.with_ignored(decision.id if decision else "", _summary(decision), problem, now), None
    review = review.with_vote(decision, placement.seat, now)
    tell_seat_messages(context, review, notice_out)
    outcome = review.outcome()
    if outcome is None:
        return review, None
    return review.settled(outcome, now), StageResult.APPROVED if outcome else StageResult.REJECTED


def noted(review: ReviewState, note: ReviewNote, now) -> ReviewState:
    """A reviewer's note: a seat's first view, or a comment resolved or reopened."""
    if not review.schedules_aids:
        return review
    if note.change == "viewed":
        return review.with_view(note, now)
    if review.has_seen(note.id):
        return review
    problem = review.note_problem(note)
    if problem is not None:
        return review.with_ignored(note.id, {"comment": note.comment, "note": note.change}, problem, now)
    return review.with_comment_state(note, now)


def tell_seat_messages(context, review: ReviewState, notice_out: bool = False) -> None:
    """The seats' chat messages of the stage say who decided, once the review took it (a
    signal: nobody waits for the chat platform). While a notice is out, the messages it
    posts are not known here yet: the entity hears of the decision anyway and closes
    them when the notice reports them (entities/seat_messages.py)."""
    posting = notice_out and review.slack
    update = review.seat_messages_update(context.instance_id, posting) if review.shows_cards else None
    if update is not None:
        context.signal_entity(messages_entity(context.instance_id), UPDATE, update)


def changed_seat(review: ReviewState, change: Optional[SeatChange], owed: list, now) -> ReviewState:
    if change is not None and review.has_seen(change.id):
        return review
    problem = review.seat_change_problem(change, now)
    if problem is not None:
        summary = {"seatChange": change.change, "stage": change.stage, "seat": change.seat} if change else {}
        return review.with_ignored(change.id if change else "", summary, problem, now)
    if change.change in ("delegate", "reassign") and change.stage == review.stage and review.stage_open:
        owed.append(("seat", [change.seat]))
    return review.with_seat_change(change, now)


def noted_while_busy(context, review: ReviewState, arrival: Arrival, stage: Stage) -> ReviewState:
    """Record an event that came while no draft was waiting for a decision; a cancel ends
    the review unless an approval is being published; seat changes are applied."""
    now = context.current_utc_datetime
    if arrival.name == SEAT_EVENT:
        note = ReviewNote.from_event(arrival.payload)
        if note is None:
            return changed_seat(review, SeatChange.from_event(arrival.payload), [], now)
        if note.change == "viewed" or review.has_seen(note.id) or not review.schedules_aids:
            return review
        return review.with_ignored(note.id, {"comment": note.comment, "note": note.change},
                                   _busy_problem(review, stage), now)
    if arrival.name == CANCEL_EVENT:
        cancel = CancelRequest.from_event(arrival.payload)
        if cancel is None:
            return review.with_ignored("", {"cancel": True}, "not a cancel request", now)
        if review.has_seen(cancel.id):
            return review
        if stage is not Stage.PUBLISHING:
            end_cancelled(context, review, cancel)
        problem, summary = _busy_problem(review, stage), {"cancel": True, "by": cancel.by}
        return review.with_ignored(cancel.id, summary, problem, now)
    if arrival.name == EXTEND_EVENT:
        extend = ExtendRequest.from_event(arrival.payload)
        if extend is None:
            return review.with_ignored("", {"extend": True}, "not a deadline change", now)
        if review.has_seen(extend.id):
            return review
        summary = {"extend": True, "hours": extend.hours, "round": extend.round, "by": extend.by}
        return review.with_ignored(extend.id, summary, _busy_problem(review, stage), now)
    decision = Decision.from_event(arrival.payload)
    if decision is not None and review.has_seen(decision.id):
        return review
    problem = review.judge(decision) if decision is None or decision.round != review.round else None
    return review.with_ignored(decision.id if decision else "", _summary(decision),
                               problem or _busy_problem(review, stage), now)


def _busy_problem(review: ReviewState, stage: Stage) -> str:
    if stage is Stage.PUBLISHING:
        return f"round {review.round} was already approved; it is being published"
    return f"the draft for round {review.round} was not ready for review yet"


def _summary(decision: Optional[Decision]) -> dict:
    if decision is None:
        return {}
    return {"round": decision.round, "approved": decision.approved, "by": decision.by}


def end_cancelled(context, review: ReviewState, cancel: CancelRequest) -> None:
    message = f"Cancelled: {cancel.reason} ({cancel.by})."
    context.set_custom_status(review.status(Stage.CANCELLED, message, cancel=cancel))
    raise ReviewEnded(f"Review cancelled: {cancel.reason}", review.ended("cancelled", context.current_utc_datetime))


def end_timed_out(context, review: ReviewState) -> None:
    context.set_custom_status(review.status(Stage.TIMED_OUT, "No decision before the deadline."))
    what = (f"round {review.round}" if review.rules.is_default
            else f"stage '{review.stage_rule.name}' of round {review.round}")
    hours = f"{review.stage_hours:g} hour(s)" + (" and the escalation window." if review.escalated_at else ".")
    raise ReviewEnded(f"Review timed out: no decision for {what} within {hours}",
                      review.ended("timed_out", context.current_utc_datetime))


def fail(context, review: ReviewState, reason: str) -> None:
    context.set_custom_status(review.status(Stage.FAILED, reason))
    raise ReviewEnded(reason, review.ended("failed", context.current_utc_datetime))
