"""The devhost's dashboard, at ``/runtime/devhost/dashboard``: the instances (filtered, a page
at a time, with live counts), one instance's values, timeline and history, and the
entities.

The devhost serves it, never the app: the Functions host keeps routes that begin with
``runtime`` for itself, so no app's route can be there on Azure either. The server's
Host and Origin checks apply to it as to every route (server.py).

What the page reads comes from here, as JSON: the pages of instances, their counts and a
change mark, one instance's status, history and timeline, and the pages of entities. The
status and the history are what the Durable HTTP API shows (``DurableApi.describe`` and
``public_history``), and so is an entity's state (``durable_api.entity_state``); its
last operation has a name here besides the time the API's entity list gives. Everything the page does goes to the Durable HTTP API itself, from the
browser: raise an event, terminate, suspend, resume, restart, purge, signal an entity.
So every action takes the same engine calls and gets the same answers as any other
client of that API.

Live views poll ``summary`` with the last change mark they saw; while nothing has been
committed the answer is that mark alone. Counts are computed again only when something
changed, and at most once per ``COUNTS_INTERVAL_S`` whatever the number of pages open;
a page fetches its list again only when the mark moved. No view holds a connection open.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional

from aiohttp import web

from . import timeline
from .clock import parse_iso, to_iso
from .durable_api import RUNTIME_STATUSES, DurableApi, describe, entity_state
from .instances import MAX_INSTANCE_ID_CHARS
from .history import EventType
from .storage import StoreError

log = logging.getLogger("devhost")

DASHBOARD_PATH = "/runtime/devhost/dashboard"
DATA_PATH = DASHBOARD_PATH + "/data"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 100
COUNTS_INTERVAL_S = 1.0
_HERE = Path(__file__).parent
_TEMPLATE = (_HERE / "dashboard.html").read_text(encoding="utf-8")
_STYLE = (_HERE / "dashboard.css").read_text(encoding="utf-8")
_SCRIPT = (_HERE / "dashboard.js").read_text(encoding="utf-8")


class BadRequest(Exception):
    """A query the data routes cannot answer; the message says what is wrong."""


@dataclass(frozen=True)
class _Counts:
    mark: str
    computed_at: float
    rows: list


class Dashboard:
    def __init__(self, api: DurableApi, monotonic: Callable[[], float] = time.monotonic):
        self.api = api
        self.engine = api.engine
        self._monotonic = monotonic
        self._counts: Optional[_Counts] = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(DASHBOARD_PATH, self.page)
        app.router.add_get(DATA_PATH + "/instances", self._json(lambda query: self.instances(
            statuses=[part for value in query.getall("status", ()) for part in value.split(",") if part],
            name=query.get("name", ""), created_from=query.get("createdFrom", ""),
            created_to=query.get("createdTo", ""), prefix=query.get("prefix", ""), top=query.get("top", ""),
            continuation=query.get("continuation", ""))))
        app.router.add_get(DATA_PATH + "/summary", self._json(lambda query: self.summary(query.get("since", ""))))
        app.router.add_get(DATA_PATH + "/instance", self._json(lambda query: self.instance(query.get("id", ""))))
        app.router.add_get(DATA_PATH + "/entities", self._json(lambda query: self.entities(
            name=query.get("name", ""), top=query.get("top", ""), continuation=query.get("continuation", ""))))

    # -- the page ----------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        nonce = secrets.token_urlsafe(16)
        body = (_TEMPLATE.replace("{{STYLE}}", _STYLE).replace("{{SCRIPT}}", _SCRIPT)
                .replace("{{NONCE}}", nonce))
        return web.Response(text=body, content_type="text/html", charset="utf-8",
                            headers=page_headers(nonce))

    # -- data ----------------------------------------------------------------------------

    @staticmethod
    def _json(answer: Callable[[Mapping[str, str]], Optional[dict]]):
        """A data route: ``answer`` takes the query and gives the JSON, or None for 404."""
        async def serve(request: web.Request) -> web.Response:
            try:
                status, payload = 200, answer(request.query)
            except BadRequest as exc:
                status, payload = 400, {"message": str(exc)}
            except StoreError as exc:
                log.warning("dashboard %s: the state cannot be read: %s", request.path, exc)
                status, payload = 503, {"message": "The devhost cannot read its state right now; "
                                                   "see the host log."}
            if payload is None:
                status, payload = 404, {"message": "No such instance."}
            return web.json_response(payload, status=status, headers=DATA_HEADERS)
        return serve

    def instances(self, *, statuses: Iterable[str] = (), name: str = "", created_from: str = "",
                  created_to: str = "", prefix: str = "", top: str = "", continuation: str = "") -> dict:
        """A page of instances, newest first (the query's ``status``, repeated or
        comma-separated, ``name``, ``createdFrom``, ``createdTo``, ``prefix`` of the
        instance id, ``top``, and the ``continuation`` the page before gave)."""
        statuses = tuple(dict.fromkeys(statuses))
        unknown = [s for s in statuses if s not in RUNTIME_STATUSES]
        if unknown:
            raise BadRequest(f"unknown runtime status {unknown[0]!r}; one of {', '.join(RUNTIME_STATUSES)}")
        page_size = _page_size(top)
        rows = self.engine.store.page_instances(
            statuses=statuses, name=name, id_prefix=prefix,
            created_from=_moment(created_from, "createdFrom"), created_to=_moment(created_to, "createdTo"),
            before=read_continuation(continuation), limit=page_size + 1)
        listed = rows[:page_size]
        more = len(rows) > page_size
        return {"instances": [{"instanceId": r.instance_id, "name": r.name, "runtimeStatus": r.runtime_status,
                               "createdTime": r.created_time, "lastUpdatedTime": r.last_updated_time}
                              for r in listed],
                "continuation": make_continuation(listed[-1].created_time, listed[-1].instance_id) if more else ""}

    def summary(self, since: str = "") -> dict:
        """The change mark, and unless ``since`` is that mark already, the counts of
        instances by orchestrator and status and the app's orchestrators and entities."""
        counts = self._current_counts()
        if since == counts.mark:
            return {"mark": counts.mark, "changed": False}
        registry = self.engine.registry
        return {"mark": counts.mark, "changed": True, "taskHub": self.api.task_hub,
                "counts": [{"name": name, "runtimeStatus": status, "count": count}
                           for name, status, count in counts.rows],
                "orchestrators": sorted(registry.orchestrators), "entities": sorted(registry.entities)}

    def _current_counts(self) -> _Counts:
        store, now = self.engine.store, self._monotonic()
        mark = "-".join(str(part) for part in store.change_mark())
        cached = self._counts
        if cached is None or (cached.mark != mark and now - cached.computed_at >= COUNTS_INTERVAL_S):
            # The mark is read before the counts, so a commit in between shows as a change
            # on the next poll rather than being taken as counted.
            cached = self._counts = _Counts(mark, now, store.instance_counts())
        return cached

    def instance(self, instance_id: str) -> Optional[dict]:
        """One instance: its status and history as the Durable HTTP API shows them, its
        parent, and the timeline of its current execution; None when there is none."""
        row = self.engine.instance(instance_id)
        if row is None:
            return None
        store = self.engine.store
        status = describe(row)
        history = [] if row.runtime_status == "Pending" else self.api.public_history(row, True, True)
        pending_timers = [m.event.get("TimerId") for m in store.due_messages(instance_id, math.inf)
                          if m.event.get("EventType") == EventType.TIMER_FIRED]
        drawn = timeline.build(self.engine.stored_history(instance_id), runtime_status=row.runtime_status,
                               created_time=row.created_time, now=to_iso(self.engine.clock.now()),
                               pending_timer_ids=pending_timers,
                               earlier_executions=store.earlier_executions(instance_id),
                               execution_id=row.execution_id)
        return {"status": status, "parentInstanceId": row.parent_instance_id,
                "createdTime": row.created_time, "lastUpdatedTime": row.last_updated_time,
                "historyEvents": history, "timeline": drawn}

    def entities(self, *, name: str = "", top: str = "", continuation: str = "") -> dict:
        """A page of existing entities in id order (the query's ``name`` of the entity,
        ``top``, and the ``continuation`` the page before gave: the id of its last
        entity), each with its state and its last operation's name and time."""
        page_size = _page_size(top)
        rows = self.engine.entities(name or None, after=continuation, limit=page_size + 1)
        listed = rows[:page_size]
        return {"entities": [{"name": r.name, "key": r.key, "state": entity_state(r.state),
                              "lastOperationName": r.last_operation_name,
                              "lastOperationTime": r.last_operation_time} for r in listed],
                "continuation": listed[-1].entity_id if len(rows) > page_size else ""}


