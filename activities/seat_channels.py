"""The seats' own channels for a notice: a Teams card in the person's chat with the bot,
a Slack message (to the person, or for role, group and anyone seats to HITL_SLACK_CHANNEL)
and an e-mail to a seat that names an address. Beside notify_reviewer's webhook and log.

Each channel is tried for each seat it can reach, each call bounded; a channel that
fails is recorded for that seat ("failed", with the reason once per channel) and never
fails the notice. A seat a channel cannot reach says why ("no chat": the person has not
installed the Teams app; "not found": no Slack user with that address).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

from channels import email as mail
from channels import slack, teams
from channels.seat_view import SeatView, from_notice
from channels.teams_cards import seat_card
from shared_code.settings import Settings

log = logging.getLogger(__name__)

SENT, FAILED, NO_CHAT, NOT_FOUND, TIMED_OUT = "sent", "failed", "no chat", "not found", "timed out"
# A notice tells every seat within this, whatever its channels do.
NOTICE_SECONDS = 30.0


def tell_seats(request: dict, settings: Settings) -> dict:
    """{"seats": [{"index", <channel>: state, "slackMessage"?}], "errors": {channel: reason}};
    empty when no seat channel is configured."""
    if not settings.seat_channels_enabled:
        return {}
    key = settings.link_signing_key
    if key is None:
        return {"seats": [], "errors": {"links": "review links are disabled, so no seat can be given buttons"}}
    seats = request.get("seats") or [{"index": 0, "seat": "anyone"}]
    retry = request.get("retry") or {}
    if retry:  # a retry tells again only the seats whose channels failed
        again = {int(index) for index in (retry.get("seats") or {})}
        seats = [seat for seat in seats if seat["index"] in again]
    views = [(seat, from_notice(request, seat, key, settings.public_base_url)) for seat in seats]
    return asyncio.run(_tell(request, views, settings))


async def _tell(request: dict, views: list, settings: Settings) -> dict:
    errors: dict = {}
    web = slack.client(settings) if settings.slack_enabled else None
    contacts = request.get("contacts") or {}

    retried = {int(index): set(channels) for index, channels in ((request.get("retry") or {}).get("seats") or {}).items()}

    def wanted(seat: dict, channel: str) -> bool:
        return not retried or channel in retried.get(seat["index"], ()) or "all" in retried.get(seat["index"], ())

    async def tell_one(seat: dict, view: SeatView) -> dict:
        states: dict = {"index": seat["index"]}
        person = seat["seat"][5:] if seat["seat"].startswith("user:") else None
        if settings.teams_enabled and person and wanted(seat, "teams"):
            states["teams"] = await _teams(settings, contacts, person, view, errors)
        if web is not None and wanted(seat, "slack"):
            states.update(await _slack(web, settings, person, view, errors))
        if settings.email_backend and person and "@" in person and wanted(seat, "email"):
            states["email"] = await _email(settings, view, person, errors)
        return states

    # Seats are told side by side, and the notice as a whole ends by NOTICE_SECONDS: a
    # seat whose channels have not answered by then is recorded as not told.
    tasks = [asyncio.create_task(tell_one(seat, view)) for seat, view in views]
    done, pending = await asyncio.wait(tasks, timeout=NOTICE_SECONDS)
    for task in pending:
        task.cancel()
    told = []
    for (seat, _), task in zip(views, tasks):
        if task in done and task.exception() is None:
            told.append(task.result())
        else:
            told.append({"index": seat["index"], "all": TIMED_OUT})
            errors.setdefault("notice", f"not every seat was told within {NOTICE_SECONDS:g} s")
    for channel, reason in errors.items():
        log.warning("instance %s round %s: %s notices failed: %s", request.get("instance_id"), request.get("round"),
                    channel, reason)
    return {"seats": told, "errors": errors}


async def _teams(settings: Settings, contacts: dict, person: str, view: SeatView, errors: dict) -> str:
    contact = teams.TeamsContact.from_json(contacts.get(person.casefold()))
    if contact is None:
        return NO_CHAT
    try:
        await teams.send_card(settings, contact, seat_card(view, [contact.user_id]))
        return SENT
    except Exception as exc:  # the connector, the token or the network: recorded, never raised
        errors["teams"] = f"the Teams connector refused or did not answer ({type(exc).__name__})"
        return FAILED


async def _slack(web, settings: Settings, person: Optional[str], view: SeatView, errors: dict) -> dict:
    try:
        channel = await slack.user_for_email(web, person) if person and "@" in person else settings.slack_channel
        if not channel:
            return {"slack": NOT_FOUND} if person else {}
        sent = await slack.post(web, channel, view)
        return {"slack": SENT, "slackMessage": f"{sent['channel']}/{sent['ts']}"}
    except slack.SlackFailure as exc:
        errors["slack"] = str(exc)
        return {"slack": FAILED}


async def _email(settings: Settings, view: SeatView, to: str, errors: dict) -> str:
    try:
        # smtplib's timeout is per socket operation; the whole send gets EMAIL_SECONDS.
        await asyncio.wait_for(asyncio.to_thread(mail.send, settings, view, to), mail.EMAIL_SECONDS)
        return SENT
    except asyncio.TimeoutError:
        errors["email"] = f"the mail server did not take the e-mail within {mail.EMAIL_SECONDS:g} s"
        return FAILED
    except mail.EmailFailure as exc:
        errors["email"] = str(exc)
        return FAILED
