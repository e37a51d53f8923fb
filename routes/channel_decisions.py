"""What Teams and Slack share between a click and ``decisions.decide``: the seat token the
button carries, the person the platform vouched for, and the line the message shows
afterwards. Only translation lives here; ``decisions`` applies the rules."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from channels.seat_view import SeatView, decided_line, from_status, seat_line
from shared_code.identity import Person
from shared_code.models import Decision, ValidationError
from shared_code.review_links import InvalidLink, ReviewGrant, verify
from shared_code.review_status import verdict_of
from shared_code.settings import Settings

from .decisions import Caller, decide
from .http_helpers import HttpError, refusal_of
from .review_client import Review, ReviewClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelAnswer:
    """What the channel shows after a click: the seat's view as it now stands (None when
    the button itself could not be read) and the line for the person who clicked."""
    view: Optional[SeatView]
    line: str
    applied: bool = False


def seat_grant(token: str, instance_id: str, settings: Settings) -> ReviewGrant:
    key = settings.link_signing_key
    if key is None:
        raise HttpError(503, "review links are disabled on this app, so its buttons cannot be checked")
    try:
        return verify(token, instance_id, datetime.now(timezone.utc), key)
    except InvalidLink as exc:
        raise HttpError(403, str(exc).replace("review link", "button")) from None


def seat_state(review: Review, grant: ReviewGrant) -> Optional[str]:
    """Why the seat a button was made for can no longer decide (who decided it, or its
    stage, and when; a later round; the review's end), or None while it can."""
    status = review.status
    stage = grant.stage or 0
    records = [r for r in status.decisions if r.get("round") == grant.round and r.get("stageIndex", 0) == stage]
    over = review.finished or grant.round != status.round or stage != status.stage_index
    line = seat_line(records, grant.seat or 0, over)
    if line is not None:
        return line
    if review.finished or grant.round > status.round:
        return f"This draft can no longer be decided: {review.refusal(grant.round)}."
    if grant.round < status.round:
        return f"Round {status.round} replaced this draft."
    if stage != status.stage_index:
        return f"Stage {status.current_stage.get('name', '?')} is under review now."
    if not status.awaiting_review:
        return review.refusal(grant.round) or "This draft is not waiting for a decision."
    return None


def view_of(review: Review, grant: ReviewGrant, settings: Settings) -> SeatView:
    published = review.output if isinstance(review.output, dict) else None
    return from_status(review.instance_id, review.status, grant, settings.link_signing_key, settings.public_base_url,
                       seat_state(review, grant), published)


async def decide_from_channel(reviews: ReviewClient, instance_id: str, token: str, approved: bool, feedback: str,
                              person: Optional[Person], channel: str, settings: Settings,
                              patience: float) -> ChannelAnswer:
    """A click on Approve or Reject (with its feedback): the same decision the approve
    route takes, by the person the platform named, for the seat the button was made for."""
    grant: Optional[ReviewGrant] = None
    try:
        grant = seat_grant(token, instance_id, settings)
        if grant.follows:
            raise HttpError(403, "this button can follow the review but not decide")
        if person is None:
            raise HttpError(403, f"{channel} did not say who you are, so the review cannot seat you")
        requested = Decision.from_json({"approved": approved, "round": grant.round,
                                        **({"feedback": feedback} if feedback else {})})
        decided = await decide(reviews, instance_id, requested, Caller(person, channel, grant=grant),
                               patience=patience)
    except (HttpError, ValidationError) as exc:
        refusal = refusal_of(exc)
        line = refusal[1] if refusal else "the decision could not be taken"
        view = None
        if grant is not None:
            try:
                view = view_of(await reviews.get(instance_id), grant, settings)
            except Exception:  # the reason above is the answer; the message stays as it is
                log.warning("%s: the review %s could not be read for the answer", channel, instance_id)
        return ChannelAnswer(view, f"Not taken: {line}")
    review = decided.delivery.review if decided.delivery is not None else await reviews.get(instance_id)
    if decided.first is not None or decided.delivery is None:
        first = decided.first or {}
        line = f"You already decided this stage: {verdict_of(first) if first else 'see the review'}; it stands."
        return ChannelAnswer(view_of(await reviews.get(instance_id), grant, settings), line)
    outcome = decided.delivery.outcome
    verdict = "approval" if approved else "rejection"
    if outcome is None:
        line = f"Your {verdict} was sent; the review takes it shortly and this message then shows it."
        return ChannelAnswer(view_of(review, grant, settings), line, applied=True)
    if outcome.kind != "applied":
        return ChannelAnswer(view_of(review, grant, settings), f"Not taken: {review.refusal(grant.round) or outcome.reason}")
    record = outcome.decision or {}
    line = decided_line(approved, person.display_name or person.name, record.get("at", ""))
    return ChannelAnswer(view_of(review, grant, settings).closed(line), line, applied=True)
