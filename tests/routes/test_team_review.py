"""Team review over HTTP on the devhost: stages run in order, each decided as its
``require`` says, by signed-in people filling seats; claims, hand-overs, duplicates."""
from __future__ import annotations

from datetime import datetime

import pytest

from devhost.testing import wait_until
from shared_code.review_links import ReviewGrant, sign
from tests.conftest import SIGNING_KEY
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
OLIVE = principal_header("olive@contoso.com", roles=("owners",))


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


# -- claiming from the review page -----------------------------------------------------------

def seat_link(base, instance_id, seat):
    """The review page's URL for a seat of the stage under review, as its notice sends it."""
    custom = status(base, instance_id)["customStatus"]
    grant = ReviewGrant(instance_id, custom["round"], datetime.fromisoformat(custom["deadline"]),
                        stage=custom["stageIndex"], seat=seat)
    return f"{base}/api/hitl/review/{instance_id}?token={sign(grant, SIGNING_KEY.encode())}"


def on_page(link, action, who=None, body=None):
    """POST to the review page's ``action`` (claim, decision) as the page does."""
    headers = {"x-ms-client-principal": who} if who else {}
    return call("POST", link.replace("?token=", f"/{action}?token="), {} if body is None else body, headers=headers)


def page_state(link, who):
    return call("GET", link.replace("?token=", "/state?token="), headers={"x-ms-client-principal": who}).json


def test_a_signed_in_person_claims_a_shared_seat_from_the_review_page_and_releases_it(base):
    instance_id = start(base, {"stages": [{"name": "brand", "reviewers": ["role:brand"], "require": "any"}]})
    waiting_at(base, instance_id, "brand")
    link = seat_link(base, instance_id, 0)
    anonymous = on_page(link, "claim")
    assert anonymous.status == 403 and "sign in to claim a seat" in anonymous.json["error"]
    assert page_state(link, DAN)["you"]["canClaim"] is True

    claim = on_page(link, "claim", DAN)
    assert claim.status == 200, claim.text
    assert claim.json["seat"] == 1 and claim.json["message"].startswith("You claimed seat 1 until ")
    seat = status(base, instance_id)["customStatus"]["stages"][0]["seatStates"][0]
    assert seat["state"] == "claimed" and seat["claimedBy"] == "dan@contoso.com"
    dans = page_state(link, DAN)["you"]
    assert dans["holdsClaim"] is True and dans["canClaim"] is False and dans["canDecide"] is True
    erins = page_state(link, ERIN)["you"]
    assert erins["canClaim"] is False and erins["canDecide"] is False
    assert "claimed by dan@contoso.com" in erins["reason"]

    taken = on_page(link, "claim", ERIN)
    assert taken.status == 409 and "the seats you could claim are claimed by dan@contoso.com" in taken.json["error"]
    blocked = on_page(link, "decision", ERIN, {"approved": True})
    assert blocked.status == 403 and "claimed by dan@contoso.com" in blocked.json["error"]
    not_erins = on_page(link, "claim", ERIN, {"release": True})
    assert not_erins.status == 409 and "you hold no claim" in not_erins.json["error"]

    released = on_page(link, "claim", DAN, {"release": True})
    assert released.status == 200 and released.json["message"] == "The claim was released."
    assert status(base, instance_id)["customStatus"]["stages"][0]["seatStates"][0]["state"] == "waiting"
    assert on_page(link, "decision", ERIN, {"approved": True}).status == 200
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert [(d["by"], d["channel"]) for d in done["output"]["decisions"]] == [("erin@contoso.com", "review link")]


def test_the_review_page_claims_only_the_seat_its_link_is_for(base):
    instance_id = start(base, {"stages": [
        {"name": "brand", "reviewers": ["user:bob@contoso.com", "role:brand"], "require": "all"}]})
    waiting_at(base, instance_id, "brand")
    bobs_seat = on_page(seat_link(base, instance_id, 0), "claim", DAN)
    assert bobs_seat.status == 403 and "that can be claimed" in bobs_seat.json["error"]
    named = on_page(seat_link(base, instance_id, 0), "claim", BOB)
    assert named.status == 403 and "your seat names you; it needs no claim" in named.json["error"]
    brand = on_page(seat_link(base, instance_id, 1), "claim", DAN)
    assert brand.status == 200 and brand.json["seat"] == 2, brand.text


