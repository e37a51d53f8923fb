"""The reviewer's side in a browser, and the owner's routes.

Anonymous at the host level, checked here by the signed token:
- ``GET  /api/hitl/review/{id}?token=``          the review page (static HTML, data via JS)
- ``GET  /api/hitl/review/{id}/state?token=``    what the page shows, as JSON
- ``POST /api/hitl/review/{id}/decision?token=`` the page's approve / reject

Function-key protected (the app's default level):
- ``GET  /api/hitl/pending``                     reviews waiting for a decision
- ``POST /api/hitl/cancel/{id}``                 terminate a review with a reason
"""
from __future__ import annotations

import base64
import json
import secrets
from html import escape
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import azure.durable_functions as df
import azure.functions as func

from shared_code.models import MAX_TIMEOUT_HOURS, CancelRequest, Decision, ValidationError
from shared_code.review_links import InvalidLink, ReviewGrant, review_url, sign, verify
from shared_code.settings import load_settings

from .hitl_routes import FINISHED, bind_to_round, reviewer_of
from .http_helpers import HttpError, handles_http_errors, instance_id_param, json_body, json_response

bp = df.Blueprint()

PAGE_TEMPLATE = (Path(__file__).parent / "review_page.html").read_text(encoding="utf-8")
STAGE_LABELS = {"drafting": "Drafting", "awaiting_review": "Awaiting your review",
                "revising": "Revising", "publishing": "Publishing", "published": "Published",
                "rejected": "Rejected", "timed_out": "Timed out", "failed": "Failed",
                "terminated": "Cancelled"}
MAX_PENDING_PAGE = 100
# How long a follow link may wait for the next draft: the longest a round can last.
FOLLOW_WINDOW = timedelta(hours=MAX_TIMEOUT_HOURS)


