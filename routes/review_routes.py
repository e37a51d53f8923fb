"""The reviewer's side in a browser, and the owner's routes.

Anonymous at the host level, checked here by the signed token:
- ``GET  /api/hitl/review/{id}?token=``          the review page (static HTML, data via JS)
- ``GET  /api/hitl/review/{id}/state?token=``    what the page shows, as JSON
- ``POST /api/hitl/review/{id}/decision?token=`` the page's approve / reject

Function-key protected (the app's default level):
- ``GET  /api/hitl/pending``                     reviews waiting for a decision
- ``POST /api/hitl/cancel/{id}``                 end a review with a reason
- ``POST /api/hitl/extend/{id}``                 move the deadline of the round under review
"""
from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import Optional

import azure.durable_functions as df
import azure.functions as func

from shared_code.models import (APPROVAL_EVENT, CANCEL_EVENT, EXTEND_EVENT, MAX_TIMEOUT_HOURS, CancelRequest,
                                Decision, ExtendRequest)
from shared_code.review_status import DECIDABLE_STAGES
from shared_code.review_links import InvalidLink, ReviewGrant, review_url, sign, verify
from shared_code.settings import load_settings

from .hitl_routes import bind_to_round, decision_reply, reviewer_of, shown_status
from .http_helpers import HttpError, api_url, handles_http_errors, instance_id_param, json_body, json_response
from .review_client import Review, ReviewClient, new_event_id

bp = df.Blueprint()

PAGE_TEMPLATE = (Path(__file__).parent / "review_page.html").read_text(encoding="utf-8")
STAGE_LABELS = {"drafting": "Drafting", "awaiting_review": "Awaiting your review",
                "revising": "Revising", "publishing": "Publishing", "published": "Published",
                "rejected": "Rejected", "timed_out": "Timed out", "failed": "Failed",
                "cancelled": "Cancelled", "terminated": "Cancelled"}
MAX_PENDING_PAGE = 100
# How long a follow link may wait for the next draft: the longest a round can last.
FOLLOW_WINDOW = timedelta(hours=MAX_TIMEOUT_HOURS)
NO_STORE = {"Cache-Control": "no-store"}
# Continuation tokens are the backend's own (Azure Storage's are base64 text): passed on
# as they are, but only in that alphabet and size.
CONTINUATION = re.compile(r"[A-Za-z0-9+/_=-]{1,2048}")


