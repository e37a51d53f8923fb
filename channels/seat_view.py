"""What a channel message shows about one seat of a stage, whichever channel carries it:
the words, the excerpt and the seat's own signed link and token. Built from a notice
request when the message goes out, and from the review's status when a message is
refreshed or answers a click."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Optional

from shared_code.review_links import ReviewGrant, review_url, sign
from shared_code.review_status import ReviewStatus

EXCERPT_CHARS = 300
TOPIC_CHARS = 200
TITLE_CHARS = 120
HEADINGS = {"review": "Review needed", "reminder": "Reminder: review needed",
            "escalation": "Escalation: a review is still undecided",
            "deadline_moved": "Deadline moved: a review is waiting"}
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class SeatView:
    """One seat's message: ``state`` is None while the seat can still decide, else the
    line that says why it cannot (decided, by whom and when; replaced by a later round;
    the review ended)."""
    instance_id: str
    heading: str
    topic: str
    title: str
    excerpt: str
    round: int
    max_rounds: int
    stage: str
    seat: str
    seat_number: int
    deadline: str
    url: Optional[str]
    token: Optional[str]
    state: Optional[str] = None

    @property
    def open(self) -> bool:
        return self.state is None and self.token is not None

    @property
    def round_line(self) -> str:
        return f"Round {self.round} of {self.max_rounds}, stage {self.stage}, seat {self.seat_number} ({self.seat})"

    def closed(self, state: str) -> "SeatView":
        return replace(self, state=state)


def one_line(value, limit: int) -> str:
    return _WHITESPACE.sub(" ", str(value if value is not None else "")).strip()[:limit]


def seat_grant(instance_id: str, round_: int, deadline: str, stage: int, seat: int) -> ReviewGrant:
    return ReviewGrant(instance_id, round_, datetime.fromisoformat(deadline), stage=stage, seat=seat)


def from_notice(request: dict, seat: dict, key: Optional[bytes], base_url: str) -> SeatView:
    """The view of a seat told by a notice (``seat``: {"index", "seat"})."""
    grant = seat_grant(request["instance_id"], int(request["round"]), request["deadline"],
                       int(request.get("stage_index", 0)), int(seat["index"]))
    return SeatView(
        instance_id=request["instance_id"], heading=HEADINGS.get(request.get("kind"), HEADINGS["review"]),
        topic=one_line(request.get("topic"), TOPIC_CHARS), title=one_line(request.get("title"), TITLE_CHARS),
        excerpt=one_line(request.get("excerpt"), EXCERPT_CHARS), round=int(request["round"]),
        max_rounds=int(request.get("max_rounds") or request["round"]), stage=one_line(request.get("stage"), 40),
        seat=seat["seat"], seat_number=int(seat["index"]) + 1, deadline=str(request["deadline"]),
        url=review_url(base_url, grant, key) if key else None, token=sign(grant, key) if key else None)


def from_status(instance_id: str, status: ReviewStatus, grant: ReviewGrant, key: bytes, base_url: str,
                state: Optional[str], published: Optional[dict] = None) -> SeatView:
    """The view of the seat a token was made for, as the review stands now, showing the
    draft of the token's round (``published``: a finished review's output)."""
    stages = [s for s in status.stages if isinstance(s, dict)]
    stage = stages[grant.stage] if grant.stage is not None and grant.stage < len(stages) else status.current_stage
    seats = stage.get("seatStates") or []
    index = grant.seat or 0
    seat = seats[index]["seat"] if index < len(seats) else "anyone"
    draft = round_draft(status, grant.round, published)
    return SeatView(
        instance_id=instance_id, heading=HEADINGS["review"], topic=one_line(status.topic, TOPIC_CHARS),
        title=one_line(draft.get("title"), TITLE_CHARS), excerpt=one_line(draft.get("content"), EXCERPT_CHARS),
        round=grant.round, max_rounds=status.max_rounds, stage=one_line(stage.get("name", "review"), 40), seat=seat,
        seat_number=index + 1, deadline=grant.expires_at.isoformat(), url=review_url(base_url, grant, key),
        token=sign(grant, key) if state is None else None, state=state)


def round_draft(status: ReviewStatus, round_: int, published: Optional[dict] = None) -> dict:
    """The title and text of round ``round_`` as far as the status keeps them: the draft
    under review, the published one (its output names its round), or a rejected round's
    excerpt. {} when none is that round's (the status keeps only the latest rejected
    rounds): a closed message then shows its round and outcome, never another round's
    text."""
    if round_ == status.round and status.draft:
        return status.draft
    if published and published.get("rounds") == round_:
        return published
    return next((d for d in status.earlier_drafts if isinstance(d, dict) and d.get("round") == round_), {})


def seat_line(records: list, seat: int, stage_over: bool) -> Optional[str]:
    """What a seat's message says once it cannot decide, from the decisions of its stage
    (in the order taken): who decided the seat and when, or who decided the stage; None
    while the seat is still open."""
    mine = next((r for r in records if r.get("seatIndex", 0) == seat), None)
    if mine is not None:
        return record_line(mine)
    if stage_over and records:
        return f"The stage was decided: {record_line(records[-1])}."
    return None


def record_line(record: dict) -> str:
    """The decision as a message shows it: by the person's display name when the channel
    gave one, else by who decided (their address, or the channel)."""
    person = record.get("person") if isinstance(record.get("person"), dict) else {}
    who = record.get("byName") or person.get("name") or record.get("by", "?")
    return decided_line(bool(record.get("approved")), who, record.get("at", ""))


def decided_line(verdict_approved: bool, who: str, at: str) -> str:
    when = _clock(at)
    return f"{'Approved' if verdict_approved else 'Rejected'} by {who}" + (f", {when}" if when else "")


def _clock(at: str) -> str:
    try:
        return datetime.fromisoformat(at).strftime("%H:%M UTC")
    except (TypeError, ValueError):
        return ""