# The page's scripts and styles carry this reply's nonce; nothing else runs or loads, the
# page fetches only from this host, and no other site may frame it (its buttons act).
def page_headers(nonce: str) -> dict:
    return {"Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                       f"style-src 'nonce-{nonce}'; connect-src 'self'; "
                                       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


DATA_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _page_size(text: str) -> int:
    if not text:
        return DEFAULT_PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise BadRequest(f"top must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def _moment(text: str, name: str) -> str:
    """An ISO date-time as the store keeps times (UTC, microseconds), or '' for none."""
    if not text:
        return ""
    try:
        return to_iso(parse_iso(text))
    except ValueError:
        raise BadRequest(f"{name} is not an ISO 8601 date and time: {text[:40]!r}") from None


def make_continuation(created_time: str, instance_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_time, instance_id]).encode("utf-8")).decode("ascii")


def read_continuation(token: str) -> Optional[tuple[str, str]]:
    """The (created time, id) a page continues after; None for the first page."""
    if not token:
        return None
    refusal = BadRequest("continuation is not one this dashboard gave")
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise refusal from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
            and len(value[1]) <= MAX_INSTANCE_ID_CHARS):
        raise refusal
    try:
        parse_iso(value[0])
    except ValueError:
        raise refusal from None
    return value[0], value[1]
