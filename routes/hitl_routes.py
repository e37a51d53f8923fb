"""The reviewer-facing routes: start a review, read its status, decide on a draft, resolve
or reopen a comment on a passage."""
from __future__ import annotations

import re

import azure.durable_functions as df
import azure.functions as func

from channels.teams_contacts import read_contacts
from shared_code.models import CONTACTS_INPUT_KEY, CommentRequest, Decision, RunRequest
from shared_code.review_policy import ReviewPolicy
from shared_code.settings import load_settings

from .decisions import change_comment, decide, decision_reply, key_caller
from .http_helpers import (STATUS_RETRY_AFTER, api_url, delivery_reply, handles_http_errors, instance_id_param, json_body,
                           json_response)
from .review_client import Review, ReviewClient, new_review_id

bp = df.Blueprint()


@bp.route(route="hitl/run", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    settings = load_settings()
    run = RunRequest.from_json(json_body(req), default_reminders=settings.default_reminders,
                               default_review=settings.default_review)
    start = run.to_start_input(settings.house_rules, slack=settings.slack_enabled)
    if settings.teams_enabled and run.review:
        contacts = await read_contacts(client, policy_people(run.review))
        if contacts:  # beside the request; the orchestrator keeps them in the review's state
            start[CONTACTS_INPUT_KEY] = contacts
    instance_id = await ReviewClient(client).start(start, new_review_id())
    status_url = api_url(req, f"hitl/status/{instance_id}")
    return json_response({
        "message": "Review started: the writer is drafting.", "topic": run.topic,
        "instanceId": instance_id, "statusQueryGetUri": status_url,
    }, status=202, headers={"Location": status_url, "Retry-After": STATUS_RETRY_AFTER})


def policy_people(policy: dict) -> list[str]:
    """The people a policy's seats name (user:…), whose Teams chats a review needs."""
    return [seat.value for stage in ReviewPolicy.from_json(policy).stages for seat in stage.seats if seat.personal]


@bp.route(route="hitl/status/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return json_response(status_body(await ReviewClient(client).get(instance_id_param(req))))


def status_body(review: Review) -> dict:
    """The reference's status shape: runtime status, custom status, the request as
    ``input``, the output once published, and why it ended when it did not publish."""
    status = review.shown
    body = {
        "instanceId": review.instance_id, "runtimeStatus": review.runtime_status,
        "customStatus": status.to_json(), "workflowStatus": status.message or review.runtime_status,
        "input": status.request,
        "output": review.output if review.runtime_status == "Completed" else None,
        "createdTime": review.created_time.isoformat() if review.created_time else None,
        "lastUpdatedTime": review.last_updated_time.isoformat() if review.last_updated_time else None,
    }
    if review.runtime_status in ("Failed", "Terminated"):
        ended_itself = status.phase.ended_by_the_review
        reason = failure_reason(review, ended_itself)
        body["error"] = reason
        body["failureDetails"] = {"errorType": "ReviewEnded" if ended_itself else review.runtime_status,
                                  "errorMessage": status.message if ended_itself else reason}
    return body


def failure_reason(review: Review, ended_itself: bool) -> str:
    """Why the review ended, in one line. A review that ended itself says why in its own
    words; any other failure is a bug whose output may carry a stack trace and server
    paths, so callers get its first line only when it holds neither."""
    output = review.output if isinstance(review.output, str) and review.output else review.runtime_status
    first_line = output.split("\n", 1)[0].strip()
    if ended_itself or review.runtime_status == "Terminated":
        return first_line
    if "Traceback" in output or re.search(r"[/\\][\w.-]+\.py\b", first_line):
        return "The review failed unexpectedly; the function log has the details."
    return first_line


@bp.route(route="hitl/approve/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_approve(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = instance_id_param(req)
    requested = Decision.from_json(json_body(req))
    caller = key_caller(req, load_settings(), requested.reviewer)
    return decision_reply(req, instance_id, await decide(ReviewClient(client), instance_id, requested, caller))


@bp.route(route="hitl/comments/{instanceId}", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_comment(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Resolve (``{"comment": "c1", "resolved": true}``) or reopen (``"resolved": false``) a
    comment of an earlier round; ``"reviewer"`` names the person the key acts for."""
    instance_id = instance_id_param(req)
    request = CommentRequest.from_json(json_body(req))
    caller = key_caller(req, load_settings(), request.reviewer)
    note, delivery = await change_comment(ReviewClient(client), instance_id, request, caller)
    said = "resolved" if request.resolved else "reopened"
    return delivery_reply(req, instance_id, delivery, "change to the comment", f"Comment {note.comment} was {said}.",
                          {"instanceId": instance_id, "comment": note.comment, "resolved": request.resolved,
                           "by": note.by}, note.round)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    # Async, so the worker answers it on its event loop: a sync function would wait for a
    # thread of the pool and then for the loop again, behind whatever else runs there.
    return json_response({"status": "ok"})
