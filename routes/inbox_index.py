"""Every review awaiting a decision, as the reviewer inbox lists them: sorted by deadline
or by how long they have waited, filtered by topic and by who may act, a page at a time.

Each review keeps a card (entities/review_card.py) while one of its stages waits. This
module keeps the cards of this process in memory and reads only the cards that changed
since it last looked (the Durable entity query's ``lastOperationTimeFrom``), so a request
never reads every review: the first request of a process reads the cards of the last
``LONGEST_OPEN`` (no stage can wait longer), later ones what changed since.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import gc
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable, Optional

import aiohttp

from entities.review_card import REVIEW_CARD
from routes.backend_session import backend_session, reply_json
from shared_code import fast_json
from shared_code.identity import Person
from shared_code.models import MAX_TIMEOUT_HOURS, ValidationError
from shared_code.review_policy import Seat, SeatView

# A stage waits at most MAX_TIMEOUT_HOURS, and an escalation adds at most as much again: a
# card untouched for longer cannot belong to a waiting review.
LONGEST_OPEN = timedelta(hours=2 * MAX_TIMEOUT_HOURS)
# Reads of a change feed overlap by this much, so that an entity saved while the previous
# read ran (with an earlier operation time) is not missed.
OVERLAP = timedelta(seconds=10)
# Readers within this long of the last read share it: an index is a view, not a lock.
FRESH_SECONDS = 0.25
# Cards read a page at a time: small enough that a page does not hold the loop for long.
CARD_PAGE = 500
# After a refresh that took this many cards since the last freeze, the process's objects
# are frozen (gc.freeze): a hundred thousand rows left in the collector's oldest
# generation made each full collection (about one a second under load) walk them all,
# 30 to 40 ms with every request of the worker waiting. Frozen, they are no longer walked;
# a row replaced later is still freed by its reference count, as any frozen object is.
# The garbage there is is collected first. What is alive at that moment and only later
# becomes garbage in a cycle is never collected: a request or two in flight, once per
# this many card changes.
FREEZE_AFTER = 5000
SORTS = ("deadline", "age")
TABS = ("mine", "all")


@dataclass(frozen=True, slots=True)
class Row:
    """A card as the index keeps it: compact (a hundred thousand of them stay in memory),
    with the card itself as JSON text, read back only for the rows a page shows."""
    instance_id: str
    text: str
    topic: str          # folded, for the filter
    deadline: str
    since: str
    seats: tuple        # the open seats' specs, folded
    special: bool       # a claim or an earlier decision in the stage: who may act needs a look

    @property
    def card(self) -> dict:
        return fast_json.parse(self.text)


@dataclass(frozen=True)
class InboxPage:
    rows: list
    continuation: str
    counts: dict


class InboxIndex:
    """The cards of every review awaiting a decision, kept sorted two ways, with the open
    seats indexed by who may fill them."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._clock = clock
        self._rows: dict[str, Row] = {}
        self._sorted = {"deadline": [], "age": []}
        self._by_seat: dict[str, set] = {}
        self._special: set = set()
        self._cards = EntityFeed(REVIEW_CARD, clock, first_since=lambda now: now - LONGEST_OPEN)
        self._taken_since_freeze = 0

    # -- keeping up with the cards ------------------------------------------------------

    async def refresh(self, rpc_base_url: str) -> None:
        await self._cards.follow(rpc_base_url, self.apply)
        if self._taken_since_freeze >= FREEZE_AFTER:
            gc.collect()
            gc.freeze()
            self._taken_since_freeze = 0

    def apply(self, instance_id: str, card: Any) -> None:
        """Take a card as it is now: shown (a dict with a deadline) or hidden."""
        self._forget(instance_id)
        if not isinstance(card, dict) or card.get("hidden") or not card.get("deadline"):
            return
        seats = tuple(sys.intern(_seat_key(str(seat.get("seat", "")))) for seat in card.get("seats") or [])
        special = bool(card.get("deciders")) or any(seat.get("claimedBy") for seat in card.get("seats") or [])
        row = Row(instance_id, json.dumps(card, separators=(",", ":")), str(card.get("topic", "")).casefold(),
                  str(card["deadline"]), str(card.get("since") or ""), seats, special)
        self._rows[instance_id] = row
        self._taken_since_freeze += 1
        bisect.insort(self._sorted["deadline"], (row.deadline, instance_id))
        bisect.insort(self._sorted["age"], (row.since, instance_id))
        for seat in seats:
            self._by_seat.setdefault(seat, set()).add(instance_id)
        if special:
            self._special.add(instance_id)

    def _forget(self, instance_id: str) -> None:
        row = self._rows.pop(instance_id, None)
        if row is None:
            return
        for sort, key in (("deadline", row.deadline), ("age", row.since)):
            entries = self._sorted[sort]
            at = bisect.bisect_left(entries, (key, instance_id))
            if at < len(entries) and entries[at] == (key, instance_id):
                del entries[at]
        for seat in row.seats:
            self._by_seat.get(seat, set()).discard(instance_id)
        self._special.discard(instance_id)

    # -- reading ------------------------------------------------------------------------

    def page(self, *, sort: str, tab: str, wanted: str, person: Optional[Person], top: int,
             continuation: str = "") -> InboxPage:
        """One page of rows: ``tab`` "mine" holds the reviews whose stage under review
        ``person`` may decide (or, with nobody named, those open to anyone); "all" every one."""
        now = self._clock().isoformat()
        mine = self._actionable(person, now)
        entries = self._sorted[sort]
        start = bisect.bisect_right(entries, _position(continuation, sort)) if continuation else 0
        wanted = wanted.casefold()
        rows, more = [], False
        for index in range(start, len(entries)):
            instance_id = entries[index][1]
            if tab == "mine" and instance_id not in mine:
                continue
            row = self._rows[instance_id]
            if wanted and wanted not in row.topic:
                continue
            if len(rows) == top:
                more = True
                break
            rows.append(row)
        next_token = ""
        if more:
            last = rows[-1]
            next_token = _token(sort, (last.deadline if sort == "deadline" else last.since, last.instance_id))
        return InboxPage(rows, next_token, {"mine": len(mine), "all": len(self._rows)})

    def _actionable(self, person: Optional[Person], now: str) -> "Actionable":
        """The reviews whose stage under review ``person`` may decide now."""
        keys = ["anyone"] if person is None else person_seat_keys(person)
        seat_sets = [self._by_seat.get(key, set()) for key in keys]
        largest = max(seat_sets, key=len)
        others = set().union(*(s for s in seat_sets if s is not largest)) - largest
        if person is None:
            return Actionable(largest, others, set())
        # An open seat that names the person settles it, unless the card has a claim or an
        # earlier decision in the stage: only those cards need a closer look.
        refused = {i for i in self._special if (i in largest or i in others)
                   and not can_act(self._rows[i].card, person, now)}
        return Actionable(largest, others, refused)

    def __len__(self) -> int:
        return len(self._rows)