# -- the inbox's tabs --------------------------------------------------------------------------

def inbox(base, who, tab=""):
    query = f"?tab={tab}" if tab else ""
    return call("GET", f"{base}/api/hitl/inbox/items{query}", headers={"x-ms-client-principal": who})


def mine(base, who):
    """The reviews "Waiting for me" lists for this person, and the tabs' counts."""
    page = inbox(base, who).json
    return {item["instanceId"] for item in page["items"]}, page["counts"]


def listed(base, who, expected):
    """Wait until the inbox lists ``expected`` for this person: cards follow the review."""
    return wait_until(lambda: (found := mine(base, who))[0] == expected and found)


def test_waiting_for_me_lists_the_reviews_whose_seats_a_person_fills_by_role_and_the_counts(base):
    editor = start(base, {"stages": [{"name": "editor", "reviewers": ["role:editors"]}]})
    brand = start(base, {"stages": [{"name": "brand", "reviewers": ["role:brand", "role:brand"], "require": 2}]})
    legal = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    for instance_id, stage in ((editor, "editor"), (brand, "brand"), (legal, "legal")):
        waiting_at(base, instance_id, stage)
    assert listed(base, ALICE, {editor}) == ({editor}, {"mine": 1, "all": 3})
    assert listed(base, DAN, {brand}) == ({brand}, {"mine": 1, "all": 3})
    assert listed(base, BOB, {legal}) == ({legal}, {"mine": 1, "all": 3})
    assert listed(base, MALLORY, set()) == (set(), {"mine": 0, "all": 3})
    assert decide(base, brand, DAN).status == 200   # one of two: Dan is done, Erin is not
    assert listed(base, DAN, set()) == (set(), {"mine": 0, "all": 3})
    assert listed(base, ERIN, {brand}) == ({brand}, {"mine": 1, "all": 3})


def test_a_claim_keeps_the_review_in_the_claimers_inbox_only(base):
    instance_id = start(base, {"stages": [{"name": "brand", "reviewers": ["role:brand"]}]})
    waiting_at(base, instance_id, "brand")
    for person in (DAN, ERIN, FRANK):
        listed(base, person, {instance_id})
    claim = call("POST", f"{base}/api/hitl/claim/{instance_id}", {}, headers={"x-ms-client-principal": ERIN})
    assert claim.status == 200, claim.text
    assert listed(base, DAN, set())[1] == {"mine": 0, "all": 1}
    assert listed(base, FRANK, set())[1] == {"mine": 0, "all": 1}
    assert mine(base, ERIN) == ({instance_id}, {"mine": 1, "all": 1})


def test_a_handed_on_seat_moves_the_review_to_the_new_holders_inbox(base):
    instance_id = start(base, {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all"}]})
    waiting_at(base, instance_id, "legal")
    listed(base, BOB, {instance_id})
    assert mine(base, FRANK)[0] == set()
    handed = call("POST", f"{base}/api/hitl/delegate/{instance_id}", {"to": "frank@contoso.com"},
                  headers={"x-ms-client-principal": BOB})
    assert handed.status == 200, handed.text
    assert listed(base, FRANK, {instance_id})[1] == {"mine": 1, "all": 1}
    assert listed(base, BOB, set())[1] == {"mine": 0, "all": 1}
    assert mine(base, CAROL)[0] == {instance_id}


def test_the_all_tab_is_for_the_owners(base, monkeypatch):
    monkeypatch.setenv("HITL_OWNERS", "role:owners")
    editor = start(base, {"stages": [{"name": "editor", "reviewers": ["role:editors"]}]})
    legal = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    waiting_at(base, editor, "editor")
    waiting_at(base, legal, "legal")
    refused = inbox(base, ALICE, "all")
    assert refused.status == 403
    assert refused.json["error"] == "the list of all reviews is for the app's owners (HITL_OWNERS)"
    assert inbox(base, ALICE).json["owner"] is False
    every = wait_until(lambda: (page := inbox(base, OLIVE, "all").json)["counts"]["all"] == 2 and page)
    assert every["owner"] is True and every["tab"] == "all"
    assert {item["instanceId"] for item in every["items"]} == {editor, legal}
    assert every["counts"] == {"mine": 0, "all": 2}
