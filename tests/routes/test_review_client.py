"""The review client: the one SDK internal it reads (the binding's rpcBaseUrl, to page through
reviews), its review ids, and what it tells of an event it delivered."""
from __future__ import annotations

import asyncio
import json

import azure.durable_functions as df

from routes.review_client import ReviewClient, _rpc_base_url, _stage_of, new_review_id
from shared_code.models import EXTEND_EVENT, ExtendRequest, ReviewNote
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


def test_a_note_is_told_by_the_stage_it_was_bound_to(manual_host):
    """A reviewer's note carries its stage as ``stage``: a first view of the second stage
    is not "already decided" because the first stage is over."""
    instance_id = _at_the_second_stage(manual_host)
    note = ReviewNote("viewed", 1, stage=1, id="view-1").to_event()
    status = ReviewStatus.read(manual_host.status(instance_id)["customStatus"])
    assert status.outcome_of(note["id"], 1, _stage_of(note)) is None
