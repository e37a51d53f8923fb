"""What a review shows the world: its custom status, as one typed view.

The orchestrator writes it (``to_custom_status``) and everything else reads it through
``ReviewStatus.read``: the routes, the review page's state route, the smoke test and the
benchmarks. Reading accepts every earlier shape the app has written (a missing field
takes its default), because a status written by the previous release is what a route
reads until the review's next episode, and a finished review keeps it for good.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# Stages a review goes through; "terminated" is shown for an instance ended from outside.
STAGES = ("drafting", "revising", "awaiting_review", "escalated", "publishing", "published",
          "rejected", "timed_out", "failed", "cancelled", "terminated")
# Stages in which the draft of the round waits for a decision.
DECIDABLE_STAGES = ("awaiting_review", "escalated")
FINISHED_STAGES = ("published", "rejected", "timed_out", "failed", "cancelled", "terminated")


@dataclass(frozen=True)
class ReviewStatus:
    stage: str = "drafting"
    round: int = 1
    max_rounds: int = 1
    message: str = ""
    topic: str = ""
    request: dict = field(default_factory=dict)
    writer: Optional[str] = None
    draft: Optional[dict] = None
    deadline: Optional[str] = None
    reviewable_since: Optional[str] = None
    decisions: tuple = ()
    ignored: tuple = ()
    earlier_drafts: tuple = ()
    notification: Optional[dict] = None
    cancel: Optional[dict] = None
    retrying: Optional[str] = None
    reminders: tuple = ()
    escalated_at: Optional[str] = None
    deadline_changes: tuple = ()

    _FIELDS = (("stage", "stage"), ("round", "round"), ("max_rounds", "maxRounds"),
               ("message", "message"), ("topic", "topic"), ("request", "request"),
               ("writer", "writer"), ("draft", "draft"), ("deadline", "deadline"),
               ("reviewable_since", "reviewableSince"), ("decisions", "decisions"),
               ("ignored", "ignored"), ("earlier_drafts", "earlierDrafts"),
               ("notification", "notification"), ("cancel", "cancel"), ("retrying", "retrying"),
               ("reminders", "reminders"), ("escalated_at", "escalatedAt"),
               ("deadline_changes", "deadlineChanges"))

    @classmethod
    def read(cls, custom_status: Any) -> "ReviewStatus":
        data = custom_status if isinstance(custom_status, dict) else {}
        values: dict[str, Any] = {}
        for name, key in cls._FIELDS:
            if key in data and data[key] is not None:
                value = data[key]
                values[name] = tuple(value) if isinstance(value, list) else value
        request = values.get("request")
        if not isinstance(request, dict):
            # Statuses written before the request was carried name the topic and limits.
            values["request"] = {"topic": values.get("topic", ""),
                                 "max_review_attempts": values.get("max_rounds", 1)}
        return cls(**values)

    def to_custom_status(self) -> dict:
        status = {}
        for name, key in self._FIELDS:
            value = getattr(self, name)
            status[key] = list(value) if isinstance(value, tuple) else value
        return status

    # -- questions the routes ask ------------------------------------------------------

    @property
    def awaiting_review(self) -> bool:
        return self.stage in DECIDABLE_STAGES

    def outcome_of(self, event_id: str, bound_round: Optional[int]) -> Optional["Outcome"]:
        """What became of the decision (or cancel) with this id, as far as the status tells;
        None while it may still be applied."""
        if not event_id:
            return None
        for decision in self.decisions:
            if decision.get("id") == event_id:
                return Outcome("applied", decision=decision)
        for ignored in self.ignored:
            if ignored.get("id") == event_id:
                return Outcome("ignored", reason=ignored.get("reason", "ignored"), decision=ignored)
        if self.cancel and self.cancel.get("id") == event_id:
            return Outcome("applied", decision=self.cancel)
        for change in self.deadline_changes:
            if change.get("id") == event_id:
                return Outcome("applied", decision=change)
        if bound_round is not None:
            earlier = next((d for d in self.decisions if d.get("round") == bound_round), None)
            if earlier is not None:
                verdict = "approved" if earlier.get("approved") else "rejected"
                return Outcome("ignored", decision=earlier, reason=(
                    f"round {bound_round} was already decided: {verdict} {_by(earlier)}"))
        return None


@dataclass(frozen=True)
class Outcome:
    kind: str                 # "applied" or "ignored"
    reason: str = ""
    decision: Optional[dict] = None


def _by(record: dict) -> str:
    by = record.get("by")
    return f"via {by}" if by in ("function key", "review link") else f"by {by}" if by else ""
