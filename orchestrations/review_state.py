"""The state a review carries from one orchestration execution to the next.

The orchestrator continues as new at every stage, round and timer slice, so this state is
its whole memory. It must stay small (only the latest earlier drafts are kept, as
excerpts; only the latest ignored events), be plain JSON, and survive upgrades: a review
can wait 30 days, so the state an execution reads may have been written by an earlier
release. ``to_input`` writes ``STATE_VERSION``; ``read`` accepts every version shipped
(tests/orchestrations/state_samples holds one sample of each).

Version 1 (no "version" key) was the dataclass's fields as they were: topic, max_rounds,
timeout_hours, round, draft, deadline, writer, decisions, previous_draft, earlier_drafts,
notification, ignored_events. Version 2 added the deadline fields. Version 3 added the
review policy (stages and seats), the stage under review, seat changes and the latest
events taken; a version 2 state reads as the default policy's one stage, its decisions
as that stage's. Version 4 added the reviewer's aids (comments on passages, the writer's
list of changes, the house rules and their check, the seats' first views) and what the
analytics need (when the review started and the notice went out, the seats counted as
waiting); a version 3 state reads with none of them yet. Version 5 added whether the
deployment sent Slack messages when the review started; a version 4 state reads as not.
The first execution's input is the run request: bare from the first releases, under the
"start" key from version 3 on, with the version beside it from version 4 on.

Which release wrote an execution's input also says what the execution may schedule: an
execution is replayed with the history its release recorded, so one started by an
earlier release schedules nothing that release did not (``input_version``).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from datetime import datetime, timedelta
from typing import Any, Optional

from shared_code.identity import Person
from shared_code.models import (CONTACTS_INPUT_KEY, DEFAULT_ESCALATION_HOURS, DEFAULT_REVIEW_ATTEMPTS,
                                DEFAULT_TIMEOUT_HOURS, MAX_TIMEOUT_HOURS, SLACK_INPUT_KEY, START_INPUT_KEY,
                                START_INPUT_VERSION, CancelRequest, Decision, ExtendRequest, ReviewNote, RunRequest,
                                SeatChange)
from shared_code.passages import missing_quote, too_many_comments
from shared_code.review_analytics import by_day, fact, seconds_between
from shared_code.review_policy import (Placement, ReviewPolicy, Seat, SeatView, StageRule, claimable, place,
                                       stage_outcome)
from shared_code.review_status import ReviewStatus
from shared_code.stages import Stage

from . import review_comments
from .deadlines import StageDeadline, room_to_extend

STATE_VERSION = START_INPUT_VERSION
# The state versions whose executions show the inbox card, and those that also check
# drafts against the house rules, take reviewers' notes and report analytics facts.
CARDS_SINCE, AIDS_SINCE = 3, 4
# Fields an execution keeps to itself: never written into the next execution's input.
TRANSIENT = ("outbox", "input_version", "over")
EXCERPT_CHARS = 1_000
# Every episode replays this state, so it must stop growing: only the latest rejected
# drafts are kept, as excerpts, and the latest ignored events and acknowledgements. The
# decisions, the review's audit trail, stay complete.
EARLIER_DRAFTS_KEPT = 3
IGNORED_EVENTS_KEPT = 10
ACKS_KEPT = 20
CARD_TOPIC_CHARS = 200
# The writer is told every rejection's feedback, newest first, up to this much in all
# (a team's round can hold twenty rejections).
WRITER_FEEDBACK_CHARS = 40_000
# A comment nobody is given any more (an approval's, once its stage is decided; feedback
# the writer no longer gets) is kept as an excerpt this long, with its length.
FEEDBACK_EXCERPT_CHARS = 300
# A notice carries this much of the draft, for the channels that show an excerpt.
NOTICE_EXCERPT_CHARS = 300
# A policy names at most 5 stages of 20 seats.
MAX_CONTACTS = 100
SEAT_MESSAGES_KEPT = 100
# A notice's failed parts are tried again after these many minutes, then left failed.
NOTICE_RETRY_MINUTES = (1, 5, 15)


class UnreadableState(ValueError):
    """The input is no review state this release knows."""


@dataclass(frozen=True)
class ReviewState:
    topic: str
    max_rounds: int = DEFAULT_REVIEW_ATTEMPTS
    timeout_hours: float = DEFAULT_TIMEOUT_HOURS
    round: int = 1
    draft: Optional[dict] = None
    # The deadline of the stage under review; None until the stage opens.
    deadline: Optional[str] = None
    # When the stage under review opened (its draft became reviewable for it).
    reviewable_since: Optional[str] = None
    writer: Optional[str] = None
    decisions: tuple = ()
    previous_draft: Optional[dict] = None
    earlier_drafts: tuple = ()
    notification: Optional[dict] = None
    ignored: tuple = ()
    ignored_count: int = 0
    # Deadlines (all optional: without them a review times out as the reference does).
    remind_before_hours: tuple = ()
    on_timeout: str = "fail"
    escalation_hours: float = DEFAULT_ESCALATION_HOURS
    deadline_set_at: Optional[str] = None
    reminders: tuple = ()
    escalated_at: Optional[str] = None
    deadline_changes: tuple = ()
    # Who reviews (version 3): the policy (None: one stage open to anyone), the stage under
    # review in this round, and the seat changes (claims, delegations, reassignments).
    policy: Optional[dict] = None
    stage: int = 0
    seat_changes: tuple = ()
    acks: tuple = ()
    # Where the review's people can be reached in Teams ({person key: contact}), as the run
    # route found them when the review started; people without one get no Teams card.
    contacts: Optional[dict] = None
    # The Slack messages each seat was sent ({"round", "stage", "seat", "slack": "channel/ts"}),
    # the latest ones, so that a decision can update every reviewer's message.
    seat_messages: tuple = ()
    # Whether the deployment sent Slack messages when the review started (version 5): a
    # decision taken while a notice is out then tells the messages' entity at once, for
    # the messages that notice posts and the review does not know of yet.
    slack: bool = False
    # A notice whose webhook or seat channels failed is tried again on a durable timer:
    # {"at", "attempt", "webhook": bool, "seats": {seat index: [channels]}}.
    notice_retry: Optional[dict] = None
    # The reviewer's aids (version 4): comments on passages (review_comments.py), the
    # writer's list of changes in the draft under review, the deployment's house rules
    # as the review started with them and the check of the draft against them, and the
    # seats' first views in this round.
    comments: tuple = ()
    draft_changes: tuple = ()
    house_rules: tuple = ()
    check: Optional[dict] = None
    views: tuple = ()
    # For the analytics (version 4): when the review started, when the stage's first
    # notice went out, and the seats ([stage, seat]) reported as waiting.
    started_at: Optional[str] = None
    notified_at: Optional[str] = None
    seats_counted: tuple = ()
    # Kept by one execution only (TRANSIENT): analytics facts not sent yet, the version
    # of the input it read, and whether the review has ended.
    outbox: tuple = field(default=(), compare=False)
    input_version: int = field(default=STATE_VERSION, compare=False)
    over: bool = field(default=False, compare=False)

    # -- reading and writing ----------------------------------------------------------

    @classmethod
    def initial(cls, run: RunRequest, house_rules: tuple = (), input_version: int = STATE_VERSION,
                slack: bool = False) -> "ReviewState":
        return cls(topic=run.topic, max_rounds=run.max_review_attempts,
                   timeout_hours=run.approval_timeout_hours, remind_before_hours=run.remind_before_hours,
                   on_timeout=run.on_timeout, escalation_hours=run.escalation_hours, policy=run.review,
                   house_rules=house_rules, input_version=input_version, slack=slack)

    @classmethod
    def read(cls, data: Any) -> "ReviewState":
        if not isinstance(data, dict):
            raise UnreadableState(f"a review state is a JSON object, not {type(data).__name__}")
        version = cls.version_of(data)
        if version > STATE_VERSION:
            raise UnreadableState(f"review state version {version!r} is newer than this release "
                                  f"(it reads versions 1 to {STATE_VERSION})")
        if isinstance(data.get(START_INPUT_KEY), dict):  # a first execution: the run request
            rules = data.get("house_rules")
            rules = tuple(r for r in rules if isinstance(r, str)) if isinstance(rules, list) else ()
            initial = cls.initial(RunRequest.from_json(data[START_INPUT_KEY]), rules, version,
                                  data.get(SLACK_INPUT_KEY) is True)
            return initial._with(contacts=_contacts(data.get(CONTACTS_INPUT_KEY)))
        if version in (3, 4, STATE_VERSION):
            return cls._from_fields({k: v for k, v in data.items() if k != "version"}, version)
        if version == 2:
            return cls._from_version_2(data)
        if version == 1:
            if "max_rounds" not in data and "round" not in data:
                return cls.initial(RunRequest.from_json(data), input_version=1)  # the run request itself
            return cls._from_version_2({**data, "ignored_count": data.get("ignored_events", 0),
                                        "decisions": [{**d, "by": _v1_actor(d.get("by"))}
                                                      for d in data.get("decisions", [])]}, 1)
        raise UnreadableState(f"review state version {version!r} is not one this release knows")

    @staticmethod
    def version_of(data: Any) -> int:
        """The state version an input was written with: a state's own, a start input's (3
        when it names none, as version 3 sent it), 1 for anything older."""
        if not isinstance(data, dict):
            return 1
        version = data.get("version", 3 if isinstance(data.get(START_INPUT_KEY), dict) else 1)
        return version if isinstance(version, int) and not isinstance(version, bool) else 0

    @property
    def shows_cards(self) -> bool:
        """This execution keeps the review's inbox card: its release recorded the signals
        (see the module's docstring)."""
        return self.input_version >= CARDS_SINCE

    @property
    def schedules_aids(self) -> bool:
        """This execution may check drafts, take reviewers' notes and report facts: its
        release recorded those actions (see the module's docstring)."""
        return self.input_version >= AIDS_SINCE

    @classmethod
    def _from_version_2(cls, data: dict, version: int = 2) -> "ReviewState":
        """Before policies every review had the default policy, whose decisions name no
        stage or seat (its one stage and seat): the fields carry over as they are."""
        return cls._from_fields({k: v for k, v in data.items() if k not in ("version", "ignored_events")}, version)

    @classmethod
    def _from_fields(cls, fields: dict, version: int) -> "ReviewState":
        known = set(cls.__dataclass_fields__) - set(TRANSIENT)
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in known}
        return cls(**values, input_version=version)

    def _with(self, **changes: Any) -> "ReviewState":
        """A copy with ``changes``, as ``dataclasses.replace`` makes it but without running
        the generated ``__init__`` over every field again: each replay makes dozens of
        these. The values worked out from the seats' fields go when one of those changes,
        and the rules when the policy does; a decision's acknowledgement or a fact keeps
        them."""
        unknown = changes.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"ReviewState has no field {', '.join(sorted(unknown))}")
        copy = object.__new__(ReviewState)
        values = copy.__dict__
        values.update(self.__dict__)
        if not changes.keys().isdisjoint(_SEAT_FIELDS):
            for name in _DERIVED_FROM_FIELDS:
                values.pop(name, None)
        if "policy" in changes:
            values.pop("rules", None)
        values.update(changes)
        return copy

    def to_input(self) -> dict:
        state = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k not in TRANSIENT}
        return {"version": STATE_VERSION, **state}

    # -- questions -------------------------------------------------------------------

    @cached_property
    def rules(self) -> ReviewPolicy:
        # Kept with this state (a frozen value): every replay asks for it many times.
        return ReviewPolicy.of_state(self.policy)

    @property
    def stage_rule(self) -> StageRule:
        return self.rules.stages[self.stage]

    @property
    def awaiting_draft(self) -> bool:
        return self.draft is None

    @property
    def stage_open(self) -> bool:
        return self.deadline is not None

    @property
    def rounds_left(self) -> bool:
        return self.round < self.max_rounds

    @property
    def has_next_stage(self) -> bool:
        return self.stage + 1 < len(self.rules.stages)

    def deadline_at(self) -> datetime:
        return datetime.fromisoformat(self.deadline)

    def writer_request(self) -> dict:
        request = {"topic": self.topic, "round": self.round, "previous_draft": self.previous_draft,
                   "feedback": self._writer_feedback()}
        comments = review_comments.for_writer(self.comments)
        if comments:
            request["comments"] = comments
        return request

    @property
    def needs_check(self) -> bool:
        """The draft under review has not been checked against the house rules yet."""
        return self.schedules_aids and bool(self.house_rules) and self.check is None and self.draft is not None

    def check_request(self) -> dict:
        return {"rules": list(self.house_rules),
                "draft": {"title": self.draft["title"], "content": self.draft["content"]}}

    def _writer_feedback(self) -> list[str]:
        """The feedback of every rejection so far, oldest first; with several stages each
        item names the stage it came from (never the reviewer)."""
        labelled = not self.rules.is_default
        items, room = [], WRITER_FEEDBACK_CHARS
        for record in reversed(self.decisions):
            if record.get("approved") or not record.get("feedback") or "feedbackChars" in record:
                continue
            item = f"{record.get('stage')}: {record['feedback']}" if labelled else record["feedback"]
            if len(item) > room:
                break
            items.append(item)
            room -= len(item)
        return items[::-1]

    def has_seen(self, event_id: str) -> bool:
        """An event this review already applied or ignored: a route sends a decision again
        when it saw no sign of it, and it must not count twice."""
        return bool(event_id) and any(r.get("id") == event_id for r in (
            *self.decisions, *self.ignored, *self.deadline_changes, *self.seat_changes, *self.acks))

    def judge(self, decision: Optional[Decision]) -> Optional[str]:
        """Why a decision cannot be applied to the stage under review; None when it can."""
        if decision is None:
            return "not a decision: it needs a JSON boolean 'approved' and an integer 'round'"
        if decision.round < self.round:
            return f"round {decision.round} was already decided"
        if decision.round != self.round:
            return f"it is for round {decision.round}, but round {self.round} is under review"
        if decision.stage_index is not None and decision.stage_index != self.stage:
            rules = self.rules.stages
            named = rules[decision.stage_index].name if decision.stage_index < len(rules) else "?"
            if decision.stage_index < self.stage:
                return f"stage '{named}' of round {self.round} was already decided"
            return f"it is for stage '{named}', but stage '{self.stage_rule.name}' is under review"
        if decision.edit and self.stage_rule.require != "any":
            return (f"an edit goes with a stage one reviewer decides; stage '{self.stage_rule.name}' "
                    f"needs {self.stage_rule.describe_require()}")
        if decision.comments:
            missing = missing_quote(decision.comments, self.draft)
            if missing is not None:
                return f"the quote of comment {missing} is not in the draft of round {self.round}"
            return too_many_comments(len(self.comments), len(decision.comments))
        return None

    def note_problem(self, note: ReviewNote) -> Optional[str]:
        """Why a comment cannot be resolved or reopened now; None when it can."""
        return review_comments.note_problem(self.comments, note, self.round)

    def extension_problem(self, extend: Optional[ExtendRequest]) -> Optional[str]:
        if extend is None:
            return "not a deadline change: it needs a number of 'hours' and an integer 'round'"
        if extend.round != self.round:
            return (f"round {extend.round} was already decided" if extend.round < self.round
                    else f"it is for round {extend.round}, but round {self.round} is under review")
        opened = datetime.fromisoformat(self.reviewable_since or self.deadline_set_at or self.deadline)
        room = room_to_extend(opened, self.deadline_at(), extend.hours, timedelta(hours=MAX_TIMEOUT_HOURS))
        if room is not None:
            return (f"a stage can wait at most {MAX_TIMEOUT_HOURS:g} hours for its decision; "
                    f"this deadline can move by {room:.4g} hours more at most")
        return None

    # -- seats -----------------------------------------------------------------------

    def seat_views(self, stage: Optional[int] = None) -> tuple:
        """The seats of a stage (the one under review by default) as they stand in this
        round: seat changes applied in order, then this round's decisions."""
        if stage is None or stage == self.stage:
            return self._current_seats
        return self._seats_of(stage)

    @cached_property
    def _current_seats(self) -> tuple:
        return self._seats_of(self.stage)

    def _seats_of(self, index: int) -> tuple:
        # Each seat is replaced where a change or a decision lands, in a list: the largest
        # stage's twenty decisions would otherwise copy its twenty seats twenty times.
        views = [SeatView(seat) for seat in self.rules.stages[index].seats]
        for change in self.seat_changes:
            seat = change.get("seat", -1)
            if change.get("stage") == index and isinstance(seat, int) and 0 <= seat < len(views):
                views[seat] = replace(views[seat], **_seat_change_effect(change))
        for record in self._stage_records(index):
            seat = record.get("seatIndex", 0)
            if isinstance(seat, int) and 0 <= seat < len(views):
                person = Person.from_event(record.get("person"))
                views[seat] = replace(views[seat], decided=True, approved=bool(record.get("approved")),
                                      decided_by=person.key if person else "")
        return tuple(views)

    def _stage_records(self, stage: int) -> tuple:
        """This round's decisions of a stage, in the order they were taken."""
        return self._records_by_stage.get(stage, ())

    @cached_property
    def _records_by_stage(self) -> dict[int, tuple]:
        # One pass over the decisions for every stage: a status asks for each stage's.
        by_stage: dict[int, list] = {}
        for record in self.decisions:
            stage = record.get("stageIndex", 0)
            if record.get("round") == self.round and isinstance(stage, int):
                by_stage.setdefault(stage, []).append(record)
        return {stage: tuple(records) for stage, records in by_stage.items()}

    def place(self, decision: Decision, now: datetime) -> Placement:
        person = Person.from_event(decision.person)
        return place(self.stage_rule, self.seat_views(), person, now.isoformat(), decision.seat)

    def outcome(self) -> Optional[bool]:
        """The stage's outcome once its decisions settle it: True approved, False rejected."""
        return self._stage_outcome

    @cached_property
    def _stage_outcome(self) -> Optional[bool]:
        order = [r.get("seatIndex", 0) for r in self._stage_records(self.stage)]
        return stage_outcome(self.stage_rule, self.seat_views(), order)

    def seat_change_problem(self, change: Optional[SeatChange], now: datetime) -> Optional[str]:
        """Why a seat change cannot be applied to the seats as they stand; None when it can."""
        if change is None:
            return "not a seat change: it needs a change, a stage and a seat"
        stages = self.rules.stages
        if change.stage >= len(stages) or change.seat >= len(stages[change.stage].seats):
            return "there is no such seat in this review's policy"
        rule, views = stages[change.stage], self.seat_views(change.stage)
        view, now_iso = views[change.seat], now.isoformat()
        person = Person.from_event(change.person)
        if change.change in ("claim", "release") and (change.stage != self.stage or not self.stage_open):
            return f"a claim is for the stage under review, which is '{self.stage_rule.name}' and not open yet" \
                if not self.stage_open else f"a claim is for the stage under review, '{self.stage_rule.name}'"
        if change.stage == self.stage and view.decided:
            return f"seat {view.seat.spec} of stage '{rule.name}' has decided in this round"
        if change.change == "claim":
            if person is None:
                return "a claim needs a person who is signed in or named"
            return claimable(rule, views, person, now_iso, only_seat=change.seat).refusal or None
        if change.change == "release":
            if not view.claim_holds(now_iso):
                return f"seat {view.seat.spec} of stage '{rule.name}' is not claimed"
            if not change.owner and (person is None or view.claimed_by.casefold() != person.key):
                return f"only {view.claimed_by} or the owner can release this claim"
            return None
        try:
            Seat.parse(change.to)
        except ValueError as exc:
            return str(exc)
        if change.change == "delegate":
            holds = person is not None and (view.seat.personal and view.seat.admits(person) or view.claim_holds(now_iso)
                                            and view.claimed_by.casefold() == person.key)
            if not holds:
                return (f"only the person who fills seat {view.seat.spec} of stage '{rule.name}' (by name, or "
                        "by claiming it) can hand it on")
            return None
        return None if change.owner else "only the owner can reassign a seat"

    def open_seats(self) -> list[int]:
        return [i for i, view in enumerate(self.seat_views()) if not view.decided]

    # -- deadlines ---------------------------------------------------------------------

    def clock(self) -> StageDeadline:
        reminded = frozenset((r["beforeHours"], r["deadline"]) for r in self.reminders
                             if r.get("round") == self.round and r.get("stage", 0) == self.stage)
        retry_at = datetime.fromisoformat(self.notice_retry["at"]) if self.notice_retry else None
        return StageDeadline(self.deadline_at(), datetime.fromisoformat(self.deadline_set_at or self.deadline),
                             self.remind_before_hours, reminded, self.on_timeout == "escalate",
                             self.escalated_at is not None, retry_at)

    # -- transitions -----------------------------------------------------------------

    def with_draft(self, draft: dict) -> "ReviewState":
        """The round's draft, with the writer's list of changes and its answers to the
        comments it was given."""
        changes = tuple(c for c in draft.get("changes") or () if isinstance(c, str))
        comments = review_comments.answered(self.comments, draft.get("answers"), self.round) \
            if review_comments.for_writer(self.comments) else self.comments
        return self._with(draft={"title": draft["title"], "content": draft["content"]},
                          writer=draft.get("writer"), draft_changes=changes, comments=comments)

    def checking(self) -> "ReviewState":
        return self._with(check={"status": "checking"})

    def with_check(self, result: Any) -> "ReviewState":
        """The checker's verdicts on the draft; "not checked", with the reason, when it
        failed as a whole (the verdicts of rules checked in code still show)."""
        if not isinstance(result, dict):
            return self._with(check={"status": "not_checked", "reason": "the checker failed unexpectedly"})
        check = {"status": "checked" if not result.get("error") else "not_checked",
                 "results": list(result.get("results") or []), "checker": result.get("checker")}
        if result.get("error"):
            check["reason"] = str(result["error"])
        return self._with(check=check)

    def without_pending_check(self) -> "ReviewState":
        """The stage was decided while its check ran: the next stage checks again."""
        return self._with(check=None) if self.check == {"status": "checking"} else self

    def open_stage(self, now: datetime) -> "ReviewState":
        """The stage under review starts: its deadline runs from now, and its seats are
        being told."""
        hours = self.stage_rule.hours if self.stage_rule.hours is not None else self.timeout_hours
        deadline = now + timedelta(hours=hours)
        return self._with(deadline=deadline.isoformat(), deadline_set_at=now.isoformat(),
                          reviewable_since=now.isoformat(), escalated_at=None, notification={"status": "sending"},
                          notified_at=None)

    @property
    def stage_hours(self) -> float:
        return self.stage_rule.hours if self.stage_rule.hours is not None else self.timeout_hours

    def with_reminder(self, before_hours: float, outcome: dict, now: datetime) -> "ReviewState":
        record = {"round": self.round, "stage": self.stage, "beforeHours": before_hours,
                  "deadline": self.deadline, "at": now.isoformat(),
                  "delivered": bool(outcome.get("delivered")), "channel": outcome.get("channel")}
        return self._with(reminders=(*self.reminders, record))

    def escalated(self, now: datetime) -> "ReviewState":
        """The stage with its escalation window: the escalation notice goes out after this,
        so that its text and its links carry the new deadline."""
        deadline = self.deadline_at() + timedelta(hours=self.escalation_hours)
        missed = fact("missed", _day(now), stage=self.stage_rule.name, escalated=True)
        return self._with(escalated_at=now.isoformat(), deadline=deadline.isoformat(),
                          deadline_set_at=now.isoformat(), outbox=(*self.outbox, missed))

    def with_notice(self, kind: str, outcome: dict) -> "ReviewState":
        """Record how a later notice (an escalation, a moved deadline, a seat handed on)
        went, beside the first one's outcome."""
        return self._with(notification={**(self.notification or {}), kind: {
            "status": "sent" if outcome.get("delivered") else "failed",
            "channel": outcome.get("channel"), "reason": outcome.get("error")}})

    def extended(self, extend: ExtendRequest, now: datetime) -> "ReviewState":
        deadline = self.deadline_at() + timedelta(hours=extend.hours)
        record = {"round": self.round, "stage": self.stage, "hours": extend.hours, "from": self.deadline,
                  "to": deadline.isoformat(), "by": extend.by, "at": now.isoformat()}
        if extend.id:
            record["id"] = extend.id
        return self._with(deadline=deadline.isoformat(), deadline_set_at=now.isoformat(),
                          deadline_changes=(*self.deadline_changes, record))

    def with_notification(self, outcome: dict, now: datetime) -> "ReviewState":
        """Keep how the stage's seats were told, and when; never the signed links themselves."""
        if outcome.get("delivered"):
            summary = {"status": "sent", "channel": outcome.get("channel")}
        else:
            summary = {"status": "failed", "channel": outcome.get("channel"), "reason": outcome.get("error")}
        if outcome.get("links_error"):
            summary["links"] = outcome["links_error"]
        told = outcome.get("seat_channels") or {}
        seats = [seat for seat in told.get("seats") or () if isinstance(seat, dict)]
        if seats:
            summary["seats"] = [_seat_notice(seat) for seat in seats]
        if told.get("errors"):
            summary["channelErrors"] = {k: str(v)[:200] for k, v in told["errors"].items()}
        messages = [{"round": self.round, "stage": self.stage, "seat": seat.get("index"), "slack": seat["slackMessage"]}
                    for seat in seats if isinstance(seat.get("slackMessage"), str)]
        return self._with(notification=summary, notified_at=now.isoformat(),
                          seat_messages=(*self.seat_messages, *messages)[-SEAT_MESSAGES_KEPT:])

    def with_retry_owed(self, outcome: dict, now: datetime, attempt: int) -> "ReviewState":
        """After a notice: what of it failed is tried again later (a webhook that answered
        5xx or timed out, a Teams, Slack or e-mail send that failed), on the next delay of
        NOTICE_RETRY_MINUTES; past the last one it stays failed, as the status says."""
        failed = _failed_parts(outcome)
        if failed is None or attempt >= len(NOTICE_RETRY_MINUTES):
            notice = dict(self.notification or {})
            if failed is not None:
                notice["retries"] = attempt
            return self._with(notice_retry=None, notification=notice or None)
        at = now + timedelta(minutes=NOTICE_RETRY_MINUTES[attempt])
        return self._with(notice_retry={"at": at.isoformat(), "attempt": attempt + 1, **failed})

    def with_retried_notice(self, outcome: dict, now: datetime) -> "ReviewState":
        """A retry's outcome, over what the first notice recorded for the parts tried again."""
        owed = self.notice_retry or {}
        notice = dict(self.notification or {})
        if owed.get("webhook") and outcome.get("channel") == "webhook":
            notice.update(status="sent" if outcome.get("delivered") else "failed", reason=outcome.get("error"))
        retold = {seat["index"]: _seat_notice(seat) for seat in (outcome.get("seat_channels") or {}).get("seats") or ()
                  if isinstance(seat, dict)}
        if retold:
            notice["seats"] = [{**seat, **retold.get(seat.get("index"), {})} for seat in notice.get("seats") or ()]
        return self._with(notification=notice).with_retry_owed(outcome, now, int(owed.get("attempt", 1)))

    def with_vote(self, decision: Decision, seat: int, now: datetime) -> "ReviewState":
        """Record a decision in its seat; an approval with the reviewer's edit replaces the
        draft, and the record says so with the size and hash of the text before and after."""
        record = {"round": self.round, "approved": decision.approved, "feedback": decision.feedback,
                  "by": decision.by, "channel": decision.channel, "at": now.isoformat()}
        if not self.rules.is_default:  # a review with the default policy has one stage and seat
            record.update(stage=self.stage_rule.name, stageIndex=self.stage,
                          seat=self.seat_views()[seat].seat.spec, seatIndex=seat)
        person = Person.from_event(decision.person)
        if person is not None:
            record["person"] = {"name": person.name, **({"id": person.object_id} if person.object_id else {})}
        if decision.by_name:
            record["byName"] = decision.by_name
        if decision.asserted:
            record["asserted"] = True
        if decision.id:
            record["id"] = decision.id
        draft = self.draft
        if decision.edit:
            edited = {**self.draft, **decision.edit}
            if edited != self.draft:
                record["edited"] = {"before": _fingerprint(self.draft), "after": _fingerprint(edited)}
                draft = edited
        comments = self.comments
        if decision.comments:
            stage = None if self.rules.is_default else self.stage_rule.name
            comments = review_comments.added(self.comments, decision.comments, self.round, stage, decision.by,
                                             now.isoformat())
            record["comments"] = [c["id"] for c in comments[len(self.comments):]]
        vote = fact("vote", _day(now), stage=self.stage_rule.name, who=person.name if person else decision.by,
                    s=seconds_between(self.reviewable_since, now.isoformat()), ok=decision.approved)
        return self._with(decisions=(*self.decisions, record), draft=draft, comments=comments,
                          outbox=(*self.outbox, vote)).with_ack(decision.id)

    def settled(self, approved: bool, now: datetime) -> "ReviewState":
        """The stage under review is decided."""
        decided = fact("decided", _day(now), stage=self.stage_rule.name,
                       s=seconds_between(self.reviewable_since, now.isoformat()), ok=approved)
        return self._with(outbox=(*self.outbox, decided))

    def with_comment_state(self, note: ReviewNote, now: datetime) -> "ReviewState":
        return self._with(comments=review_comments.with_state(self.comments, note, now.isoformat())).with_ack(note.id)

    def with_view(self, note: ReviewNote, now: datetime) -> "ReviewState":
        """A seat's first view of the stage under review; later ones change nothing."""
        if note.round != self.round or note.stage != self.stage or not self.stage_open or any(
                v.get("stage") == note.stage and v.get("seat") == note.seat for v in self.views):
            return self
        view = {"stage": note.stage, "seat": note.seat, "at": now.isoformat(), "by": note.by}
        viewed = fact("viewed", _day(now), stage=self.stage_rule.name,
                      s=seconds_between(self.notified_at or self.reviewable_since, now.isoformat()))
        return self._with(views=(*self.views, view), outbox=(*self.outbox, viewed))

    # -- analytics ---------------------------------------------------------------------

    def begun(self, now: datetime) -> "ReviewState":
        """The review as its first execution starts it: when it started, reported."""
        if self.started_at is not None or self.round != 1 or self.draft is not None or self.decisions:
            return self
        return self._with(started_at=now.isoformat(), outbox=(*self.outbox, fact("started", _day(now))))

    def ended(self, how: str, now: datetime) -> "ReviewState":
        """The review is over: published, rejected, timed_out, cancelled or failed."""
        facts = []
        if how == "timed_out" and not self.escalated_at:
            facts.append(fact("missed", _day(now), stage=self.stage_rule.name, escalated=False))
        facts.append(fact("ended", _day(now), how=how, rounds=self.round,
                          s=seconds_between(self.started_at, now.isoformat())))
        return self._with(over=True, outbox=(*self.outbox, *facts))

    def facts_to_send(self, now: datetime) -> tuple["ReviewState", dict[str, list]]:
        """The facts to report now, by day, with the seats waiting brought up to date; the
        review without them. An execution of an earlier release reports nothing."""
        if not self.schedules_aids:
            return (self._with(outbox=()) if self.outbox else self), {}
        waiting = self._seats_waiting()
        added, removed = _multiset_change(self.seats_counted, waiting)
        if not (self.outbox or added or removed):
            return self, {}
        facts = list(self.outbox)
        if added or removed:
            facts.append(fact("load", _day(now), seats=[[stage, seat, 1] for stage, seat in added]
                              + [[stage, seat, -1] for stage, seat in removed]))
        return self._with(outbox=(), seats_counted=tuple(list(pair) for pair in waiting)), by_day(facts)

    def _seats_waiting(self) -> list[tuple]:
        """The seats that wait for someone now: the open ones of the stage under review,
        until it is decided or the review ends."""
        if self.over or not self.stage_open or self.outcome() is not None:
            return []
        return [(self.stage_rule.name, view.seat.spec) for view in self.seat_views() if not view.decided]

    def with_seat_change(self, change: SeatChange, now: datetime) -> "ReviewState":
        record = {"stage": change.stage, "seat": change.seat, "change": change.change, "by": change.by,
                  "at": now.isoformat()}
        if change.to:
            record["to"] = change.to
        if change.until:
            record["until"] = change.until
        if change.asserted:
            record["asserted"] = True
        if change.owner:
            record["owner"] = True
        if change.id:
            record["id"] = change.id
        return self._with(seat_changes=(*self.seat_changes, record))

    def with_ignored(self, event_id: str, what: dict, reason: str, now: datetime) -> "ReviewState":
        record = {**what, "reason": reason, "at": now.isoformat()}
        if event_id:
            record["id"] = event_id
        return self._with(ignored=(*self.ignored, record)[-IGNORED_EVENTS_KEPT:],
                          ignored_count=self.ignored_count + 1)

    def with_ack(self, event_id: str, same_as: str = "") -> "ReviewState":
        """Remember that an event was taken, for the route waiting to answer its caller
        (``same_as``: the decision it repeats, for a second decision by the same person)."""
        if not event_id:
            return self
        ack = {"id": event_id, **({"sameAs": same_as} if same_as else {})}
        return self._with(acks=(*self.acks, ack)[-ACKS_KEPT:])

    def next_stage(self) -> "ReviewState":
        """The next stage of the round; the approvals of the one decided keep their
        comments as excerpts (the state is replayed at every step, and those comments
        went to nobody)."""
        closed = {(self.round, self.stage)}
        decisions = tuple(_with_excerpt(d) if (d.get("round"), d.get("stageIndex", 0)) in closed and d.get("approved")
                          else d for d in self.decisions)
        return self._with(stage=self.stage + 1, deadline=None, deadline_set_at=None, reviewable_since=None,
                          escalated_at=None, notification=None, notice_retry=None, decisions=decisions,
                          notified_at=None)

    def next_round(self) -> "ReviewState":
        """Start a redraft: the writer gets the rejected draft in full, the record an excerpt.
        Only the feedback the writer is still given stays whole in the decisions."""
        excerpt = {"round": self.round, "title": self.draft["title"],
                   "content": self.draft["content"][:EXCERPT_CHARS]}
        given, room = set(), WRITER_FEEDBACK_CHARS
        for index in range(len(self.decisions) - 1, -1, -1):
            record = self.decisions[index]
            if not record.get("approved") and record.get("feedback") and len(record["feedback"]) <= room:
                given.add(index)
                room -= len(record["feedback"])
        decisions = tuple(d if i in given else _with_excerpt(d) for i, d in enumerate(self.decisions))
        return self._with(round=self.round + 1, stage=0, draft=None, deadline=None, deadline_set_at=None,
                          reviewable_since=None, escalated_at=None, notification=None, notice_retry=None,
                          previous_draft=self.draft,
                          earlier_drafts=(*self.earlier_drafts, excerpt)[-EARLIER_DRAFTS_KEPT:], decisions=decisions,
                          draft_changes=(), check=None, views=(), notified_at=None)

    # -- what others see -------------------------------------------------------------

    def request(self) -> dict:
        return RunRequest(self.topic, self.max_rounds, self.timeout_hours, self.remind_before_hours,
                          self.on_timeout, self.escalation_hours, self.policy).to_json()

    def status(self, stage: Stage, message: str, cancel: Optional[CancelRequest] = None,
               retrying: Optional[str] = None) -> dict:
        waiting = stage.decidable
        return ReviewStatus(
            stage=stage.value, round=self.round, max_rounds=self.max_rounds, message=message,
            topic=self.topic, request=self.request(), writer=self.writer,
            draft=self.draft if waiting else None, deadline=self.deadline if waiting else None,
            reviewable_since=self.reviewable_since if waiting else None,
            decisions=self.decisions, ignored=self.ignored, earlier_drafts=self.earlier_drafts,
            notification=self.notification if waiting else None,
            cancel=_cancel_record(cancel), retrying=retrying, reminders=self.reminders,
            escalated_at=self.escalated_at, deadline_changes=self.deadline_changes,
            stages=self._stages_view(waiting), stage_index=self.stage, acks=self.acks,
            seat_changes=self.seat_changes[-5:], comments=tuple(review_comments.shown(self.comments)),
            comment_count=len(self.comments),
            changes=self.draft_changes if self.draft else (), check=self.check if self.draft else None,
            views=self._stage_views() if self.schedules_aids else None).to_custom_status()

    def _stage_views(self) -> tuple:
        return tuple({"seat": v["seat"], "at": v["at"]} for v in self.views if v.get("stage") == self.stage)

    def _stages_view(self, waiting: bool) -> tuple:
        """Each stage of this round: its state and tallies; the stage under review lists
        its seats (waiting, claimed, approved or rejected)."""
        shown = []
        for index, rule in enumerate(self.rules.stages):
            records = self._stage_records(index)
            approvals = sum(1 for r in records if r.get("approved"))
            view: dict[str, Any] = {"name": rule.name, "require": rule.require, "seats": len(rule.seats),
                                    "approvals": approvals, "rejections": len(records) - approvals}
            if index < self.stage:
                view["state"] = "approved"
            elif index > self.stage:
                view["state"] = "pending"
            else:
                outcome = self.outcome()
                view["state"] = ("approved" if outcome else "rejected" if outcome is False
                                 else "waiting" if waiting else "pending")
                view["seatStates"] = [seat.to_json() for seat in self.seat_views()]
            shown.append(view)
        return tuple(shown)

    def card(self) -> dict:
        """What the inbox shows of the stage under review (entities/review_card.py): small,
        and only what sorting, filtering and "waiting for me" need, beside the row itself."""
        views = self.seat_views()
        notice = self.notification or {}
        told = {s.get("index"): s for s in notice.get("seats") or () if isinstance(s, dict)}
        seats = []
        for index, view in enumerate(views):
            if view.decided:
                continue
            seat = {"n": index + 1, "seat": view.seat.spec}
            if view.claimed_by:
                seat.update(claimedBy=view.claimed_by, claimUntil=view.claim_until)
            channels = {k: v for k, v in (told.get(index) or {}).items() if k in _SEAT_CHANNELS}
            if channels:  # how this seat was told, per channel (Teams, Slack, e-mail)
                seat["notices"] = channels
            seats.append(seat)
        return {"topic": self.topic[:CARD_TOPIC_CHARS], "round": self.round, "maxRounds": self.max_rounds,
                "stage": self.stage_rule.name, "stageIndex": self.stage, "stages": len(self.rules.stages),
                "deadline": self.deadline, "since": self.reviewable_since, "escalated": self.escalated_at is not None,
                "reminders": sum(1 for r in self.reminders if r.get("round") == self.round
                                 and r.get("stage", 0) == self.stage),
                "notification": {k: notice[k] for k in ("status", "channel") if k in notice}, "seats": seats,
                "deciders": sorted({view.decided_by for view in views if view.decided_by})}


    def seat_messages_update(self, instance_id: str, posting: bool = False) -> Optional[dict]:
        """What the seats' chat messages of the stage under review should now say
        (entities/seat_messages.py): the messages, and the stage's decisions so far; None
        when the stage's seats were sent none and none are being ``posting``."""
        messages = [m for m in self.seat_messages if m.get("round") == self.round and m.get("stage") == self.stage
                    and isinstance(m.get("seat"), int)]
        if not messages and not posting:
            return None
        views = self.seat_views()
        decisions = [{k: r[k] for k in ("seatIndex", "approved", "by", "byName", "at", "person") if k in r}
                     for r in self._stage_records(self.stage)]
        return {"instance_id": instance_id, "topic": self.topic, "round": self.round, "max_rounds": self.max_rounds,
                "title": self.draft["title"], "excerpt": self.draft["content"][:NOTICE_EXCERPT_CHARS],
                "deadline": self.deadline, "stage": self.stage_rule.name, "stage_index": self.stage,
                "messages": [{"seat": m["seat"], "spec": views[m["seat"]].seat.spec, "slack": m["slack"]}
                             for m in messages if m["seat"] < len(views)],
                "decisions": decisions, "decided": self.outcome() is not None}

    def notice_request(self, instance_id: str, kind: str = "review", seats: Optional[list] = None) -> dict:
        """What notify_reviewer needs: a first notice, a reminder, an escalation, a moved
        deadline or a seat handed on; ``seats`` are the stage's seats to tell (by default
        every seat that has not decided)."""
        views = self.seat_views()
        told = self.open_seats() if seats is None else seats
        retry = self.notice_retry if kind == "retry" else None
        if retry and retry.get("seats"):  # a retry of seats' channels tells those seats only
            told = [i for i in told if str(i) in retry["seats"]]
        people = {views[i].seat.value.casefold() for i in told if views[i].seat.personal}
        request = {"instance_id": instance_id, "topic": self.topic, "round": self.round,
                   "max_rounds": self.max_rounds, "title": self.draft["title"],
                   "excerpt": self.draft["content"][:NOTICE_EXCERPT_CHARS],
                   "deadline": self.deadline, "kind": kind, "stage": self.stage_rule.name,
                   "stage_index": self.stage, "stages": len(self.rules.stages),
                   "seats": [{"index": i, "seat": views[i].seat.spec} for i in told]}
        if retry:
            request["retry"] = {"webhook": retry.get("webhook", False), "seats": retry.get("seats") or {}}
        contacts = {person: contact for person, contact in (self.contacts or {}).items() if person in people}
        if contacts:
            request["contacts"] = contacts
        if self.draft_changes:
            request["changes"] = list(self.draft_changes)
        return request

    def publication(self, instance_id: str) -> dict:
        return {"instance_id": instance_id, "title": self.draft["title"],
                "content": self.draft["content"], "rounds": self.round}

    def output(self) -> dict:
        output = {"title": self.draft["title"], "content": self.draft["content"],
                  "rounds": self.round, "decisions": list(self.decisions)}
        if self.comments:
            output["comments"] = list(self.comments)
        return output


