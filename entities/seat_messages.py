"""The durable entity that keeps each reviewer's chat message of a review up to date: the
review signals it whenever it takes a decision for a stage whose seats were sent Slack
messages, and its operation updates those messages (chat.update) to say who decided the
seat, or the stage, and when. A signal holds nobody: the review goes on at once, and a
Slack that is slow or down costs only this entity's own time, bounded as a whole.
"""
from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df

from channels import slack
from channels.seat_view import from_notice, seat_line
from shared_code.settings import Settings, load_settings

bp = df.Blueprint()
log = logging.getLogger(__name__)

SEAT_MESSAGES = "seat_messages"
UPDATE = "update"
# All of one update's Slack calls end by then.
UPDATE_SECONDS = 30.0


@bp.entity_trigger(context_name="context")
def seat_messages(context: df.DurableEntityContext) -> None:
    if context.operation_name == UPDATE:
        update_messages(context.get_input(), load_settings())


def messages_entity(instance_id: str) -> df.EntityId:
    return df.EntityId(SEAT_MESSAGES, instance_id)


def update_messages(update: dict, settings: Settings) -> int:
    """Update the messages of seats that can no longer decide; how many were updated.
    ``update``: what ReviewState.seat_messages_update writes."""
    key = settings.link_signing_key
    if not settings.slack_enabled or key is None or not isinstance(update, dict):
        return 0
    decisions = [d for d in update.get("decisions") or () if isinstance(d, dict)]
    changed = []
    for message in update.get("messages") or ():
        line = seat_line(decisions, message["seat"], bool(update.get("decided")))
        if line is not None:
            view = from_notice(update, {"index": message["seat"], "seat": message["spec"]}, key,
                               settings.public_base_url)
            changed.append((message["slack"], view.closed(line)))
    if changed:
        try:
            asyncio.run(asyncio.wait_for(_update(settings, changed), UPDATE_SECONDS))
        except asyncio.TimeoutError:
            log.warning("instance %s: Slack messages not all updated within %g s", update.get("instance_id"),
                        UPDATE_SECONDS)
    return len(changed)


async def _update(settings: Settings, changed: list) -> None:
    web = slack.client(settings)
    for where, view in changed:
        channel, _, ts = where.partition("/")
        try:
            await slack.update(web, channel, ts, view)
        except slack.SlackFailure as exc:
            log.warning("instance %s: a reviewer's Slack message was not updated: %s", view.instance_id, exc)
