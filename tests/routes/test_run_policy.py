"""POST /api/hitl/run and the review policy: the deployment's default (HITL_REVIEW_POLICY)
for a request that names none, the request's own otherwise, and 400 with the reason for a
bad one. Over real HTTP against the devhost."""
from __future__ import annotations

import json

import pytest

from devhost.testing import wait_until
from tests.support.http import call

EDITORS = {"stages": [{"name": "editor", "reviewers": ["role:editors"], "require": "any"}]}
LEGAL = {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"],
                     "require": "all"}]}


def started_with(base: str, request: dict) -> dict:
    """The status of the review a run request started, once its stage waits."""
    reply = call("POST", f"{base}/api/hitl/run", request)
    assert reply.status == 202, reply.text
    status_url = reply.json["statusQueryGetUri"]
    return wait_until(lambda: (s := call("GET", status_url).json)["customStatus"].get("stage") == "awaiting_review"
                      and s)


def stage_names(status: dict) -> list[str]:
    return [stage["name"] for stage in status["customStatus"]["stages"]]


def test_the_deployments_default_policy_reviews_a_request_that_names_none(served_host, monkeypatch):
    monkeypatch.setenv("HITL_REVIEW_POLICY", json.dumps(EDITORS))
    status = started_with(served_host.base_url, {"topic": "Quarterly report"})
    assert status["input"]["review"] == EDITORS
    assert stage_names(status) == ["editor"]


def test_a_requests_own_policy_overrides_the_deployments_default(served_host, monkeypatch):
    monkeypatch.setenv("HITL_REVIEW_POLICY", json.dumps(EDITORS))
    status = started_with(served_host.base_url, {"topic": "Quarterly report", "review": LEGAL})
    assert status["input"]["review"] == LEGAL
    assert stage_names(status) == ["legal"]


BAD_POLICIES = {
    "not an object": (["editor"], "'review' must be a JSON object"),
    "no stages": ({"stages": []}, "'review' needs \"stages\""),
    "unknown seat kind": ({"stages": [{"name": "editor", "reviewers": ["team:editors"]}]},
                          "unknown seat kind 'team'"),
    "require past its seats": ({"stages": [{"name": "editor", "reviewers": ["role:editors"], "require": 2}]},
                               "stage 'editor''s \"require\" is 2, but it has 1 seat(s)"),
    "a stage named twice": ({"stages": [{"name": "legal", "reviewers": ["anyone"]},
                                        {"name": "Legal", "reviewers": ["anyone"]}]},
                            "names the stage 'legal' twice"),
}


@pytest.mark.parametrize("policy, reason", BAD_POLICIES.values(), ids=BAD_POLICIES.keys())
def test_a_bad_policy_gets_400_with_the_reason(served_host, monkeypatch, policy, reason):
    """Whatever the deployment's default, a request's bad policy is refused, not replaced."""
    monkeypatch.setenv("HITL_REVIEW_POLICY", json.dumps(EDITORS))
    reply = call("POST", f"{served_host.base_url}/api/hitl/run", {"topic": "Quarterly report", "review": policy})
    assert reply.status == 400 and reason in reply.json["error"], reply.text
