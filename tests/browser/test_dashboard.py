"""The devhost's dashboard in a real browser (Debian's Chromium driven by Playwright): find
a failed instance by filter, read its timeline, restart it and watch it complete; raise an
event from the page; suspend, resume, terminate and purge one instance from its page;
terminate and purge a selection; signal an entity and see its last operation; every value
an app stored shown as text. Screenshots land in test-artifacts/browser/; with
HITL_SCREENSHOTS=docs/screenshots the ones the README shows are written there instead."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devhost.dashboard import DASHBOARD_PATH
from devhost.testing import TestingHost, wait_until
from tests.browser.test_review_page import start_review, wait_until_awaiting
from tests.devhost.conftest import APPS
from tests.support.http import call

SCREENSHOTS = Path(os.environ.get("HITL_SCREENSHOTS") or "test-artifacts/browser")
# Live views poll every 2 s; a change shows within a few polls.
LIVE_MS = 10_000
HTML = '<img src=x onerror="alert(1)">'


@pytest.fixture
def host(tmp_path):
    with TestingHost.served(APPS / "dashboard", data_dir=tmp_path / "state") as served:
        yield served


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []

    def answer(dialog):
        page.dialogs.append(dialog.message)
        dialog.accept() if dialog.type == "confirm" else dialog.dismiss()
    page.on("dialog", answer)
    yield page
    context.close()


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def open_dashboard(tab, host, where=""):
    tab.goto(f"{host.base_url}{DASHBOARD_PATH}{where}")


def api_status(host, instance_id: str):
    """What the Durable HTTP API answers for the instance: its status, or None for a 404."""
    reply = call("GET", f"{host.base_url}/runtime/webhooks/durabletask/instances/{instance_id}")
    assert reply.status in (200, 202, 404), reply.text
    return None if reply.status == 404 else reply.json


def listed_ids(tab) -> list[str]:
    return tab.locator("#instance-rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


def lanes(tab) -> list[tuple[str, str, str]]:
    """(kind, state, label) of each bar the timeline draws, the orchestration's first."""
    return [tuple(lane) for lane in tab.locator("#gantt .lane").evaluate_all(
        "lanes => lanes.map(l => [l.dataset.kind, l.dataset.state, l.querySelector('.label').textContent])")]


def test_a_failed_order_found_by_filter_is_restarted_from_its_timeline_and_completes(host, tab, tmp_path):
    payments_up = tmp_path / "payments-up"
    order = {"payments_up_file": str(payments_up), "amount": 30}
    for _ in range(2):
        host.start("approval_flow")
    failed = host.start("order_flow", order)
    host.wait_for_instance(failed)
    other_failure = host.start("parent_flow", order)
    host.wait_for_instance(other_failure)

    open_dashboard(tab, host)
    wait_until(lambda: len(listed_ids(tab)) == 5, what="every instance listed")
    tab.check("[data-status=Failed]")
    wait_until(lambda: set(listed_ids(tab)) == {failed, other_failure, "child-of-parent"}, what="the failed ones")
    tab.select_option("#filter-name", "order_flow")
    wait_until(lambda: set(listed_ids(tab)) == {failed, "child-of-parent"}, what="the failed orders")
    assert "status=Failed" in tab.url and "name=order_flow" in tab.url
    tab.click(f"#instance-rows a:text-is('{failed}')")

    tab.wait_for_selector("#gantt .lane[data-state=failed]")
    assert ("activity", "failed", "charge_card · activity #0") in lanes(tab)
    assert "the payment service is down" in tab.inner_text("#failure-text")
    tab.click("#failed-step a")
    assert "ConnectionError: the payment service is down" in tab.inner_text("#bar-detail .failure-reason")
    # What the page says of rewind is what the devhost's Durable HTTP API answers.
    assert tab.is_visible("#rewind-note") and "501" in tab.inner_text("#rewind-note")
    assert call("POST", f"{host.base_url}/runtime/webhooks/durabletask/instances/{failed}/rewind").status == 501
    shot(tab, "dashboard-fixture-failed")

    payments_up.touch()  # the payment service is back
    tab.click("#restart")
    tab.wait_for_selector("#restarted-as")
    restarted = tab.inner_text("#restarted-as")
    assert restarted != failed and "202" in tab.inner_text("#action-result")
    tab.wait_for_function("id => document.getElementById('instance-id').textContent === id", arg=restarted)
    tab.wait_for_selector("#instance-status .badge.Completed", timeout=LIVE_MS)
    assert [(kind, state) for kind, state, _ in lanes(tab)] == [
        ("orchestration", "Completed"), ("activity", "completed"), ("activity", "completed")]
    assert tab.inner_text("#instance-output") == "charged 30"
    assert host.status(restarted)["runtimeStatus"] == "Completed"
    assert host.status(failed)["runtimeStatus"] == "Failed"  # a restart is a new instance


