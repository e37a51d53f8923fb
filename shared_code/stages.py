"""The stages of a review's life, declared once: the orchestrator writes them into the
status, the routes and pages read them from there.

(A review *policy* has stages too, editor, legal, brand: those are named by the policy
and listed in the status's ``stages``; these are where the review as a whole stands.)
"""
from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    DRAFTING = "drafting"
    AWAITING_REVIEW = "awaiting_review"
    ESCALATED = "escalated"
    REVISING = "revising"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Shown by the routes for an instance terminated from outside the review.
    TERMINATED = "terminated"

    @property
    def decidable(self) -> bool:
        """The draft waits for a decision."""
        return self in (Stage.AWAITING_REVIEW, Stage.ESCALATED)

    @property
    def ended_by_the_review(self) -> bool:
        """The review ended itself without publishing, and its message says why."""
        return self in (Stage.REJECTED, Stage.TIMED_OUT, Stage.FAILED, Stage.CANCELLED)

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def of(cls, value: str) -> "Stage":
        """A stage from a status; a value this release does not know reads as drafting
        (a status written by a later release: the page then shows no decision buttons)."""
        try:
            return _BY_VALUE.get(value, cls.DRAFTING)
        except TypeError:  # not even a string (a hand-made status): unknown too
            return cls.DRAFTING


# A page of the pending list asks each of its hundred statuses for its stage; a dict is
# a fraction of the Enum's own lookup.
_BY_VALUE = {stage.value: stage for stage in Stage}

_LABELS = {Stage.DRAFTING: "Drafting", Stage.AWAITING_REVIEW: "Awaiting your review",
           Stage.ESCALATED: "Awaiting your review (escalated)", Stage.REVISING: "Revising",
           Stage.PUBLISHING: "Publishing", Stage.PUBLISHED: "Published", Stage.REJECTED: "Rejected",
           Stage.TIMED_OUT: "Timed out", Stage.FAILED: "Failed", Stage.CANCELLED: "Cancelled",
           Stage.TERMINATED: "Cancelled"}
