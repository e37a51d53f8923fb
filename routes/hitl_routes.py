"""The reviewer-facing routes: start a review, read its status, decide on a draft."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Optional

import azure.durable_functions as df
import azure.functions as func

from shared_code.models import (APPROVAL_EVENT, ROUNDLESS_DECISION_GRACE_SECONDS, Decision,
                                RunRequest)
from shared_code.settings import load_settings

from .http_helpers import (STATUS_RETRY_AFTER, HttpError, api_url, delivery_reply, handles_http_errors,
                           instance_id_param, json_body, json_response)
from .review_client import Delivery, Review, ReviewClient, new_event_id, new_review_id

bp = df.Blueprint()


@bp.route(route="hitl/run", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    run = RunRequest.from_json(json_body(req), default_reminders=load_settings().default_reminders)
    instance_id = await ReviewClient(client).start(run.to_json(), new_review_id())
    status_url = api_url(req, f"hitl/status/{instance_id}")
    return json_response({
        "message": "Review started: the writer is drafting.", "topic": run.topic,
        "instanceId": instance_id, "statusQueryGetUri": status_url,
    }, status=202, headers={"Location": status_url, "Retry-After": STATUS_RETRY_AFTER})


@bp.route(route="hitl/status/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return json_response(status_body(await ReviewClient(client).get(instance_id_param(req))))


def status_body(review: Review) -> dict:
    """The reference's status shape: runtime status, custom status, the request as
    ``input``, the output once published, and why it ended when it did not publish."""
    status = shown_status(review)
    body = {
        "instanceId": review.instance_id, "runtimeStatus": review.runtime_status,
        "customStatus": status.to_custom_status(), "workflowStatus": status.message or review.runtime_status,
        "input": status.request,
        "output": review.output if review.runtime_status == "Completed" else None,
        "createdTime": review.created_time.isoformat() if review.created_time else None,
        "lastUpdatedTime": review.last_updated_time.isoformat() if review.last_updated_time else None,
    }
    if review.runtime_status in ("Failed", "Terminated"):
        reason = review.output if isinstance(review.output, str) else review.runtime_status
        body["error"] = reason
        body["failureDetails"] = {"errorType": "ReviewEnded" if status.stage in _ENDED_STAGES else review.runtime_status,
                                  "errorMessage": status.message or reason}
    return body


_ENDED_STAGES = ("rejected", "timed_out", "failed", "cancelled")


def shown_status(review: Review):
    """The custom status, except for an instance terminated from outside the review, whose
    last custom status still says what it was doing when it was stopped."""
    if review.runtime_status == "Terminated":
        reason = review.output if isinstance(review.output, str) and review.output else "no reason given"
        return replace(review.status, stage="terminated", message=f"Terminated: {reason}",
                       draft=None, deadline=None, reviewable_since=None, notification=None)
    return review.status


@bp.route(route="hitl/approve/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_approve(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = instance_id_param(req)
    requested = Decision.from_json(json_body(req))
    reviews = ReviewClient(client)
    review = await reviews.get(instance_id)
    decision = bind_to_round(requested, review, reviewer_of(req, "function key"))
    delivery = await reviews.deliver(instance_id, APPROVAL_EVENT, decision.to_event(), decision.round)
    return decision_reply(req, instance_id, decision, delivery)


def bind_to_round(requested: Decision, review: Review, reviewer: str,
                  now: Optional[datetime] = None) -> Decision:
    """Tie a decision to the round under review, or refuse it with 409 and the reason."""
    now = now or datetime.now(timezone.utc)
    status = review.status
    refusal = review.refusal(requested.round)
    if refusal is not None:
        if review.being_drafted and requested.round in (None, status.round):
            refusal += ("; decide it once the status shows awaiting_review" if requested.round is not None else
                        f"; decide its draft with \"round\": {status.round} once the status shows "
                        "awaiting_review, so that the decision cannot land on a draft you have not seen")
        raise HttpError(409, refusal)
    current = status.round
    if requested.round is None and status.reviewable_since:
        waited = (now - datetime.fromisoformat(status.reviewable_since)).total_seconds()
        if waited < ROUNDLESS_DECISION_GRACE_SECONDS:
            raise HttpError(409, f"round {current}'s draft became reviewable {max(waited, 0):.1f} s ago; a "
                                 f"decision without \"round\" is taken only for a draft reviewable for "
                                 f"{ROUNDLESS_DECISION_GRACE_SECONDS:g} s or more, so that it cannot land "
                                 f"on a draft nobody saw. Send \"round\": {current} to decide this draft.")
    if status.deadline and now >= datetime.fromisoformat(status.deadline):
        raise HttpError(409, f"the deadline for round {current} has passed ({status.deadline})")
    return requested.bound(current, reviewer, new_event_id())


def decision_reply(req: func.HttpRequest, instance_id: str, decision: Decision,
                   delivery: Delivery, extra: Optional[dict] = None) -> func.HttpResponse:
    verdict = "approval" if decision.approved else "rejection"
    body = {"instanceId": instance_id, "approved": decision.approved, "round": decision.round,
            "decision": decision.to_event(), **(extra or {})}
    return delivery_reply(req, instance_id, delivery, verdict,
                          f"The {verdict} of round {decision.round} was applied.", body, decision.round)


def reviewer_of(req: func.HttpRequest, channel: str) -> str:
    """The signed-in reviewer when App Service Authentication vouches for the header,
    otherwise the channel the decision came by ("function key", "review link")."""
    if load_settings().app_service_auth:
        return req.headers.get("x-ms-client-principal-name") or channel
    return channel


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})
