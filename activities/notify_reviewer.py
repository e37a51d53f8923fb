"""Activity: tell the reviewer a draft is waiting, with a signed link to review it.

Four kinds of notice: the first one ("review"), a reminder before the deadline, an
escalation at the deadline (to HITL_ESCALATION_WEBHOOK_URL when it is set), and a fresh
link after the owner moved the deadline ("deadline_moved": a link expires with the
deadline it was signed for). Channels: the
function log always; a webhook (Teams Workflows or Slack) when HITL_NOTIFY_WEBHOOK_URL is
set; and the seats' own channels, Teams, Slack and e-mail (seat_channels.py). A channel
that stays down never fails the review: the
outcome is returned, shown in the status, and the decision can still arrive by the page
or by the approve route. A webhook delivery takes DELIVERY_SECONDS at most, whatever the
peer does, and a redirect is a failed delivery, never followed.
"""
from __future__ import annotations

import asyncio
import functools
import http.client
import io
import json
import logging
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Optional
from urllib.parse import urlsplit

import azure.durable_functions as df

from activities.seat_channels import tell_seats
from entities.seat_messages import POSTED, messages_entity, posted_messages
from shared_code.models import ValidationError, validate_instance_id
from shared_code.review_links import ReviewGrant, review_url
from shared_code.settings import Settings, load_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

TITLE_LOG_CHARS = 120
RETRY_DELAYS_SECONDS = (0.5, 2.0, 5.0)
MAX_RETRY_AFTER_SECONDS = 30.0
# Wall-clock limits: one attempt as a whole (connecting, sending, the answer's status line
# and headers), and one delivery as a whole (every attempt and every pause between them).
# A peer that answers a byte at a time is cut off like one that does not answer at all.
ATTEMPT_SECONDS = 10.0
DELIVERY_SECONDS = 30.0
REDIRECTS = (301, 302, 303, 307, 308)
HEADINGS = {"review": "Review needed", "reminder": "Reminder: review needed",
            "escalation": "Escalation: a review is still undecided",
            "deadline_moved": "Deadline moved: a review is waiting (the earlier link has expired)"}
# The report of the Slack messages a notice posted reaches their entity within this.
POSTED_SECONDS = 5.0
LINKS_DISABLED = ("review links are disabled: set HITL_REVIEW_SIGNING_KEY "
                  "(or HITL_DEV_INSECURE_LINKS=1 on a local host)")


@bp.activity_trigger(input_name="request")
@bp.durable_client_input(client_name="client")
async def notify_reviewer(request: dict, client: df.DurableOrchestrationClient) -> dict:
    """{"instance_id", "topic", "round", "max_rounds", "title", "deadline", "kind"?} -> outcome.
    A notice that waits on peers (a webhook, Teams, Slack, e-mail: each bounded) is sent
    from a thread, one with none (the log is its channel) on the loop. The Slack messages
    it posted are then reported to their entity, which closes any whose seat was decided
    while the notice was out (entities/seat_messages.py)."""
    settings = load_settings()
    if waits_on_peers(settings):
        outcome = await asyncio.to_thread(send_notice, request, settings)
    else:
        outcome = send_notice(request, settings)
    await report_posted(client, request, outcome)
    return outcome


def waits_on_peers(settings: Settings) -> bool:
    return bool(settings.notify_webhook_url or settings.escalation_webhook_url or settings.seat_channels_enabled)


