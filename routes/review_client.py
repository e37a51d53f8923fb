"""What the routes need from the Durable client, with Azure's behaviour handled once.

- Reading a review: only instances of the review orchestrator count as reviews, so an id
  of another orchestration (a writer thread) is "no such review".
- Delivering a decision or a cancel: raise the event, then watch the status until the
  orchestrator shows what became of it (applied, or ignored with the reason). A decision
  that an execution dropped (continue-as-new drops events that arrive with it) is sent
  again with the same id; the orchestrator applies an id once. A reply of 200 therefore
  means "applied", never "sent and maybe lost".
- Listing running reviews page by page: the SDK's status query reads only the first page
  of the extension's answer, so the pages are read here, with the continuation header.
- Failures of the Durable backend become ``BackendUnavailable`` (503 at the edge), never
  a confusing 409 or a stack trace.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Optional

import aiohttp
import azure.durable_functions as df

from routes.backend_session import backend_session, reply_json
from shared_code.models import ValidationError, stored_payload
from shared_code.review_status import FINISHED, Outcome, ReviewStatus, actor, verdict_of
from shared_code.stages import Stage

log = logging.getLogger(__name__)

REVIEW_ORCHESTRATOR = "hitl_orchestration"
REVIEW_ID_PREFIX = "review-"
# How long a route waits for the orchestrator to show a delivered event, per delivery,
# and how often it delivers it before answering "accepted, not applied yet".
ACKNOWLEDGE_SECONDS = 4.0
DELIVERIES = 3
FIRST_POLL_SECONDS, LONGEST_POLL_SECONDS = 0.01, 0.5


class BackendUnavailable(Exception):
    """The Durable backend did not answer as it should; retrying later may work."""


class NoSuchReview(LookupError):
    pass


@dataclass(frozen=True)
class Review:
    """One review as the routes see it: its runtime status and its typed custom status.

    The custom status holds excerpts when the texts are long (it must stay under the
    extension's 16 KB); ``texts`` has the whole draft, the previous draft and the full
    decisions when the review was read with ``full=True``."""
    instance_id: str
    runtime_status: str
    status: ReviewStatus
    output: Any
    created_time: Optional[datetime]
    last_updated_time: Optional[datetime]
    texts: Optional["Texts"] = None

    @property
    def finished(self) -> bool:
        return self.runtime_status in FINISHED

    @property
    def shown(self) -> ReviewStatus:
        """The custom status, except for an instance terminated from outside the review,
        whose last custom status still says what it was doing when it was stopped."""
        if self.runtime_status == "Terminated":
            reason = self.output if isinstance(self.output, str) and self.output else "no reason given"
            return replace(self.status, stage=Stage.TERMINATED.value, message=f"Terminated: {reason}",
                           draft=None, deadline=None, reviewable_since=None, notification=None)
        return self.status

    @property
    def draft(self) -> Optional[dict]:
        if self.texts and self.texts.draft and self.status.draft:
            return self.texts.draft
        return self.status.draft

    @property
    def being_drafted(self) -> bool:
        """The writer is drafting the round under review (its first draft, or a revision)."""
        return not self.finished and self.status.phase in (Stage.DRAFTING, Stage.REVISING)

    def refusal(self, for_round: Optional[int] = None) -> Optional[str]:
        """Why a decision, cancel or deadline change (for ``for_round``, or for whatever
        round is under review when None) can no longer be taken, saying what happened
        instead; None while that round awaits review. Read from the status alone."""
        status = self.status
        if self.finished:
            return self._how_it_ended(for_round)
        current = status.round
        if for_round is not None and for_round > current:
            return f"round {for_round} has not started: {self._now()}"
        if status.awaiting_review and for_round in (None, current):
            return None
        if for_round is not None and for_round < current:
            return f"{self._decided(for_round)}; {self._now()}"
        if status.phase is Stage.PUBLISHING:
            return f"{self._decided(current)}; it is being published"
        if status.phase is Stage.REVISING and for_round is None:
            return f"{self._decided(current - 1)}; {self._now()}"
        return self._now()

    def _decided(self, round_: int) -> str:
        decision = self.status.decision_for(round_)
        return f"round {round_} was already decided" + (f": {verdict_of(decision)}" if decision else "")

    def _now(self) -> str:
        """What the review is doing with the round under review."""
        current = self.status.round
        if self.status.awaiting_review:
            return f"round {current} is under review now"
        if self.status.phase is Stage.PUBLISHING:
            decision = self.status.decision_for(current)
            by = f" {actor(decision)}" if decision else ""
            return f"round {current} was approved{by} and is being published"
        return f"round {current}'s draft is still being written"

    def _how_it_ended(self, for_round: Optional[int]) -> str:
        status, last = self.status, self.status.round
        if self.runtime_status == "Completed":
            earlier = f"{self._decided(for_round)}; " if for_round is not None and for_round < last else ""
            return f"{earlier}{self._decided(last)}, and the review is published"
        if self.runtime_status == "Terminated":
            reason = self.output if isinstance(self.output, str) and self.output else "no reason given"
            return f"the review was terminated: {reason}"
        if status.phase is Stage.CANCELLED and status.cancel:
            cancel = status.cancel
            return f"the review was cancelled {actor(cancel)}: {cancel.get('reason') or 'no reason given'}"
        if status.phase is Stage.TIMED_OUT:
            window = " and its escalation window" if status.escalated_at else ""
            return f"the review timed out: round {last} was not decided before its deadline{window}"
        if status.phase is Stage.REJECTED:
            decision = status.decision_for(last)
            return (f"the review ended without approval: round {last}, the last of {status.max_rounds}, "
                    f"was {verdict_of(decision) if decision else 'rejected'}")
        return f"the review failed: {status.message or self.output or self.runtime_status}"

    @classmethod
    def of(cls, status) -> "Review":
        return cls(status.instance_id, status.runtime_status.value, ReviewStatus.read(status.custom_status),
                   stored_payload(status.output), status.created_time, status.last_updated_time,
                   Texts.of(status) if getattr(status, "historyEvents", None) is not None else None)


@dataclass(frozen=True)
class Texts:
    """The whole texts of the round under review, from where the Durable backend keeps
    them: the writer's result in this execution's history, else the state the execution
    was started with (after a timer slice or a new round, it carries the drafts). The
    comments on passages are the state's, with the answers the writer gave in this
    execution, if it wrote the draft."""
    draft: Optional[dict]
    previous_draft: Optional[dict]
    decisions: tuple
    comments: tuple = ()
    answers: tuple = ()

    @classmethod
    def of(cls, status) -> "Texts":
        state = stored_payload(status.input_)
        state = state if isinstance(state, dict) else {}
        written = [e.get("Result") for e in getattr(status, "historyEvents", None) or []
                   if e.get("EventType") == "TaskCompleted" and e.get("FunctionName") == "write_draft"]
        drafts = [stored_payload(r) for r in written]
        drafts = [r for r in drafts if isinstance(r, dict) and "content" in r and "title" in r]
        draft = drafts[-1] if drafts else state.get("draft")
        answers = drafts[-1].get("answers") if drafts and isinstance(drafts[-1].get("answers"), list) else ()
        if isinstance(draft, dict):
            draft = {"title": draft.get("title"), "content": draft.get("content")}
        previous = state.get("previous_draft")
        return cls(draft if isinstance(draft, dict) else None,
                   previous if isinstance(previous, dict) else None,
                   tuple(d for d in state.get("decisions", ()) if isinstance(d, dict)),
                   tuple(c for c in state.get("comments", ()) if isinstance(c, dict)),
                   tuple(a for a in answers if isinstance(a, dict)))


@dataclass(frozen=True)
class Delivery:
    """What became of a delivered event: an Outcome, or None while it is not applied yet."""
    outcome: Optional[Outcome]
    review: Review


def new_review_id(now: Optional[datetime] = None) -> str:
    """Review ids sort by start time (the backend lists instances in id order)."""
    now = now or datetime.now(timezone.utc)
    return f"{REVIEW_ID_PREFIX}{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}"


def new_event_id() -> str:
    return uuid.uuid4().hex


class ReviewClient:
    def __init__(self, client: df.DurableOrchestrationClient):
        self.client = client

    @property
    def rpc_base_url(self) -> str:
        """Where the Durable backend's HTTP API answers this app (the extension's local
        endpoint on Azure)."""
        return _rpc_base_url(self.client)

    async def start(self, request: dict, instance_id: str) -> str:
        try:
            return await self.client.start_new(REVIEW_ORCHESTRATOR, instance_id, request)
        except Exception as exc:
            raise _unavailable("start a review", exc) from None

    async def get(self, instance_id: str, full: bool = False) -> Review:
        """The review; ``full`` also reads its history and state for the whole texts."""
        try:
            status = await self.client.get_status(instance_id, show_history=full,
                                                  show_history_output=full, show_input=full)
        except Exception as exc:
            raise _unavailable("read a review", exc) from None
        if status is None or status.runtime_status is None or status.name != REVIEW_ORCHESTRATOR:
            raise NoSuchReview(instance_id)
        return Review.of(status)

    async def deliver(self, instance_id: str, event_name: str, payload: dict,
                      bound_round: Optional[int], patience: Optional[float] = None) -> Delivery:
        """Raise the event until the status shows its outcome (see the module's docstring).
        ``patience``: a caller that must answer sooner (a chat platform waits 3 s for an
        answer) raises the event once and waits this long for its outcome."""
        review = None
        for _ in range(1 if patience is not None else DELIVERIES):
            try:
                await self.client.raise_event(instance_id, event_name, payload)
            except Exception as exc:
                review = await self.get(instance_id)
                if review.finished:
                    return Delivery(review.status.outcome_of(payload["id"], bound_round, _stage_of(payload)), review)
                raise _unavailable("deliver the decision", exc) from None
            delivery = await self._acknowledged(instance_id, payload["id"], bound_round, _stage_of(payload),
                                                ACKNOWLEDGE_SECONDS if patience is None else patience)
            if delivery.outcome is not None or delivery.review.finished:
                return delivery
            review = delivery.review
        return Delivery(None, review)

    async def send_note(self, instance_id: str, event_name: str, payload: dict) -> None:
        """Raise an event nobody waits for (a seat's first view): a failure is logged, and
        the next page load sends it again."""
        try:
            await self.client.raise_event(instance_id, event_name, payload)
        except Exception as exc:  # noqa: BLE001 - the page works without it
            log.warning("could not note %s on %s: %s: %s", event_name, instance_id, type(exc).__name__, exc)

    async def _acknowledged(self, instance_id: str, event_id: str, bound_round: Optional[int],
                            bound_stage: Optional[int], wait_seconds: float) -> Delivery:
        # The first look waits a pause too: an event just raised has not been processed
        # yet (the orchestrator runs after this route yields, on Azure after a queue poll),
        # so a read at once would only cost a status query.
        deadline, pause = time.monotonic() + wait_seconds, FIRST_POLL_SECONDS
        while True:
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_POLL_SECONDS)
            review = await self.get(instance_id)
            outcome = review.status.outcome_of(event_id, bound_round, bound_stage)
            if outcome is not None or review.finished or time.monotonic() >= deadline:
                return Delivery(outcome, review)

    async def running_reviews(self, top: int, after: str) -> tuple[list[Review], str]:
        """One page of running reviews in id order, and the token for the next ('' at the end)."""
        base = _rpc_base_url(self.client)
        url = (f"{base}instances/?runtimeStatus=Running&instanceIdPrefix={REVIEW_ID_PREFIX}"
               f"&top={top}&showInput=false")
        headers = {"x-ms-continuation-token": after} if after else {}
        try:
            session = await backend_session()
            async with session.get(url, headers=headers) as reply:
                if reply.status == 400 and after:
                    raise ValidationError("'continuation' is not a token this route returned")
                if reply.status != 200:
                    raise BackendUnavailable(f"the Durable backend answered {reply.status} to a status query")
                rows = await reply_json(reply)
                token = reply.headers.get("x-ms-continuation-token", "")
        except ValidationError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise _unavailable("list reviews", exc) from None
        await asyncio.sleep(0)  # between parsing a page and reading its statuses, as above
        reviews = [_review_of_row(row) for row in rows if row.get("name") == REVIEW_ORCHESTRATOR]
        return reviews, "" if token in ("", "null") else token


def _stage_of(payload: dict) -> Optional[int]:
    """The stage a decision was bound to (``stage_index``); None for an event of the whole
    round (an extension, a note on a comment), which the review takes at any stage of it."""
    stage = payload.get("stage_index")
    return stage if isinstance(stage, int) and not isinstance(stage, bool) else None


def _rpc_base_url(client: df.DurableOrchestrationClient) -> str:
    # The SDK keeps the binding's rpcBaseUrl (the extension's local endpoint) privately;
    # tests/routes/test_review_client.py checks this against the installed SDK.
    return client._orchestration_bindings.rpc_base_url


def _review_of_row(row: dict) -> Review:
    return Review(row["instanceId"], row["runtimeStatus"], ReviewStatus.read(row.get("customStatus")),
                  row.get("output"), _time(row.get("createdTime")), _time(row.get("lastUpdatedTime")))


def _time(text: Optional[str]) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _unavailable(what: str, exc: Exception) -> BackendUnavailable:
    log.error("could not %s: %s: %s", what, type(exc).__name__, exc)
    return BackendUnavailable(f"the Durable backend could not {what} just now; retry shortly")
