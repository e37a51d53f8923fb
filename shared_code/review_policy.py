"""Who reviews a draft: the review policy, its stages and seats, and the rules that place a
person in a seat and turn a stage's decisions into its outcome.

Pure (no clock, no I/O): the orchestrator applies these rules to what it receives, and the
routes apply the same rules to the status to answer at once; the orchestrator's answer is
the one that counts.

A policy is a list of stages run in order within a round. Each stage has seats:
``user:<name or e-mail>``, ``role:<app role>``, ``group:<Entra object id>`` or ``anyone``.
A person fills a role or group seat by holding that claim in their sign-in, and at most
one seat of a stage. ``require`` says when a stage is decided: ``"any"`` (the first
decision decides it, approve or reject), ``"all"`` (every seat approves; a rejection
rejects) or a number N (N approvals approve it; it is rejected once N can no longer be
reached). A review with no policy has one stage, ``review``, with one seat open to anyone:
whoever may decide today decides.
"""
from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Optional, Sequence, Union

from .identity import Person, valid_name
from .models import MAX_TIMEOUT_HOURS, ValidationError

SEAT_KINDS = ("user", "role", "group")
ANYONE = "anyone"
REQUIRE_WORDS = ("any", "all")
MAX_STAGES = 5
MAX_SEATS = 20
DEFAULT_STAGE = "review"
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")
_SEAT = re.compile(r"^(user|role|group):(\S.{0,198})$", re.S)


@dataclass(frozen=True)
class Seat:
    kind: str          # user, role, group or anyone
    value: str = ""    # the user, role or group; empty for anyone

    @classmethod
    def parse(cls, text: Any) -> "Seat":
        if text == ANYONE:
            return cls(ANYONE)
        if not isinstance(text, str):
            raise ValidationError(f"a seat is a string such as \"user:bob@contoso.com\", \"role:editors\", "
                                  f"\"group:<object id>\" or \"anyone\", got {type(text).__name__}")
        match = _SEAT.match(text)
        if not match or not valid_name(match.group(2)):
            kind = text.split(":", 1)[0] if ":" in text else text
            if ":" in text and kind not in SEAT_KINDS:
                raise ValidationError(f"unknown seat kind '{kind[:20]}' in {text[:60]!r}: "
                                      "use user:, role:, group: or anyone")
            raise ValidationError(f"{text[:60]!r} is not a seat: use user:<name or e-mail>, role:<app role>, "
                                  "group:<object id> or anyone")
        return cls(match.group(1), match.group(2))

    @property
    def spec(self) -> str:
        return ANYONE if self.kind == ANYONE else f"{self.kind}:{self.value}"

    @property
    def open_to_anyone(self) -> bool:
        return self.kind == ANYONE

    @property
    def personal(self) -> bool:
        """A seat that names one person: theirs to decide or hand on, never to claim."""
        return self.kind == "user"

    def admits(self, person: Person) -> bool:
        if self.kind == ANYONE:
            return True
        if self.kind == "user":
            return person.answers_to(self.value)
        held = person.roles if self.kind == "role" else person.groups
        return self.value.casefold() in {h.casefold() for h in held}


@dataclass(frozen=True)
class StageRule:
    name: str
    seats: tuple
    require: Union[str, int] = "any"
    hours: Optional[float] = None

    @property
    def approvals_needed(self) -> int:
        if self.require == "any":
            return 1
        if self.require == "all":
            return len(self.seats)
        return int(self.require)

    def outcome(self, verdicts: Sequence[bool]) -> Optional[bool]:
        """True approved, False rejected, None still open, from the decisions taken so far
        (in the order they were taken)."""
        if not verdicts:
            return None
        if self.require == "any":
            return verdicts[0]
        approvals = sum(1 for v in verdicts if v)
        rejections = len(verdicts) - approvals
        if approvals >= self.approvals_needed:
            return True
        if len(self.seats) - rejections < self.approvals_needed:
            return False
        return None

    @property
    def open_to_anyone(self) -> bool:
        return all(seat.open_to_anyone for seat in self.seats)

    def describe_require(self) -> str:
        if self.require == "any":
            return "the first decision"
        if self.require == "all":
            return "every seat's approval"
        return f"{self.require} approvals of {len(self.seats)}"

    def to_json(self) -> dict:
        rule: dict[str, Any] = {"name": self.name, "reviewers": [s.spec for s in self.seats],
                                "require": self.require}
        if self.hours is not None:
            rule["hours"] = self.hours
        return rule


