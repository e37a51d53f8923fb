"""The reviewer-facing routes: start a review, read its status, decide on a draft."""
from __future__ import annotations

from datetime import datetime, timezone

import azure.durable_functions as df
import azure.functions as func

from shared_code.models import APPROVAL_EVENT, Decision, RunRequest, ValidationError
from shared_code.settings import load_settings

from .http_helpers import (HttpError, api_url, handles_http_errors, instance_id_param, json_body,
                           json_response)

bp = df.Blueprint()

FINISHED = ("Completed", "Failed", "Terminated")


@bp.route(route="hitl/run", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        run = RunRequest.from_json(json_body(req))
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None
    instance_id = await client.start_new("hitl_orchestration", None, {
        "topic": run.topic, "max_review_attempts": run.max_review_attempts,
        "approval_timeout_hours": run.approval_timeout_hours})
    status_url = api_url(req, f"hitl/status/{instance_id}")
    return json_response({
        "message": "Review started: the writer is drafting.", "topic": run.topic,
        "instanceId": instance_id, "statusQueryGetUri": status_url,
    }, status=202, headers={"Location": status_url, "Retry-After": "2"})


@bp.route(route="hitl/status/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    status = await _existing_status(client, instance_id_param(req))
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    runtime = status.runtime_status.value
    body = {
        "instanceId": status.instance_id, "runtimeStatus": runtime, "customStatus": custom,
        "workflowStatus": custom.get("message", runtime), "input": status.input_,
        "output": status.output if runtime != "Failed" else None,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
    }
    if runtime in ("Failed", "Terminated"):
        body["error"] = status.output if isinstance(status.output, str) else runtime
    return json_response(body)


@bp.route(route="hitl/approve/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_approve(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = instance_id_param(req)
    try:
        requested = Decision.from_json(json_body(req))
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None
    status = await _existing_status(client, instance_id)
    decision = bind_to_round(requested, status, reviewer_of(req))
    try:
        await client.raise_event(instance_id, APPROVAL_EVENT, decision.to_event())
    except Exception:  # the instance finished between the status read and the event
        raise HttpError(409, "the review finished before the decision arrived") from None
    verdict = "approval" if decision.approved else "rejection"
    return json_response({"instanceId": instance_id, "decision": decision.to_event(),
                          "message": f"The {verdict} of round {decision.round} was sent."})


def bind_to_round(requested: Decision, status, reviewer: str) -> Decision:
    """Tie a decision to the round under review, or refuse it with 409 and the reason."""
    runtime = status.runtime_status.value
    if runtime in FINISHED:
        raise HttpError(409, f"the review is {runtime}; decisions are no longer accepted")
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    stage, current = custom.get("stage"), custom.get("round")
    if stage != "awaiting_review":
        raise HttpError(409, f"no draft is awaiting review (stage: {stage or runtime}); "
                             "retry when the status shows awaiting_review")
    if requested.round is not None and requested.round != current:
        raise HttpError(409, f"the decision is for round {requested.round}, "
                             f"but round {current} is under review")
    deadline = custom.get("deadline")
    if deadline and datetime.now(timezone.utc) >= datetime.fromisoformat(deadline):
        raise HttpError(409, f"the deadline for round {current} has passed ({deadline})")
    return Decision(requested.approved, requested.feedback, current, reviewer)


def reviewer_of(req: func.HttpRequest, otherwise: str = "key") -> str:
    """The signed-in reviewer when App Service Authentication vouches for the header."""
    if load_settings().app_service_auth:
        return req.headers.get("x-ms-client-principal-name") or otherwise
    return otherwise


async def _existing_status(client: df.DurableOrchestrationClient, instance_id: str):
    status = await client.get_status(instance_id)
    if status is None or status.runtime_status is None:
        raise HttpError(404, f"no review with id '{instance_id}'")
    return status


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})
