"""A team review in the browser: three signed-in people, each sent by the inbox to the
stage waiting for them, decide on the review page; someone with no seat sees nothing to do.

App Service Authentication is emulated as the platform does it: WEBSITE_AUTH_ENABLED is
set, and every request from a person's browser carries their X-MS-CLIENT-PRINCIPAL."""
from __future__ import annotations

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
}


@pytest.fixture
def team(served_host, monkeypatch):
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    return served_host


def status_of(host, instance_id):
    return call("GET", f"{host.base_url}/api/hitl/status/{instance_id}").json


def waiting_at(host, instance_id, stage):
    def check():
        custom = status_of(host, instance_id)["customStatus"]
        return (custom["stage"] == "awaiting_review" and custom["stages"][custom["stageIndex"]]["name"] == stage
                and custom["notification"]["status"] != "sending")
    wait_until(check, timeout=15)


def inbox_of(open_page, host, person):  # noqa: F811
    page = open_page(headers={"X-MS-CLIENT-PRINCIPAL": PEOPLE[person]})
    page.goto(f"{host.base_url}/api/hitl/inbox")
    page.wait_for_selector("#tab-mine.pressed")
    return page


def decide_from_the_inbox(open_page, host, person, topic):  # noqa: F811
    page = inbox_of(open_page, host, person)
    page.wait_for_selector(f"#items tr:has-text('{topic}')", timeout=15_000)
    page.click(f"text={topic}")
    page.wait_for_selector("#decide:not(.hidden)")
    assert "Reviewers" in page.inner_text("#stages-card")
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
