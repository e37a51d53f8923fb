"""Slack through its own SDK (``slack_sdk``): the Web API client for messages, look-ups
and the reject dialog, and the signature verifier for button clicks.

Messages carry Block Kit buttons whose ``value`` is the review and the seat's signed
token; text from a user or the model goes only into ``plain_text`` objects, which Slack
shows as they are (no mentions, no links). Every call is bounded by SLACK_CALL_SECONDS
and the client's retries, and errors name the Web API method, never the token.
"""
from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Optional

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from shared_code.identity import Person, display_name, valid_name
from shared_code.settings import Settings

from .seat_view import SeatView

SLACK_CALL_SECONDS = 5
APPROVE_ACTION, REJECT_ACTION, OPEN_ACTION = "hitl_approve", "hitl_reject", "hitl_open"
REJECT_DIALOG = "hitl_reject_dialog"
FEEDBACK_BLOCK = FEEDBACK_ACTION = "feedback"
# Seats a person named by Slack can fill: a role or group seat needs a sign-in that carries
# it, so its message has only the link to the review page.
CHAT_SEATS = ("user:", "anyone")


class SlackFailure(Exception):
    """A Web API call failed; the message names the method and Slack's error code only.
    ``code`` is that error code when Slack answered with one."""

    def __init__(self, message: str, code: Optional[str] = None):
        super().__init__(message)
        self.code = code


def client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url + "/",
                          timeout=SLACK_CALL_SECONDS)


async def call(method: str, request: Awaitable) -> dict:
    """One Web API call (``request``, one of the client's methods), bounded as a whole,
    the client's own retries included."""
    try:
        response = await asyncio.wait_for(request, SLACK_CALL_SECONDS * 2)
        return response.data if isinstance(response.data, dict) else {}
    except SlackApiError as exc:
        code = exc.response.get("error")
        raise SlackFailure(f"{method} answered {code or 'an error'}", code if isinstance(code, str) else None) from None
    except (SlackClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        raise SlackFailure(f"{method} failed ({type(exc).__name__})") from None


def signature_valid(settings: Settings, body: bytes, timestamp: Optional[str], signature: Optional[str]) -> bool:
    """Slack's v0 request signature: HMAC-SHA256 of the body with the signing secret,
    within five minutes of the request's timestamp, compared in constant time (the SDK's
    verifier)."""
    if not settings.slack_signing_secret or not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return SignatureVerifier(settings.slack_signing_secret).is_valid(body, timestamp, signature)


async def user_for_email(web: AsyncWebClient, email: str) -> Optional[str]:
    try:
        return (await call("users.lookupByEmail", web.users_lookupByEmail(email=email))).get("user", {}).get("id")
    except SlackFailure as exc:
        if "users_not_found" in str(exc):
            return None
        raise


async def person(web: AsyncWebClient, user_id: str) -> Optional[Person]:
    """The person who clicked, as Slack's directory names them (their e-mail address, and
    their full name, else the display name they chose, for messages to show); None when
    Slack does not say."""
    profile = (await call("users.info", web.users_info(user=user_id))).get("user", {}).get("profile", {})
    email = profile.get("email")
    shown = display_name(profile.get("real_name")) or display_name(profile.get("display_name"))
    return Person(email, display_name=shown) if valid_name(email) else None


def message_blocks(view: SeatView, line: str = "") -> list[dict]:
    facts = f"{view.round_line}. Topic: {view.topic}"
    blocks = [{"type": "header", "text": _plain(view.heading if view.open else "Review")},
              {"type": "section", "text": _plain(view.title or "(untitled)")},
              {"type": "context", "elements": [_plain(facts[:2000])]}]
    if view.excerpt:
        blocks.append({"type": "section", "text": _plain(view.excerpt)})
    if view.state:
        blocks.append({"type": "section", "text": _plain(view.state)})
    if line and line != view.state:
        blocks.append({"type": "context", "elements": [_plain(line[:2000])]})
    buttons = []
    if view.open and view.seat.startswith(CHAT_SEATS):
        value = f"{view.instance_id} {view.token}"
        blocks.append({"type": "context", "elements": [_plain(f"Decide before {view.deadline}")]})
        buttons += [{"type": "button", "action_id": APPROVE_ACTION, "text": _plain("Approve"), "style": "primary",
                     "value": value},
                    {"type": "button", "action_id": REJECT_ACTION, "text": _plain("Reject"), "style": "danger",
                     "value": value}]
    elif view.open:
        blocks.append({"type": "context", "elements": [_plain(
            f"Decide on the review page, signed in: seat {view.seat} needs your sign-in's role or group.")]})
    if view.url:
        buttons.append({"type": "button", "action_id": OPEN_ACTION, "text": _plain("Open"), "url": view.url})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def fallback_text(view: SeatView) -> str:
    """The notification text (Slack shows it where blocks cannot be shown)."""
    return f"{view.heading}: {view.title}"[:300] if view.open else f"Review: {view.state or view.title}"[:300]


def reject_dialog(view_metadata: dict, title: str) -> dict:
    """The modal that asks for the rejection's feedback (required)."""
    return {"type": "modal", "callback_id": REJECT_DIALOG, "private_metadata": json.dumps(view_metadata),
            "title": _plain("Reject the draft"), "submit": _plain("Reject"), "close": _plain("Cancel"),
            "blocks": [{"type": "section", "text": _plain(title[:300] or "(untitled)")},
                       {"type": "input", "block_id": FEEDBACK_BLOCK, "label": _plain("Feedback for the writer"),
                        "element": {"type": "plain_text_input", "action_id": FEEDBACK_ACTION, "multiline": True,
                                    "max_length": 4000}}]}


async def post(web: AsyncWebClient, channel: str, view: SeatView) -> dict:
    sent = await call("chat.postMessage", web.chat_postMessage(channel=channel, text=fallback_text(view),
                                                              blocks=message_blocks(view)))
    return {"channel": sent.get("channel", channel), "ts": sent.get("ts", "")}


async def update(web: AsyncWebClient, channel: str, ts: str, view: SeatView, line: str = "") -> None:
    await call("chat.update", web.chat_update(channel=channel, ts=ts, text=fallback_text(view),
                                              blocks=message_blocks(view, line)))


async def open_reject_dialog(web: AsyncWebClient, trigger_id: str, metadata: dict, title: str) -> None:
    await call("views.open", web.views_open(trigger_id=trigger_id, view=reject_dialog(metadata, title)))


async def tell(web: AsyncWebClient, channel: str, user: str, text: str) -> None:
    """A line only the person who clicked sees."""
    await call("chat.postEphemeral", web.chat_postEphemeral(channel=channel, user=user, text=text[:3000]))


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text[:3000] or " ", "emoji": False}
