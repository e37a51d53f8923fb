"""The app's routes as the benchmarks drive them, and what a status reply says.

A status reply's ``customStatus`` is read through the app's own typed view,
``shared_code.review_status.ReviewStatus.read``, so the benchmarks ask the same questions
of it as the routes do (is a draft awaiting a decision, in which round, which decisions
were applied) and follow the app when its status changes shape.

What the routes promise, and the benchmarks rely on:

- ``POST /api/hitl/run`` answers 202 with the new review's id (``review-<time>-<hex>``);
- ``POST /api/hitl/approve/{id}`` answers 200 only once the review applied the decision,
  409 when it refused it (the reason says why), 202 while it is delivered and not yet
  applied. A rejection needs ``feedback``; every decision here names its ``round``, which
  the app requires anyway of a draft that became reviewable less than 5 s ago;
- ``GET /api/hitl/pending`` lists reviews awaiting a decision a page at a time, with a
  ``continuation`` token for the next page.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional
from urllib.parse import quote

from shared_code.review_status import FINISHED, ReviewStatus

from bench.http_client import Client, Reply



@dataclass(frozen=True)
class ReviewReply:
    """One status reply: the runtime status and the typed custom status."""
    runtime: Optional[str]
    status: ReviewStatus
    output: Any
    body: Any

    @classmethod
    def of(cls, body: Any) -> "ReviewReply":
        if not isinstance(body, dict):
            return cls(None, ReviewStatus.read(None), None, body)
        return cls(body.get("runtimeStatus"), ReviewStatus.read(body.get("customStatus")),
                   body.get("output"), body)

    @property
    def finished(self) -> bool:
        return self.runtime in FINISHED

    @property
    def stage(self) -> str:
        return self.status.stage

    @property
    def round(self) -> int:
        return self.status.round

    def awaiting(self, round_: int) -> bool:
        """Round ``round_``'s draft awaits a decision."""
        return self.runtime == "Running" and self.status.awaiting_review and self.status.round == round_

    def ended(self, runtime: str, stage: str) -> bool:
        return (self.runtime, self.status.stage) == (runtime, stage)

    @property
    def decisions(self) -> list:
        """The applied decisions: ``output.decisions`` once Completed, else the status's."""
        if self.runtime == "Completed" and isinstance(self.output, dict):
            found = self.output.get("decisions")
            return found if isinstance(found, list) else []
        return list(self.status.decisions)


def awaiting_round(round_: int) -> Callable[[ReviewReply], bool]:
    return lambda review: review.awaiting(round_)


def finished(review: ReviewReply) -> bool:
    return review.finished


class ReviewApi(Client):
    """The HTTP client with the app's routes, each timed under its own route name."""

    async def run(self, topic: str, **options) -> Reply:
        return await self.request("run", "POST", "/api/hitl/run", {"topic": topic, **options})

    async def status(self, instance_id: str) -> Reply:
        return await self.request("status", "GET", f"/api/hitl/status/{instance_id}")

    async def approve(self, instance_id: str, approved: bool, feedback: str = "",
                      round_: Optional[int] = None) -> Reply:
        body: dict = {"approved": approved}
        if feedback:
            body["feedback"] = feedback
        if round_ is not None:
            body["round"] = round_
        return await self.request("approve", "POST", f"/api/hitl/approve/{instance_id}", body)

    async def pending(self, top: Optional[int] = None, continuation: Optional[str] = None,
                      route: str = "pending") -> Reply:
        query = [f"top={top}"] if top is not None else []
        if continuation:
            query.append(f"continuation={quote(continuation, safe='')}")
        path = "/api/hitl/pending" + ("?" + "&".join(query) if query else "")
        return await self.request(route, "GET", path)

    async def health(self) -> Reply:
        return await self.request("health", "GET", "/api/health")

    async def history(self, instance_id: str) -> Reply:
        return await self.request(
            "history", "GET",
            f"/runtime/webhooks/durabletask/instances/{instance_id}?showHistory=true", record=False)


async def poll_until(api: ReviewApi, instance_id: str, done: Callable[[ReviewReply], bool], *,
                     interval_s: float, timeout_s: float) -> tuple[Optional[ReviewReply], float]:
    """Poll the status route until ``done(review)``; returns (the review or None, seconds).

    Bounded by ``timeout_s``; a failed or unexpected reply is recorded as an error and the
    poll goes on, so one slow answer does not end a lifecycle early.
    """
    started = time.perf_counter()
    deadline = started + timeout_s
    while True:
        reply = await api.status(instance_id)
        if reply.status == 200:
            review = ReviewReply.of(reply.body)
            if done(review):
                return review, time.perf_counter() - started
        else:
            api.recorder.error("status", f"HTTP {reply.status}", str(reply.body))
        if time.perf_counter() >= deadline:
            api.recorder.error("status", "poll timeout", instance_id)
            return None, time.perf_counter() - started
        await asyncio.sleep(interval_s)


def parse_event_time(text: str) -> float:
    """Epoch seconds of a devhost history Timestamp (``...T..:..:..ffffffZ``, UTC)."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return moment.timestamp()


async def completed_at(api: ReviewApi, instance_id: str) -> Optional[float]:
    """Epoch time the host stamped on the instance's ExecutionCompleted event.

    The stamp is the start of the episode that finished the instance, so it is earlier
    than the commit by one replay; a cross-check on the polled figure, not a substitute.
    """
    reply = await api.history(instance_id)
    if not isinstance(reply.body, dict):
        return None
    for event in reply.body.get("historyEvents") or []:
        if event.get("EventType") == "ExecutionCompleted":
            return parse_event_time(event["Timestamp"])
    return None
