"""The one place a reviewer's decision, claim or hand-over is taken, whatever channel it
came by: the approve route, the review page, the inbox, and the Teams, Slack and e-mail
adapters. A channel only translates its request into a ``Caller`` and a request; the rules
(finished reviews, the stage waiting, the round, the seat, duplicates, the deadline, the
quotes of comments on passages) are applied here, then the orchestrator checks them again
as it takes the event (its answer is the one that counts; answering here first gives the
caller the reason at once). Reviewers' notes, which decide nothing, go the same way: a
comment of an earlier round resolved or reopened, and a seat's first view of its page.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Optional

import azure.functions as func

from shared_code.identity import Person, signed_in_person, valid_name
from shared_code.models import (APPROVAL_EVENT, ROUNDLESS_DECISION_GRACE_SECONDS, SEAT_EVENT,
                                CommentRequest, Decision, ReviewNote, SeatChange, ValidationError)
from shared_code.passages import missing_quote, too_many_comments
from shared_code.review_links import ReviewGrant
from shared_code.review_policy import Placement, Seat, SeatView, StageRule, claimable, place
from shared_code.review_status import ReviewStatus
from shared_code.settings import Settings

from .http_helpers import HttpError, delivery_reply, json_response
from .review_client import Delivery, Review, ReviewClient, new_event_id

FUNCTION_KEY = "function key"
REVIEW_LINK = "review link"


@dataclass(frozen=True)
class Caller:
    """Who is deciding and how we know it. ``person`` is None when nobody is named (the
    function key alone, or a link holder who is not signed in); ``asserted`` says the
    function key named the person; ``grant`` is the signed link the call came with."""
    person: Optional[Person]
    channel: str
    asserted: bool = False
    owner: bool = False
    grant: Optional[ReviewGrant] = None

    @property
    def shown(self) -> str:
        """How records and replies name the caller."""
        return self.person.name if self.person else self.channel


@dataclass(frozen=True)
class Decided:
    decision: Decision
    delivery: Optional[Delivery]
    # A second decision by the same person in the same stage: the first one's record.
    first: Optional[dict] = None


# -- who is calling -------------------------------------------------------------------------

def key_caller(req: func.HttpRequest, settings: Settings, reviewer: Optional[str] = None) -> Caller:
    """A caller of a route behind the function key: the signed-in person when App Service
    Authentication vouches for one, else the person the key names (``reviewer``), else
    nobody named. Whoever holds the key is the owner, unless HITL_OWNERS holds ownership
    to signed-in people."""
    signed_in = signed_in_person(req.headers.get("x-ms-client-principal")) if settings.app_service_auth else None
    if signed_in is not None:
        if reviewer is not None and not signed_in.answers_to(reviewer):
            raise HttpError(400, f"you are signed in as {signed_in.name}; 'reviewer' can only name you")
        return Caller(signed_in, FUNCTION_KEY, owner=is_owner(signed_in, settings))
    if reviewer is not None:
        if not valid_name(reviewer):
            raise ValidationError("'reviewer' must be a name or e-mail address")
        return Caller(Person(reviewer), FUNCTION_KEY, asserted=True, owner=True)
    return Caller(None, FUNCTION_KEY, owner=True)


def link_caller(req: func.HttpRequest, settings: Settings, grant: ReviewGrant, status: ReviewStatus) -> Caller:
    """A caller with a signed review link: the signed-in person when App Service
    Authentication vouches for one; else the person the link's seat names (the link was
    sent to them); else, for a role, group or open seat, nobody named."""
    signed_in = signed_in_person(req.headers.get("x-ms-client-principal")) if settings.app_service_auth else None
    if signed_in is not None:
        return Caller(signed_in, REVIEW_LINK, grant=grant)
    seat = _link_seat(grant, status)
    if seat is not None and seat.personal:
        return Caller(Person(seat.value), REVIEW_LINK, grant=grant)
    return Caller(None, REVIEW_LINK, grant=grant)


def is_owner(person: Person, settings: Settings) -> bool:
    """HITL_OWNERS entries are seats (user:…, role:…, group:…) or bare role names and
    group ids; with none, every key holder is an owner."""
    if not settings.owners:
        return True
    for entry in settings.owners:
        seats = [Seat.parse(entry)] if ":" in entry else [Seat("role", entry), Seat("group", entry)]
        if any(seat.admits(person) for seat in seats):
            return True
    return False


def _link_seat(grant: ReviewGrant, status: ReviewStatus) -> Optional[Seat]:
    if grant.seat is None or grant.stage != status.stage_index:
        return None
    seats = status.current_stage.get("seatStates") or []
    return Seat.parse(seats[grant.seat]["seat"]) if grant.seat < len(seats) else None


# -- the stage under review, as the status shows it ----------------------------------------

def stage_under_review(status: ReviewStatus) -> tuple[StageRule, tuple]:
    """The stage under review and its seats as they stand, from the status."""
    shown = status.current_stage
    if status.summary and "seatStates" not in shown:
        raise HttpError(503, f"this review's status is too large to list the seats of stage '{shown.get('name')}' "
                             "(their names are too long), so no decision can be placed in one")
    seats = tuple(Seat.parse(s.get("seat", "anyone")) for s in shown.get("seatStates") or [{"seat": "anyone"}])
    views = []
    for seat, state in zip(seats, shown.get("seatStates") or [{}]):
        views.append(SeatView(seat, claimed_by=state.get("claimedBy", ""), claim_until=state.get("claimUntil", "")))
    for record in status.decisions:
        if record.get("round") != status.round or record.get("stageIndex", 0) != status.stage_index:
            continue
        index = record.get("seatIndex", 0)
        if 0 <= index < len(views):
            views[index] = SeatView(views[index].seat, views[index].claimed_by, views[index].claim_until,
                                    decided_by=_decider_key(record), decided=True,
                                    approved=bool(record.get("approved")))
    rule = StageRule(str(shown.get("name", "review")), seats, shown.get("require", "any"))
    return rule, tuple(views)


def _decider_key(record: dict) -> str:
    person = record.get("person")
    if isinstance(person, dict) and isinstance(person.get("name"), str):
        return person["name"].casefold()
    by = record.get("by")
    return by.casefold() if isinstance(by, str) and by not in (FUNCTION_KEY, REVIEW_LINK) else ""


# -- decisions ------------------------------------------------------------------------------

async def decide(reviews: ReviewClient, instance_id: str, requested: Decision, caller: Caller,
                 review: Optional[Review] = None, now: Optional[datetime] = None,
                 patience: Optional[float] = None) -> Decided:
    """Take a decision: bind it to the round, stage and seat it is for, or refuse it with
    the reason; then deliver it and wait until the review shows what became of it (at
    most ``patience`` seconds for a channel that must answer its platform quickly; the
    decision is then delivered and applied when the review takes it). A decision with
    comments on passages is checked against the whole draft."""
    if review is None or requested.comments and review.texts is None:
        review = await reviews.get(instance_id, full=bool(requested.comments))
    bound = bind_decision(requested, review, caller, now)
    if isinstance(bound, Decided):
        return bound
    delivery = await reviews.deliver(instance_id, APPROVAL_EVENT, bound.to_event(), bound.round, patience)
    first = delivery.outcome.decision if delivery.outcome and delivery.outcome.duplicate else None
    return Decided(bound, delivery, first)


def bind_decision(requested: Decision, review: Review, caller: Caller,
                  now: Optional[datetime] = None) -> Decision | Decided:
    """The decision bound to the round, stage and seat under review; a ``Decided`` for a
    second decision by the same person (the first one stands); or HttpError with the
    reason it cannot be taken."""
    now = now or datetime.now(timezone.utc)
    status = review.status
    check_decidable(review, requested.round)
    current = status.round
    if requested.round is not None and requested.round != current:
        raise HttpError(409, f"the decision is for round {requested.round}, "
                             f"but round {current} is under review")
    rule, seats = stage_under_review(status)
    check_stage(requested.stage, status, rule)
    grant = caller.grant
    if grant is not None and grant.stage is not None and grant.stage != status.stage_index:
        raise HttpError(403, f"this link is for another stage; stage '{rule.name}' is under review now: "
                             "open the newest link")
    placement = place(rule, seats, caller.person, now.isoformat(), grant.seat if grant else None)
    if placement.duplicate:
        first = next((d for d in status.decisions if d.get("round") == current
                      and d.get("stageIndex", 0) == status.stage_index and d.get("seatIndex", 0) == placement.seat), None)
        return Decided(requested.bound(current, caller.shown, "", stage_index=status.stage_index), None, first)
    if placement.refusal:
        raise HttpError(403, f"{placement.refusal}.")
    if requested.round is None and status.reviewable_since:
        waited = (now - datetime.fromisoformat(status.reviewable_since)).total_seconds()
        if waited < ROUNDLESS_DECISION_GRACE_SECONDS:
            raise HttpError(409, f"round {current}'s draft became reviewable {max(waited, 0):.1f} s ago; a "
                                 f"decision without \"round\" is taken only for a draft reviewable for "
                                 f"{ROUNDLESS_DECISION_GRACE_SECONDS:g} s or more, so that it cannot land "
                                 f"on a draft nobody saw. Send \"round\": {current} to decide this draft.")
    if status.deadline and now >= datetime.fromisoformat(status.deadline):
        raise HttpError(409, f"the deadline for round {current} has passed ({status.deadline})")
    if requested.edit and rule.require != "any":
        raise HttpError(400, f"an edit goes with a stage one reviewer decides; stage '{rule.name}' needs "
                             f"{rule.describe_require()}")
    check_quotes(requested, review)
    relevant = {seat.seat.spec.casefold() for seat in seats}
    return requested.bound(current, caller.shown, new_event_id(), stage_index=status.stage_index,
                           seat=grant.seat if grant and grant.stage is not None else None,
                           person=caller.person.to_event(relevant) if caller.person else None,
                           channel=caller.channel, asserted=caller.asserted,
                           by_name=caller.person.display_name if caller.person else "")


def check_quotes(requested: Decision, review: Review) -> None:
    """Each comment's quote must be words of the draft under review, as the page shows it."""
    if not requested.comments:
        return
    missing = missing_quote(requested.comments, review.draft)
    if missing is not None:
        raise HttpError(400, f"comment {missing}: its quote is not in the draft of round {review.status.round}; "
                             "quote the draft's words exactly, as the review page shows them")
    problem = too_many_comments(review.status.comments_held, len(requested.comments))
    if problem:
        raise HttpError(400, problem)