def _seat_change_effect(change: dict) -> dict:
    kind = change.get("change")
    if kind == "claim":
        return {"claimed_by": change.get("by", ""), "claim_until": change.get("until", "")}
    if kind == "release":
        return {"claimed_by": "", "claim_until": ""}
    if kind in ("delegate", "reassign"):
        return {"seat": Seat.parse(change["to"]), "claimed_by": "", "claim_until": ""}
    return {}


def _contacts(value: Any) -> Optional[dict]:
    """The run route's Teams contacts: {person key: contact}, kept only in that shape."""
    if not isinstance(value, dict):
        return None
    kept = {k: v for k, v in list(value.items())[:MAX_CONTACTS] if isinstance(k, str) and isinstance(v, dict)}
    return kept or None


_FIELD_NAMES = frozenset(f.name for f in fields(ReviewState))
# Values a state works out and keeps (cached_property), but for the rules: the stage's
# seats, its records and its outcome, all read from these fields alone, so a copy that
# changes one of them works them out again.
_DERIVED_FROM_FIELDS = tuple(name for name, value in vars(ReviewState).items()
                             if isinstance(value, cached_property) and name != "rules")
_SEAT_FIELDS = frozenset({"policy", "stage", "round", "decisions", "seat_changes"})

# How each seat was told, per channel: a state per channel, and the Slack message (to
# update it once the seat or the stage is decided).
_SEAT_CHANNELS = ("teams", "slack", "email", "all")
_SEAT_NOTICE_FIELDS = ("index", *_SEAT_CHANNELS, "slackMessage")