@dataclass(frozen=True)
class Actionable:
    """A set of reviews without a copy of the index's own: with a hundred thousand open to
    anyone, copying that set took 2 ms a request. ``largest`` is the index's set for one
    seat (never changed here), ``others`` what the person's other seats add, ``refused``
    the reviews among them a claim or an earlier decision closes to the person."""
    largest: set
    others: set
    refused: set

    def __contains__(self, instance_id: str) -> bool:
        return (instance_id in self.largest or instance_id in self.others) and instance_id not in self.refused

    def __len__(self) -> int:
        return len(self.largest) + len(self.others) - len(self.refused)

    def __iter__(self):
        return (i for part in (self.largest, self.others) for i in part if i not in self.refused)


def person_seat_keys(person: Person) -> list[str]:
    """Every seat spec (folded) that could name this person."""
    keys = ["anyone", f"user:{person.key}"]
    if person.object_id:
        keys.append(f"user:{person.object_id.casefold()}")
    keys += [f"role:{role.casefold()}" for role in person.roles]
    keys += [f"group:{group.casefold()}" for group in person.groups]
    return keys


def can_act(card: dict, person: Person, now: str) -> bool:
    """Whether the person may decide the card's stage now: an open seat admits them, not
    claimed by someone else, and they have not decided it already."""
    if person.key in {str(d).casefold() for d in card.get("deciders") or []}:
        return False
    for seat in card.get("seats") or []:
        view = SeatView(Seat.parse(seat.get("seat", "anyone")), claimed_by=seat.get("claimedBy", ""),
                        claim_until=seat.get("claimUntil", ""))
        if view.seat.admits(person) and (not view.claim_holds(now) or view.claimed_by.casefold() == person.key):
            return True
    return False


