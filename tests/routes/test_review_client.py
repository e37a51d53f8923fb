"""The review client: the one SDK internal it reads (the binding's rpcBaseUrl, to page through
reviews), its review ids, and what it tells of an event it delivered."""
from __future__ import annotations

import asyncio
import json
import time

import azure.durable_functions as df

from routes.review_client import ACKNOWLEDGE_SECONDS, ReviewClient, _rpc_base_url, _stage_of, new_review_id
from shared_code.models import APPROVAL_EVENT, EXTEND_EVENT, SEAT_EVENT, ExtendRequest, ReviewNote
from shared_code.review_status import ReviewStatus
from tests.support.host_client import HostDurableClient


def test_the_sdk_client_keeps_the_bindings_rpc_base_url():
    binding = {"taskHubName": "hub", "creationUrls": {}, "managementUrls": {},
               "baseUrl": "http://x/runtime/webhooks/durabletask",
               "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/", "requiredQueryStringParameters": ""}
    assert _rpc_base_url(df.DurableOrchestrationClient(json.dumps(binding))) == binding["rpcBaseUrl"]


def test_review_ids_sort_by_start_time():
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=timezone.utc)
    ids = [new_review_id(start + timedelta(microseconds=n)) for n in range(3)]
    assert ids == sorted(ids) and all(i.startswith("review-20260301T") for i in ids)


# -- what the routes tell of an event they delivered, in a review past its first stage ---

TWO_OPEN_STAGES = {"stages": [{"name": "legal", "reviewers": ["anyone"], "require": "any"},
                              {"name": "brand", "reviewers": ["anyone"], "require": "any"}]}


def _at_the_second_stage(host):
    instance_id = host.start("hitl_orchestration", {"topic": "Owls", "max_review_attempts": 1,
                                                    "approval_timeout_hours": 72, "review": TWO_OPEN_STAGES})
    host.run_until_idle()
    host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "stage_index": 0, "id": "legal",
                                                    "channel": "function key"})
    host.run_until_idle()
    assert host.status(instance_id)["customStatus"]["stageIndex"] == 1
    return instance_id


def test_an_extension_in_the_second_stage_is_not_taken_for_a_decision_of_the_first(manual_host):
    """An extension is for the round: the route waiting for it must not answer "round 1
    was already decided" (a 409) because the round's first stage is over, before the
    review has even taken the extension, which it then applies."""
    instance_id = _at_the_second_stage(manual_host)
    extend = ExtendRequest(24.0).bound(1, "owner", "extend-1").to_event()
    delivery = asyncio.run(ReviewClient(HostDurableClient(manual_host)).deliver(instance_id, EXTEND_EVENT, extend, 1,
                                                                          patience=0.05))
    assert delivery.outcome is None  # not taken yet: nothing to tell
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)["customStatus"]
    assert any(change.get("id") == "extend-1" for change in status["deadlineChanges"])


def test_a_note_in_the_second_stage_is_not_taken_for_a_decision_of_the_first(manual_host):
    """A note on a comment is for the round, which the review takes at any stage of it: the
    first stage being over answers nothing."""
    instance_id = _at_the_second_stage(manual_host)
    note = ReviewNote("resolve", 1, stage=1, comment="c1", id="resolve-1").to_event()
    status = ReviewStatus.read(manual_host.status(instance_id)["customStatus"])
    assert status.outcome_of(note["id"], 1, _stage_of(note)) is None


class _PromptReview(HostDurableClient):
    """The review runs as soon as an event is raised (on Azure, within a queue poll of it),
    while the route waits for the outcome."""

    async def raise_event(self, instance_id, name, data):
        await super().raise_event(instance_id, name, data)
        self.host.run_until_idle()


def test_an_extension_racing_the_rejection_of_its_round_is_refused_at_once(manual_host):
    """An owner extends round 1 while a reviewer rejects it: the review takes the rejection
    and continues as new into round 2, dropping the extension that came in the same batch,
    so no record of it will ever show. The status shows round 1 over, decided by the
    rejection: the route answers that at its first look, not after ACKNOWLEDGE_SECONDS and
    a resend."""
    instance_id = manual_host.start("hitl_orchestration", {"topic": "Owls", "max_review_attempts": 2,
                                                           "approval_timeout_hours": 72})
    manual_host.run_until_idle()
    manual_host.raise_event(instance_id, APPROVAL_EVENT, {"approved": False, "feedback": "Shorter.", "round": 1,
                                                          "stage_index": 0, "id": "reject-1",
                                                          "by": "function key", "channel": "function key"})
    extend = ExtendRequest(24.0).bound(1, "function key", "extend-1").to_event()

    started = time.monotonic()
    delivery = asyncio.run(ReviewClient(_PromptReview(manual_host)).deliver(instance_id, EXTEND_EVENT, extend, 1))
    took = time.monotonic() - started

    assert delivery.outcome is not None and delivery.outcome.kind == "ignored"
    assert delivery.outcome.reason.startswith("round 1 was already decided: rejected")
    assert delivery.review.status.round == 2
    assert took < ACKNOWLEDGE_SECONDS / 4, f"the refusal took {took:.1f} s"


def test_a_note_bound_while_the_status_shows_the_stage_just_decided_is_applied_not_refused(manual_host):
    """After a stage's approval the status shows that stage decided until the next execution
    opens the next one (on Azure, a queue poll later). A comment resolved in that moment is
    bound to what the status shows; once the next stage is open the route must not answer
    "round 2 was already decided" (409) for a note the review then applies."""
    instance_id = manual_host.start("hitl_orchestration", {"topic": "Owls", "max_review_attempts": 2,
                                                           "approval_timeout_hours": 72, "review": TWO_OPEN_STAGES})
    manual_host.run_until_idle()
    _decide(manual_host, instance_id, 1, 0, False, "legal-1", feedback="Less jargon.",
            comments=[{"quote": "offline draft", "comment": "Say what it is."}])
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)["customStatus"]
    assert (status["round"], status["stageIndex"], status["comments"][0]["state"]) == (2, 0, "answered")

    _decide(manual_host, instance_id, 2, 0, True, "legal-2")
    manual_host.step(instance_id)  # the approval: the review continues as new
    client = ReviewClient(HostDurableClient(manual_host))
    seen = asyncio.run(client.get(instance_id)).status
    assert (seen.round, seen.stage_index, seen.awaiting_review) == (2, 0, True)
    note = ReviewNote("resolve", seen.round, seen.stage_index, "c1", by="function key", id="resolve-1").to_event()

    manual_host.run_until_idle()  # the next execution opens stage 'brand'
    delivery = asyncio.run(client.deliver(instance_id, SEAT_EVENT, note, note["round"], patience=0.05))
    manual_host.run_until_idle()  # the review takes the note
    assert manual_host.status(instance_id)["customStatus"]["comments"][0]["state"] == "resolved"
    assert delivery.outcome is None or delivery.outcome.kind == "applied", delivery.outcome


def _decide(host, instance_id, round_, stage, approved, id_, **extra):
    host.raise_event(instance_id, APPROVAL_EVENT, {"approved": approved, "round": round_, "stage_index": stage,
                                                   "id": id_, "by": "function key", "channel": "function key",
                                                   **extra})