async def report_posted(client: df.DurableOrchestrationClient, request: dict, outcome: dict) -> None:
    posted = posted_messages(request, outcome)
    if posted is None:
        return
    try:
        await asyncio.wait_for(client.signal_entity(messages_entity(request["instance_id"]), POSTED, posted),
                               POSTED_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the review's own signals still reach the messages it records
        log.warning("instance %s: the Slack messages this notice posted were not reported to their entity (%s)",
                    request.get("instance_id"), type(exc).__name__)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    error: Optional[str] = None


def review_links(instance_id: str, settings: Settings) -> dict:
    # The id ends up in URLs, so only the validated alphabet may get there.
    if not isinstance(instance_id, str):
        raise ValidationError("instance id must be a string")
    validate_instance_id(instance_id)
    base = settings.public_base_url
    return {"status_url": f"{base}/api/hitl/status/{instance_id}",
            "approve_url": f"{base}/api/hitl/approve/{instance_id}"}


def signed_review_url(request: dict, settings: Settings, seat: Optional[dict] = None) -> Optional[str]:
    """A signed link for the round; for a team review, for one seat of its stage (the
    default policy's one open seat gets a link that names no seat, as before stages)."""
    key = settings.link_signing_key
    if key is None:
        return None
    grant = ReviewGrant(request["instance_id"], int(request["round"]), datetime.fromisoformat(request["deadline"]))
    if seat is not None and team_notice(request):
        grant = replace(grant, stage=int(request.get("stage_index", 0)), seat=int(seat["index"]))
    return review_url(settings.public_base_url, grant, key)


def team_notice(request: dict) -> bool:
    """A notice for a review with a policy of its own (more than the one open seat)."""
    seats = request.get("seats")
    if not seats:  # a notice of a review started before stages
        return False
    return request.get("stages", 1) > 1 or len(seats) != 1 or seats[0].get("seat") != "anyone"


def seat_links(request: dict, settings: Settings) -> list[dict]:
    """Each seat told, with its own signed link (None when links are disabled)."""
    seats = request.get("seats") or [{"index": 0, "seat": "anyone"}]
    return [{"seat": seat["seat"], "index": seat["index"], "url": signed_review_url(request, settings, seat)}
            for seat in seats]


def send_notice(request: dict, settings: Settings) -> dict:
    links = review_links(request.get("instance_id"), settings)
    seats = seat_links(request, settings)
    url = seats[0]["url"] if seats else signed_review_url(request, settings)
    if url is None:
        log.error("instance %s: %s", request["instance_id"], LINKS_DISABLED)
    outcome = {**links, "review_url": url, "seat_urls": [s["url"] for s in seats],
               "links_error": None if url else LINKS_DISABLED, "seat_channels": tell_seats(request, settings)}
    kind = notice_kind(request)
    setting, webhook = (("HITL_ESCALATION_WEBHOOK_URL", settings.escalation_webhook_url)
                        if kind == "escalation" and settings.escalation_webhook_url
                        else ("HITL_NOTIFY_WEBHOOK_URL", settings.notify_webhook_url))
    retry = request.get("retry")
    if webhook and (not retry or retry.get("webhook")):  # a retry posts again only if the post failed
        delivery = deliver(webhook, webhook_message(request, links, url, seats), setting)
        log.info("%s notice for instance %s round %s: webhook %s after %d attempt(s)%s",
                 kind, request["instance_id"], request.get("round"),
                 "delivered" if delivery.delivered else "FAILED", delivery.attempts,
                 f": {delivery.error}" if delivery.error else "")
        return {**outcome, "channel": "webhook", "delivered": delivery.delivered,
                "attempts": delivery.attempts, "error": delivery.error}
    if retry:
        return {**outcome, "channel": None, "delivered": True, "attempts": 0, "error": None}
    # With no webhook the log is the channel, so it carries the review links themselves.
    changed = changes_line(request)
    for seat in seats if team_notice(request) else seats[:1]:
        whom = f" stage {request.get('stage')} seat {seat['index'] + 1} ({seat['seat']})," if team_notice(request) else ""
        log.info("%s: instance %s round %s of %s,%s title %r, decide before %s;%s "
                 "review %s ; status %s ; approve %s", HEADINGS[kind].lower(),
                 request["instance_id"], request.get("round"), request.get("max_rounds"), whom,
                 str(request.get("title", ""))[:TITLE_LOG_CHARS], request.get("deadline"),
                 f" {changed!r};" if changed else "", seat["url"] or "(links disabled)", links["status_url"],
                 links["approve_url"])
    return {**outcome, "channel": "log", "delivered": True, "attempts": 0, "error": None}


def webhook_message(request: dict, links: dict, url: Optional[str], seats: Optional[list] = None) -> dict:
    """One JSON body for both Slack (``text``) and Teams Workflows (an Adaptive Card).

    The topic comes from whoever started the review and the title from the model: both
    are shown as text, never as markup. Our own links are the only links in the message.
    The raw ``title`` and ``topic`` fields are data for a flow's own use; neither Slack nor
    Teams renders them. A team review's notice names its stage and carries a link for
    each seat told (``seats``: a flow can route each to its person).
    """
    title, topic = _one_line(request.get("title")), _one_line(request.get("topic"))
    heading = HEADINGS[notice_kind(request)]
    round_line = f"round {_count(request.get('round'))} of {_count(request.get('max_rounds'))}"
    team = bool(seats) and team_notice(request)
    if team:
        round_line += f", stage {_one_line(request.get('stage'))[:40]}"
    link = url or links["status_url"]
    about = f" on {slack_text(topic[:TOPIC_SHOWN_CHARS])}" if topic else ""
    changed = changes_line(request)
    text = (f"{heading} ({round_line}): \"{slack_text(title[:TITLE_LOG_CHARS])}\"{about}. "
            + (f"{slack_text(changed)} " if changed else "")
            + f"Decide before {slack_text(str(request.get('deadline')))}: ")
    if team and url:
        text += "; ".join(f"<{slack_text(seat['url'])}|Review as {slack_text(seat['seat'])} "
                          f"(seat {seat['index'] + 1})>" for seat in seats)
    else:
        text += f"<{slack_text(link)}|{'Review the draft' if url else 'Review status'}>"
    message = {"text": text, "kind": notice_kind(request), "instanceId": request["instance_id"],
               "round": request.get("round"),
               "title": str(request.get("title", "")), "topic": request.get("topic"), "reviewUrl": url,
               "statusUrl": links["status_url"], "deadline": request.get("deadline")}
    if team:
        message["stage"] = request.get("stage")
        message["seats"] = [{"seat": seat["seat"], "number": seat["index"] + 1, "reviewUrl": seat["url"]}
                            for seat in seats]
    if url:
        message["type"] = "message"
        message["attachments"] = [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "type": "AdaptiveCard", "version": "1.4",
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "body": [{"type": "TextBlock", "text": heading, "weight": "Bolder",
                          "size": "Medium"},
                         card_text(title, weight="Bolder"),
                         *([card_text(f"Topic: {topic[:TOPIC_SHOWN_CHARS]}", subtle=True)] if topic else []),
                         *([card_text(changed)] if changed else []),
                         card_text(f"{round_line[0].upper()}{round_line[1:]}; decide before "
                                   f"{card_date(request.get('deadline'))}", subtle=True)],
                "actions": card_actions(seats if team else None, url),
            }}]
    return message