def check_decidable(review: Review, requested_round: Optional[int]) -> None:
    """Refuse a decision the review can no longer take, saying what happened instead."""
    status = review.status
    refusal = review.refusal(requested_round)
    if refusal is None:
        return
    if review.being_drafted and requested_round in (None, status.round):
        refusal += ("; decide it once the status shows awaiting_review" if requested_round is not None else
                    f"; decide its draft with \"round\": {status.round} once the status shows "
                    "awaiting_review, so that the decision cannot land on a draft you have not seen")
    raise HttpError(409, refusal)


def check_stage(named: Optional[str], status: ReviewStatus, rule: StageRule) -> None:
    """A decision that names a stage is for that stage only."""
    if named is None or named.casefold() == rule.name.casefold():
        return
    names = [s.get("name", "") for s in status.stages if isinstance(s, dict)]
    index = next((i for i, n in enumerate(names) if str(n).casefold() == named.casefold()), None)
    if index is None:
        raise HttpError(409, f"this review has no stage '{named}'; its stages are {', '.join(names) or 'review'}")
    if index < status.stage_index:
        raise HttpError(409, f"stage '{names[index]}' of round {status.round} was already decided; "
                             f"stage '{rule.name}' is under review")
    raise HttpError(409, f"stage '{names[index]}' is not under review yet; stage '{rule.name}' is")