def _seat_key(spec: str) -> str:
    return spec.casefold()


def _token(sort: str, position: tuple) -> str:
    raw = json.dumps({"s": sort, "k": position[0], "i": position[1]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position(token: str, sort: str) -> tuple:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["s"] != sort or not isinstance(data["k"], str) or not isinstance(data["i"], str):
            raise ValueError
        return data["k"], data["i"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationError("'continuation' is not a token this route returned for this sort") from None


class EntityFeed:
    """One entity name's change feed as an index in memory follows it: the first read
    starts at ``first_since(now)`` (None: every entity), each later one where the one
    before began, less OVERLAP; readers within FRESH_SECONDS of the last read share it.
    A read that fails is an EntityQueryFailed whatever failed, and the next read starts
    where the failed one did."""

    def __init__(self, name: str, clock: Callable[[], datetime],
                 first_since: Callable[[datetime], Optional[datetime]] = lambda now: None):
        self.name = name
        self._clock = clock
        self._first_since = first_since
        self._read_to: Optional[datetime] = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def follow(self, rpc_base_url: str, apply: Callable[[str, Any], None]) -> None:
        """``apply(key, state)`` for every entity changed since the last read."""
        if time.monotonic() - self._read_at < FRESH_SECONDS:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < FRESH_SECONDS:
                return
            started = self._clock()
            since = self._first_since(started) if self._read_to is None else self._read_to - OVERLAP
            try:
                async for changed in changed_entities(rpc_base_url, self.name, since):
                    for key, state in changed:
                        apply(key, state)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                raise EntityQueryFailed(f"{type(exc).__name__}: {exc}") from None
            self._read_to, self._read_at = started, time.monotonic()


async def changed_entities(rpc_base_url: str, name: str,
                           since: Optional[datetime]) -> AsyncIterator[list[tuple[str, Any]]]:
    """(key, state) of every entity of this name changed at or after ``since`` (every one
    when ``since`` is None), read from the Durable backend's entity query a page at a
    time; between pages the event loop serves other requests (the first read of a process
    can hold every card there is)."""
    url = f"{rpc_base_url}entities/{name}?fetchState=true&top={CARD_PAGE}"
    if since is not None:
        url += f"&lastOperationTimeFrom={since.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
    token = ""
    session = await backend_session()
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        async with session.get(url, headers=headers) as reply:
            if reply.status != 200:
                raise EntityQueryFailed(f"the Durable backend answered {reply.status} to an entity query")
            rows = await reply_json(reply)
            token = reply.headers.get("x-ms-continuation-token", "")
        yield [(row["entityId"]["key"], _state_of(row.get("state"))) for row in rows or []
               if isinstance((row.get("entityId") or {}).get("key"), str)]
        if not token or token == "null":
            return
        await asyncio.sleep(0)


def _state_of(state: Any) -> Any:
    if isinstance(state, str):  # an entity's state can arrive as its JSON text
        try:
            return fast_json.parse(state)
        except ValueError:
            return None
    return state


class EntityQueryFailed(Exception):
    """The Durable backend did not answer the entity query as it should."""
