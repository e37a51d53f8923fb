"""Slack: ``POST /api/hitl/slack/interactions``, the Slack app's interactivity URL.

Anonymous at the Functions host; Slack's request signature (HMAC-SHA256 with the signing
secret, within five minutes) is the credential, checked before the body is read, and a
signature seen before is refused too.

Slack drops an interaction whose answer takes over 3 s, so the answer never waits on
Slack's Web API for longer than ACK_SECONDS from the request's arrival, all calls
together. Identifying the clicker (``users.info``) and deciding run first, within that
budget, so that a click Slack is told about was, as a rule, already taken; when Slack is
slower, the answer goes anyway and the same work goes on after it (a decision is still
made only for the person Slack names); opening the reject dialog shares the budget the
same way. Updating the clicked message and telling the clicker always follow the answer.
Work past the answer is bounded as a whole by FOLLOW_UP_SECONDS. Decisions wait for the
review at most DECISION_PATIENCE_SECONDS and say "sent" when it has not taken them yet.

- Approve: the decision goes to ``decisions.decide`` for the seat the button was made for,
  by the person Slack's directory names (``users.info``); once the review takes it, every
  reviewer's Slack message for that stage shows where the stage stands (``chat.update``,
  entities/seat_messages.py).
- Reject: a dialog asks for the feedback (required); its submission is the decision.
- A click that cannot be taken (another round, a seat someone else holds, a finished
  review) is answered with the reason, visible to the person who clicked only.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Awaitable, Optional
from urllib.parse import parse_qs

import azure.durable_functions as df
import azure.functions as func

from channels import slack
from shared_code.settings import Settings, load_settings

from .channel_decisions import ChannelAnswer, decide_from_channel
from .http_helpers import error_response, json_response
from .review_client import ReviewClient

bp = df.Blueprint()
log = logging.getLogger(__name__)

CHANNEL = "slack"
ACK_SECONDS = 2.5
FOLLOW_UP_SECONDS = 30.0
DECISION_PATIENCE_SECONDS = 1.5
MAX_BODY_BYTES = 64 * 1024
REPLAY_WINDOW_SECONDS = 5 * 60


@bp.route(route="hitl/slack/interactions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def slack_interactions(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    answer_by = time.monotonic() + ACK_SECONDS
    settings = load_settings()
    if not settings.slack_enabled:
        return error_response(401, "Slack is not configured on this app")
    body = req.get_body()
    timestamp, signature = req.headers.get("x-slack-request-timestamp"), req.headers.get("x-slack-signature")
    if len(body) > MAX_BODY_BYTES or not slack.signature_valid(settings, body, timestamp, signature):
        return error_response(401, "the request is not signed by Slack with this app's signing secret")
    if not _first_sighting(signature):
        return error_response(401, "this signed request was already received")
    try:
        payload = json.loads(parse_qs(body.decode("utf-8")).get("payload", [""])[0])
        kind = payload["type"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return error_response(400, "the body is not a Slack interaction payload")
    handler = {"block_actions": _button, "view_submission": _dialog}.get(kind)
    if handler is None:
        return func.HttpResponse(status_code=200)
    return await handler(payload, ReviewClient(client), settings, answer_by)


async def _button(payload: dict, reviews: ReviewClient, settings: Settings, answer_by: float) -> func.HttpResponse:
    action = (payload.get("actions") or [{}])[0]
    action_id, value = action.get("action_id"), str(action.get("value") or "")
    instance_id, _, token = value.partition(" ")
    if action_id not in (slack.APPROVE_ACTION, slack.REJECT_ACTION) or not token:
        return func.HttpResponse(status_code=200)  # Open (a link) and anything else need no answer
    channel = (payload.get("container") or {}).get("channel_id") or (payload.get("channel") or {}).get("id", "")
    ts = (payload.get("container") or {}).get("message_ts", "")
    user = (payload.get("user") or {}).get("id", "")
    web = slack.client(settings)
    if action_id == slack.REJECT_ACTION:
        title = ((payload.get("message") or {}).get("text") or "")[:300]
        # The dialog's trigger lasts 3 s from the click, answered or not: the dialog is
        # opened before the answer when Slack is quick, and still tried after it when not.
        await _by(answer_by, _after_reply(slack.open_reject_dialog(web, payload.get("trigger_id", ""), {
            "review": instance_id, "token": token, "channel": channel, "ts": ts}, title)))
        return func.HttpResponse(status_code=200)
    decided = _after_reply(_decided(web, user, reviews, settings, instance_id, token, True, ""))
    await _by(answer_by, decided)
    _after_reply(_answer(web, channel, ts, user, decided))
    return func.HttpResponse(status_code=200)


async def _dialog(payload: dict, reviews: ReviewClient, settings: Settings, answer_by: float) -> func.HttpResponse:
    view = payload.get("view") or {}
    if view.get("callback_id") != slack.REJECT_DIALOG:
        return func.HttpResponse(status_code=200)
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        feedback = view["state"]["values"][slack.FEEDBACK_BLOCK][slack.FEEDBACK_ACTION].get("value") or ""
    except (ValueError, KeyError, TypeError):
        return error_response(400, "the dialog's fields are not the ones this app sent")
    user = (payload.get("user") or {}).get("id", "")
    web = slack.client(settings)
    decided = _after_reply(_decided(web, user, reviews, settings, str(meta.get("review", "")),
                                    str(meta.get("token", "")), False, feedback))
    if await _by(answer_by, decided):
        answer = decided.result()
        if answer is None:
            return json_response({"response_action": "errors", "errors": {
                slack.FEEDBACK_BLOCK: "The rejection could not be taken just now; submit it again."}})
        if not answer.applied:
            # Shown in the dialog, which stays open: the message needs no change.
            return json_response({"response_action": "errors", "errors": {slack.FEEDBACK_BLOCK: answer.line[:150]}})
    # The dialog closes; what became of the rejection is shown on the message and, when
    # it was not taken, told to the person who submitted it.
    _after_reply(_answer(web, str(meta.get("channel", "")), str(meta.get("ts", "")), user, decided))
    return func.HttpResponse(status_code=200)


async def _decided(web, user: str, reviews: ReviewClient, settings: Settings, instance_id: str, token: str,
                   approved: bool, feedback: str) -> ChannelAnswer:
    """The click decided by the person Slack's directory names; when Slack does not say
    (or fails to), the seat's rules refuse it as nobody's."""
    person = None
    if user:
        try:
            person = await slack.person(web, user)
        except slack.SlackFailure as exc:
            log.warning("Slack: %s", exc)
    return await decide_from_channel(reviews, instance_id, token, approved, feedback, person, CHANNEL,
                                     settings, DECISION_PATIENCE_SECONDS)


async def _answer(web, channel: str, ts: str, user: str, decided: "asyncio.Task[Optional[ChannelAnswer]]") -> None:
    """Once the click is decided: the clicked message shows the answer; a refusal is told
    to the person who clicked only. (Every reviewer's message of the stage is updated by
    the review once it takes the decision: entities/seat_messages.py.)"""
    answer = await decided
    if answer is None:
        if channel and user:
            await slack.tell(web, channel, user, "Your decision could not be taken just now; try again.")
        return
    if answer.view is not None and channel and ts:
        await slack.update(web, channel, ts, answer.view, answer.line)
    if not answer.applied and channel and user:
        await slack.tell(web, channel, user, answer.line)


# Work that runs on past the answer, held here because the event loop keeps only weak
# references to its tasks.
_running: set[asyncio.Task] = set()


def _after_reply(work: Awaitable) -> asyncio.Task:
    """Start ``work`` beside the request, bounded as a whole by FOLLOW_UP_SECONDS; it does
    not end with the request. Its result, or None when it failed or ran out of time."""
    task = asyncio.create_task(_bounded(work))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


async def _bounded(work: Awaitable):
    try:
        return await asyncio.wait_for(work, FOLLOW_UP_SECONDS)
    except slack.SlackFailure as exc:  # names the Web API method and Slack's error code only
        log.warning("Slack: %s", exc)
    except asyncio.TimeoutError:
        log.warning("Slack: work on an interaction was cut off after %s s", FOLLOW_UP_SECONDS)
    except Exception as exc:  # the type only: an error's text could carry what Slack sent
        log.warning("Slack: work on an interaction failed (%s)", type(exc).__name__)
    return None


async def _by(deadline: float, task: asyncio.Task) -> bool:
    """Wait for ``task`` until ``deadline`` (time.monotonic()); whether it finished. It
    goes on either way."""
    done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
    return bool(done)


# Slack signs each request once; the same signature again is a replay (per host process:
# the timestamp window bounds the rest).
_seen: dict[str, float] = {}
_seen_lock = threading.Lock()


def _first_sighting(signature: Optional[str]) -> bool:
    now = time.monotonic()
    with _seen_lock:
        for old in [s for s, at in _seen.items() if now - at > REPLAY_WINDOW_SECONDS]:
            del _seen[old]
        if signature in _seen:
            return False
        _seen[signature or ""] = now
        return True
