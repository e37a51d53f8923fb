"""The review page in a real browser (Debian's Chromium driven by Playwright).

Screenshots of each step land in test-artifacts/browser/ (git-ignored).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.testing import wait_until
from tests.support.http import call

ARTIFACTS = Path("test-artifacts/browser")
XSS_TOPIC = "<img src=x onerror=alert(1)>"

@pytest.fixture
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def start_review(host, topic, **options):
    base = host.base_url
    instance_id = call("POST", f"{base}/api/hitl/run", {"topic": topic, **options}).json["instanceId"]
    wait_until_awaiting(host, instance_id, round_=1)
    return instance_id, review_link(host, instance_id)


def wait_until_awaiting(host, instance_id, round_):
    def awaiting():
        custom = call("GET", f"{host.base_url}/api/hitl/status/{instance_id}").json["customStatus"]
        # The notice goes out while the draft waits; its link is read from its result.
        return (custom.get("stage") == "awaiting_review" and custom.get("round") == round_
                and (custom.get("notification") or {}).get("status") != "sending")
    wait_until(awaiting)


def review_link(host, instance_id):
    """The link in the latest notification, pointed at the test host."""
    results = [json.loads(e["Result"]) for e in host.history(instance_id)
               if e["EventType"] == 5 and "review_url" in (e.get("Result") or "")]
    return results[-1]["review_url"].replace("http://localhost:7071", host.base_url)


def test_reviewer_rejects_then_approves_in_the_browser(served_host, page):
    instance_id, link = start_review(served_host, XSS_TOPIC)
    page.goto(link)
    page.wait_for_selector("text=Round 1 of 3")
    assert page.inner_text("#topic") == XSS_TOPIC  # shown as text, not markup
    assert page.locator("main img").count() == 0
    assert page.inner_text("#stage") == "Awaiting your review"
    assert "left" in page.inner_text("#time-left")
    shot(page, "1-round-1")

    page.fill("#feedback", "Explain the onerror attribute <b>plainly</b>")
    page.click("#reject")
    page.wait_for_selector("text=Round 2 of 3", timeout=15_000)
    page.wait_for_selector("#decide:not(.hidden)")
    assert "Explain the onerror attribute <b>plainly</b>" in page.inner_text("#draft-content")
    assert page.locator("#history details").count() == 1
    shot(page, "2-round-2")

    page.click("#approve")
    page.wait_for_selector("#stage:text('Published')", timeout=15_000)
    assert page.locator("#decide").is_hidden()
    shot(page, "3-published")
    assert page.dialogs == []
    status = call("GET", f"{served_host.base_url}/api/hitl/status/{instance_id}").json
    assert status["runtimeStatus"] == "Completed"
    assert [d["by"] for d in status["output"]["decisions"]] == ["review link", "review link"]


def test_rounds_whose_drafts_are_no_longer_kept_still_show_their_feedback(served_host, page):
    instance_id, _ = start_review(served_host, "Many rounds", max_review_attempts=6)
    for round_ in range(1, 5):
        call("POST", f"{served_host.base_url}/api/hitl/approve/{instance_id}",
             {"approved": False, "feedback": f"fix {round_}", "round": round_})
        wait_until_awaiting(served_host, instance_id, round_=round_ + 1)
    page.goto(review_link(served_host, instance_id))
    page.wait_for_selector("text=Round 5 of 6")
    summaries = page.locator("#history summary").all_inner_texts()
    assert summaries[0] == "Round 1 (draft no longer kept)"
    assert [s.split(":")[0] for s in summaries[1:]] == ["Round 2", "Round 3", "Round 4"]
    assert page.locator("#history p").all_text_contents() == [
        f"Rejected via function key: fix {r}" for r in range(1, 5)]
    shot(page, "6-many-rounds")


def test_rejecting_without_feedback_is_refused_in_the_page(served_host, page):
    instance_id, link = start_review(served_host, "Feedback needed")
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    page.click("#reject")
    page.wait_for_selector("#notice.error")
    assert "feedback" in page.inner_text("#notice").lower()
    assert page.evaluate("document.activeElement.id") == "feedback"  # where the reviewer types next
    status = call("GET", f"{served_host.base_url}/api/hitl/status/{instance_id}").json
    assert status["customStatus"]["decisions"] == []


def test_finished_review_shows_final_state_without_buttons(served_host, page):
    instance_id, link = start_review(served_host, "Already cancelled")
    call("POST", f"{served_host.base_url}/api/hitl/cancel/{instance_id}", {"reason": "no longer needed"})
    wait_until(lambda: call("GET", f"{served_host.base_url}/api/hitl/status/{instance_id}").json["customStatus"]["stage"] == "cancelled")
    page.goto(link)
    page.wait_for_selector("#stage:text('Cancelled')")
    assert page.locator("#decide").is_hidden()
    assert "no longer needed" in page.inner_text("#notice")
    shot(page, "4-cancelled")


def test_invalid_link_shows_a_clear_403_page(served_host, page):
    instance_id, link = start_review(served_host, "Tampered")
    response = page.goto(link[:-4] + "AAAA")
    assert response.status == 403
    assert "This review link cannot be used" in page.inner_text("h1")
    shot(page, "5-forbidden")


def test_round_1_offers_no_changes_view(served_host, page):
    _, link = start_review(served_host, "First draft")
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    assert page.locator("#view-toggle").is_hidden()  # there is no earlier round to compare with


def test_the_changes_view_marks_a_changed_title(served_host, page):
    instance_id, _ = start_review(served_host, "Owls")
    call("POST", f"{served_host.base_url}/api/hitl/approve/{instance_id}",
         {"approved": False, "feedback": "More owls", "round": 1})
    wait_until_awaiting(served_host, instance_id, round_=2)
    page.goto(review_link(served_host, instance_id))
    page.wait_for_selector("text=Round 2 of 3")
    assert page.locator("#view-toggle").is_visible()
    page.click("#show-diff")
    # The offline writer titles its drafts "Draft <round>: <topic>".
    assert page.locator("#draft-title-diff del").all_inner_texts() == ["1:"]
    assert page.locator("#draft-title-diff ins").all_inner_texts() == ["2:"]
    assert page.locator("#draft-title").is_hidden()
    page.click("#show-draft")
    assert page.inner_text("#draft-title") == "Draft 2: Owls"
    assert page.locator("#draft-title-diff").is_hidden()


def test_the_review_page_links_to_the_inbox(served_host, page):
    _, link = start_review(served_host, "Where is everything else")
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    page.click("#inbox-link")
    page.wait_for_selector("text=Reviewer inbox")
    origin = link.split("/api/", 1)[0]
    assert page.url == f"{origin}/api/hitl/inbox"  # the same origin the review link used
    page.wait_for_selector("text=Where is everything else")
