"""Slack: ``POST /api/hitl/slack/interactions``, the Slack app's interactivity URL.

Anonymous at the Functions host; Slack's request signature (HMAC-SHA256 with the signing
secret, within five minutes) is the credential, checked before the body is read, and a
signature seen before is refused too. Slack waits 3 s for an answer, so decisions wait
for the review at most DECISION_PATIENCE_SECONDS and say "sent" when it has not taken
them yet.

- Approve: the decision goes to ``decisions.decide`` for the seat the button was made for,
  by the person Slack's directory names (``users.info``); once the review takes it, every
  reviewer's Slack message for that stage shows where the stage stands (``chat.update``,
  entities/seat_messages.py).
- Reject: a dialog asks for the feedback (required); its submission is the decision.
- A click that cannot be taken (another round, a seat someone else holds, a finished
  review) is answered with the reason, visible to the person who clicked only.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Optional
from urllib.parse import parse_qs

import azure.durable_functions as df
import azure.functions as func

from channels import slack
from shared_code.settings import Settings, load_settings

from .channel_decisions import decide_from_channel
from .http_helpers import error_response, json_response
from .review_client import ReviewClient

bp = df.Blueprint()
log = logging.getLogger(__name__)

CHANNEL = "slack"
DECISION_PATIENCE_SECONDS = 1.5
MAX_BODY_BYTES = 64 * 1024
REPLAY_WINDOW_SECONDS = 5 * 60


@bp.route(route="hitl/slack/interactions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def slack_interactions(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
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
    try:
        return await handler(payload, ReviewClient(client), settings)
    except slack.SlackFailure as exc:
        log.warning("Slack: %s", exc)
        return func.HttpResponse(status_code=200)


async def _button(payload: dict, reviews: ReviewClient, settings: Settings) -> func.HttpResponse:
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
        await slack.open_reject_dialog(web, payload.get("trigger_id", ""),
                                       {"review": instance_id, "token": token, "channel": channel, "ts": ts}, title)
        return func.HttpResponse(status_code=200)
    person = await slack.person(web, user) if user else None
    answer = await decide_from_channel(reviews, instance_id, token, True, "", person, CHANNEL, settings,
                                       DECISION_PATIENCE_SECONDS)
    await _answer(web, channel, ts, user, answer)
    return func.HttpResponse(status_code=200)


async def _dialog(payload: dict, reviews: ReviewClient, settings: Settings) -> func.HttpResponse:
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
    person = await slack.person(web, user) if user else None
    answer = await decide_from_channel(reviews, str(meta.get("review", "")), str(meta.get("token", "")), False,
                                       feedback, person, CHANNEL, settings, DECISION_PATIENCE_SECONDS)
    if not answer.applied:
        return json_response({"response_action": "errors", "errors": {slack.FEEDBACK_BLOCK: answer.line[:150]}})
    await _answer(web, str(meta.get("channel", "")), str(meta.get("ts", "")), user, answer)
    return func.HttpResponse(status_code=200)


async def _answer(web, channel: str, ts: str, user: str, answer) -> None:
    """The clicked message shows the answer at once; a refusal is told to the person who
    clicked only. (Every reviewer's message of the stage is updated by the review once it
    takes the decision: entities/seat_messages.py.)"""
    if answer.view is not None and channel and ts:
        await slack.update(web, channel, ts, answer.view, answer.line)
    if not answer.applied and channel and user:
        await slack.tell(web, channel, user, answer.line)


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
