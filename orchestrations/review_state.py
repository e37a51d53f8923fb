"""The state a review carries from one orchestration execution to the next.

The orchestrator continues as new at every round and every timer slice, so this state is
its whole memory: it must stay small (only the latest earlier drafts are kept, as excerpts) and be
plain JSON.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Optional

from shared_code.models import DEFAULT_REVIEW_ATTEMPTS, DEFAULT_TIMEOUT_HOURS, Decision

EXCERPT_CHARS = 1_000
# Every episode replays this state, so it must stop growing: only the latest rejected
# drafts are kept, as excerpts. The decisions, the review's audit trail, stay complete.
EARLIER_DRAFTS_KEPT = 3


@dataclass(frozen=True)
class ReviewState:
    topic: str
    max_rounds: int = DEFAULT_REVIEW_ATTEMPTS
    timeout_hours: float = DEFAULT_TIMEOUT_HOURS
    round: int = 1
    draft: Optional[dict] = None
    deadline: Optional[str] = None
    writer: Optional[str] = None
    decisions: list = field(default_factory=list)
    previous_draft: Optional[dict] = None
    earlier_drafts: list = field(default_factory=list)
    notification: Optional[dict] = None
    ignored_events: int = 0

    @classmethod
    def from_input(cls, data: dict) -> "ReviewState":
        """Accept the run request's shape on the first execution, our own shape after."""
        if "max_review_attempts" in data or "approval_timeout_hours" in data:
            return cls(topic=data["topic"],
                       max_rounds=data.get("max_review_attempts", DEFAULT_REVIEW_ATTEMPTS),
                       timeout_hours=data.get("approval_timeout_hours", DEFAULT_TIMEOUT_HOURS))
        return cls(**data)

    def to_input(self) -> dict:
        return asdict(self)

    # -- questions -------------------------------------------------------------------

    @property
    def awaiting_draft(self) -> bool:
        return self.draft is None

    @property
    def rounds_left(self) -> bool:
        return self.round < self.max_rounds

    def deadline_at(self) -> datetime:
        return datetime.fromisoformat(self.deadline)

    def is_for_this_round(self, decision: Optional[Decision]) -> bool:
        return decision is not None and decision.round == self.round

    def writer_request(self) -> dict:
        return {"topic": self.topic, "round": self.round, "previous_draft": self.previous_draft,
                "feedback": [d["feedback"] for d in self.decisions if d["feedback"]]}

    # -- transitions -----------------------------------------------------------------

    def with_draft(self, draft: dict, now: datetime) -> "ReviewState":
        deadline = now + timedelta(hours=self.timeout_hours)
        return replace(self, draft={"title": draft["title"], "content": draft["content"]},
                       writer=draft.get("writer"), deadline=deadline.isoformat())

    def with_notification(self, outcome: dict) -> "ReviewState":
        """Keep how the reviewer was told; never the signed link itself."""
        if outcome.get("delivered"):
            summary = {"status": "sent", "channel": outcome.get("channel")}
        else:
            summary = {"status": "failed", "channel": outcome.get("channel"),
                       "reason": outcome.get("error")}
        if outcome.get("links_error"):
            summary["links"] = outcome["links_error"]
        return replace(self, notification=summary)

    def with_decision(self, decision: Decision, now: datetime) -> "ReviewState":
        record = {"round": self.round, "approved": decision.approved,
                  "feedback": decision.feedback, "by": decision.by, "at": now.isoformat()}
        return replace(self, decisions=[*self.decisions, record])

    def with_ignored_event(self) -> "ReviewState":
        return replace(self, ignored_events=self.ignored_events + 1)

    def next_round(self) -> "ReviewState":
        """Start a redraft: the writer gets the rejected draft in full, the record an excerpt."""
        excerpt = {"round": self.round, "title": self.draft["title"],
                   "content": self.draft["content"][:EXCERPT_CHARS]}
        return replace(self, round=self.round + 1, draft=None, deadline=None,
                       previous_draft=self.draft,
                       earlier_drafts=[*self.earlier_drafts, excerpt][-EARLIER_DRAFTS_KEPT:])

    # -- what others see -------------------------------------------------------------

    def status(self, stage: str, message: str) -> dict:
        status = {"stage": stage, "round": self.round, "maxRounds": self.max_rounds,
                  "message": message, "topic": self.topic, "writer": self.writer,
                  "decisions": self.decisions, "earlierDrafts": self.earlier_drafts}
        if stage == "awaiting_review":
            status["notification"] = self.notification
            status.update(draft=self.draft, deadline=self.deadline)
        return status

    def notice_request(self, instance_id: str) -> dict:
        return {"instance_id": instance_id, "topic": self.topic, "round": self.round,
                "max_rounds": self.max_rounds, "title": self.draft["title"],
                "deadline": self.deadline}

    def publication(self, instance_id: str) -> dict:
        return {"instance_id": instance_id, "title": self.draft["title"],
                "content": self.draft["content"], "rounds": self.round}

    def output(self) -> dict:
        return {"title": self.draft["title"], "content": self.draft["content"],
                "rounds": self.round, "decisions": self.decisions}
