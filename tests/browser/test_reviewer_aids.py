"""The reviewer's aids in a real browser (Debian's Chromium driven by Playwright): a
reviewer selects two passages of the draft and rejects with a comment on each; the
writer answers both; beside the next draft the reviewer resolves one comment and reopens
the other. The house-rules check shows beside the draft. And the analytics page.

Screenshots land in test-artifacts/browser/ (git-ignored); with
HITL_SCREENSHOTS=docs/screenshots the ones the README shows are written there instead.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from devhost.testing import wait_until
from shared_code.review_analytics import fact
from tests.browser.test_review_page import review_link, shot, start_review, wait_until_awaiting
from tests.browser.test_reviewer_workspace import shot as readme_shot
from tests.support.http import call

FIRST = "gives the same draft for the same input"
SECOND = "An offline draft about"
RULES = "no claims without a source; ends with a call to action; under 600 words"

SELECT = """(quote) => {
  const walker = document.createTreeWalker(document.getElementById("draft-content"), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(quote);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + quote.length);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    return true;
  }
  return false;
}"""


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()


def comment_on(page, quote, text):
    assert page.evaluate(SELECT, quote)
    page.wait_for_selector("#comment-selection:enabled")
    page.click("#comment-selection")
    page.locator("#pending-list textarea").last.fill(text)


def comment_item(page, comment_id):
    return page.locator(f"#comments li[data-comment='{comment_id}']")


def test_comments_on_two_passages_are_answered_then_resolved_and_reopened(served_host, page, monkeypatch):
    monkeypatch.setenv("HITL_HOUSE_RULES", RULES)
    instance_id, link = start_review(served_host, "Durable timers")
    page.goto(link)
    page.wait_for_selector("text=Round 1 of 3")
    page.wait_for_selector("#check li >> nth=2")
    checks = page.locator("#check li").all_inner_texts()
    assert checks[0].startswith("pass no claims without a source")
    assert checks[1].startswith("fail ends with a call to action")
    assert checks[2].startswith("pass under 600 words: ")

    comment_on(page, FIRST, "Say why that matters to a reader.")
    comment_on(page, SECOND, "Open with the problem timers solve.")
    assert page.locator("#pending-list li").count() == 2
    page.click("#approve")  # comments go with a rejection
    page.wait_for_selector("#notice:text('Comments on passages go with a rejection')")
    shot(page, "aids-1-two-comments")
    page.click("#reject")   # no general feedback needed: the comments are the instructions

    page.wait_for_selector("text=Round 2 of 3", timeout=15_000)
    page.wait_for_selector("#decide:not(.hidden)")
    wait_until_awaiting(served_host, instance_id, round_=2)
    page.wait_for_selector("#comments li[data-comment='c2'] .answer")
    for comment_id, quote in (("c1", FIRST), ("c2", SECOND)):
        item = comment_item(page, comment_id)
        assert quote in item.locator("blockquote").inner_text()
        assert item.locator(".answer").inner_text().startswith("Writer, round 2: Rewrote the passage as asked")
        assert item.locator(".badge.quote-changed").inner_text() == "the passage was changed"
        assert item.locator(".badge.state-answered").inner_text() == "answered by the writer"
    assert "rewrote" in page.inner_text("#changes-list")
    page.wait_for_selector("#check li >> nth=2")
    shot(page, "aids-2-answers-beside-the-draft")

    comment_item(page, "c1").locator("button:text('Resolve')").click()
    page.wait_for_selector("#comments li.resolved[data-comment='c1']")
    comment_item(page, "c2").locator("button:text('Reopen')").click()
    page.wait_for_selector("#comments li.open[data-comment='c2']")
    assert comment_item(page, "c1").locator(".state-resolved").inner_text() == "resolved via review link"
    assert comment_item(page, "c2").locator(".state-open").inner_text() == "reopened via review link"
    readme_shot(page, "review-comments")
    states = [c["state"] for c in call("GET", f"{served_host.base_url}/api/hitl/status/{instance_id}")
              .json["customStatus"]["comments"]]
    assert states == ["resolved", "open"]
    assert page.dialogs == []


def test_hostile_comments_and_verdicts_are_shown_as_text(served_host, page, monkeypatch):
    monkeypatch.setenv("HITL_HOUSE_RULES", "forbidden words: <img src=x onerror=alert(1)>")
    instance_id, link = start_review(served_host, "<img src=x onerror=alert(2)> timers")
    quote = "<img src=x onerror=alert(2)> timers"
    response = call("POST", f"{served_host.base_url}/api/hitl/approve/{instance_id}",
                    {"approved": False, "round": 1,
                     "comments": [{"quote": quote, "comment": "<script>alert(3)</script>"}]})
    assert response.status == 200, response.text
    wait_until_awaiting(served_host, instance_id, round_=2)
    page.goto(review_link(served_host, instance_id))
    page.wait_for_selector("#comments li[data-comment='c1'] .answer")
    assert "<script>alert(3)</script>" in comment_item(page, "c1").inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.dialogs == []


def seeded_days(days=14):
    """Two weeks of a team's reviews, as their facts reach the day aggregates: the same
    every run."""
    chance = random.Random(7)
    today = datetime.now(timezone.utc).date()
    people = ("ann@contoso.com", "bob@contoso.com", "carol@contoso.com", "dan@contoso.com")
    seeded = {}
    for back in range(days):
        day = (today - timedelta(days=back)).isoformat()
        facts = [fact("started", day) for _ in range(chance.randint(4, 12))]
        for _ in range(chance.randint(3, 10)):
            stage = chance.choice(("editor", "legal"))
            seconds = chance.lognormvariate(8, 1.2)
            approved = chance.random() < 0.7
            facts += [fact("viewed", day, stage=stage, s=chance.lognormvariate(6, 1)),
                      fact("vote", day, stage=stage, who=chance.choice(people), s=seconds, ok=approved),
                      fact("decided", day, stage=stage, s=seconds, ok=approved)]
        facts += [fact("ended", day, how="published", rounds=chance.choice((1, 1, 1, 2, 2, 3)),
                       s=chance.lognormvariate(9, 1)) for _ in range(chance.randint(2, 8))]
        facts += [fact("ended", day, how=chance.choice(("rejected", "timed_out", "cancelled")), rounds=3, s=None)
                  for _ in range(chance.randint(0, 2))]
        facts += [fact("missed", day, stage="legal", escalated=chance.random() < 0.5)
                  for _ in range(chance.randint(0, 1))]
        seeded[day] = facts
    seeded[today.isoformat()].append(fact("load", today.isoformat(), seats=[
        ["editor", "user:ann@contoso.com", 3], ["legal", "user:bob@contoso.com", 2], ["legal", "role:legal", 4]]))
    return seeded


def test_the_analytics_page_shows_figures_tables_and_charts(served_host, page):
    base = served_host.base_url
    seeded = seeded_days()
    for day, facts in seeded.items():
        served_host.signal_entity("review_stats", day, "add", facts)
    started = sum(1 for facts in seeded.values() for f in facts if f["f"] == "started")
    wait_until(lambda: call("GET", f"{base}/api/hitl/analytics/data").json["reviews"]["started"] == started)
    page.goto(f"{base}/api/hitl/analytics")
    page.wait_for_selector("#chart-per-day svg")
    assert page.inner_text("#figures").startswith(f"{started}\nstarted")
    assert page.locator("#stages tr").count() == 2 and page.locator("#chart-per-day svg rect").count() == 2 * 30
    reviewers = page.locator("#reviewers tr").all_inner_texts()
    assert reviewers[0].startswith("role:legal\t4") and any(r.startswith("ann@contoso.com\t3") for r in reviewers)
    readme_shot(page, "analytics")
    page.select_option("#stage", "legal")
    expect(page.locator("#stages tr")).to_have_count(1)
    assert page.inner_text("#stages").startswith("legal")
    page.click("button[data-days='7']")
    expect(page.locator("#chart-per-day svg rect")).to_have_count(2 * 7)
    assert page.dialogs == []