# -- claims and hand-overs -----------------------------------------------------------------

async def change_seat(reviews: ReviewClient, instance_id: str, change: str, caller: Caller, settings: Settings, *,
                      stage: Optional[str] = None, seat: Optional[int] = None, to: str = "",
                      now: Optional[datetime] = None) -> tuple[SeatChange, Delivery]:
    """Claim a seat of the stage under review (or release the claim), hand one's seat on
    (delegate), or give any seat to someone else (reassign, the owner's)."""
    now = now or datetime.now(timezone.utc)
    review = await reviews.get(instance_id)
    if review.finished:
        raise HttpError(409, f"the review is {review.runtime_status}; its seats no longer change")
    status = review.status
    stage_index = _stage_index(stage, status)
    request = SeatChange(change, stage_index, -1, caller.shown, asserted=caller.asserted, id=new_event_id(),
                         person=caller.person.to_event() if caller.person else None, owner=caller.owner)
    bound = _bind_seat_change(request, status, caller, seat, to, now, settings)
    delivery = await reviews.deliver(instance_id, SEAT_EVENT, bound.to_event(), None)
    return bound, delivery


def _stage_index(named: Optional[str], status: ReviewStatus) -> int:
    if named is None:
        return status.stage_index
    names = [str(s.get("name", "")) for s in status.stages if isinstance(s, dict)] or ["review"]
    index = next((i for i, n in enumerate(names) if n.casefold() == named.casefold()), None)
    if index is None:
        raise HttpError(409, f"this review has no stage '{named}'; its stages are {', '.join(names)}")
    return index