def test_an_event_raised_from_the_page_reaches_the_waiting_instance(host, tab):
    waiting = host.start("approval_flow")
    host.wait_for_instance(waiting, lambda status: status["runtimeStatus"] == "Running")
    open_dashboard(tab, host, f"#/instance/{waiting}")
    tab.wait_for_selector("#gantt .lane[data-kind=timer][data-state=waiting]")
    assert "fires in 23 h" in tab.inner_text("#gantt .lane[data-kind=timer] .duration")

    tab.fill("#event-name", "Approval")
    tab.fill("#event-data", json.dumps({"by": "ada", "note": HTML}))
    tab.click("#raise")
    tab.wait_for_selector("#action-result:has-text('202')")
    assert f"/instances/{waiting}/raiseEvent/Approval" in tab.inner_text("#action-result")
    tab.wait_for_selector("#instance-status .badge.Completed", timeout=LIVE_MS)
    assert ("event", "received", "event Approval") in lanes(tab)
    assert ("timer", "not fired", "timer #0") in lanes(tab)
    assert json.loads(tab.inner_text("#instance-output")) == {"by": "ada", "note": HTML}  # text, not markup
    assert tab.locator("#instance-output img").count() == 0 and tab.dialogs == []


def test_one_instance_is_suspended_resumed_terminated_and_purged_from_its_page(host, tab):
    bystander = host.start("approval_flow", instance_id="bystander")
    waiting = host.start("approval_flow", instance_id="waiting")
    for instance_id in (bystander, waiting):
        host.wait_for_instance(instance_id, lambda status: status["runtimeStatus"] == "Running")
    open_dashboard(tab, host, f"#/instance/{waiting}")
    tab.wait_for_selector("#instance-status .badge.Running")
    assert tab.is_disabled("#resume")

    tab.fill("#reason", "paused for a look")
    tab.click("#suspend")
    tab.wait_for_selector("#action-result:has-text('202')")
    assert f"/instances/{waiting}/suspend?reason=paused%20for%20a%20look" in tab.inner_text("#action-result")
    tab.wait_for_selector("#instance-status .badge.Suspended", timeout=LIVE_MS)
    assert api_status(host, waiting)["runtimeStatus"] == "Suspended"
    assert tab.is_disabled("#suspend") and tab.is_enabled("#resume")

    tab.click("#resume")
    tab.wait_for_selector(f"#action-result:has-text('/instances/{waiting}/resume')")
    tab.wait_for_selector("#instance-status .badge.Running", timeout=LIVE_MS)
    assert api_status(host, waiting)["runtimeStatus"] == "Running"
    assert tab.is_enabled("#suspend") and tab.is_disabled("#resume")

    tab.fill("#reason", HTML)
    tab.click("#terminate")
    tab.wait_for_selector(f"#action-result:has-text('/instances/{waiting}/terminate')")
    tab.wait_for_selector("#instance-status .badge.Terminated", timeout=LIVE_MS)
    assert tab.inner_text("#instance-output") == HTML  # the reason, as text
    terminated = api_status(host, waiting)
    assert terminated["runtimeStatus"] == "Terminated" and terminated["output"] == HTML
    assert tab.is_disabled("#terminate") and tab.is_disabled("#suspend")

    tab.click("#purge")
    tab.wait_for_selector("#instance-missing", state="visible")
    assert f"DELETE /runtime/webhooks/durabletask/instances/{waiting} \u2192 200" in tab.inner_text("#purge-result")
    assert tab.is_hidden("#instance-body") and api_status(host, waiting) is None
    assert tab.dialogs == [f"Terminate {waiting}?", f"Purge {waiting} and its history?"]
    tab.click("#back")
    wait_until(lambda: listed_ids(tab) == [bystander], what="the purged instance gone from the list")
    assert api_status(host, bystander)["runtimeStatus"] == "Running"
    assert tab.locator("main img").count() == 0


def test_a_selection_is_terminated_then_purged_and_the_list_follows_live(host, tab):
    open_dashboard(tab, host)
    tab.wait_for_selector("#list-empty", state="visible")
    started = [host.start("approval_flow", instance_id=f"batch-{n}") for n in range(4)]
    wait_until(lambda: sorted(listed_ids(tab)) == started, timeout=LIVE_MS / 1000, what="new instances listed live")
    tab.wait_for_selector("[data-chip=All] b:text-is('4')", timeout=LIVE_MS)

    for chosen in ("batch-0", "batch-1"):
        tab.check(f"[data-pick='{chosen}']")
    assert tab.inner_text("#selected-count") == "2 selected"
    tab.fill("#bulk-reason", "cleaning up")
    tab.click("#bulk-terminate")
    tab.wait_for_selector("#bulk-result:has-text('Terminate: 2 of 2 accepted')")
    wait_until(lambda: all(host.status(i)["runtimeStatus"] == "Terminated" for i in ("batch-0", "batch-1")))
    assert host.status("batch-0")["output"] == "cleaning up"

    for chosen in ("batch-0", "batch-1"):
        tab.check(f"[data-pick='{chosen}']")
    tab.click("#bulk-purge")
    tab.wait_for_selector("#bulk-result:has-text('Purge: 2 of 2 accepted')")
    assert tab.dialogs == ["Terminate 2 instance(s)?", "Purge 2 instance(s)?"]
    wait_until(lambda: sorted(listed_ids(tab)) == ["batch-2", "batch-3"], what="the purged ones gone")
    tab.wait_for_selector("[data-chip=All] b:text-is('2')", timeout=LIVE_MS)
    assert host.status("batch-0") is None and host.status("batch-2")["runtimeStatus"] == "Running"


