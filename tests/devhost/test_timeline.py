"""One instance on the dashboard: its timeline of activities, sub-orchestrations, entity
calls, timers and external events, drawn from the history on a manual clock, where each
wait takes the time the test gives it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devhost import timeline
from devhost.clock import parse_iso
from devhost.dashboard import Dashboard
from devhost.durable_api import describe

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def host(make_host):
    return make_host("dashboard")


@pytest.fixture
def dashboard(host):
    return Dashboard(host.api)


def order(tmp_path, up: bool) -> dict:
    payments_up = tmp_path / "payments-up"
    if up:
        payments_up.touch()
    return {"payments_up_file": str(payments_up), "amount": 12}


def bars(dashboard, instance_id, **wanted) -> list[dict]:
    return [bar for bar in dashboard.instance(instance_id)["timeline"]["bars"]
            if all(bar.get(key) == value for key, value in wanted.items())]


def hours(start: str, end: str) -> float:
    return (parse_iso(end) - parse_iso(start)) / timedelta(hours=1)


def test_a_failed_activity_is_marked_with_its_reason(host, dashboard, tmp_path):
    instance_id = host.start("order_flow", order(tmp_path, up=False))
    host.run_until_idle()
    view = dashboard.instance(instance_id)
    assert view["status"]["runtimeStatus"] == "Failed"
    [charge] = view["timeline"]["bars"]
    assert (charge["kind"], charge["name"], charge["state"]) == ("activity", "charge_card", "failed")
    assert "ConnectionError: the payment service is down" in charge["failure"]["reason"]
    assert "the payment service is down" in charge["failure"]["details"]
    assert view["timeline"]["execution"]["status"] == "Failed"


def test_activities_that_succeed_run_from_scheduled_to_completed(host, dashboard, tmp_path):
    instance_id = host.start("order_flow", order(tmp_path, up=True))
    host.run_until_idle()
    drawn = dashboard.instance(instance_id)["timeline"]
    assert [(b["name"], b["state"], b["waiting"]) for b in drawn["bars"]] == [
        ("charge_card", "completed", False), ("pack", "completed", False)]
    assert drawn["execution"]["end"] is not None and drawn["execution"]["status"] == "Completed"


def test_an_event_wait_is_drawn_as_the_time_spent_waiting(host, dashboard):
    instance_id = host.start("approval_flow")
    host.run_until_idle()
    host.advance(hours=5)
    [deadline] = bars(dashboard, instance_id, kind="timer")
    assert (deadline["state"], deadline["end"], deadline["waiting"]) == ("waiting", None, True)
    assert hours(deadline["start"], deadline["fireAt"]) == 24

    host.raise_event(instance_id, "Approval", {"by": "ada"})
    host.run_until_idle()
    [approval] = bars(dashboard, instance_id, kind="event")
    assert (approval["name"], approval["state"], approval["waiting"]) == ("Approval", "received", True)
    assert approval["start"] == START.isoformat().replace("+00:00", ".000000Z")  # idle since its first step
    assert hours(approval["start"], approval["end"]) == 5  # not a zero-length mark
    [deadline] = bars(dashboard, instance_id, kind="timer")
    assert deadline["state"] == "not fired" and hours(deadline["start"], deadline["end"]) == 5


def test_a_timer_that_fired_waited_until_it_fired(host, dashboard):
    instance_id = host.start("approval_flow")
    host.wait_for_instance(instance_id)  # a day passes on the manual clock
    [deadline] = bars(dashboard, instance_id, kind="timer")
    assert deadline["state"] == "fired" and hours(deadline["start"], deadline["end"]) == 24
    assert host.status(instance_id)["output"] == "expired"


def test_a_timer_given_up_while_the_instance_waits_on_is_cancelled(host, dashboard):
    instance_id = host.start("reminder_flow")
    host.run_until_idle()
    host.advance(minutes=10)
    host.raise_event(instance_id, "Snooze")
    host.run_until_idle()
    assert host.status(instance_id)["runtimeStatus"] == "Running"
    [reminder] = bars(dashboard, instance_id, kind="timer")
    assert reminder["state"] == "cancelled"
    assert hours(reminder["start"], reminder["end"]) == pytest.approx(10 / 60)


def test_a_sub_orchestration_links_its_child_and_entity_calls_are_drawn(host, dashboard, tmp_path):
    instance_id = host.start("parent_flow", order(tmp_path, up=False))
    host.run_until_idle()
    call, signal, child = dashboard.instance(instance_id)["timeline"]["bars"]
    assert (call["kind"], call["name"], call["state"], call["instanceId"]) == (
        "entity", "add", "completed", "@counter@visits")
    assert (signal["kind"], signal["state"]) == ("entity", "sent")
    assert (child["kind"], child["name"], child["state"], child["instanceId"]) == (
        "sub-orchestration", "order_flow", "failed", "child-of-parent")
    assert "the payment service is down" in child["failure"]["reason"]
    assert dashboard.instance("child-of-parent")["parentInstanceId"] == instance_id


def test_retries_show_each_attempt_and_each_delay(host, dashboard, tmp_path):
    instance_id = host.start("retry_flow", order(tmp_path, up=False))
    host.wait_for_instance(instance_id)
    drawn = [(b["kind"], b["state"], b.get("retry", False))
             for b in dashboard.instance(instance_id)["timeline"]["bars"]]
    assert drawn == [("activity", "failed", False), ("timer", "fired", True),
                     ("activity", "failed", True), ("timer", "fired", True)]


def test_a_call_to_an_activity_the_app_lacks_is_stuck(host, dashboard):
    instance_id = host.start("lost_flow")
    host.run_until_idle()
    [lost] = dashboard.instance(instance_id)["timeline"]["bars"]
    assert (lost["name"], lost["state"], lost["end"]) == ("no_such_activity", "stuck", None)


def test_continued_executions_are_listed_as_generations(host, dashboard):
    instance_id = host.start("rounds_flow")
    host.run_until_idle()
    generations = dashboard.instance(instance_id)["timeline"]["generations"]
    assert [g["generation"] for g in generations["earlier"]] == [1, 2]
    assert generations["current"]["generation"] == 3 and not generations["earlierNotRecorded"]
    assert len({g["executionId"] for g in generations["earlier"]} | {generations["current"]["executionId"]}) == 3


def test_bars_past_the_limit_are_counted_not_drawn(host, dashboard, tmp_path, monkeypatch):
    monkeypatch.setattr(timeline, "MAX_BARS", 3)
    instance_id = host.start("retry_flow", order(tmp_path, up=False))
    host.wait_for_instance(instance_id)
    drawn = dashboard.instance(instance_id)["timeline"]
    assert len(drawn["bars"]) == 3 and drawn["omitted"] == 1


def test_status_and_history_are_what_the_durable_api_shows(host, dashboard, tmp_path):
    instance_id = host.start("order_flow", order(tmp_path, up=True))
    host.run_until_idle()
    view = dashboard.instance(instance_id)
    row = host.engine.instance(instance_id)
    assert view["status"] == describe(row)
    assert view["historyEvents"] == host.api.public_history(row, True, True)
    assert dashboard.instance("nobody") is None
