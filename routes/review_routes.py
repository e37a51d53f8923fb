"""The reviewer's side in a browser, behind a signed link instead of the function key.

- ``GET  /api/hitl/review/{id}?token=``          the review page (static HTML, data via JS)
- ``GET  /api/hitl/review/{id}/state?token=``    what the page shows, as JSON
- ``POST /api/hitl/review/{id}/decision?token=`` the page's approve (optionally edited) / reject
- ``POST /api/hitl/review/{id}/comment?token=``  resolve or reopen a comment of an earlier round
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

from orchestrations import review_comments
from shared_code.models import MAX_TIMEOUT_HOURS, CommentRequest, Decision
from shared_code.review_links import InvalidLink, ReviewGrant, sign, verify
from shared_code.settings import load_settings

from .decisions import (change_comment, change_seat, decide, decision_reply, link_caller, record_first_view,
                        viewer_options)
from .draft_view import render_markdown, word_diff
from .http_helpers import (HttpError, delivery_reply, handles_http_errors, instance_id_param, json_body, json_response,
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
    caller = link_caller(req, load_settings(), grant, review.status)
    you = viewer_options(replace(caller, grant=replace(grant, follows=False)), review.status)
    view["you"] = you
    if not grant.follows and not view["finished"]:
        await record_first_view(ReviewClient(client), review, you, caller)
    if you.get("decided") and view["decidable"]:
        view["stageLabel"] = "Waiting for the other reviewers"
    if not view["finished"] and view["decidable"]:
        # The page that rejected gets the link of the next round when its stage is under review.
        if grant.follows and (grant.stage is None or grant.stage == review.status.stage_index):
            view["token"] = renewed_token(grant, view)
        view["canDecide"] = you["canDecide"] and (not grant.follows or "token" in view)
    return json_response(view, headers=NO_STORE)


@bp.route(route="hitl/review/{instanceId}/claim", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_review_claim(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Claim the seat this link is for (a role or group seat of the stage under review), or
    ``{"release": true}`` to give it back; needs a signed-in person."""
    instance_id, grant = linked_review(req)
    body = json_body(req) if req.get_body() else {}
    release = body.get("release", False)
    if set(body) - {"release"} or not isinstance(release, bool):
        raise HttpError(400, "the body is {} or {\"release\": true}")
    if grant.follows:
        raise HttpError(403, "this link can follow the review but not claim: open the newest link")
    settings = load_settings()
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    caller = link_caller(req, settings, grant, review.status)
    if caller.person is None or not settings.app_service_auth:
        raise HttpError(403, "sign in to claim a seat: a claim tells the others who took it")
    seat = grant.seat if grant.stage == review.status.stage_index else None
    kind = "release" if release else "claim"
    bound, delivery = await change_seat(reviews, instance_id, kind, caller, settings, seat=seat)
    done = f"You claimed seat {bound.seat + 1} until {bound.until}." if kind == "claim" else "The claim was released."
    return delivery_reply(req, instance_id, delivery, kind, done,
                          {"instanceId": instance_id, "change": kind, "seat": bound.seat + 1})


@bp.route(route="hitl/review/{instanceId}/comment", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_review_comment(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Resolve (``{"comment": "c1", "resolved": true}``) or reopen (``"resolved": false``) a
    comment of an earlier round, as the reviewer this link is for."""
    instance_id, grant = linked_review(req)
    request = CommentRequest.from_json(json_body(req), allow_reviewer=False)
    if grant.follows:
        raise HttpError(403, "this link can follow the review but not change it: open the newest link")
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    check_grant(grant, public_view(review))
    caller = link_caller(req, load_settings(), grant, review.status)
    note, delivery = await change_comment(reviews, instance_id, request, caller)
    said = "resolved" if request.resolved else "reopened"
    return delivery_reply(req, instance_id, delivery, "change to the comment", f"Comment {note.comment} was {said}.",
                          {"instanceId": instance_id, "comment": note.comment, "resolved": request.resolved},
                          note.round)


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


def renewed_token(follow: ReviewGrant, view: dict) -> str:
    """The link of the round now under review, for the same seat as the follow link."""
    grant = replace(follow, round=view["round"], expires_at=datetime.fromisoformat(view["deadline"]), follows=False)
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
        "stages": list(status.stages), "stageIndex": status.stage_index,
        "decidable": decidable, "canDecide": False, "comments": list(status.comments),
        "changes": list(status.changes), "check": status.check,
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
    view["comments"] = comments_view(review)
    return view


def comments_view(review: Review) -> list[dict]:
    """Every comment the review holds, in the order they were made: as the status shows it
    now (its state, the writer's latest answer and what became of the quote), with its
    whole texts from the review's state and from the writer's reply in this execution, or
    from the published output. A comment the status leaves out (it shows a window of them
    when they are many) is shown as the state has it, with the writer's answers of this
    execution."""
    texts = review.texts
    held = tuple(texts.comments if texts else ())
    if review.runtime_status == "Completed" and isinstance(review.output, dict):
        held = tuple(c for c in review.output.get("comments") or () if isinstance(c, dict)) or held
    whole = {c.get("id"): c for c in held}
    written = {a.get("id"): a for a in (texts.answers if texts else ())}
    current = review.status.round
    listed = [c for c in review.status.comments if isinstance(c, dict)]
    if not review.status.all_comments_shown:
        in_status = {c.get("id") for c in listed}
        rest = review_comments.answered(held, list(written.values()), current) if written else held
        listed += review_comments.shown(tuple(c for c in rest if c.get("id") not in in_status))
        listed.sort(key=_comment_number)
    shown = []
    for comment in listed:
        full = whole.get(comment.get("id"), {})
        item = {k: v for k, v in comment.items() if k != "cut"}
        item.update({key: full[key] for key in ("quote", "comment", "by", "stage") if key in full})
        answer_round = comment.get("answerRound")
        answers = [a for a in full.get("answers") or () if a.get("round") == answer_round]
        if comment.get("id") in written and answer_round == current:
            item["answer"] = written[comment["id"]].get("answer", item.get("answer"))
        elif answers:
            item["answer"] = answers[-1].get("answer", item.get("answer"))
        shown.append(item)
    return shown


def _comment_number(comment: dict) -> int:
    """A comment's number: its id is "c" and the number (review_comments.added)."""
    number = str(comment.get("id", ""))[1:]
    return int(number) if number.isdigit() else 0