def _failed_parts(outcome: dict) -> Optional[dict]:
    """What of a notice is worth trying again: a webhook post that failed, and each seat's
    channels whose send failed or timed out (a person with no Teams chat, or no Slack user
    by that address, is no failure a retry mends)."""
    webhook = outcome.get("channel") == "webhook" and not outcome.get("delivered")
    seats = {}
    for seat in (outcome.get("seat_channels") or {}).get("seats") or ():
        if isinstance(seat, dict) and isinstance(seat.get("index"), int):
            failed = [channel for channel in _SEAT_CHANNELS if seat.get(channel) in ("failed", "timed out")]
            if failed:
                seats[str(seat["index"])] = failed
    return {"webhook": webhook, "seats": seats} if webhook or seats else None


def _seat_notice(seat: dict) -> dict:
    return {k: str(v)[:80] if k != "index" else v for k, v in seat.items() if k in _SEAT_NOTICE_FIELDS}


def _day(now: datetime) -> str:
    return now.date().isoformat()


def _multiset_change(before: tuple, after: list) -> tuple[list, list]:
    """What was added to a list of pairs and what was removed, as multisets."""
    left = [tuple(pair) for pair in before]
    added = []
    for pair in after:
        if pair in left:
            left.remove(pair)
        else:
            added.append(pair)
    return added, left


def _with_excerpt(record: dict) -> dict:
    feedback = record.get("feedback") or ""
    if len(feedback) <= FEEDBACK_EXCERPT_CHARS:
        return record
    return {**record, "feedback": feedback[:FEEDBACK_EXCERPT_CHARS],
            "feedbackChars": record.get("feedbackChars", len(feedback))}


def _fingerprint(draft: dict) -> dict:
    text = f"{draft['title']}\n\n{draft['content']}"
    return {"chars": len(text), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def _cancel_record(cancel: Optional[CancelRequest]) -> Optional[dict]:
    if cancel is None:
        return None
    return {"reason": cancel.reason, "by": cancel.by, "id": cancel.id}


def _v1_actor(by: Any) -> Any:
    # Version 1 recorded the channel as "key" or "link".
    return {"key": "function key", "link": "review link"}.get(by, by)
