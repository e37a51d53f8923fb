"""The reviewer's side in a browser, behind a signed link instead of the function key.

- ``GET  /api/hitl/review/{id}?token=``          the review page (static HTML, data via JS)
- ``GET  /api/hitl/review/{id}/state?token=``    what the page shows, as JSON
- ``POST /api/hitl/review/{id}/decision?token=`` the page's approve (optionally edited) / reject
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

from shared_code.models import APPROVAL_EVENT, MAX_TIMEOUT_HOURS, Decision
from shared_code.review_links import InvalidLink, ReviewGrant, sign, verify
from shared_code.settings import load_settings

from .decisions import decide, decision_reply, link_caller
from .draft_view import render_markdown, word_diff
from .http_helpers import (HttpError, handles_http_errors, instance_id_param, json_body, json_response,
                           refusal_of)
from .pages import NO_STORE, error_page, page
from .review_client import Review, ReviewClient

bp = df.Blueprint()
log = logging.getLogger(__name__)

PAGE_TEMPLATE = (Path(__file__).parent / "review_page.html").read_text(encoding="utf-8")
# How long a follow link may wait for the next draft: the longest a round can last.
FOLLOW_WINDOW = timedelta(hours=MAX_TIMEOUT_HOURS)


@bp.route(route="hitl/review/{instanceId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def hitl_review_page(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        instance_id, grant = linked_review(req)
        view = public_view(await ReviewClient(client).get(instance_id))
        check_grant(grant, view)
    except Exception as exc:
        refusal = refusal_of(exc)
        if refusal is None:
            log.exception("the review page failed")
            return error_page(500, "Something went wrong on our side; the function log has the details.")
        status, reason, _, _ = refusal
        return error_page(status, reason, "This review link cannot be used" if status == 403 else "")
    return page(PAGE_TEMPLATE)


@bp.route(route="hitl/review/{instanceId}/state", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_review_state(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, grant = linked_review(req)
    review = await ReviewClient(client).get(instance_id, full=True)
    view = public_view(review)
    check_grant(grant, view)
    view.update(texts_view(review))
    if not view["finished"] and view["decidable"]:
        if grant.follows:  # the page that rejected the previous round gets this round's link
            view["token"] = renewed_token(instance_id, view)
        view["canDecide"] = True
    return json_response(view, headers=NO_STORE)


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
    settings = load_settings()
    caller = link_caller(req, settings, grant, review.status)
    # A page decides the round its link was made for, whatever the body says.
    page_decision = replace(requested, round=grant.round, reviewer=None)
    decided = await decide(reviews, instance_id, page_decision, caller, review)
    extra = {}
    if not decided.decision.approved and decided.delivery is not None:
        extra["followToken"] = sign(replace(grant, round=grant.round + 1, expires_at=grant.expires_at + FOLLOW_WINDOW,
                                            follows=True), settings.link_signing_key)
    return decision_reply(req, instance_id, decided, extra)


# -- links -------------------------------------------------------------------------------

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


def check_grant(grant: ReviewGrant, view: dict) -> None:
    """A round's link shows that round; the follow link a rejection gave shows the next
    one, to exchange itself for that round's link once its draft waits; only the last
    round's link (or its follow link) shows how a finished review ended."""
    current = view["round"]
    if grant.round == current or (grant.follows and grant.round == current + 1):
        return
    if view["finished"]:
        raise HttpError(403, f"this link is for round {grant.round}; the review has ended, and only "
                             f"the link of its last round ({current}) shows the outcome")
    raise HttpError(403, f"this link is for round {grant.round}, but round {current} "
                         "is under review now: open the newest link")


def renewed_token(instance_id: str, view: dict) -> str:
    grant = ReviewGrant(instance_id, view["round"], datetime.fromisoformat(view["deadline"]))
    return sign(grant, load_settings().link_signing_key)


# -- what the page shows -----------------------------------------------------------------

def public_view(review: Review) -> dict:
    """What a reviewer may see of a review: its own content and state, nothing else."""
    status = review.shown
    message = status.message
    if review.runtime_status == "Failed" and not message:
        message = review.output if isinstance(review.output, str) else "The review failed."
    decidable = status.awaiting_review and not review.finished
    return {
        "instanceId": review.instance_id, "runtimeStatus": review.runtime_status,
        "stage": status.stage, "stageLabel": status.phase.label,
        "round": status.round, "maxRounds": status.max_rounds, "topic": status.topic,
        "message": message, "deadline": status.deadline if decidable else None,
        "reviewableSince": status.reviewable_since if decidable else None,
        "draft": status.draft, "decisions": list(status.decisions),
        "earlierDrafts": list(status.earlier_drafts), "notification": status.notification,
        "reminders": list(status.reminders), "escalatedAt": status.escalated_at,
        "deadlineChanges": list(status.deadline_changes), "finished": review.finished,
        "decidable": decidable, "canDecide": False,
        "serverTime": datetime.now(timezone.utc).isoformat(),
    }


def texts_view(review: Review) -> dict:
    """The whole texts: the draft (as sent, and rendered from Markdown), the previous
    draft and a word diff against it, and every decision's whole feedback."""
    draft = review.draft
    if review.runtime_status == "Completed" and isinstance(review.output, dict):
        draft = {"title": review.output.get("title"), "content": review.output.get("content")}
    texts = review.texts
    previous = texts.previous_draft if texts and review.status.round > 1 else None
    view: dict = {"draft": draft, "draftHtml": render_markdown(draft["content"]) if draft else None,
                  "previousDraft": previous, "diff": None, "titleDiff": None}
    if draft and previous:
        view["diff"] = word_diff(previous.get("content") or "", draft["content"])
        view["titleDiff"] = word_diff(previous.get("title") or "", draft["title"] or "")
    if texts and texts.decisions:
        by_id = {d.get("id"): d for d in texts.decisions if d.get("id")}
        view_decisions = []
        for shown in review.status.decisions:
            whole = by_id.get(shown.get("id")) or next(
                (d for d in texts.decisions if d.get("round") == shown.get("round")), shown)
            view_decisions.append({**shown, "feedback": whole.get("feedback", shown.get("feedback"))})
        view["decisions"] = view_decisions
    return view