def changes_line(request: dict) -> str:
    """What the writer says it changed in this round's draft, in one line: "Round 2:
    shortened the intro; added a timeout example as asked." ("" for a first draft)."""
    changes = [_one_line(c)[:CHANGE_SHOWN_CHARS] for c in request.get("changes") or () if isinstance(c, str)]
    if not changes:
        return ""
    return f"Round {_count(request.get('round'))}: {'; '.join(changes)}."


def card_actions(seats: Optional[list], url: str) -> list[dict]:
    """The card's buttons: one link, or one per kind of seat (a card shows a few buttons,
    and any open seat of a kind serves a signed-in member as well as another)."""
    if not seats:
        return [{"type": "Action.OpenUrl", "title": "Review", "url": url}]
    first_of_each = {}
    for seat in seats:
        first_of_each.setdefault(seat["seat"], seat)
    return [{"type": "Action.OpenUrl", "title": f"Review as {spec}"[:60], "url": seat["url"]}
            for spec, seat in list(first_of_each.items())[:MAX_CARD_ACTIONS]]


MAX_CARD_ACTIONS = 5


# -- showing text that came from a user or the model -----------------------------------
#
# Slack: "Slack uses &, <, and > as control characters for special parsing in text
# objects, so they must be converted to HTML entities if they're not going to be used for
# their parsing purpose" (https://api.slack.com/reference/surfaces/formatting#escaping).
# Escaped, "<!channel>" pings nobody and "<https://evil.example|Approve now>" is no link.
# Slack has no escape for *bold* or _italic_; those only change how the text looks.
# Newlines are folded, so no line of ours starts with a quote ("> ") someone else wrote.
#
# Adaptive Cards: a TextBlock renders a subset of Markdown, links included
# (https://learn.microsoft.com/adaptive-cards/authoring-cards/text-features), and its
# backslash escapes are not handled alike by Teams' clients (microsoft/AdaptiveCards
# issues 5590 and 5758). A TextRun's text is shown as it is: "Markdown is not supported"
# (https://learn.microsoft.com/adaptive-cards/schema-explorer/text-run, since version 1.2).
# So text from a user or the model goes only into TextRuns; TextBlocks hold only ours.
# Card text makes no mention either: a Teams mention needs <at> plus an msteams entity.

TOPIC_SHOWN_CHARS = 200
CHANGE_SHOWN_CHARS = 120
_WHITESPACE = re.compile(r"\s+")
_CARD_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$")


def notice_kind(request: dict) -> str:
    kind = request.get("kind")
    return kind if kind in HEADINGS else "review"