def _bind_seat_change(change: SeatChange, status: ReviewStatus, caller: Caller, seat: Optional[int], to: str,
                      now: datetime, settings: Settings) -> SeatChange:
    kind = change.change
    if kind in ("claim", "release", "delegate") and caller.person is None:
        raise HttpError(403, f"a {kind} needs to know who you are: sign in, or have the function key name "
                             "you with \"reviewer\"")
    if kind == "reassign" and not caller.owner:
        raise HttpError(403, "only the owner can reassign a seat")
    if kind in ("claim", "release"):
        if not status.awaiting_review or change.stage != status.stage_index:
            raise HttpError(409, "a claim is for the stage under review, once its draft is awaiting review")
        rule, seats = stage_under_review(status)
        if kind == "claim":
            placement: Placement = claimable(rule, seats, caller.person, now.isoformat(), seat)
            if placement.refusal:
                raise HttpError(409 if "claimed by" in placement.refusal else 403, f"{placement.refusal}.")
            until = (now + timedelta(hours=settings.claim_hours)).isoformat()
            return replace(change, seat=placement.seat, until=until)
        mine = [i for i, v in enumerate(seats) if v.claim_holds(now.isoformat())
                and (caller.owner and seat == i or v.claimed_by.casefold() == caller.person.key)]
        if not mine:
            raise HttpError(409, "you hold no claim on a seat of this stage")
        return replace(change, seat=mine[0] if seat is None else seat)
    try:
        target = Seat.parse(to if ":" in to or to == "anyone" else f"user:{to}")
    except ValidationError as exc:
        raise HttpError(400, f"'to': {exc}") from None
    if kind == "delegate":
        if not target.personal:
            raise HttpError(400, "a seat is handed on to one person: 'to' is a name or e-mail address")
        return replace(change, seat=_delegated_seat(status, change.stage, caller, seat, now), to=target.spec)
    if seat is None:
        raise HttpError(400, "'seat' is required: the seat's number in its stage, from 1")
    seats_in_stage = _seat_count(status, change.stage)
    if not 0 <= seat < seats_in_stage:
        raise HttpError(400, f"'seat' must be from 1 to {seats_in_stage}")
    return replace(change, seat=seat, to=target.spec)


def _seat_count(status: ReviewStatus, stage: int) -> int:
    stages = [s for s in status.stages if isinstance(s, dict)]
    return int(stages[stage].get("seats", 1)) if stage < len(stages) else 1


def _delegated_seat(status: ReviewStatus, stage: int, caller: Caller, seat: Optional[int], now: datetime) -> int:
    """The seat a person hands on: theirs by name, or the one they claimed."""
    if stage == status.stage_index:
        rule, seats = stage_under_review(status)
        for i, view in enumerate(seats):
            if seat is not None and i != seat or view.decided:
                continue
            if view.seat.personal and view.seat.admits(caller.person) or (
                    view.claim_holds(now.isoformat()) and view.claimed_by.casefold() == caller.person.key):
                return i
        raise HttpError(403, f"you fill no open seat of stage '{rule.name}' by name or by a claim, so there is "
                             "nothing of yours to hand on")
    if seat is None:
        raise HttpError(400, "'seat' is required to hand on a seat of a stage that is not under review yet")
    return seat


# -- reviewers' notes: comments resolved or reopened, first views ---------------------------

async def change_comment(reviews: ReviewClient, instance_id: str, request: CommentRequest, caller: Caller,
                         now: Optional[datetime] = None) -> tuple[ReviewNote, Delivery]:
    """Resolve or reopen a comment of an earlier round, while a later draft awaits review:
    for whoever may decide the stage under review (or has decided it), and the owner."""
    now = now or datetime.now(timezone.utc)
    review = await reviews.get(instance_id)
    if review.finished:
        raise HttpError(409, f"{review.refusal()}; its comments no longer change")
    status = review.status
    if not status.awaiting_review:
        raise HttpError(409, f"{review.refusal()}; a comment is resolved or reopened while a later draft awaits review")
    comment = status.comment(request.comment)
    if comment is None and not status.all_comments_shown:
        # The status shows a window of the comments; the review's state holds them all (as
        # the execution started: the review itself judges the change again when it comes).
        texts = (await reviews.get(instance_id, full=True)).texts
        comment = next((c for c in (texts.comments if texts else ()) if c.get("id") == request.comment), None)
    if comment is None:
        raise HttpError(404, f"this review has no comment '{request.comment}'")
    if comment.get("round", status.round) >= status.round:
        raise HttpError(409, f"comment '{request.comment}' is on the draft of round {comment.get('round')}; it is "
                             "resolved or reopened once the writer has answered it in a later draft")
    wanted = "resolved" if request.resolved else "open"
    if comment.get("state") == wanted:
        raise HttpError(409, f"comment '{request.comment}' is already {wanted}")
    if not caller.owner:
        rule, seats = stage_under_review(status)
        grant = caller.grant
        if grant is not None and grant.stage is not None and grant.stage != status.stage_index:
            raise HttpError(403, f"this link is for another stage; stage '{rule.name}' is under review now")
        placement = place(rule, seats, caller.person, now.isoformat(), grant.seat if grant else None)
        if placement.refusal and not placement.duplicate:
            raise HttpError(403, f"{placement.refusal}; a comment is resolved by a reviewer of the stage under "
                                 "review, or the owner.")
    note = ReviewNote("resolve" if request.resolved else "reopen", status.round, status.stage_index, request.comment,
                      by=caller.shown, person=caller.person.to_event() if caller.person else None, id=new_event_id())
    return note, await reviews.deliver(instance_id, SEAT_EVENT, note.to_event(), note.round)


