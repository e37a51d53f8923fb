"""The owner's and the reviewers' routes behind the function key.

- ``GET  /api/hitl/pending``          reviews awaiting a decision, a page at a time
- ``GET  /api/hitl/inbox``            the reviewer inbox (a page; its data below)
- ``GET  /api/hitl/inbox/items``      every review awaiting a decision, sorted and filtered
- ``POST /api/hitl/cancel/{id}``      end a review with a reason
- ``POST /api/hitl/extend/{id}``      move the deadline of the round under review
- ``POST /api/hitl/claim/{id}``       claim a role or group seat of the stage under review (or release it)
- ``POST /api/hitl/delegate/{id}``    hand one's seat on to someone else
- ``POST /api/hitl/reassign/{id}``    give any seat to someone else (the owner)

In Azure each needs the function key (``?code=`` or ``x-functions-key``). The inbox can be
held to a group of people too: with App Service Authentication on and HITL_REVIEWERS set
(app role names or group object ids), every inbox request must come from a signed-in user
whose token carries one of them (``x-ms-client-principal``).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import azure.durable_functions as df
import azure.functions as func

from shared_code.identity import Person
from shared_code.models import CANCEL_EVENT, EXTEND_EVENT, CancelRequest, ExtendRequest, SeatRequest
from shared_code.review_links import ReviewGrant, review_url
from shared_code.review_policy import Seat, SeatView
from shared_code.settings import Settings, load_settings

from .decisions import Caller, change_seat, key_caller
from .http_helpers import (HttpError, delivery_reply, handles_http_errors, instance_id_param, json_body,
                           json_response, origin_of)
from .pages import error_page, page
from .inbox_index import EntityQueryFailed, InboxIndex, Row, can_act
from .review_client import BackendUnavailable, Review, ReviewClient, new_event_id

bp = df.Blueprint()
log = logging.getLogger(__name__)

INBOX_PAGE = (Path(__file__).parent / "inbox_page.html").read_text(encoding="utf-8")
MAX_PENDING_PAGE = 100
INBOX_SORTS = ("deadline", "age")
MAX_FILTER_CHARS = 200
# Continuation tokens are the backend's own (Azure Storage's are base64 text): passed on
# as they are, but only in that alphabet and size.
CONTINUATION = re.compile(r"[A-Za-z0-9+/_=-]{1,2048}")


@bp.route(route="hitl/pending", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_pending(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Reviews awaiting a decision, oldest first, a page at a time: the Durable backend
    lists instances in id order and review ids start with their start time."""
    top = page_size(req.params.get("top"))
    token = req.params.get("continuation") or ""
    if token and not CONTINUATION.fullmatch(token):
        raise HttpError(400, "'continuation' is not a token this route returned")
    reviews, next_token = await ReviewClient(client).running_reviews(top, token)
    # A page is milliseconds of work on the worker's event loop: let what waits there run
    # between reading it and making its items, rather than after both.
    await asyncio.sleep(0)
    links = PageLinks(req, load_settings())
    items = [pending_item(r, links) for r in reviews if r.status.awaiting_review]
    return json_response({"items": items, "continuation": next_token or None})


@bp.route(route="hitl/inbox", methods=["GET"])
def hitl_inbox(req: func.HttpRequest) -> func.HttpResponse:
    refusal = reviewer_refusal(req, load_settings())
    return error_page(*refusal) if refusal else page(INBOX_PAGE)