@bp.route(route="hitl/review/{instanceId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def hitl_review_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    page = handles_http_errors(_review_page)
    reply = await page(req, client)
    if reply.status_code != 200:
        message = reply.get_body().decode("utf-8", "replace")
        return html_response(error_page(reply.status_code, _error_text(message)), reply.status_code)
    return reply


async def _review_page(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id, grant = linked_review(req)
    view = public_view(await ReviewClient(client).get(instance_id))
    if view["finished"]:
        require_last_round(grant, view)
    elif grant.round != view["round"]:
        raise HttpError(403, f"this link is for round {grant.round}, but round {view['round']} "
                             "is under review now: open the newest link")
    nonce = secrets.token_urlsafe(16)
    return html_response(PAGE_TEMPLATE.replace("{{NONCE}}", nonce), 200, nonce)


@bp.route(route="hitl/review/{instanceId}/state", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_review_state(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, grant = linked_review(req)
    view = public_view(await ReviewClient(client).get(instance_id))
    awaiting = not view["finished"] and view["stage"] in DECIDABLE_STAGES
    if view["finished"]:
        require_last_round(grant, view)
        return json_response(view, headers=NO_STORE)
    if grant.round == view["round"] and not grant.follows:
        view["canDecide"] = awaiting
        return json_response(view, headers=NO_STORE)
    if grant.follows and grant.round == view["round"] and awaiting:
        # The page that rejected the previous round gets this round's link.
        view["token"] = renewed_token(instance_id, view)
        view["canDecide"] = True
        return json_response(view, headers=NO_STORE)
    if grant.follows and grant.round in (view["round"], view["round"] + 1):
        return json_response(view, headers=NO_STORE)  # the next draft is still being written
    raise HttpError(403, f"this link is for round {grant.round}, but round {view['round']} "
                         "is under review now: open the newest link")


@bp.route(route="hitl/review/{instanceId}/decision", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_review_decision(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, grant = linked_review(req)
    requested = Decision.from_json(json_body(req))
    if grant.follows:
        raise HttpError(403, "this link can follow the review but not decide: open the newest link")
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    if not review.finished and grant.round != review.status.round:
        raise HttpError(403, f"this link is for round {grant.round}, but round {review.status.round} "
                             "is under review")
    page_decision = Decision(requested.approved, requested.feedback, grant.round)
    decision = bind_to_round(page_decision, review, reviewer_of(req, "review link"))
    delivery = await reviews.deliver(instance_id, APPROVAL_EVENT, decision.to_event(), decision.round)
    extra = {}
    if not decision.approved:
        extra["followToken"] = sign(ReviewGrant(instance_id, decision.round + 1,
                                                grant.expires_at + FOLLOW_WINDOW, follows=True),
                                    load_settings().link_signing_key)
    return decision_reply(req, instance_id, decision, delivery, extra)


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
    settings = load_settings()
    items = [pending_item(r, settings) for r in reviews if r.status.awaiting_review]
    return json_response({"items": items, "continuation": next_token or None})


def pending_item(review: Review, settings) -> dict:
    status = review.status
    return {"instanceId": review.instance_id, "topic": status.topic, "round": status.round,
            "maxRounds": status.max_rounds, "deadline": status.deadline,
            "createdTime": review.created_time.isoformat() if review.created_time else None,
            "notification": status.notification, "reviewUrl": link_for(review, settings)}


@bp.route(route="hitl/cancel/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_cancel(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Ask the review to end. It takes the cancel in the order events arrived: a cancel
    that comes after an approval is refused (409), one that comes first ends the review."""
    instance_id = instance_id_param(req)
    cancel = cancel_request(req).bound(reviewer_of(req, "function key"), new_event_id())
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    if review.finished:
        raise HttpError(409, f"the review is already {review.runtime_status}")
    delivery = await reviews.deliver(instance_id, CANCEL_EVENT, cancel.to_event(), None)
    body = {"instanceId": instance_id, "reason": cancel.reason}
    if delivery.outcome is not None and delivery.outcome.kind == "applied":
        return json_response({"message": "The review was cancelled.", **body})
    if delivery.outcome is not None:
        raise HttpError(409, f"the review was not cancelled: {delivery.outcome.reason}", **body)
    if delivery.review is not None and delivery.review.finished:
        raise HttpError(409, f"the review ended ({delivery.review.runtime_status}) before the cancel "
                             "was taken", **body)
    status_url = api_url(req, f"hitl/status/{instance_id}")
    return json_response({"message": "The cancel was delivered; the review has not taken it yet.",
                          "statusQueryGetUri": status_url, **body}, status=202,
                         headers={"Location": status_url, "Retry-After": "2"})


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
    if review.finished or not review.status.awaiting_review:
        raise HttpError(409, f"no draft is awaiting review (stage: {shown_status(review).stage}); "
                             "only an undecided round's deadline can move")
    extend = requested.bound(review.status.round, reviewer_of(req, "function key"), new_event_id())
    delivery = await reviews.deliver(instance_id, EXTEND_EVENT, extend.to_event(), extend.round)
    body = {"instanceId": instance_id, "round": extend.round, "hours": extend.hours}
    if delivery.outcome is not None and delivery.outcome.kind == "applied":
        change = delivery.outcome.decision
        return json_response({"message": f"The deadline of round {extend.round} moved to {change['to']}.",
                              "deadline": change["to"], "previousDeadline": change["from"], **body})
    if delivery.outcome is not None:
        raise HttpError(409, f"the deadline did not move: {delivery.outcome.reason}", **body)
    if delivery.review is not None and delivery.review.finished:
        raise HttpError(409, f"the review ended ({delivery.review.runtime_status}) before the "
                             "deadline change was taken", **body)
    status_url = api_url(req, f"hitl/status/{instance_id}")
    return json_response({"message": "The deadline change was delivered; the review has not taken it yet.",
                          "statusQueryGetUri": status_url, **body}, status=202,
                         headers={"Location": status_url, "Retry-After": "2"})


# -- helpers ---------------------------------------------------------------------------

def require_last_round(grant: ReviewGrant, view: dict) -> None:
    """Only the last round's link (or the follow link its rejection gave) shows how a
    finished review ended; an earlier round's link shows nothing of it."""
    last = view["round"]
    if grant.round == last or (grant.follows and grant.round == last + 1):
        return
    raise HttpError(403, f"this link is for round {grant.round}; the review has ended, and only "
                         f"the link of its last round ({last}) shows the outcome")


def linked_review(req: func.HttpRequest) -> tuple[str, ReviewGrant]:
    """The review a signed-link request is about, and what its token grants."""
    instance_id = instance_id_param(req)
    return instance_id, check_link(req, instance_id)


def check_link(req: func.HttpRequest, instance_id: str) -> ReviewGrant:
    key = load_settings().link_signing_key
    if key is None:
        raise HttpError(503, "review links are disabled on this app: HITL_REVIEW_SIGNING_KEY is not set")
    try:
        return verify(req.params.get("token", ""), instance_id, datetime.now(timezone.utc), key)
    except InvalidLink as exc:
        raise HttpError(403, str(exc)) from None


def renewed_token(instance_id: str, view: dict) -> str:
    grant = ReviewGrant(instance_id, view["round"], datetime.fromisoformat(view["deadline"]))
    return sign(grant, load_settings().link_signing_key)


def link_for(review: Review, settings) -> Optional[str]:
    key, deadline = settings.link_signing_key, review.status.deadline
    if key is None or not deadline:
        return None
    grant = ReviewGrant(review.instance_id, review.status.round, datetime.fromisoformat(deadline))
    return review_url(settings.public_base_url, grant, key)


def public_view(review: Review) -> dict:
    """What a reviewer may see of a review: its own content and state, nothing else."""
    status = shown_status(review)
    draft, message = status.draft, status.message
    if review.runtime_status == "Completed" and isinstance(review.output, dict):
        draft = {"title": review.output.get("title"), "content": review.output.get("content")}
    elif review.runtime_status == "Failed" and not message:
        message = review.output if isinstance(review.output, str) else "The review failed."
    return {
        "instanceId": review.instance_id, "runtimeStatus": review.runtime_status,
        "stage": status.stage, "stageLabel": STAGE_LABELS.get(status.stage, status.stage),
        "round": status.round, "maxRounds": status.max_rounds, "topic": status.topic,
        "message": message, "deadline": status.deadline if status.awaiting_review else None,
        "draft": draft, "decisions": list(status.decisions), "earlierDrafts": list(status.earlier_drafts),
        "finished": review.finished, "canDecide": False,
        "createdTime": review.created_time.isoformat() if review.created_time else "",
    }


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


def html_response(body: str, status: int, nonce: str = "") -> func.HttpResponse:
    sources = f"'nonce-{nonce}'" if nonce else "'none'"
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers={
        "Content-Security-Policy": f"default-src 'none'; script-src {sources}; style-src {sources}; "
                                   "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                                   "frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", **NO_STORE})


def _error_text(body: str) -> str:
    try:
        return json.loads(body).get("error", body)
    except (ValueError, AttributeError):
        return body


def error_page(status: int, reason: str) -> str:
    titles = {400: "Bad request", 403: "This review link cannot be used", 404: "Review not found",
              503: "Review links are disabled"}
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} "
            f"{titles.get(status, 'Error')}</title></head><body><main><h1>{titles.get(status, 'Error')}</h1>"
            f"<p>{escape(reason)}</p><p>Ask the review's owner for a fresh link.</p></main></body></html>")
