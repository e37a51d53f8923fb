"""The status an execution leaves when it continues as new after a stage's last decision.

It shows that decision (so the route watching for it answers) on the stage just decided,
not the next stage, which is not open yet: no deadline, no notice, never shown to its
reviewers. These tests stop the review exactly there (``step``: the episode that takes
the decision, not the next execution's first) and ask the routes what a caller gets.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from routes import review_routes
from routes.decisions import FUNCTION_KEY, Caller, bind_decision
from routes.http_helpers import HttpError
from routes.review_client import Review
from shared_code.models import Decision
from shared_code.review_links import ReviewGrant, sign
from shared_code.review_status import ReviewStatus
from tests.conftest import SIGNING_KEY
from tests.support.host_client import HostDurableClient

ORCHESTRATOR = "hitl_orchestration"
TWO_OPEN_STAGES = {"stages": [{"name": "legal", "reviewers": ["anyone"], "require": "any"},
                              {"name": "brand", "reviewers": ["anyone"], "require": "any"}]}


def custom(host, instance_id):
    return host.status(instance_id)["customStatus"]


def vote(host, instance_id, round_, stage, approved=True, event_id=None, settle=True):
    event_id = event_id or f"r{round_}s{stage}"
    payload = {"approved": approved, "round": round_, "stage_index": stage, "id": event_id,
               "channel": "function key"}
    if not approved:
        payload["feedback"] = "Not yet"
    host.raise_event(instance_id, "ApprovalEvent", payload)
    if settle:
        host.run_until_idle()
    else:
        assert host.step(instance_id)  # only the episode that takes the decision


def review_of(host, instance_id) -> Review:
    return Review(instance_id, "Running", ReviewStatus.read(custom(host, instance_id)), None, None, None)


def test_a_roundless_decision_is_not_placed_on_a_stage_nobody_was_shown(manual_host):
    """A decision without "round" is taken only once the stage's draft has been
    reviewable for ROUNDLESS_DECISION_GRACE_SECONDS, so that it cannot land on a draft
    nobody saw. Between the legal stage's last decision and the next execution's first
    episode, a roundless approval (a second legal reviewer's, an automation's) must not
    be bound to the brand stage, whose reviewers were never told: it is bound to legal
    and refused as already decided."""
    instance_id = manual_host.start(ORCHESTRATOR, {"topic": "Owls", "max_review_attempts": 1,
                                                   "approval_timeout_hours": 72, "review": TWO_OPEN_STAGES})
    manual_host.run_until_idle()
    manual_host.advance(hours=1)  # legal has been reviewable for an hour
    vote(manual_host, instance_id, 1, 0, settle=False)
    # Between the stages: legal decided, brand not opened.
    now = manual_host.clock.now() + timedelta(seconds=1)
    try:
        bound = bind_decision(Decision.from_json({"approved": True}), review_of(manual_host, instance_id),
                              Caller(None, FUNCTION_KEY, owner=True), now)
    except HttpError:
        bound = None  # refused by the route: what the grace is for
    if bound is not None:
        manual_host.raise_event(instance_id, "ApprovalEvent", bound.to_event())
    manual_host.run_until_idle()
    brand = [d for d in manual_host.status(instance_id)["customStatus"]["decisions"] if d.get("stageIndex") == 1]
    assert brand == [], f"a roundless decision bound against the in-between status approved brand: {brand}"
    assert manual_host.status(instance_id)["runtimeStatus"] == "Running"


def page_state(host, instance_id, token):
    # The route as written (errors answered as the app answers them), without the SDK's
    # middleware that builds a Durable client from the binding's JSON.
    route = review_routes.hitl_review_state._function.get_user_function().__wrapped__
    req = func.HttpRequest("GET", f"http://localhost/api/hitl/review/{instance_id}/state",
                           params={"token": token}, route_params={"instanceId": instance_id}, body=b"")
    return asyncio.run(route(req, HostDurableClient(host)))


def test_a_follow_link_of_a_later_stage_gets_the_page_state_between_the_stages(manual_host):
    """A page that rejected stage brand of round 1 holds a follow link for round 2, stage
    brand: it polls the state route until that stage waits, then trades the link for the
    round's own (``renewed_token``, which signs it with the status's deadline). Between
    legal's approval in round 2 and the next execution's first episode the route answers
    as it does while legal waits: a status of brand with no deadline would make it 500."""
    instance_id = manual_host.start(ORCHESTRATOR, {"topic": "Owls", "max_review_attempts": 2,
                                                   "approval_timeout_hours": 72, "review": TWO_OPEN_STAGES})
    manual_host.run_until_idle()
    vote(manual_host, instance_id, 1, 0)
    vote(manual_host, instance_id, 1, 1, approved=False)
    assert (custom(manual_host, instance_id)["round"], custom(manual_host, instance_id)["stageIndex"]) == (2, 0)
    follow = sign(ReviewGrant(instance_id, 2, datetime.now(timezone.utc) + timedelta(days=400), follows=True,
                              stage=1, seat=0), SIGNING_KEY.encode())
    waiting = page_state(manual_host, instance_id, follow)
    assert waiting.status_code == 200 and "token" not in waiting.get_body().decode()

    vote(manual_host, instance_id, 2, 0, settle=False)
    # Between the stages: legal decided, brand not opened.
    between = page_state(manual_host, instance_id, follow)
    assert between.status_code == 200, between.get_body().decode()


def test_a_status_awaiting_review_always_has_its_deadline_and_notice(manual_host):
    """What the routes, the README's status shape ("notification": {"status": "sending"}
    while the notice is out) and this suite's polling helpers rely on (routes/
    test_analytics.py ``settled``, routes/test_reviewer_aids.py ``waiting``, browser/
    test_team_review.py ``waiting_at`` read ``custom["notification"]["status"]`` as soon as
    the stage is awaiting_review): a decidable status names its deadline, since when the
    draft is reviewable, and its notice. Checked after every single episode."""
    instance_id = manual_host.start(ORCHESTRATOR, {"topic": "Owls", "max_review_attempts": 1,
                                                   "approval_timeout_hours": 72, "review": TWO_OPEN_STAGES})
    manual_host.run_until_idle()
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "stage_index": 0,
                                                           "id": "legal", "channel": "function key"})
    seen = []
    while manual_host.step(instance_id):
        status = custom(manual_host, instance_id)
        seen.append((status["stage"], status["stageIndex"], status["deadline"], status["notification"]))
        if status["stage"] == "awaiting_review":
            assert status["deadline"] and status["reviewableSince"] and status["notification"], seen
    assert custom(manual_host, instance_id)["stageIndex"] == 1