def test_pages_of_instances_go_older_and_back(host, tab):
    started = [host.start("approval_flow", instance_id=f"page-{n:02d}") for n in range(25)]
    open_dashboard(tab, host, "#/instances?top=20")
    wait_until(lambda: len(listed_ids(tab)) == 20)
    first = listed_ids(tab)
    tab.click("#page-older")
    wait_until(lambda: len(listed_ids(tab)) == 5)
    assert sorted(first + listed_ids(tab)) == sorted(started)
    assert tab.is_disabled("#page-older")
    tab.click("#page-newer")
    wait_until(lambda: listed_ids(tab) == first)


def test_an_entity_is_signalled_from_the_page_and_its_state_follows(host, tab):
    host.signal_entity("counter", "visits", "add", 1)
    open_dashboard(tab, host, "#/entities")
    tab.wait_for_selector("#entity-rows tr:has-text('visits')")
    tab.click("[data-signal-key=visits]")
    assert tab.input_value("#signal-name") == "counter"
    tab.fill("#signal-op", "add")
    tab.fill("#signal-input", "41")
    tab.click("#signal")
    tab.wait_for_selector("#signal-result:has-text('202')")
    wait_until(lambda: host.entity_state("counter", "visits") == (True, 42), what="the signal applied")
    tab.wait_for_selector("#entity-rows tr:has-text('visits') pre:text-is('42')", timeout=LIVE_MS)
    assert tab.inner_text("#entity-rows tr:has-text('visits') td:nth-child(3)") == "add"

    tab.fill("#signal-op", "reset")
    tab.fill("#signal-input", "")
    tab.click("#signal")
    tab.wait_for_selector("#entity-rows tr:has-text('visits') pre:text-is('0')", timeout=LIVE_MS)
    assert tab.inner_text("#entity-rows tr:has-text('visits') td:nth-child(3)") == "reset"


def test_an_apps_values_are_shown_as_text(host, tab):
    instance_id = host.start("approval_flow", {"note": HTML}, instance_id=HTML)
    host.wait_for_instance(instance_id, lambda status: status["runtimeStatus"] == "Running")
    open_dashboard(tab, host)
    wait_until(lambda: listed_ids(tab) == [HTML])
    assert tab.inner_text("#instance-rows td.id") == HTML
    tab.click("#instance-rows td.id a")
    tab.wait_for_selector("#gantt .lane")
    assert tab.inner_text("#instance-id") == HTML
    assert json.loads(tab.inner_text("#instance-input").split("\n\n")[0]) == {"note": HTML}
    assert tab.locator("main img").count() == 0 and tab.dialogs == []


def test_readme_screenshots_of_reviews_on_the_dashboard(served_host, tab):
    """The app's own reviews: one published after a rejection (two executions), one
    cancelled, one waiting for its reviewer."""
    base = served_host.base_url
    published, _ = start_review(served_host, "Durable timers in Azure Functions")
    reply = call("POST", f"{base}/api/hitl/approve/{published}",
                 {"approved": False, "feedback": "Add an example with a timeout.", "round": 1})
    assert reply.status == 200, reply.text
    wait_until_awaiting(served_host, published, round_=2)
    assert call("POST", f"{base}/api/hitl/approve/{published}", {"approved": True, "round": 2}).status == 200
    cancelled, _ = start_review(served_host, "A topic that gets withdrawn")
    assert call("POST", f"{base}/api/hitl/cancel/{cancelled}", {"reason": "Topic withdrawn"}).status == 200
    start_review(served_host, "Release notes for the spring update")
    served_host.wait_for_instance(published)

    open_dashboard(tab, served_host)
    wait_until(lambda: len(listed_ids(tab)) >= 3)
    tab.wait_for_selector("[data-chip=Completed]")
    shot(tab, "dashboard")
    open_dashboard(tab, served_host, f"#/instance/{published}")
    tab.wait_for_selector("#gantt .lane[data-kind=event]")
    assert "Generation 1" in tab.inner_text("#generations")
    tab.click("#gantt .lane[data-kind=event]")
    shot(tab, "dashboard-timeline")
