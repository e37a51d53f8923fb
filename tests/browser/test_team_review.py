"""A team review in the browser: signed-in people, each sent by the inbox to the stage
waiting for them, decide on the review page (approve, reject, claim a shared seat first);
someone with no seat sees nothing to do.

App Service Authentication is emulated as the platform does it: WEBSITE_AUTH_ENABLED is
set, and every request from a person's browser carries their X-MS-CLIENT-PRINCIPAL."""
from __future__ import annotations

import time

import pytest

from devhost.testing import wait_until
from tests.support.http import call
from tests.support.principals import principal_header

from tests.browser.test_reviewer_workspace import open_page, shot  # noqa: F401  (the fixture)

POLICY = {"stages": [
    {"name": "editor", "reviewers": ["role:editors"], "require": "any"},
    {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": 2},
]}
PEOPLE = {
    "alice": principal_header("alice@contoso.com", roles=("editors",)),
    "bob": principal_header("bob@contoso.com"),
    "carol": principal_header("carol@contoso.com"),
    "mallory": principal_header("mallory@contoso.com", roles=("readers",)),
    "dan": principal_header("dan@contoso.com", roles=("brand",)),
    "erin": principal_header("erin@contoso.com", roles=("brand",)),
}


@pytest.fixture
def team(served_host, monkeypatch):
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    return served_host


def status_of(host, instance_id):
    return call("GET", f"{host.base_url}/api/hitl/status/{instance_id}").json


def waiting_at(host, instance_id, stage, round_=1):
    def check():
        custom = status_of(host, instance_id)["customStatus"]
        return (custom["stage"] == "awaiting_review" and custom["stages"][custom["stageIndex"]]["name"] == stage
                and custom["round"] == round_ and custom["notification"]["status"] != "sending")
    wait_until(check, timeout=15)


def inbox_of(open_page, host, person, refreshing=True):  # noqa: F811
    """The person's inbox; ``refreshing=False`` stops its clock, so that it shows the list
    as it first read it until the person does something (its timers never fire)."""
    page = open_page(headers={"X-MS-CLIENT-PRINCIPAL": PEOPLE[person]})
    if not refreshing:
        page.clock.install()
        page.clock.pause_at(time.time() + 1)
    page.goto(f"{host.base_url}/api/hitl/inbox")
    page.wait_for_selector("#tab-mine.pressed")
    return page


def open_from_the_inbox(open_page, host, person, topic):  # noqa: F811
    """The review page the person's inbox links to, once they may decide on it."""
    page = inbox_of(open_page, host, person)
    page.wait_for_selector(f"#items tr:has-text('{topic}')", timeout=15_000)
    page.click(f"text={topic}")
    page.wait_for_selector("#decide:not(.hidden)")
    assert "Reviewers" in page.inner_text("#stages-card")
    return page


def decide_from_the_inbox(open_page, host, person, topic):  # noqa: F811
    page = open_from_the_inbox(open_page, host, person, topic)
    page.click("#approve")
    page.wait_for_selector("#notice:has-text('was applied')")
    return page


def test_a_two_stage_review_is_decided_by_three_people_from_their_inboxes(team, open_page):  # noqa: F811
    started = call("POST", f"{team.base_url}/api/hitl/run", {"topic": "Quarterly report", "review": POLICY})
    assert started.status == 202, started.text
    instance_id = started.json["instanceId"]
    waiting_at(team, instance_id, "editor")

    nobody = inbox_of(open_page, team, "mallory")
    wait_until(lambda: nobody.inner_text("#tab-mine").startswith("Waiting for me (0)"))
    assert nobody.locator("#items tr").count() == 0

    decide_from_the_inbox(open_page, team, "alice", "Quarterly report")
    waiting_at(team, instance_id, "legal")

    bob = decide_from_the_inbox(open_page, team, "bob", "Quarterly report")
    bob.wait_for_selector("#you:has-text('you approved this stage')")
    seats = bob.inner_text("#stages")
    assert "Seat 1, user:bob@contoso.com" in seats and "approved by bob@contoso.com" in seats
    assert "Seat 2, user:carol@contoso.com: waiting" in seats
    shot(bob, "team-review")

    decide_from_the_inbox(open_page, team, "carol", "Quarterly report")
    done = wait_until(lambda: (s := status_of(team, instance_id))["runtimeStatus"] == "Completed" and s)
    trail = [(d["stage"], d["by"], d["channel"]) for d in done["output"]["decisions"]]
    assert trail == [("editor", "alice@contoso.com", "review link"), ("legal", "bob@contoso.com", "review link"),
                     ("legal", "carol@contoso.com", "review link")]


def test_an_all_stage_rejected_from_the_page_then_two_of_three_after_a_claim(team, open_page):  # noqa: F811
    policy = {"stages": [
        {"name": "editor", "reviewers": ["role:editors"], "require": "any"},
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all"},
        {"name": "brand", "reviewers": ["role:brand", "role:brand", "role:brand"], "require": 2}]}
    started = call("POST", f"{team.base_url}/api/hitl/run",
                   {"topic": "Annual report", "review": policy, "max_review_attempts": 2})
    assert started.status == 202, started.text
    instance_id = started.json["instanceId"]
    waiting_at(team, instance_id, "editor")
    decide_from_the_inbox(open_page, team, "alice", "Annual report")
    waiting_at(team, instance_id, "legal")

    # "all": Bob's approval leaves the stage waiting for Carol, whose rejection rejects it.
    bob = decide_from_the_inbox(open_page, team, "bob", "Annual report")
    bob.wait_for_selector("#you:has-text('you approved this stage')")
    assert "legal (all 2 must approve): under review, 1 approved, 0 rejected" in bob.inner_text("#stages")
    carol = open_from_the_inbox(open_page, team, "carol", "Annual report")
    carol.fill("#feedback", "Cite the source for the revenue figures")
    carol.click("#reject")
    carol.wait_for_selector("#notice:has-text('The rejection of round 1 was applied')")
    waiting_at(team, instance_id, "editor", round_=2)
    custom = status_of(team, instance_id)["customStatus"]
    assert [s["state"] for s in custom["stages"]] == ["waiting", "pending", "pending"]
    assert "legal: Cite the source for the revenue figures" in custom["draft"]["content"]

    decide_from_the_inbox(open_page, team, "alice", "Annual report")
    waiting_at(team, instance_id, "legal", round_=2)
    decide_from_the_inbox(open_page, team, "bob", "Annual report")
    decide_from_the_inbox(open_page, team, "carol", "Annual report")
    waiting_at(team, instance_id, "brand", round_=2)

    # 2 of 3: Dan claims the seat his link is for with the page's button, Erin takes another.
    dan = open_from_the_inbox(open_page, team, "dan", "Annual report")
    dan.click("#claim")
    dan.wait_for_selector("#notice:has-text('You claimed seat 1 until')")
    dan.wait_for_selector("#release:not(.hidden)")
    assert dan.locator("#claim").is_hidden()
    assert "Seat 1, role:brand (your seat): claimed by dan@contoso.com until" in dan.inner_text("#stages")
    erin = decide_from_the_inbox(open_page, team, "erin", "Annual report")
    erin.wait_for_selector("#you:has-text('you approved this stage')")
    seats = erin.inner_text("#stages")
    assert "brand (2 of 3 approvals): under review, 1 approved, 0 rejected" in seats
    assert "Seat 2, role:brand (your seat): approved by erin@contoso.com" in seats
    assert "Seat 1, role:brand: claimed by dan@contoso.com" in seats
    assert "Seat 3, role:brand: waiting" in seats
    dan.click("#approve")
    dan.wait_for_selector("#notice:has-text('was applied')")

    done = wait_until(lambda: (s := status_of(team, instance_id))["runtimeStatus"] == "Completed" and s)
    trail = [(d["round"], d["stage"], d["seatIndex"], d["by"], d["approved"]) for d in done["output"]["decisions"]]
    assert trail == [(1, "editor", 0, "alice@contoso.com", True), (1, "legal", 0, "bob@contoso.com", True),
                     (1, "legal", 1, "carol@contoso.com", False), (2, "editor", 0, "alice@contoso.com", True),
                     (2, "legal", 0, "bob@contoso.com", True), (2, "legal", 1, "carol@contoso.com", True),
                     (2, "brand", 1, "erin@contoso.com", True), (2, "brand", 0, "dan@contoso.com", True)]


def test_a_shared_seat_claimed_from_the_inbox_and_the_claims_answer_stays_up(team, open_page):  # noqa: F811
    policy = {"stages": [{"name": "brand", "reviewers": ["role:brand"], "require": "any"}]}
    started = call("POST", f"{team.base_url}/api/hitl/run", {"topic": "Logo refresh", "review": policy})
    assert started.status == 202, started.text
    instance_id = started.json["instanceId"]
    waiting_at(team, instance_id, "brand")
    erin = inbox_of(open_page, team, "erin", refreshing=False)
    erin.wait_for_selector("#items tr:has-text('Logo refresh') button.claim")

    dan = inbox_of(open_page, team, "dan", refreshing=False)
    row = dan.locator("#items tr:has-text('Logo refresh')")
    row.locator("button.claim").click()
    dan.wait_for_selector("#notice:has-text('You claimed seat 1 until')")

    def refreshed_with_the_claim():
        dan.clock.run_for(10_000)  # the inbox's next refresh: its card follows the claim shortly
        return "claimed by dan@contoso.com" in row.inner_text()
    wait_until(refreshed_with_the_claim)
    assert row.locator("button.claim").count() == 0
    assert dan.inner_text("#notice").startswith("You claimed seat 1 until")  # kept up by the refreshes

    # A refresh that cannot read the list says so over the answer, and the next one clears it.
    unavailable = "the Durable backend could not list the inbox just now; retry shortly"
    dan.route("**/inbox/items?*", lambda route: route.fulfill(status=503, json={"error": unavailable}))
    dan.clock.run_for(10_000)
    dan.wait_for_selector(f"#notice:text-is('{unavailable}')")
    dan.unroute("**/inbox/items?*")
    dan.clock.run_for(10_000)
    dan.wait_for_selector("#notice", state="hidden")

    # Erin's list, not read again since, still offers the seat: her claim is refused,
    # and the reason stays up while the list is read again.
    erin.click("#items tr:has-text('Logo refresh') button.claim")
    wait_until(lambda: erin.inner_text("#tab-mine").startswith("Waiting for me (0)"))
    assert erin.inner_text("#notice") == "the seats you could claim are claimed by dan@contoso.com."
    assert "error" in erin.get_attribute("#notice", "class")
    erin.click("#tab-mine")
    erin.wait_for_selector("#notice:text-is('Nothing is waiting here.')")
    seat = status_of(team, instance_id)["customStatus"]["stages"][0]["seatStates"][0]
    assert seat["state"] == "claimed" and seat["claimedBy"] == "dan@contoso.com"