@bp.route(route="hitl/inbox/items", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_inbox_items(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """A page of the reviews awaiting a decision: ``tab`` "mine" (the reviews whose stage
    under review the caller may decide) or "all" (owners), ``sort`` by deadline or age,
    ``q`` a topic filter, ``top`` and ``continuation`` to page, and the count of each tab."""
    settings = load_settings()
    refusal = reviewer_refusal(req, settings)
    if refusal:
        raise HttpError(*refusal)
    sort = req.params.get("sort") or "deadline"
    if sort not in INBOX_SORTS:
        raise HttpError(400, f"'sort' must be one of {', '.join(INBOX_SORTS)}")
    wanted = (req.params.get("q") or "").strip()
    if len(wanted) > MAX_FILTER_CHARS:
        raise HttpError(400, f"'q' must be at most {MAX_FILTER_CHARS} characters")
    reviewer = (req.params.get("reviewer") or "").strip() or None
    caller = key_caller(req, settings, reviewer)
    tab = req.params.get("tab") or ("mine" if caller.person is not None or not caller.owner else "all")
    if tab not in INBOX_TABS:
        raise HttpError(400, f"'tab' must be one of {', '.join(INBOX_TABS)}")
    if tab == "all" and not caller.owner:
        raise HttpError(403, "the list of all reviews is for the app's owners (HITL_OWNERS)")
    top = page_size(req.params.get("top"))
    continuation = req.params.get("continuation") or ""
    if len(continuation) > 2048:
        raise HttpError(400, "'continuation' is not a token this route returned")
    backend = ReviewClient(client).rpc_base_url
    inbox = INBOXES.setdefault(backend, InboxIndex())
    try:
        await inbox.refresh(backend)
    except EntityQueryFailed as exc:
        log.error("could not read the inbox cards: %s: %s", type(exc).__name__, exc)
        raise BackendUnavailable("the Durable backend could not list the inbox just now; retry shortly") from None
    found = inbox.page(sort=sort, tab=tab, wanted=wanted, person=caller.person, top=top, continuation=continuation)
    now = datetime.now(timezone.utc).isoformat()
    links = PageLinks(req, settings)
    items = [inbox_item(row, links, caller, now) for row in found.rows]
    return json_response({"items": items, "continuation": found.continuation or None, "tab": tab,
                          "counts": found.counts, "you": caller.person.name if caller.person else None,
                          "owner": caller.owner}, headers={"Cache-Control": "no-store"})


# This process's view of the reviews awaiting a decision (routes/inbox_index.py), one per
# Durable backend it talks to.
INBOXES: dict[str, InboxIndex] = {}
INBOX_TABS = ("mine", "all")


def inbox_item(row: Row, links: "PageLinks", caller: Caller, now: str) -> dict:
    card = row.card
    seats = card.get("seats") or []
    person = caller.person
    mine = (can_act(card, person, now) if person is not None
            else any(seat.get("seat") == "anyone" for seat in seats))
    claimable = person is not None and any(
        not Seat.parse(s.get("seat", "anyone")).personal and Seat.parse(s.get("seat", "anyone")).admits(person)
        and not SeatView(Seat.parse(s["seat"]), claimed_by=s.get("claimedBy", ""),
                         claim_until=s.get("claimUntil", "")).claim_holds(now) for s in seats)
    return {"instanceId": row.instance_id, "topic": card.get("topic"), "round": card.get("round"),
            "maxRounds": card.get("maxRounds"), "stage": card.get("stage"), "stageIndex": card.get("stageIndex", 0),
            "stages": card.get("stages", 1), "deadline": card.get("deadline"),
            "reviewableSince": card.get("since"), "notification": card.get("notification") or None,
            "reminders": card.get("reminders", 0), "escalated": bool(card.get("escalated")),
            "seats": seats, "mine": mine, "canClaim": claimable,
            "reviewUrl": card_link(row, card, links, seat_for(card, person, now))}


def seat_for(card: dict, person: Optional[Person], now: str) -> Optional[int]:
    """The open seat a link from the inbox is for: one the person may fill, else the first."""
    seats = card.get("seats") or []
    for seat in seats:
        view = SeatView(Seat.parse(seat.get("seat", "anyone")), claimed_by=seat.get("claimedBy", ""),
                        claim_until=seat.get("claimUntil", ""))
        if person is not None and view.seat.admits(person) and not (
                view.claim_holds(now) and view.claimed_by.casefold() != person.key):
            return seat.get("n", 1) - 1
    return seats[0].get("n", 1) - 1 if seats else None


def card_link(row: Row, card: dict, links: "PageLinks", seat: Optional[int]) -> Optional[str]:
    """A signed link for a seat of the stage under review (for the default policy's one
    open seat, a link that names none, as before stages)."""
    if links.key is None or seat is None:
        return None
    grant = ReviewGrant(row.instance_id, int(card.get("round", 1)), datetime.fromisoformat(row.deadline))
    if card.get("stages", 1) > 1 or [s.get("seat") for s in card.get("seats") or []] != ["anyone"]:
        grant = replace(grant, stage=int(card.get("stageIndex", 0)), seat=seat)
    return links.url(grant)


def pending_item(review: Review, links: "PageLinks") -> dict:
    status = review.status
    return {"instanceId": review.instance_id, "topic": status.topic, "round": status.round,
            "maxRounds": status.max_rounds, "stage": status.stage, "deadline": status.deadline,
            "reviewableSince": status.reviewable_since,
            "createdTime": review.created_time.isoformat() if review.created_time else None,
            "notification": status.notification, "seatNotices": (status.notification or {}).get("seats", []),
            "reminders": len(status.reminders),
            "escalated": bool(status.escalated_at), "reviewUrl": link_for(review, links)}


def link_for(review: Review, links: "PageLinks") -> Optional[str]:
    """A signed link for the round under review."""
    deadline = review.status.deadline
    if links.key is None or not deadline:
        return None
    return links.url(ReviewGrant(review.instance_id, review.status.round, datetime.fromisoformat(deadline)))


class PageLinks:
    """The signed links of one page. What they all share is read once: the signing key
    (None when links must not be made) and, at the first link, the origin the caller used
    unless HITL_PUBLIC_BASE_URL names another (read only when a link is made, as a page
    without one never needed the caller's Host header to parse)."""

    def __init__(self, req: func.HttpRequest, settings: Settings):
        self.key = settings.link_signing_key
        self._req = req
        self._base = settings.public_base_url if settings.public_base_url_set else None

    def __repr__(self) -> str:
        return f"PageLinks(signed={self.key is not None})"  # never the key

    def url(self, grant: ReviewGrant) -> str:
        if self._base is None:
            self._base = origin_of(self._req)
        return review_url(self._base, grant, self.key)


# -- who may use the inbox ---------------------------------------------------------------

def reviewer_refusal(req: func.HttpRequest, settings: Settings) -> Optional[tuple[int, str]]:
    """(status, reason) when HITL_REVIEWERS holds the inbox to a group this caller is not
    in; None when the caller may use it (the function key is checked by the host)."""
    if not settings.reviewers:
        return None
    if not settings.app_service_auth:
        return 403, ("the inbox is held to HITL_REVIEWERS, which needs App Service "
                     "Authentication to tell who is calling; it is not on")
    claims = principal_claims(req.headers.get("x-ms-client-principal"))
    if claims is None:
        return 401, "sign in to use the inbox"
    if not claims & set(settings.reviewers):
        return 403, "your account is not one of this app's reviewers (HITL_REVIEWERS)"
    return None


def principal_claims(header: Optional[str]) -> Optional[set]:
    """The role and group claims of App Service Authentication's principal header."""
    if not header:
        return None
    try:
        principal = json.loads(base64.b64decode(header, validate=False))
        claims = principal.get("claims") or []
        return {str(c.get("val")) for c in claims if isinstance(c, dict)
                and str(c.get("typ", "")).rsplit("/", 1)[-1] in ("roles", "role", "groups")}
    except (ValueError, TypeError, AttributeError):
        return None


# -- cancel and deadline changes ---------------------------------------------------------

@bp.route(route="hitl/cancel/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_cancel(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Ask the review to end. It takes the cancel in the order events arrived: a cancel
    that comes after an approval is refused (409), one that comes first ends the review."""
    instance_id = instance_id_param(req)
    cancel = cancel_request(req).bound(key_caller(req, load_settings()).shown, new_event_id())
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    if review.finished:
        raise HttpError(409, review.refusal())
    delivery = await reviews.deliver(instance_id, CANCEL_EVENT, cancel.to_event(), None)
    return delivery_reply(req, instance_id, delivery, "cancel", "The review was cancelled.",
                          {"instanceId": instance_id, "reason": cancel.reason})


@bp.route(route="hitl/extend/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_extend(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Give the round under review more time: ``{"hours": n}`` moves its deadline, within
    the 30-day limit of a round. Refused (409) once the round is decided."""
    instance_id = instance_id_param(req)
    requested = ExtendRequest.from_json(json_body(req))
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    refusal = review.refusal()
    if refusal is not None:
        raise HttpError(409, f"{refusal}; only the deadline of a round awaiting review can move")
    extend = requested.bound(review.status.round, key_caller(req, load_settings()).shown, new_event_id())
    delivery = await reviews.deliver(instance_id, EXTEND_EVENT, extend.to_event(), extend.round)
    body = {"instanceId": instance_id, "round": extend.round, "hours": extend.hours}
    change = delivery.outcome.decision if delivery.outcome and delivery.outcome.kind == "applied" else None
    if change:
        body.update(deadline=change["to"], previousDeadline=change["from"])
    return delivery_reply(req, instance_id, delivery, "deadline change",
                          f"The deadline of round {extend.round} moved to {change['to']}." if change else "",
                          body, extend.round)


# -- seats: claims, hand-overs, reassignment ---------------------------------------------

@bp.route(route="hitl/claim/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_claim(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Claim a role or group seat of the stage under review, so that its other members see
    who took it; ``{"release": true}`` gives it back. Claims lapse after HITL_CLAIM_HOURS."""
    return await seat_route(req, client, "claim")


@bp.route(route="hitl/delegate/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_delegate(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Hand one's seat (by name, or claimed) on to someone else: ``{"to": "dave@…"}``."""
    return await seat_route(req, client, "delegate")


@bp.route(route="hitl/reassign/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_reassign(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The owner gives any seat to someone else: ``{"stage", "seat": n, "to": "user:…"}``."""
    return await seat_route(req, client, "reassign")


async def seat_route(req: func.HttpRequest, client: df.DurableOrchestrationClient, change: str) -> func.HttpResponse:
    instance_id = instance_id_param(req)
    request = SeatRequest.from_json(json_body(req) if req.get_body() else {}, change)
    settings = load_settings()
    caller = key_caller(req, settings, request.reviewer)
    kind = "release" if change == "claim" and request.release else change
    bound, delivery = await change_seat(ReviewClient(client), instance_id, kind, caller, settings,
                                        stage=request.stage, seat=request.seat, to=request.to)
    body = {"instanceId": instance_id, "change": kind, "stage": bound.stage, "seat": bound.seat + 1,
            "by": bound.by, **({"to": bound.to} if bound.to else {}), **({"until": bound.until} if bound.until else {})}
    done = {"claim": f"You claimed seat {bound.seat + 1} until {bound.until}.", "release": "The claim was released.",
            "delegate": f"The seat now belongs to {bound.to}.", "reassign": f"The seat now belongs to {bound.to}."}
    return delivery_reply(req, instance_id, delivery, kind, done[kind], body)


def page_size(raw: Optional[str]) -> int:
    if raw is None:
        return 20
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PENDING_PAGE:
        raise HttpError(400, f"'top' must be an integer from 1 to {MAX_PENDING_PAGE}")
    return int(raw)


def cancel_request(req: func.HttpRequest) -> CancelRequest:
    if not req.get_body():
        return CancelRequest()
    return CancelRequest.from_json(json_body(req))