def slack_text(text: str) -> str:
    """Text for Slack's mrkdwn that is shown as it is, control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def card_text(text: str, *, weight: str = "Default", subtle: bool = False) -> dict:
    """An Adaptive Card element showing ``text`` literally (a RichTextBlock's TextRun)."""
    run = {"type": "TextRun", "text": text, "weight": weight}
    if subtle:
        run["isSubtle"] = True
    return {"type": "RichTextBlock", "inlines": [run]}


def card_date(value) -> str:
    """The deadline for a TextBlock: ours, but checked to be an ISO time before it goes
    where Markdown is read."""
    text = str(value)
    return text if _CARD_DATE.match(text) else "the deadline"


def _count(value) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


def _one_line(value) -> str:
    return _WHITESPACE.sub(" ", str(value if value is not None else "")).strip()


def deliver(url: str, message: dict, setting: str = "HITL_NOTIFY_WEBHOOK_URL") -> Delivery:
    """POST with retries on 429, 5xx, network errors and timeouts, within DELIVERY_SECONDS.
    A redirect is not followed. Errors name the host, never the URL (``setting`` names
    where the URL came from)."""
    body = json.dumps(message).encode()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Delivery(False, 0, f"{setting} is not an http(s) URL with a host")
    host = parts.hostname
    delivery_ends = time.monotonic() + DELIVERY_SECONDS
    attempt, error = 0, ""
    while True:
        attempt += 1
        retry_after: Optional[float] = None
        try:
            post(url, body, min(time.monotonic() + ATTEMPT_SECONDS, delivery_ends))
            return Delivery(True, attempt)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in REDIRECTS:
                return Delivery(False, attempt, f"{host} redirected the notice ({exc.code}); redirects "
                                                f"are not followed: set {setting} to the final address")
            error = f"{host} answered {exc.code}"
            if exc.code != 429 and exc.code < 500:
                return Delivery(False, attempt, error)
            retry_after = _retry_after(exc.headers.get("Retry-After"))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = (f"{host} timed out" if isinstance(reason, TimeoutError)
                     else f"{host} unreachable ({type(reason).__name__})")
        except (ValueError, http.client.InvalidURL):  # e.g. spaces or control characters
            return Delivery(False, attempt, f"{setting} is not a valid URL")
        except http.client.HTTPException:
            error = f"{host} answered with a malformed reply"
        if attempt > len(RETRY_DELAYS_SECONDS):
            return Delivery(False, attempt, f"{error} after {attempt} attempts")
        pause = retry_after if retry_after is not None else RETRY_DELAYS_SECONDS[attempt - 1]
        if time.monotonic() + pause >= delivery_ends:
            return Delivery(False, attempt, f"{error} after {attempt} attempt(s); gave up, as a "
                                            f"delivery may take {DELIVERY_SECONDS:g} s at most")
        time.sleep(pause)


def post(url: str, body: bytes, ends_at: float) -> None:
    """One POST that is over by ``ends_at`` (time.monotonic()), whatever the peer does."""
    opener = urllib.request.build_opener(_RefuseRedirects, _DeadlineHTTPHandler(ends_at),
                                         _DeadlineHTTPSHandler(ends_at))
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with opener.open(request, timeout=ATTEMPT_SECONDS):
        pass


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Following would send the notice (or, for 301 to 303, a GET without it) to an address
    nobody configured, and count it as delivered; the 3xx is raised as an HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _seconds_left(ends_at: float) -> float:
    left = ends_at - time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's time is up")
    return left


class _DeadlineSocket:
    """The socket of one HTTP exchange, as http.client uses it, where every send and every
    read waits only for what is left of the attempt. A socket's own timeout applies to each
    operation afresh, so a peer sending a byte at a time would never trip it."""

    def __init__(self, sock: socket.socket, ends_at: float):
        self._sock = sock
        self._ends_at = ends_at
        self._open_readers = 0
        self._closing = False

    def sendall(self, data) -> None:
        self._sock.settimeout(_seconds_left(self._ends_at))
        self._sock.sendall(data)  # Python bounds a whole sendall by the timeout

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        self._open_readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def recv_into(self, buffer) -> int:
        self._sock.settimeout(_seconds_left(self._ends_at))
        return self._sock.recv_into(buffer)

    def reader_closed(self) -> None:
        self._open_readers -= 1
        if self._closing and not self._open_readers:
            self._sock.close()

    def close(self) -> None:
        # urllib closes the connection's socket once it has the answer's head, and reads
        # the rest through the reader: as with a real socket, closing waits for the reader.
        self._closing = True
        if not self._open_readers:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket):
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()


class _DeadlineConnection:
    """http.client's connection, connected (the TCP connect and TLS's handshake, which Python
    bounds as a whole by the timeout) and then used within the attempt's time. The host
    name's lookup is left to the resolver's own timeouts."""

    def __init__(self, *args, ends_at: float, **kwargs):
        super().__init__(*args, **kwargs)
        self._ends_at = ends_at

    def connect(self) -> None:
        self.timeout = _seconds_left(self._ends_at)
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self._ends_at)


class _DeadlineHTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, ends_at: float):
        super().__init__()
        self._ends_at = ends_at

    def http_open(self, req):
        return self.do_open(functools.partial(_DeadlineHTTPConnection, ends_at=self._ends_at), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, ends_at: float):
        super().__init__()
        self._ends_at = ends_at
        self._tls = ssl.create_default_context()

    def https_open(self, req):
        return self.do_open(functools.partial(_DeadlineHTTPSConnection, ends_at=self._ends_at), req,
                            context=self._tls)


def _retry_after(value: Optional[str]) -> Optional[float]:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:
        return None