async def record_first_view(reviews: ReviewClient, review: Review, you: dict, caller: Caller) -> None:
    """Tell the review that a seat of the stage under review opened its page, the first
    time only (the status shows the seats already seen; the review keeps the first of any
    that arrive twice). Nothing waits for it: a page load is no decision."""
    status, seat = review.status, you.get("seatNumber")
    if not you.get("canDecide") or not seat or status.viewed(seat - 1):
        return
    note = ReviewNote("viewed", status.round, status.stage_index, seat=seat - 1, by=caller.shown,
                      person=caller.person.to_event() if caller.person else None)
    await reviews.send_note(review.instance_id, SEAT_EVENT, note.to_event())


# -- replies ---------------------------------------------------------------------------------

def decision_reply(req: func.HttpRequest, instance_id: str, decided: Decided,
                   extra: Optional[dict] = None) -> func.HttpResponse:
    decision = decided.decision
    verdict = "approval" if decision.approved else "rejection"
    body = {"instanceId": instance_id, "approved": decision.approved, "round": decision.round,
            "decision": decision.to_event(), **(extra or {})}
    if decided.first is not None or decided.delivery is None:
        first = decided.first or {}
        said = "approved" if first.get("approved") else "rejected"
        return json_response({**body, "decision": first or decision.to_event(), "duplicate": True,
                              "message": f"You already {said} this stage in round {decision.round}; "
                                         "your first decision stands."})
    return delivery_reply(req, instance_id, decided.delivery, verdict,
                          f"The {verdict} of round {decision.round} was applied.", body, decision.round)


# -- what a viewer may do ---------------------------------------------------------------------

def viewer_options(caller: Caller, status: ReviewStatus, now: Optional[datetime] = None) -> dict:
    """What the person behind a link or a sign-in may do in the stage under review, for the
    page and the inbox: decide (and in which seat), claim or release a seat, or why not."""
    now = now or datetime.now(timezone.utc)
    rule, seats = stage_under_review(status)
    grant = caller.grant
    only_seat = grant.seat if grant is not None and grant.stage == status.stage_index else None
    other_stage = grant is not None and grant.stage is not None and grant.stage != status.stage_index
    options: dict = {"name": caller.person.name if caller.person else None, "stage": rule.name,
                     "canDecide": False, "canClaim": False, "holdsClaim": False}
    if only_seat is not None and only_seat < len(seats):
        options.update(seat=seats[only_seat].seat.spec, seatNumber=only_seat + 1)
    if not status.awaiting_review:
        return options
    if other_stage:
        options["reason"] = f"this link is for another stage; stage '{rule.name}' is under review now"
        return options
    placement = place(rule, seats, caller.person, now.isoformat(), only_seat)
    if placement.duplicate:
        view = seats[placement.seat]
        options.update(decided="approved" if view.approved else "rejected", seat=view.seat.spec,
                       seatNumber=placement.seat + 1)
    elif placement.refusal:
        options["reason"] = placement.refusal
    else:
        options.update(canDecide=True, seat=seats[placement.seat].seat.spec, seatNumber=placement.seat + 1,
                       canEdit=rule.require == "any")
    if caller.person is not None:
        held = [i for i, v in enumerate(seats) if v.claim_holds(now.isoformat())
                and v.claimed_by.casefold() == caller.person.key]
        options["holdsClaim"] = bool(held)
        options["canClaim"] = not held and not claimable(rule, seats, caller.person, now.isoformat(), only_seat).refusal
    return options