@dataclass(frozen=True)
class ReviewPolicy:
    stages: tuple

    @classmethod
    def default(cls) -> "ReviewPolicy":
        return DEFAULT_POLICY

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_POLICY

    def to_json(self) -> dict:
        return {"stages": [stage.to_json() for stage in self.stages]}

    @classmethod
    def from_json(cls, value: Any, where: str = "'review'") -> "ReviewPolicy":
        """A policy from a run request or a setting, or ValidationError naming what is wrong."""
        if not isinstance(value, dict):
            raise ValidationError(f"{where} must be a JSON object with \"stages\"")
        unknown = sorted(set(value) - {"stages"})
        if unknown:
            raise ValidationError(f"unknown field(s) in {where}: {', '.join(unknown)}")
        stages = value.get("stages")
        if not isinstance(stages, list) or not stages:
            raise ValidationError(f"{where} needs \"stages\": a list of 1 to {MAX_STAGES} stages")
        if len(stages) > MAX_STAGES:
            raise ValidationError(f"{where} has {len(stages)} stages; at most {MAX_STAGES} are allowed")
        rules = tuple(_stage_rule(stage, f"{where} stage {n}") for n, stage in enumerate(stages, 1))
        names = [rule.name.casefold() for rule in rules]
        duplicate = next((rule.name for rule in rules if names.count(rule.name.casefold()) > 1), None)
        if duplicate:
            raise ValidationError(f"{where} names the stage '{duplicate}' twice; stage names must differ")
        return cls(rules)

    @classmethod
    def of_state(cls, value: Any) -> "ReviewPolicy":
        """The policy a review carries (written by this app, so already checked). Every
        replay reads its input afresh, and reading the largest policy's hundred seats took
        a tenth of a team review's replay: the latest policies read are kept, by their
        compact JSON (a policy is plain JSON, and equal JSON reads as an equal policy)."""
        if value is None:
            return DEFAULT_POLICY
        try:
            key = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):  # not plain JSON: read as it is, to be refused
            return cls.from_json(value)
        policy = _READ_POLICIES.get(key)
        if policy is None:
            # Read from the key, so that every value written as that JSON reads alike: a
            # tuple is written as a list, an integer key as a string.
            policy = cls.from_json(json.loads(key))
            with _READ_POLICIES_LOCK:
                _READ_POLICIES[key] = policy
                while len(_READ_POLICIES) > _POLICIES_KEPT:
                    del _READ_POLICIES[next(iter(_READ_POLICIES))]
        return policy

    def index_of(self, name: str) -> Optional[int]:
        wanted = name.casefold()
        return next((i for i, stage in enumerate(self.stages) if stage.name.casefold() == wanted), None)

    def seat_names(self) -> set:
        """Every seat spec of the policy, without case: what an event needs of a person."""
        return {seat.spec.casefold() for stage in self.stages for seat in stage.seats}


DEFAULT_POLICY = ReviewPolicy((StageRule(DEFAULT_STAGE, (Seat(ANYONE),), "any"),))
# The policies read, by their compact JSON, oldest first: reviews replaying side by side
# each keep theirs.
_READ_POLICIES: dict[str, "ReviewPolicy"] = {}
_READ_POLICIES_LOCK = threading.Lock()
_POLICIES_KEPT = 64


