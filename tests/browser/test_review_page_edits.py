"""A reviewer's typed text on the review page is sent or kept, never dropped silently:
while the editor is open the only approval is the edited text, leaving the page with an
unsent edit or feedback asks first, and an edit the review can no longer take (the round
was decided elsewhere) stays on the page, marked as not sent."""
from __future__ import annotations

import pytest

from tests.browser.test_review_page import shot, start_review
from tests.support.http import call

EDITED_TITLE = "Owls, edited"
EDITED_CONTENT = "The reviewer's own words about owls."


@pytest.fixture
def open_page(browser):
    contexts = []

    def make():
        context = browser.new_context()
        contexts.append(context)
        tab = context.new_page()
        tab.dialogs = []
        tab.on("dialog", lambda dialog: (tab.dialogs.append((dialog.type, dialog.message)),
                                         dialog.dismiss()))
        return tab

    yield make
    for context in contexts:
        context.close()


def status_of(host, instance_id):
    return call("GET", f"{host.base_url}/api/hitl/status/{instance_id}").json


def open_editor(page, link):
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    page.click("#edit")
    page.wait_for_selector("#editor:not(.hidden)")
    page.fill("#edit-title", EDITED_TITLE)
    page.fill("#edit-content", EDITED_CONTENT)


def leave_expecting(page, event):
    """Close the tab as a reviewer would, letting the page object first, and wait for
    ``event``: "dialog" when the page should ask (the fixture answers "stay"), "close"
    when it should let the reviewer go."""
    with page.expect_event(event, timeout=5_000):
        page.close(run_before_unload=True)


def test_while_editing_the_only_approval_is_the_edited_text(served_host, open_page):
    instance_id, link = start_review(served_host, "Owls")
    page = open_page()
    open_editor(page, link)
    assert page.locator("#approve").is_hidden()  # it would publish the draft without the edit
    assert page.locator("#reject").is_hidden()
    assert page.locator("#approve-edit").is_visible()
    shot(page, "7-editing")

    page.click("#approve-edit")
    page.wait_for_selector("#stage:text('Published')", timeout=15_000)
    output = status_of(served_host, instance_id)["output"]
    assert (output["title"], output["content"]) == (EDITED_TITLE, EDITED_CONTENT)


def test_discarding_the_edit_brings_the_choices_back(served_host, open_page):
    _, link = start_review(served_host, "Owls")
    page = open_page()
    open_editor(page, link)
    page.click("#cancel-edit")
    assert page.locator("#editor").is_hidden()
    assert page.locator("#approve").is_visible() and page.locator("#reject").is_visible()


@pytest.mark.parametrize("typed", ["edit", "feedback"])
def test_leaving_with_unsent_text_asks_first(served_host, open_page, typed):
    _, link = start_review(served_host, "Owls")
    page = open_page()
    if typed == "edit":
        open_editor(page, link)
    else:
        page.goto(link)
        page.wait_for_selector("#decide:not(.hidden)")
        page.fill("#feedback", "Half a thought")
    leave_expecting(page, "dialog")
    assert [kind for kind, _ in page.dialogs] == ["beforeunload"]
    assert not page.is_closed()  # the dialog was dismissed: the reviewer stays


def test_leaving_without_unsent_text_does_not_ask(served_host, open_page):
    _, link = start_review(served_host, "Owls")
    page = open_page()
    page.goto(link)
    page.wait_for_selector("#decide:not(.hidden)")
    page.click("#edit")
    page.wait_for_selector("#editor:not(.hidden)")  # opened, nothing changed
    leave_expecting(page, "close")
    assert page.dialogs == [] and page.is_closed()


def test_an_edit_the_review_can_no_longer_take_stays_on_the_page(served_host, open_page):
    instance_id, link = start_review(served_host, "Owls")
    page = open_page()
    open_editor(page, link)
    decided = call("POST", f"{served_host.base_url}/api/hitl/approve/{instance_id}",
                   {"approved": True, "round": 1})
    assert decided.status == 200, decided.text
    page.wait_for_selector("#stage:text('Published')", timeout=15_000)
    page.wait_for_selector("#unsent:not(.hidden)")
    assert page.inner_text("#unsent-title") == EDITED_TITLE
    assert page.inner_text("#unsent-content") == EDITED_CONTENT
    assert "not sent" in page.inner_text("#notice")
    assert page.locator("#approve-edit").is_hidden()
    shot(page, "8-edit-not-sent")
    leave_expecting(page, "dialog")
    assert [kind for kind, _ in page.dialogs] == ["beforeunload"]
