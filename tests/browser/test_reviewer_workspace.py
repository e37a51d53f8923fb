"""The reviewer's whole journey in a real browser: the inbox across reviews, the review
page with the changes since the last round, edit-and-approve, and a page left open that
follows the review on its own. Screenshots land in test-artifacts/browser/; with
HITL_SCREENSHOTS=docs/screenshots the ones the README shows are written there instead."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from devhost.testing import wait_until
from tests.browser.test_review_page import review_link, start_review, wait_until_awaiting
from tests.support.http import call

SCREENSHOTS = Path(os.environ.get("HITL_SCREENSHOTS") or "test-artifacts/browser")
PHONE = {"width": 390, "height": 844}

@pytest.fixture
def open_page(browser):
    contexts = []

    def make(viewport=None, headers=None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                      extra_http_headers=headers or {})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def status_of(host, instance_id):
    return call("GET", f"{host.base_url}/api/hitl/status/{instance_id}").json


def reject(host, instance_id, round_, feedback):
    reply = call("POST", f"{host.base_url}/api/hitl/approve/{instance_id}",
                 {"approved": False, "feedback": feedback, "round": round_})
    assert reply.status == 200, reply.text
    wait_until_awaiting(host, instance_id, round_=round_ + 1)


def test_inbox_to_an_edited_approval(served_host, open_page):
    base = served_host.base_url
    others = [start_review(served_host, topic)[0] for topic in ("Quarterly update", "Release notes")]
    instance_id, _ = start_review(served_host, "Owls at night")
    reject(served_host, instance_id, 1, "Say more about **hearing**, and less about eyes.")

    inbox = open_page()
    inbox.goto(f"{base}/api/hitl/inbox")
    inbox.wait_for_selector("text=3 reviews awaiting a decision")
    rows = inbox.locator("#items tr")
    assert rows.count() == 3
    assert "2 of 3" in inbox.locator("tr", has_text="Owls at night").inner_text()
    shot(inbox, "inbox")
    inbox.fill("#filter", "owls")
    wait_until(lambda: inbox.locator("#items tr").count() == 1)
    inbox.click("text=Owls at night")

    inbox.wait_for_selector("text=Round 2 of 3")
    assert "left" in inbox.inner_text("#time-left")
    inbox.click("#show-diff")
    assert inbox.locator("#draft-diff ins").count() > 0  # the offline writer adds to the draft
    assert "hearing" in " ".join(inbox.locator("#draft-diff ins").all_inner_texts())
    shot(inbox, "review-changes")
    inbox.click("#show-draft")
    # The draft's Markdown is rendered: the feedback's **hearing** became bold text.
    assert inbox.locator("#draft-content strong", has_text="hearing").count() >= 1
    shot(inbox, "review-page")

    inbox.click("#edit")
    inbox.fill("#edit-title", "Owls hear in the dark")
    inbox.fill("#edit-content", "Edited by the reviewer: owls **hear** prey under snow.")
    inbox.click("#approve-edit")
    inbox.wait_for_selector("#stage:text('Published')", timeout=15_000)
    assert inbox.locator("#decide").is_hidden()
    output = status_of(served_host, instance_id)["output"]
    assert output["title"] == "Owls hear in the dark"
    assert output["content"] == "Edited by the reviewer: owls **hear** prey under snow."
    approval = output["decisions"][-1]
    assert approval["approved"] and approval["round"] == 2 and approval["by"] == "review link"
    assert approval["edited"]["before"] != approval["edited"]["after"]
    assert [status_of(served_host, i)["runtimeStatus"] for i in others] == ["Running", "Running"]


def test_phone_sized_inbox_and_review_page(served_host, open_page):
    instance_id, link = start_review(served_host, "A narrow screen")
    reject(served_host, instance_id, 1, "Shorter sentences.")
    phone = open_page(viewport=PHONE)
    phone.goto(f"{served_host.base_url}/api/hitl/inbox")
    phone.wait_for_selector("text=A narrow screen")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "inbox-phone")
    phone.goto(review_link(served_host, instance_id))
    phone.wait_for_selector("#decide:not(.hidden)")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "review-page-phone")


def test_a_page_left_open_shows_the_timeout_on_its_own(served_host, open_page):
    instance_id, link = start_review(served_host, "Nobody answers", approval_timeout_hours=0.002)
    page = open_page()
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    page.wait_for_selector("#stage:text('Timed out')", timeout=30_000)
    assert page.locator("#decide").is_hidden()
    assert page.inner_text("#time-left") == ""
    assert "deadline passed" in page.inner_text("#notice")
    wait_until(lambda: status_of(served_host, instance_id)["runtimeStatus"] == "Failed")
    assert "timed out" in status_of(served_host, instance_id)["error"].lower()


def test_a_page_left_open_shows_a_cancel_made_elsewhere(served_host, open_page):
    instance_id, link = start_review(served_host, "Cancelled elsewhere")
    page = open_page()
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    page.fill("#feedback", "half-written feedback")
    call("POST", f"{served_host.base_url}/api/hitl/cancel/{instance_id}", {"reason": "topic dropped"})
    page.wait_for_selector("#stage:text('Cancelled')", timeout=15_000)
    assert page.locator("#decide").is_hidden()
    assert "topic dropped" in page.inner_text("#notice")


def test_expanded_rounds_stay_expanded_across_a_refresh(served_host, open_page):
    instance_id, _ = start_review(served_host, "Remember what I opened")
    reject(served_host, instance_id, 1, "first feedback")
    page = open_page()
    page.goto(review_link(served_host, instance_id))
    page.wait_for_selector("#history summary")
    page.click("#history summary")
    wait_until(lambda: page.evaluate("Object.keys(sessionStorage).length") == 1)
    page.reload()
    page.wait_for_selector("#history details")
    wait_until(lambda: page.locator("#history details[open]").count() == 1)


def principal(*roles):
    claims = [{"typ": "roles", "val": role} for role in roles]
    return base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims}).encode()).decode()


def test_inbox_held_to_reviewers_refuses_others(served_host, open_page, monkeypatch):
    monkeypatch.setenv("HITL_REVIEWERS", "content-reviewers")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    start_review(served_host, "Held to reviewers")
    url = f"{served_host.base_url}/api/hitl/inbox"

    anonymous = open_page()
    assert anonymous.goto(url).status == 401
    assert "Sign in first" in anonymous.inner_text("h1")
    outsider = open_page(headers={"x-ms-client-principal": principal("readers")})
    assert outsider.goto(url).status == 403
    assert "not one of this app's reviewers" in outsider.inner_text("#reason")
    assert call("GET", f"{url}/items", headers={"x-ms-client-principal": principal("readers")}).status == 403

    reviewer = open_page(headers={"x-ms-client-principal": principal("content-reviewers")})
    assert reviewer.goto(url).status == 200
    reviewer.wait_for_selector("text=Held to reviewers")


def test_markdown_in_a_draft_cannot_run_script(served_host, open_page):
    instance_id, _ = start_review(served_host, "Hostile Markdown")
    hostile = ("[click](javascript:alert(1)) <script>alert(2)</script> ![img](x onerror=alert(3)) "
               "<img src=x onerror=alert(4)> [ok](https://example.com/)")
    reject(served_host, instance_id, 1, hostile)
    page = open_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(review_link(served_host, instance_id))
    page.wait_for_selector("#decide:not(.hidden)")
    content = page.locator("#draft-content")
    assert content.locator("script, img").count() == 0
    hrefs = [a.get_attribute("href") for a in content.locator("a").all()]
    assert hrefs == ["https://example.com/"]
    assert "<script>alert(2)</script>" in content.inner_text()  # shown as text
    page.click("#show-diff")
    assert page.locator("#draft-diff script, #draft-diff img").count() == 0
    page.wait_for_load_state("networkidle")  # an image's onerror would fire once its request failed
    page.evaluate("() => alert('last')")  # dialogs reach the handler in order: any other came first
    assert dialogs == ["last"]


def test_a_moved_deadline_shows_on_the_page_with_the_fresh_link(served_host, open_page):
    instance_id, _ = start_review(served_host, "More time", approval_timeout_hours=24)
    moved = call("POST", f"{served_host.base_url}/api/hitl/extend/{instance_id}", {"hours": 48})
    assert moved.status == 200, moved.text
    wait_until(lambda: status_of(served_host, instance_id)["customStatus"]["notification"].get("deadlineMoved"))
    page = open_page()
    page.goto(review_link(served_host, instance_id))  # the fresh link the reviewer was sent
    page.wait_for_selector("text=deadline moved once")
    assert page.inner_text("#time-left").startswith("2 days 23 h")
    assert page.locator("#decide").is_visible()
