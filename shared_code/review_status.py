"""What a review shows the world: its custom status, as one typed view.

The orchestrator writes it (``to_custom_status``) and everything else reads it through
``ReviewStatus.read``: the routes, the review page's state route, the smoke test and the
benchmarks. Reading accepts every earlier shape the app has written (a missing field
takes its default), because a status written by the previous release is what a route
reads until the review's next episode, and a finished review keeps it for good.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from azure.durable_functions import OrchestrationRuntimeStatus

# The Durable extension refuses a custom status over 16 KB of UTF-16 and fails the
# orchestration (MessagePayloadDataConverter.Serialize(value, 16)). The status stays under
# this, shortening texts when it must; the full texts are in the review's state.
CUSTOM_STATUS_LIMIT_BYTES = 15 * 1024

# Stages in which the draft of the round waits for a decision.
DECIDABLE_STAGES = ("awaiting_review", "escalated")
# The runtime statuses of an instance that has ended, as the Durable status API spells them.
FINISHED = tuple(s.value for s in (OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed,
                                   OrchestrationRuntimeStatus.Terminated, OrchestrationRuntimeStatus.Canceled))


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
        return within_limit(status)

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
            earlier = self.decision_for(bound_round)
            if earlier is not None:
                return Outcome("ignored", decision=earlier, reason=(
                    f"round {bound_round} was already decided: {verdict_of(earlier)}"))
        return None

    def decision_for(self, round_: int) -> Optional[dict]:
        """The decision recorded for a round (the last one, should there be several)."""
        return next((d for d in reversed(self.decisions) if d.get("round") == round_), None)


@dataclass(frozen=True)
class Outcome:
    kind: str                 # "applied" or "ignored"
    reason: str = ""
    decision: Optional[dict] = None


# What a decision records as "by" when no signed-in reviewer is known: the channel it came by.
CHANNELS = ("function key", "review link")


def actor(record: dict) -> str:
    """Who decided: "via function key" or "via review link" (the channel), or "by <name>"
    (the signed-in reviewer); "" when the record does not say."""
    by = record.get("by")
    return f"via {by}" if by in CHANNELS else f"by {by}" if by else ""


def verdict_of(decision: dict) -> str:
    """How a decision went and who made it: "approved via function key", "rejected by ada@…"."""
    verdict = "approved" if decision.get("approved") else "rejected"
    return f"{verdict} {actor(decision)}".rstrip()


# -- keeping the custom status small ------------------------------------------------------

def utf16_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-16-le"))


def within_limit(status: dict, limit: int = CUSTOM_STATUS_LIMIT_BYTES) -> dict:
    """The status, with its long texts cut step by step until it fits: the draft, earlier
    drafts, feedback, the topic, then lists kept to their latest entries. A cut text is
    marked (``"excerpt": true`` on a draft, ``"feedbackChars"`` on a decision) so a reader
    knows to fetch the whole text from the review's state."""
    for shrink in _SHRINK_STEPS:
        if utf16_size(status) <= limit:
            return status
        status = shrink(status)
    return status


def _draft_excerpt(chars: int):
    def shrink(status: dict) -> dict:
        draft = status.get("draft")
        if not isinstance(draft, dict) or len(draft.get("content") or "") <= chars:
            return status
        content = draft["content"]
        return {**status, "draft": {**draft, "content": content[:chars], "excerpt": True,
                                    "contentChars": draft.get("contentChars", len(content))}}
    return shrink


def _records_cut(key: str, text_key: str, chars: int, keep: Optional[int] = None):
    def shrink(status: dict) -> dict:
        records = status.get(key) or []
        if keep is not None:
            records = records[-keep:]
        cut = []
        for record in records:
            text = record.get(text_key)
            if isinstance(text, str) and len(text) > chars:
                record = {**record, text_key: text[:chars], f"{text_key}Chars": len(text)}
            cut.append(record)
        return {**status, key: cut}
    return shrink


def _topic_cut(chars: int):
    def shrink(status: dict) -> dict:
        topic = status.get("topic") or ""
        request = dict(status.get("request") or {})
        if len(request.get("topic") or "") > chars:
            request["topic"] = request["topic"][:chars]
        return {**status, "topic": topic[:chars], "request": request}
    return shrink


_SHRINK_STEPS = (
    _draft_excerpt(4000), _records_cut("earlierDrafts", "content", 300),
    _records_cut("decisions", "feedback", 500), _topic_cut(500), _draft_excerpt(1500),
    _records_cut("ignored", "reason", 200, keep=5), _records_cut("deadlineChanges", "by", 100, keep=5),
    _records_cut("decisions", "feedback", 100), _records_cut("earlierDrafts", "title", 100),
    _draft_excerpt(500), _records_cut("decisions", "by", 60), _records_cut("reminders", "channel", 20, keep=5),
    _topic_cut(100), _records_cut("ignored", "reason", 80, keep=2), _draft_excerpt(100),
)
