"""Team review over HTTP on the devhost: stages run in order, each decided as its
``require`` says, by signed-in people filling seats; claims, hand-overs, duplicates."""
from __future__ import annotations

import pytest

from devhost.testing import wait_until
from tests.support.http import call
from tests.support.principals import principal_header

POLICY = {"stages": [
    {"name": "editor", "reviewers": ["role:editors"], "require": "any"},
    {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all"},
    {"name": "brand", "reviewers": ["role:brand", "role:brand", "role:brand"], "require": 2},
]}
ALICE = principal_header("alice@contoso.com", roles=("editors",))
BOB = principal_header("bob@contoso.com")
CAROL = principal_header("carol@contoso.com")
DAN = principal_header("dan@contoso.com", roles=("brand",))
ERIN = principal_header("erin@contoso.com", roles=("brand",))
FRANK = principal_header("frank@contoso.com", roles=("brand",))
MALLORY = principal_header("mallory@contoso.com", roles=("readers",))


@pytest.fixture
def base(served_host, monkeypatch):
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    return served_host.base_url


def start(base, policy=POLICY, **fields):
    reply = call("POST", f"{base}/api/hitl/run", {"topic": "Quarterly report", "review": policy, **fields})
    assert reply.status == 202, reply.text
    return reply.json["instanceId"]


def status(base, instance_id):
    return call("GET", f"{base}/api/hitl/status/{instance_id}").json


def waiting_at(base, instance_id, stage_name, round_=1):
    def check():
        body = status(base, instance_id)
        custom = body["customStatus"]
        stage = custom["stages"][custom["stageIndex"]]
        return (custom["stage"] == "awaiting_review" and custom["round"] == round_
                and stage["name"] == stage_name and body)
    return wait_until(check)


def decide(base, instance_id, who, approved=True, feedback="", round_=1, **extra):
    body = {"approved": approved, "round": round_, **({"feedback": feedback} if feedback else {}), **extra}
    return call("POST", f"{base}/api/hitl/approve/{instance_id}", body, headers={"x-ms-client-principal": who})


def test_three_stages_with_any_all_and_two_of_three_publish(base):
    instance_id = start(base)
    waiting_at(base, instance_id, "editor")
    assert decide(base, instance_id, ALICE).status == 200
    waiting_at(base, instance_id, "legal")
    first = decide(base, instance_id, BOB)
    assert first.status == 200 and "applied" in first.json["message"]
    seats = status(base, instance_id)["customStatus"]["stages"][1]["seatStates"]
    assert [s["state"] for s in seats] == ["approved", "waiting"]   # "all": Carol still to decide
    assert decide(base, instance_id, CAROL).status == 200
    waiting_at(base, instance_id, "brand")
    assert decide(base, instance_id, DAN).status == 200
    assert decide(base, instance_id, ERIN).status == 200
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    trail = [(d["stage"], d["seat"], d["by"], d["approved"]) for d in done["output"]["decisions"]]
    assert trail == [("editor", "role:editors", "alice@contoso.com", True),
                     ("legal", "user:bob@contoso.com", "bob@contoso.com", True),
                     ("legal", "user:carol@contoso.com", "carol@contoso.com", True),
                     ("brand", "role:brand", "dan@contoso.com", True),
                     ("brand", "role:brand", "erin@contoso.com", True)]
    assert {d["seatIndex"] for d in done["output"]["decisions"] if d["stage"] == "brand"} == {0, 1}
    assert all(d["channel"] == "function key" for d in done["output"]["decisions"])


def test_a_person_who_fills_no_seat_is_told_who_the_stage_waits_for(base):
    instance_id = start(base)
    waiting_at(base, instance_id, "editor")
    refused = decide(base, instance_id, MALLORY)
    assert refused.status == 403
    assert "stage 'editor'" in refused.json["error"] and "role:editors" in refused.json["error"]
    anonymous = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 1})
    assert anonymous.status == 403 and "nobody named" in anonymous.json["error"]
    assert status(base, instance_id)["customStatus"]["decisions"] == []


def test_a_second_decision_by_the_same_person_is_the_first_one(base):
    instance_id = start(base, {"stages": [
        {"name": "brand", "reviewers": ["role:brand", "role:brand", "role:brand"], "require": 2}]})
    waiting_at(base, instance_id, "brand")
    first = decide(base, instance_id, DAN, approved=False, feedback="Off-brand colours")
    assert first.status == 200
    again = decide(base, instance_id, DAN, approved=True)
    assert again.status == 200 and again.json["duplicate"] is True
    assert again.json["decision"]["approved"] is False
    custom = status(base, instance_id)["customStatus"]
    assert [d["by"] for d in custom["decisions"]] == ["dan@contoso.com"]
    assert custom["stages"][0]["approvals"] == 0 and custom["stages"][0]["rejections"] == 1


def test_a_rejection_returns_to_the_first_stage_with_every_rejecting_reviewers_feedback(base):
    instance_id = start(base, max_review_attempts=2)
    waiting_at(base, instance_id, "editor")
    decide(base, instance_id, ALICE)
    waiting_at(base, instance_id, "legal")
    rejected = decide(base, instance_id, CAROL, approved=False, feedback="Cite the source for the figures")
    assert rejected.status == 200
    body = waiting_at(base, instance_id, "editor", round_=2)
    assert "legal: Cite the source for the figures" in body["customStatus"]["draft"]["content"]
    stages = body["customStatus"]["stages"]
    assert [s["state"] for s in stages] == ["waiting", "pending", "pending"]