@bp.route(route="hitl/review/{instanceId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def hitl_review_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        instance_id, grant = linked_review(req)
        status = await existing(client, instance_id)
        view = public_view(status)
        if not view["finished"] and grant.round != view["round"]:
            raise HttpError(403, f"this link is for round {grant.round}, but round {view['round']} "
                                 "is under review now: open the newest link")
    except HttpError as exc:
        return html_response(error_page(exc.status, str(exc)), exc.status)
    nonce = secrets.token_urlsafe(16)
    return html_response(PAGE_TEMPLATE.replace("{{NONCE}}", nonce), 200, nonce)


@bp.route(route="hitl/review/{instanceId}/state", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_review_state(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, grant = linked_review(req)
    view = public_view(await existing(client, instance_id))
    awaiting = not view["finished"] and view["stage"] == "awaiting_review"
    if view["finished"] or (grant.round == view["round"] and not grant.follows):
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
    try:
        requested = Decision.from_json(json_body(req))
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None
    if not requested.approved and not requested.feedback:
        raise HttpError(400, "a rejection needs feedback for the writer")
    if grant.follows:
        raise HttpError(403, "this link can follow the review but not decide: open the newest link")
    status = await existing(client, instance_id)
    current = public_view(status)["round"]
    if status.runtime_status.value not in FINISHED and grant.round != current:
        raise HttpError(403, f"this link is for round {grant.round}, but round {current} is under review")
    reviewer = reviewer_of(req, otherwise="link")
    decision = bind_to_round(Decision(requested.approved, requested.feedback, grant.round), status, reviewer)
    try:
        await client.raise_event(instance_id, "ApprovalEvent", decision.to_event())
    except Exception:
        raise HttpError(409, "the review finished before the decision arrived") from None
    verdict = "Approved" if decision.approved else "Rejected"
    reply = {"instanceId": instance_id, "decision": decision.to_event()}
    if not decision.approved:
        reply["followToken"] = sign(ReviewGrant(instance_id, decision.round + 1,
                                                grant.expires_at + FOLLOW_WINDOW, follows=True),
                                    load_settings().link_signing_key)
    return json_response({**reply,
                          "message": f"{verdict} round {decision.round}. "
                                     + ("Publishing…" if decision.approved else "The writer is revising…")})


@bp.route(route="hitl/pending", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_pending(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    top = page_size(req.params.get("top"))
    after = read_cursor(req.params.get("continuation"))
    running = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Running])
    waiting = sorted((v for v in map(public_view, running) if v["stage"] == "awaiting_review"),
                     key=lambda v: (v["createdTime"], v["instanceId"]), reverse=True)
    if after:
        waiting = [v for v in waiting if (v["createdTime"], v["instanceId"]) < after]
    page = waiting[:top]
    settings = load_settings()
    items = [{"instanceId": v["instanceId"], "topic": v["topic"], "round": v["round"],
              "maxRounds": v["maxRounds"], "deadline": v["deadline"], "createdTime": v["createdTime"],
              "reviewUrl": link_for(v, settings)} for v in page]
    more = len(waiting) > top
    return json_response({"items": items, "continuation": make_cursor(page[-1]) if more else None})


@bp.route(route="hitl/cancel/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_cancel(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = instance_id_param(req)
    reason = cancel_reason(req)
    status = await existing(client, instance_id)
    if status.runtime_status.value in FINISHED:
        raise HttpError(409, f"the review is already {status.runtime_status.value}")
    await client.terminate(instance_id, reason)
    return json_response({"instanceId": instance_id, "message": "The review is being cancelled.",
                          "reason": reason}, status=202)


# -- helpers ---------------------------------------------------------------------------

NO_STORE = {"Cache-Control": "no-store"}


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


def link_for(view: dict, settings) -> Optional[str]:
    key = settings.link_signing_key
    if key is None or not view["deadline"]:
        return None
    grant = ReviewGrant(view["instanceId"], view["round"], datetime.fromisoformat(view["deadline"]))
    return review_url(settings.public_base_url, grant, key)


async def existing(client: df.DurableOrchestrationClient, instance_id: str):
    status = await client.get_status(instance_id)
    if status is None or status.runtime_status is None:
        raise HttpError(404, f"no review with id '{instance_id}'")
    return status


def public_view(status) -> dict:
    """What a reviewer may see of a review: its own content and state, nothing else."""
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    runtime = status.runtime_status.value
    stage = "terminated" if runtime == "Terminated" else custom.get("stage", "drafting")
    finished = runtime in FINISHED
    output = status.output
    draft = custom.get("draft")
    message = custom.get("message", "")
    if runtime == "Completed" and isinstance(output, dict):
        draft = {"title": output.get("title"), "content": output.get("content")}
    elif runtime == "Terminated":
        message = f"Cancelled: {output}" if output else "Cancelled."
    elif runtime == "Failed":
        message = output if isinstance(output, str) else "The review failed."
    state_input = status.input_ if isinstance(status.input_, dict) else {}
    return {
        "instanceId": status.instance_id, "runtimeStatus": runtime, "stage": stage,
        "stageLabel": STAGE_LABELS.get(stage, stage), "round": custom.get("round", 1),
        "maxRounds": custom.get("maxRounds", state_input.get("max_review_attempts", 1)),
        "topic": custom.get("topic", state_input.get("topic", "")), "message": message,
        "deadline": custom.get("deadline") if stage == "awaiting_review" else None,
        "draft": draft, "decisions": custom.get("decisions", []),
        "earlierDrafts": custom.get("earlierDrafts", []), "finished": finished,
        "canDecide": False,
        "createdTime": status.created_time.isoformat() if status.created_time else "",
    }


def page_size(raw: Optional[str]) -> int:
    if raw is None:
        return 20
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PENDING_PAGE:
        raise HttpError(400, f"'top' must be an integer from 1 to {MAX_PENDING_PAGE}")
    return int(raw)


def make_cursor(view: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps([view["createdTime"], view["instanceId"]]).encode()).decode()


def read_cursor(raw: Optional[str]) -> Optional[tuple]:
    if not raw:
        return None
    try:
        created, instance_id = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return str(created), str(instance_id)
    except (ValueError, TypeError):
        raise HttpError(400, "'continuation' is not a token this route returned") from None


def cancel_reason(req: func.HttpRequest) -> str:
    if not req.get_body():
        return CancelRequest.reason
    try:
        return CancelRequest.from_json(json_body(req)).reason
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None


def html_response(body: str, status: int, nonce: str = "") -> func.HttpResponse:
    sources = f"'nonce-{nonce}'" if nonce else "'none'"
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers={
        "Content-Security-Policy": f"default-src 'none'; script-src {sources}; style-src {sources}; "
                                   "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                                   "frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", **NO_STORE})


def error_page(status: int, reason: str) -> str:
    titles = {400: "Bad request", 403: "This review link cannot be used", 404: "Review not found",
              503: "Review links are disabled"}
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} "
            f"{titles.get(status, 'Error')}</title></head><body><main><h1>{titles.get(status, 'Error')}</h1>"
            f"<p>{escape(reason)}</p><p>Ask the review's owner for a fresh link.</p></main></body></html>")
