"""The durable entity that keeps each reviewer's chat message of a review up to date, one
entity per review. Two kinds of news meet here, in whichever order they come:

- the review signals ``update`` whenever it takes a decision for a stage whose seats were,
  or are being, sent Slack messages: the stage's decisions and the messages it knows of;
- the notice that posted the messages signals ``posted`` with them (activities/
  notify_reviewer.py), since a decision can come while the notice is still out, before
  the review has recorded what it posted.

The entity keeps both for the latest stages, and updates a message (chat.update) once it
knows a decision that closes the message's seat, or its stage, and only when what the
message says changes. A signal holds nobody: the review goes on at once, and a Slack that
is slow or down costs only this entity's own time, bounded as a whole. A message whose
update failed is tried again if more news of its stage comes (a click on it is refused
and then shows who decided); one Slack says it cannot update (deleted, archived) is left.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

import azure.durable_functions as df

from channels import slack
from channels.seat_view import from_notice, seat_line
from shared_code.settings import Settings, load_settings

bp = df.Blueprint()
log = logging.getLogger(__name__)

SEAT_MESSAGES = "seat_messages"
UPDATE, POSTED = "update", "posted"
# All of one operation's Slack calls end by then.
UPDATE_SECONDS = 30.0
# Slack's answers that no later attempt changes: the message or its channel is gone.
CANNOT_UPDATE = frozenset({"message_not_found", "channel_not_found", "cant_update_message", "is_archived",
                           "not_in_channel"})
# What the entity keeps: the latest stages of the review, and their latest messages.
STAGES_KEPT = 5
MESSAGES_KEPT = 100


@bp.entity_trigger(context_name="context")
def seat_messages(context: df.DurableEntityContext) -> None:
    if context.operation_name in (UPDATE, POSTED):
        news = context.get_input()
        state = context.get_state(dict)
        settings = load_settings()
        if isinstance(news, dict) and settings.slack_enabled and settings.link_signing_key is not None:
            context.set_state(with_news(state if isinstance(state, dict) else {}, context.operation_name, news,
                                        settings))


def messages_entity(instance_id: str) -> df.EntityId:
    return df.EntityId(SEAT_MESSAGES, instance_id)


def with_news(state: dict, kind: str, news: dict, settings: Settings) -> dict:
    """The entity's state after an ``update`` from the review or a ``posted`` from a
    notice: the stage's record takes the news in, and its messages that a decision now
    closes are updated."""
    key = f"{news.get('round')}/{news.get('stage_index', 0)}"
    stages = {k: v for k, v in (state.get("stages") or {}).items() if isinstance(v, dict)}
    record = stages.pop(key, None) or {"messages": []}
    if kind == UPDATE:
        record["update"] = {k: v for k, v in news.items() if k != "messages"}
    record["messages"] = _merged(record.get("messages") or [], news.get("messages") or [])
    if record.get("update"):
        _close_decided(record, settings)
    stages[key] = record  # the newest last; the oldest stages go first
    return {"stages": dict(list(stages.items())[-STAGES_KEPT:])}


def _merged(known: list, news: list) -> list:
    by_id = {m["slack"]: m for m in known if isinstance(m, dict) and isinstance(m.get("slack"), str)}
    for message in news:
        if isinstance(message, dict) and isinstance(message.get("slack"), str) and isinstance(message.get("seat"), int):
            by_id.setdefault(message["slack"], {"seat": message["seat"], "spec": message.get("spec"),
                                                "slack": message["slack"]})
    return list(by_id.values())[-MESSAGES_KEPT:]


def _close_decided(record: dict, settings: Settings) -> None:
    """Update each message whose seat a decision closed and whose text is not that yet;
    a message whose update went through, or cannot go through, keeps the line it was
    given, so that it is not updated again for it."""
    update = record["update"]
    decisions = [d for d in update.get("decisions") or () if isinstance(d, dict)]
    changed = []
    for message in record["messages"]:
        line = seat_line(decisions, message["seat"], bool(update.get("decided")))
        if line is not None and line != message.get("line"):
            view = from_notice(update, {"index": message["seat"], "seat": message.get("spec") or "anyone"},
                               settings.link_signing_key, settings.public_base_url)
            changed.append((message, line, view.closed(line)))
    if not changed:
        return
    done: list = []
    try:
        asyncio.run(asyncio.wait_for(_update(settings, changed, done), UPDATE_SECONDS))
    except asyncio.TimeoutError:
        log.warning("instance %s: Slack messages not all updated within %g s", update.get("instance_id"),
                    UPDATE_SECONDS)
    for message, line in done:
        message["line"] = line


async def _update(settings: Settings, changed: list, done: list) -> None:
    web = slack.client(settings)
    for message, line, view in changed:
        channel, _, ts = message["slack"].partition("/")
        try:
            await slack.update(web, channel, ts, view)
        except slack.SlackFailure as exc:
            log.warning("instance %s: a reviewer's Slack message was not updated: %s", view.instance_id, exc)
            if exc.code in CANNOT_UPDATE:
                done.append((message, line))
        else:
            done.append((message, line))


def posted_messages(request: dict, outcome: dict) -> Optional[dict]:
    """What a notice tells the entity of the Slack messages it posted: None when it posted
    none. ``request`` is the notice's (ReviewState.notice_request), ``outcome`` its result."""
    specs = {seat.get("index"): seat.get("seat") for seat in request.get("seats") or () if isinstance(seat, dict)}
    told = (outcome.get("seat_channels") or {}).get("seats") or ()
    messages = [{"seat": seat["index"], "spec": specs.get(seat["index"]), "slack": seat["slackMessage"]}
                for seat in told if isinstance(seat, dict) and isinstance(seat.get("slackMessage"), str)
                and isinstance(seat.get("index"), int)]
    if not messages:
        return None
    return {"instance_id": request.get("instance_id"), "round": request.get("round"),
            "stage_index": request.get("stage_index", 0), "messages": messages}
