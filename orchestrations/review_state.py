"""The state a review carries from one orchestration execution to the next.

The orchestrator continues as new at every round and every timer slice, so this state is
its whole memory. It must stay small (only the latest earlier drafts are kept, as
excerpts; only the latest ignored events), be plain JSON, and survive upgrades: a review
can wait 30 days, so the state an execution reads may have been written by an earlier
release. ``to_input`` writes ``STATE_VERSION``; ``read`` accepts every version shipped
(tests/orchestrations/state_samples holds one sample of each).

Version 1 (no "version" key) was the dataclass's fields as they were: topic, max_rounds,
timeout_hours, round, draft, deadline, writer, decisions, previous_draft, earlier_drafts,
notification, ignored_events. The first execution's input is the run request itself.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Optional

from shared_code.models import (DEFAULT_ESCALATION_HOURS, DEFAULT_REVIEW_ATTEMPTS, DEFAULT_TIMEOUT_HOURS,
                                MAX_TIMEOUT_HOURS, CancelRequest, Decision, ExtendRequest, RunRequest)
from shared_code.review_status import ReviewStatus

STATE_VERSION = 2
EXCERPT_CHARS = 1_000
# Every episode replays this state, so it must stop growing: only the latest rejected
# drafts are kept, as excerpts, and the latest ignored events. The decisions, the
# review's audit trail, stay complete (at most one per round).
EARLIER_DRAFTS_KEPT = 3
IGNORED_EVENTS_KEPT = 10


class UnreadableState(ValueError):
    """The input is no review state this release knows."""


@dataclass(frozen=True)
class ReviewState:
    topic: str
    max_rounds: int = DEFAULT_REVIEW_ATTEMPTS
    timeout_hours: float = DEFAULT_TIMEOUT_HOURS
    round: int = 1
    draft: Optional[dict] = None
    deadline: Optional[str] = None
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

    # -- reading and writing ----------------------------------------------------------

    @classmethod
    def initial(cls, run: RunRequest) -> "ReviewState":
        return cls(topic=run.topic, max_rounds=run.max_review_attempts,
                   timeout_hours=run.approval_timeout_hours, remind_before_hours=run.remind_before_hours,
                   on_timeout=run.on_timeout, escalation_hours=run.escalation_hours)

    @classmethod
    def read(cls, data: Any) -> "ReviewState":
        if not isinstance(data, dict):
            raise UnreadableState(f"a review state is a JSON object, not {type(data).__name__}")
        version = data.get("version", 1)
        if version == STATE_VERSION:
            return cls._from_fields({k: v for k, v in data.items() if k != "version"})
        if version == 1:
            if "max_rounds" not in data and "round" not in data:
                return cls.initial(RunRequest.from_json(data))  # the run request itself
            return cls._from_version_1(data)
        raise UnreadableState(f"review state version {version!r} is newer than this release "
                              f"(it reads versions 1 to {STATE_VERSION})")

    @classmethod
    def _from_version_1(cls, data: dict) -> "ReviewState":
        fields = {k: v for k, v in data.items() if k != "ignored_events"}
        fields["ignored_count"] = data.get("ignored_events", 0)
        fields["decisions"] = [{**d, "by": _v1_actor(d.get("by"))} for d in data.get("decisions", [])]
        return cls._from_fields(fields)

    @classmethod
    def _from_fields(cls, fields: dict) -> "ReviewState":
        known = set(cls.__dataclass_fields__)
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in known}
        return cls(**values)

    def to_input(self) -> dict:
        state = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {"version": STATE_VERSION, **state}

    # -- questions -------------------------------------------------------------------

    @property
    def awaiting_draft(self) -> bool:
        return self.draft is None

    @property
    def rounds_left(self) -> bool:
        return self.round < self.max_rounds

    def deadline_at(self) -> datetime:
        return datetime.fromisoformat(self.deadline)

    def writer_request(self) -> dict:
        return {"topic": self.topic, "round": self.round, "previous_draft": self.previous_draft,
                "feedback": [d["feedback"] for d in self.decisions if d.get("feedback")]}

    def has_seen(self, event_id: str) -> bool:
        """An event this review already applied or ignored: a route sends a decision again
        when it saw no sign of it, and it must not count twice."""
        return bool(event_id) and any(r.get("id") == event_id for r in
                                      (*self.decisions, *self.ignored, *self.deadline_changes))

    def judge(self, decision: Optional[Decision]) -> Optional[str]:
        """Why a decision cannot be applied to the draft under review; None when it can."""
        if decision is None:
            return "not a decision: it needs a JSON boolean 'approved' and an integer 'round'"
        if decision.round < self.round:
            return f"round {decision.round} was already decided"
        if decision.round != self.round:
            return f"it is for round {decision.round}, but round {self.round} is under review"
        return None

    def extension_problem(self, extend: Optional[ExtendRequest]) -> Optional[str]:
        if extend is None:
            return "not a deadline change: it needs a number of 'hours' and an integer 'round'"
        if extend.round != self.round:
            return (f"round {extend.round} was already decided" if extend.round < self.round
                    else f"it is for round {extend.round}, but round {self.round} is under review")
        since = datetime.fromisoformat(self.reviewable_since or self.deadline_set_at or self.deadline)
        longest = timedelta(hours=MAX_TIMEOUT_HOURS)
        if self.deadline_at() + timedelta(hours=extend.hours) - since > longest:
            room = (since + longest - self.deadline_at()).total_seconds() / 3600
            return (f"a round can wait at most {MAX_TIMEOUT_HOURS:g} hours for its decision; "
                    f"this deadline can move by {max(room, 0):.4g} hours more at most")
        return None

    # -- deadlines ---------------------------------------------------------------------

    def _reminder_times(self) -> list[tuple[float, datetime]]:
        """(hours before the deadline, when) of the reminders the current deadline still owes:
        those after the moment it was set, not sent yet for it."""
        deadline, set_at = self.deadline_at(), datetime.fromisoformat(self.deadline_set_at or self.deadline)
        sent = {(r["beforeHours"], r["deadline"]) for r in self.reminders if r.get("round") == self.round}
        times = [(h, deadline - timedelta(hours=h)) for h in self.remind_before_hours]
        return [(h, at) for h, at in times if at > set_at and (h, self.deadline) not in sent]

    def due_reminder(self, now: datetime) -> Optional[float]:
        due = [(at, h) for h, at in self._reminder_times() if at <= now]
        return min(due)[1] if due else None

    def wake_at(self, now: datetime, longest_wait: timedelta) -> datetime:
        """When the next timer of the wait must fire: the deadline, the next reminder or the
        end of the slice, whichever comes first."""
        coming = [at for _, at in self._reminder_times() if at > now]
        return min([self.deadline_at(), now + longest_wait, *coming])

    def deadline_passed(self, now: datetime) -> bool:
        return now >= self.deadline_at()

    def may_escalate(self) -> bool:
        return self.on_timeout == "escalate" and self.escalated_at is None

    def action_due(self, now: datetime) -> bool:
        return self.deadline_passed(now) or self.due_reminder(now) is not None

    # -- transitions -----------------------------------------------------------------

    def with_draft(self, draft: dict, now: datetime) -> "ReviewState":
        deadline = now + timedelta(hours=self.timeout_hours)
        return replace(self, draft={"title": draft["title"], "content": draft["content"]},
                       writer=draft.get("writer"), deadline=deadline.isoformat(),
                       deadline_set_at=now.isoformat(), escalated_at=None)

    def with_reminder(self, before_hours: float, outcome: dict, now: datetime) -> "ReviewState":
        record = {"round": self.round, "beforeHours": before_hours, "deadline": self.deadline,
                  "at": now.isoformat(), "delivered": bool(outcome.get("delivered")),
                  "channel": outcome.get("channel")}
        return replace(self, reminders=(*self.reminders, record))

    def escalated(self, now: datetime) -> "ReviewState":
        """The round with its escalation window: the escalation notice goes out after this,
        so that its text and its link carry the new deadline."""
        deadline = self.deadline_at() + timedelta(hours=self.escalation_hours)
        return replace(self, escalated_at=now.isoformat(), deadline=deadline.isoformat(),
                       deadline_set_at=now.isoformat())

    def with_notice(self, kind: str, outcome: dict) -> "ReviewState":
        """Record how a later notice (an escalation, a moved deadline) went, beside the
        first one's outcome."""
        return replace(self, notification={**(self.notification or {}), kind: {
            "status": "sent" if outcome.get("delivered") else "failed",
            "channel": outcome.get("channel"), "reason": outcome.get("error")}})

    def extended(self, extend: ExtendRequest, now: datetime) -> "ReviewState":
        deadline = self.deadline_at() + timedelta(hours=extend.hours)
        record = {"round": self.round, "hours": extend.hours, "from": self.deadline,
                  "to": deadline.isoformat(), "by": extend.by, "at": now.isoformat()}
        if extend.id:
            record["id"] = extend.id
        return replace(self, deadline=deadline.isoformat(), deadline_set_at=now.isoformat(),
                       deadline_changes=(*self.deadline_changes, record))

    def with_notification(self, outcome: dict) -> "ReviewState":
        """Keep how the reviewer was told; never the signed link itself."""
        if outcome.get("sending"):
            return replace(self, notification={"status": "sending"})
        if outcome.get("delivered"):
            summary = {"status": "sent", "channel": outcome.get("channel")}
        else:
            summary = {"status": "failed", "channel": outcome.get("channel"),
                       "reason": outcome.get("error")}
        if outcome.get("links_error"):
            summary["links"] = outcome["links_error"]
        return replace(self, notification=summary)

    def reviewable(self, now: datetime) -> "ReviewState":
        return self if self.reviewable_since else replace(self, reviewable_since=now.isoformat())

    def with_decision(self, decision: Decision, now: datetime) -> "ReviewState":
        """Record the decision; an approval with the reviewer's edit replaces the draft, and
        the record says so with the size and hash of the text before and after."""
        record = {"round": self.round, "approved": decision.approved,
                  "feedback": decision.feedback, "by": decision.by, "at": now.isoformat()}
        if decision.id:
            record["id"] = decision.id
        draft = self.draft
        if decision.edit:
            edited = {**self.draft, **decision.edit}
            if edited != self.draft:
                record["edited"] = {"before": _fingerprint(self.draft), "after": _fingerprint(edited)}
                draft = edited
        return replace(self, decisions=(*self.decisions, record), draft=draft)

    def with_ignored(self, event_id: str, what: dict, reason: str, now: datetime) -> "ReviewState":
        record = {**what, "reason": reason, "at": now.isoformat()}
        if event_id:
            record["id"] = event_id
        return replace(self, ignored=(*self.ignored, record)[-IGNORED_EVENTS_KEPT:],
                       ignored_count=self.ignored_count + 1)

    def next_round(self) -> "ReviewState":
        """Start a redraft: the writer gets the rejected draft in full, the record an excerpt."""
        excerpt = {"round": self.round, "title": self.draft["title"],
                   "content": self.draft["content"][:EXCERPT_CHARS]}
        return replace(self, round=self.round + 1, draft=None, deadline=None, deadline_set_at=None,
                       reviewable_since=None, escalated_at=None, previous_draft=self.draft,
                       earlier_drafts=(*self.earlier_drafts, excerpt)[-EARLIER_DRAFTS_KEPT:])

    # -- what others see -------------------------------------------------------------

    def request(self) -> dict:
        return RunRequest(self.topic, self.max_rounds, self.timeout_hours, self.remind_before_hours,
                          self.on_timeout, self.escalation_hours).to_json()

    def status(self, stage: str, message: str, cancel: Optional[CancelRequest] = None,
               retrying: Optional[str] = None) -> dict:
        waiting = stage in ("awaiting_review", "escalated")
        return ReviewStatus(
            stage=stage, round=self.round, max_rounds=self.max_rounds, message=message,
            topic=self.topic, request=self.request(), writer=self.writer,
            draft=self.draft if waiting else None, deadline=self.deadline if waiting else None,
            reviewable_since=self.reviewable_since if waiting else None,
            decisions=self.decisions, ignored=self.ignored, earlier_drafts=self.earlier_drafts,
            notification=self.notification if waiting else None,
            cancel=_cancel_record(cancel), retrying=retrying, reminders=self.reminders,
            escalated_at=self.escalated_at, deadline_changes=self.deadline_changes).to_custom_status()

    def notice_request(self, instance_id: str, kind: str = "review") -> dict:
        """What notify_reviewer needs: a first notice, a reminder or an escalation."""
        return {"instance_id": instance_id, "topic": self.topic, "round": self.round,
                "max_rounds": self.max_rounds, "title": self.draft["title"],
                "deadline": self.deadline, "kind": kind}

    def publication(self, instance_id: str) -> dict:
        return {"instance_id": instance_id, "title": self.draft["title"],
                "content": self.draft["content"], "rounds": self.round}

    def output(self) -> dict:
        return {"title": self.draft["title"], "content": self.draft["content"],
                "rounds": self.round, "decisions": list(self.decisions)}


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