def _stage_rule(value: Any, where: str) -> StageRule:
    if not isinstance(value, dict):
        raise ValidationError(f"{where} must be a JSON object")
    unknown = sorted(set(value) - {"name", "reviewers", "require", "hours"})
    if unknown:
        raise ValidationError(f"unknown field(s) in {where}: {', '.join(unknown)}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{where} needs a \"name\"")
    if not _STAGE_NAME.match(name):
        raise ValidationError(f"{where}'s name {name[:60]!r} must be 1-40 letters, digits, spaces, "
                              "'_', '.' or '-', starting with a letter or digit")
    where = f"stage '{name}'"
    reviewers = value.get("reviewers")
    if not isinstance(reviewers, list) or not reviewers:
        raise ValidationError(f"{where} needs \"reviewers\": a list of 1 to {MAX_SEATS} seats")
    if len(reviewers) > MAX_SEATS:
        raise ValidationError(f"{where} has {len(reviewers)} seats; at most {MAX_SEATS} are allowed")
    seats = tuple(Seat.parse(seat) for seat in reviewers)
    people = [s.value.casefold() for s in seats if s.personal]
    twice = next((s.spec for s in seats if s.personal and people.count(s.value.casefold()) > 1), None)
    if twice:
        raise ValidationError(f"{where} names {twice} twice; one person fills one seat of a stage")
    require = value.get("require", "any")
    if isinstance(require, bool) or not (require in REQUIRE_WORDS or isinstance(require, int)):
        raise ValidationError(f"{where}'s \"require\" must be \"any\", \"all\" or a number of approvals "
                              f"from 1 to {len(seats)}")
    if isinstance(require, int) and not 1 <= require <= len(seats):
        raise ValidationError(f"{where}'s \"require\" is {require}, but it has {len(seats)} seat(s): "
                              f"use a number from 1 to {len(seats)}")
    hours = value.get("hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float))
                              or not (isinstance(hours, float) and math.isfinite(hours) or isinstance(hours, int))
                              or not 0 < hours <= MAX_TIMEOUT_HOURS):
        raise ValidationError(f"{where}'s \"hours\" must be a number greater than 0 and at most "
                              f"{MAX_TIMEOUT_HOURS:g}")
    return StageRule(name, seats, require, None if hours is None else float(hours))


# -- seats during a round -----------------------------------------------------------------

@dataclass(frozen=True)
class SeatView:
    """A seat of the stage under review as it stands: who may fill it now (after a
    delegation or a reassignment), a claim on it, and its decision in this round."""
    seat: Seat
    claimed_by: str = ""
    claim_until: str = ""
    decided_by: str = ""          # the person's key ("" for an anonymous decision)
    decided: bool = False
    approved: Optional[bool] = None

    def claim_holds(self, now_iso: str) -> bool:
        return bool(self.claimed_by) and _moment(self.claim_until) > _moment(now_iso)

    def to_json(self) -> dict:
        view: dict[str, Any] = {"seat": self.seat.spec}
        if self.decided:
            view["state"] = "approved" if self.approved else "rejected"
        else:
            view["state"] = "claimed" if self.claimed_by else "waiting"
        if self.claimed_by and not self.decided:
            view.update(claimedBy=self.claimed_by, claimUntil=self.claim_until)
        return view


@dataclass(frozen=True)
class Placement:
    """Where a decision goes: ``seat`` (an index) when it can be taken; ``duplicate`` when
    this person already decided this stage (``seat`` is then theirs); ``refusal`` (the
    reason) otherwise."""
    seat: Optional[int] = None
    duplicate: bool = False
    refusal: str = ""