def test_two_of_three_is_rejected_once_two_approvals_can_no_longer_come(base):
    instance_id = start(base, {"stages": [
        {"name": "brand", "reviewers": ["role:brand", "role:brand", "role:brand"], "require": 2}]},
        max_review_attempts=1)
    waiting_at(base, instance_id, "brand")
    decide(base, instance_id, DAN, approved=False, feedback="No")
    assert status(base, instance_id)["runtimeStatus"] == "Running"
    decide(base, instance_id, ERIN, approved=False, feedback="Also no")
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Failed" and s)
    assert done["customStatus"]["stage"] == "rejected"


def test_a_claimed_seat_is_decided_only_by_its_claimer_until_released(base):
    instance_id = start(base, {"stages": [{"name": "brand", "reviewers": ["role:brand"], "require": "any"}]})
    waiting_at(base, instance_id, "brand")
    claim = call("POST", f"{base}/api/hitl/claim/{instance_id}", {}, headers={"x-ms-client-principal": DAN})
    assert claim.status == 200, claim.text
    seat = status(base, instance_id)["customStatus"]["stages"][0]["seatStates"][0]
    assert seat["state"] == "claimed" and seat["claimedBy"] == "dan@contoso.com"
    blocked = decide(base, instance_id, ERIN)
    assert blocked.status == 403 and "claimed by dan@contoso.com" in blocked.json["error"]
    taken = call("POST", f"{base}/api/hitl/claim/{instance_id}", {}, headers={"x-ms-client-principal": ERIN})
    assert taken.status == 409
    released = call("POST", f"{base}/api/hitl/claim/{instance_id}", {"release": True},
                    headers={"x-ms-client-principal": DAN})
    assert released.status == 200, released.text
    assert decide(base, instance_id, ERIN).status == 200
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert done["output"]["decisions"][0]["by"] == "erin@contoso.com"


def test_a_reviewer_hands_their_seat_on_and_the_owner_reassigns_another(base):
    instance_id = start(base, {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all"}]})
    waiting_at(base, instance_id, "legal")
    handed = call("POST", f"{base}/api/hitl/delegate/{instance_id}", {"to": "frank@contoso.com"},
                  headers={"x-ms-client-principal": BOB})
    assert handed.status == 200, handed.text
    assert decide(base, instance_id, BOB).status == 403           # no longer his seat
    reassigned = call("POST", f"{base}/api/hitl/reassign/{instance_id}",
                      {"stage": "legal", "seat": 2, "to": "user:erin@contoso.com"})
    assert reassigned.status == 200, reassigned.text
    seats = status(base, instance_id)["customStatus"]["stages"][0]["seatStates"]
    assert [s["seat"] for s in seats] == ["user:frank@contoso.com", "user:erin@contoso.com"]
    assert decide(base, instance_id, FRANK).status == 200
    assert decide(base, instance_id, ERIN).status == 200
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert [d["by"] for d in done["output"]["decisions"]] == ["frank@contoso.com", "erin@contoso.com"]


def test_the_function_key_decides_for_the_person_it_names(served_host):
    base = served_host.base_url   # no App Service Authentication: the key names the person
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    waiting_at(base, instance_id, "legal")
    unnamed = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 1})
    assert unnamed.status == 403
    named = call("POST", f"{base}/api/hitl/approve/{instance_id}",
                 {"approved": True, "round": 1, "reviewer": "bob@contoso.com"})
    assert named.status == 200, named.text
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    record = done["output"]["decisions"][0]
    assert record["by"] == "bob@contoso.com" and record["asserted"] is True and record["channel"] == "function key"


@pytest.mark.parametrize("body, reason", [
    ({"stage": "brand"}, "stage 'brand' is not under review yet"),
    ({"stage": "marketing"}, "no stage 'marketing'"),
    ({"title": "Edited", "stage": "legal"}, None),
])
def test_a_decision_for_another_stage_is_refused_with_the_reason(base, body, reason):
    instance_id = start(base)
    waiting_at(base, instance_id, "editor")
    decide(base, instance_id, ALICE)
    waiting_at(base, instance_id, "legal")
    reply = decide(base, instance_id, BOB, **body)
    if reason is None:  # an edit needs a stage one reviewer decides; legal needs all
        assert reply.status == 400 and "needs every seat's approval" in reply.json["error"]
    else:
        assert reply.status == 409 and reason in reply.json["error"]


def test_each_seat_is_sent_its_own_link_and_a_link_decides_for_its_seat(served_host, monkeypatch):
    from tests.support.webhook import WebhookReceiver

    base = served_host.base_url
    with WebhookReceiver() as hook:
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", hook.url)
        instance_id = start(base, {"stages": [
            {"name": "legal", "reviewers": ["user:bob@contoso.com", "role:legal"], "require": "all"}]})
        waiting_at(base, instance_id, "legal")
        wait_until(lambda: hook.delivered)
    message = hook.delivered[0]
    assert message["stage"] == "legal" and [s["seat"] for s in message["seats"]] == ["user:bob@contoso.com", "role:legal"]
    assert "Review as user:bob@contoso.com (seat 1)" in message["text"]
    links = [s["reviewUrl"].replace("http://localhost:7071", base) for s in message["seats"]]
    assert len(set(links)) == 2
    bobs, legal = links
    as_bob = call("POST", bobs.replace("?token=", "/decision?token="), {"approved": True})
    assert as_bob.status == 200, as_bob.text
    again = call("POST", bobs.replace("?token=", "/decision?token="), {"approved": True})
    assert again.status == 200 and again.json["duplicate"] is True
    as_legal = call("POST", legal.replace("?token=", "/decision?token="), {"approved": True})
    assert as_legal.status == 200, as_legal.text
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert [(d["seat"], d["by"], d["channel"]) for d in done["output"]["decisions"]] == [
        ("user:bob@contoso.com", "bob@contoso.com", "review link"), ("role:legal", "review link", "review link")]
