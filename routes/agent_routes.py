"""``POST /api/agents/WriterAgent/run``: talk to the writer directly, in threads."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Optional

import azure.durable_functions as df
import azure.functions as func

from shared_code.models import AgentMessage, ValidationError, durable_payload, parse_json_object
from shared_code.review_status import FINISHED

from .http_helpers import HttpError, api_url, handles_http_errors, instance_id_param, json_response, media_type
from .review_client import BackendUnavailable

bp = df.Blueprint()

AGENT = "writer_agent_turn"
THREAD_PREFIX = "writer-"
WAIT_SECONDS = 120.0


@bp.route(route="agents/WriterAgent/run", methods=["POST"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def writer_agent_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    message = read_message(req)
    thread_id = message.thread_id or f"{THREAD_PREFIX}{uuid.uuid4().hex}"
    message_id = uuid.uuid4().hex
    turns = await earlier_turns(client, thread_id) if message.thread_id else []
    try:
        await client.start_new(AGENT, thread_id, {"turns": turns, "message": message.message,
                                                  "message_id": message_id})
    except Exception as exc:
        # The extension refuses to start an id that is running (a 500 carrying
        # OrchestrationAlreadyExistsException): another message of this thread came first.
        status = await thread_status(client, thread_id)
        if status is not None and status.runtime_status.value not in FINISHED:
            raise HttpError(409, f"thread '{thread_id}' is still answering the previous message") from None
        raise BackendUnavailable("the Durable backend could not start the turn just now; retry shortly") from exc
    status_url = api_url(req, f"agents/WriterAgent/threads/{thread_id}")
    if not wants_to_wait(req, message):
        return json_response({"thread_id": thread_id, "status": "accepted",
                              "statusQueryGetUri": status_url}, status=202,
                             headers={"Location": status_url})
    return await reply_when_done(client, thread_id, message_id, status_url)


@bp.route(route="agents/WriterAgent/threads/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def writer_agent_thread(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    thread_id = instance_id_param(req)
    status = await thread_status(client, thread_id)
    if status is None:
        raise HttpError(404, f"no thread with id '{thread_id}'")
    return json_response(thread_body(status))


async def thread_status(client: df.DurableOrchestrationClient, thread_id: str, show_input: bool = False):
    """A writer thread's status; None for an id that is no writer thread (a review, say),
    so a thread id can never address another orchestration."""
    if not thread_id.startswith(THREAD_PREFIX):
        return None
    status = await client.get_status(thread_id, show_input=show_input)
    if status is None or status.runtime_status is None or status.name != AGENT:
        return None
    return status


def read_message(req: func.HttpRequest) -> AgentMessage:
    """A JSON body, or the message as plain text (as Agent Framework's run route takes it)."""
    if media_type(req).endswith("json"):
        return AgentMessage.from_json(parse_json_object(req.get_body()))
    body = req.get_body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("request body is not valid UTF-8") from None
    if text.lstrip().startswith("{"):
        return AgentMessage.from_json(parse_json_object(body))
    return AgentMessage.from_text(text)


def wants_to_wait(req: func.HttpRequest, message: AgentMessage) -> bool:
    header = (req.headers.get("x-ms-wait-for-response") or "").strip().lower()
    if header in ("true", "false"):
        return header == "true"
    return message.wait_for_response is not False


async def earlier_turns(client: df.DurableOrchestrationClient, thread_id: str) -> list:
    status = await thread_status(client, thread_id, show_input=True)  # the SDK's default hides it
    if status is None:
        raise HttpError(404, f"no thread with id '{thread_id}'")
    runtime = status.runtime_status.value
    if runtime not in FINISHED:
        raise HttpError(409, f"thread '{thread_id}' is still answering the previous message")
    if runtime == "Completed" and isinstance(status.output, dict):
        return status.output.get("turns", [])
    earlier = durable_payload(status.input_)  # a failed turn can be retried
    return earlier.get("turns", []) if isinstance(earlier, dict) else []


async def reply_when_done(client, thread_id: str, message_id: str, status_url: str) -> func.HttpResponse:
    """The reply to this message: once its turn has finished, or once the thread has moved
    on to another message (a later turn may have replaced this one as soon as it ended)."""
    deadline, pause = time.monotonic() + WAIT_SECONDS, 0.05
    while time.monotonic() < deadline:
        status = await client.get_status(thread_id)
        finished = status.runtime_status and status.runtime_status.value in FINISHED
        answering = status.custom_status.get("message_id") if isinstance(status.custom_status, dict) else None
        if finished or answering not in (None, message_id):
            reply = await own_reply(client, thread_id, message_id)
            if reply is not None:
                return reply
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 1.0)
    return json_response({"thread_id": thread_id, "status": "running",
                          "statusQueryGetUri": status_url}, status=202)


async def own_reply(client, thread_id: str, message_id: str) -> Optional[func.HttpResponse]:
    """The reply to ``message_id``: its own turn's outcome, or, if a later turn replaced it,
    the copy that turn kept of it; 409 when the thread moved on without it. None while its
    turn is still running."""
    status = await client.get_status(thread_id, show_input=True)
    run = durable_payload(status.input_)
    run = run if isinstance(run, dict) else {}
    if run.get("message_id") == message_id:
        if status.runtime_status.value not in FINISHED:
            return None
        body = thread_body(status)
        return json_response(body, status=200 if body["status"] == "Completed" else 502)
    for turn in run.get("turns", []):
        if isinstance(turn, dict) and turn.get("message_id") == message_id:
            return json_response({"thread_id": thread_id, "status": "Completed", "turn": turn.get("turn"),
                                  "title": turn.get("title"), "response": turn.get("content"),
                                  "writer": turn.get("writer")})
    raise HttpError(409, f"thread '{thread_id}' took another message in place of this one "
                         "(sent at the same time); send it again")


def thread_body(status) -> dict:
    runtime = status.runtime_status.value
    body: dict[str, Optional[object]] = {"thread_id": status.instance_id, "status": runtime}
    if runtime == "Completed" and isinstance(status.output, dict):
        body.update({k: status.output.get(k) for k in ("turn", "title", "response", "writer")})
    elif runtime in ("Failed", "Terminated"):
        body["error"] = status.output
    return body