def place(stage: StageRule, seats: Sequence[SeatView], person: Optional[Person], now_iso: str,
          only_seat: Optional[int] = None) -> Placement:
    """The seat a decision fills. ``person`` is None for a decision nobody named (the
    function key alone, or a link for a seat whose holder is not signed in); ``only_seat``
    is the seat a signed link was made for."""
    if person is not None:
        mine = next((i for i, view in enumerate(seats) if view.decided and view.decided_by == person.key), None)
        if mine is not None:
            return Placement(seat=mine, duplicate=True)
    candidates = [i for i in range(len(seats)) if only_seat is None or i == only_seat]
    if only_seat is not None and not candidates:
        return Placement(refusal=f"this link is for a seat stage '{stage.name}' does not have")
    open_ones = [i for i in candidates if not seats[i].decided]
    if not open_ones:
        if only_seat is not None:
            return Placement(refusal=f"the seat this link is for ({seats[only_seat].seat.spec}) has decided")
        return Placement(refusal=f"every seat of stage '{stage.name}' has decided")
    if only_seat is not None:  # a link grants its seat; a signed-in holder must fill it too
        fillable = [i for i in open_ones if person is None or seats[i].seat.admits(person)]
    elif person is None:
        fillable = [i for i in open_ones if seats[i].seat.open_to_anyone]
    else:
        fillable = [i for i in open_ones if seats[i].seat.admits(person)]
    free = [i for i in fillable if not seats[i].claim_holds(now_iso)
            or (person is not None and seats[i].claimed_by.casefold() == person.key)]
    if free:
        def preference(i: int) -> tuple:
            view = seats[i]
            claimed_by_me = person is not None and view.claim_holds(now_iso) and view.claimed_by.casefold() == person.key
            return (not claimed_by_me, not view.seat.personal, view.seat.open_to_anyone, i)
        return Placement(seat=min(free, key=preference))
    if fillable:
        holders = sorted({seats[i].claimed_by for i in fillable})
        return Placement(refusal=f"the seat you would fill in stage '{stage.name}' is claimed by "
                                 f"{', '.join(holders)} until the claim is released or lapses")
    waiting = waiting_for(seats, now_iso)
    who = "a decision nobody named" if person is None else person.name
    return Placement(refusal=f"{who} fills no open seat of stage '{stage.name}', which waits for "
                             f"{waiting or 'nobody'}")


def waiting_for(seats: Sequence[SeatView], now_iso: str) -> str:
    """The open seats, as a reason names them."""
    shown = []
    for view in seats:
        if view.decided:
            continue
        claim = f" (claimed by {view.claimed_by})" if view.claim_holds(now_iso) else ""
        shown.append(view.seat.spec + claim)
    return ", ".join(shown)


def stage_outcome(stage: StageRule, seats: Sequence[SeatView], order: Iterable[int]) -> Optional[bool]:
    """The stage's outcome from its seats' decisions, taken in ``order`` (seat indexes in
    the order their decisions arrived)."""
    return stage.outcome([bool(seats[i].approved) for i in order if seats[i].decided])


def claimable(stage: StageRule, seats: Sequence[SeatView], person: Person, now_iso: str,
              only_seat: Optional[int] = None) -> Placement:
    """The seat a claim takes: an open role, group or anyone seat the person may fill,
    not claimed by someone else; the one they already claim, if any."""
    held = next((i for i, v in enumerate(seats) if not v.decided and v.claim_holds(now_iso)
                 and v.claimed_by.casefold() == person.key), None)
    if held is not None and (only_seat is None or only_seat == held):
        return Placement(seat=held, duplicate=True)
    if any(v.decided and v.decided_by == person.key for v in seats):
        return Placement(refusal=f"you have already decided stage '{stage.name}'")
    candidates = [i for i, v in enumerate(seats) if (only_seat is None or i == only_seat) and not v.decided
                  and not v.seat.personal and v.seat.admits(person)]
    if not candidates:
        if any(v.seat.personal and v.seat.admits(person) for v in seats):
            return Placement(refusal="your seat names you; it needs no claim")
        return Placement(refusal=f"you fill no open seat of stage '{stage.name}' that can be claimed; it waits "
                                 f"for {waiting_for(seats, now_iso) or 'nobody'}")
    free = [i for i in candidates if not seats[i].claim_holds(now_iso)]
    if not free:
        holders = sorted({seats[i].claimed_by for i in candidates})
        return Placement(refusal=f"the seats you could claim are claimed by {', '.join(holders)}")
    return Placement(seat=free[0])


def _moment(iso: str) -> datetime:
    try:
        return datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)
