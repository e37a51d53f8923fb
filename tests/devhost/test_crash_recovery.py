"""Crash recovery: ``kill -9`` the CLI host at awkward moments and restart it on the same
state folder. Real clock, so the timer and the slow activity are short."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import quote

from devhost.clock import parse_iso
from devhost.testing import wait_until
from tests.support.http import call

from .conftest import APPS

WEBHOOKS = "/runtime/webhooks/durabletask"


def start(host, name, body, instance_id):
    reply = call("POST", f"{host.base_url}{WEBHOOKS}/orchestrators/{name}/{instance_id}", body)
    assert reply.status == 202, reply.text


def status(host, instance_id, history=False):
    query = "?showHistory=true" if history else ""
    return call("GET", f"{host.base_url}{WEBHOOKS}/instances/{quote(instance_id)}{query}").json


def has_event(host, instance_id, event_type):
    return any(e["EventType"] == event_type
               for e in status(host, instance_id, history=True).get("historyEvents", []))


def timer_fire_at(host):
    events = status(host, "timer", history=True).get("historyEvents", [])
    created = [e["FireAt"] for e in events if e["EventType"] == "TimerCreated"]
    return parse_iso(created[0]) if created else None


def completed(host, instance_id):
    return wait_until(lambda: (s := status(host, instance_id))["runtimeStatus"] == "Completed" and s,
                      timeout=15, what=f"{instance_id} to complete")


def test_every_instance_finishes_after_repeated_kill_9(tmp_path, launch):
    data, runs = tmp_path / "data", tmp_path / "activity-runs.txt"
    slow = {"log": str(runs), "seconds": 2, "label": "slow"}

    def activity_runs():
        return runs.read_text().split() if runs.exists() else []

    # Crash 1: an activity in flight, an instance waiting for an event, a timer pending.
    host = launch(APPS / "features", data)
    start(host, "slow_job", slow, "in-flight")
    start(host, "custom_status", None, "waiting")
    start(host, "sleepy_chain", {"seconds": 1}, "timer")
    wait_until(lambda: activity_runs() == ["slow"], what="the slow activity to start")
    wait_until(lambda: status(host, "waiting")["customStatus"], what="the wait")
    fire_at = wait_until(lambda: timer_fire_at(host), what="the timer")
    assert not has_event(host, "timer", "TimerFired")
    host.kill()
    # Stay down past the fire time, so the timer is overdue when the host comes back.
    wait_until(lambda: datetime.now(timezone.utc) > fire_at, what="the timer's fire time")

    # Crash 2: the activity runs again and the overdue timer fires; then a raised event
    # and a fresh start are answered 202 and the host dies, maybe before acting on them.
    host = launch(APPS / "features", data)
    wait_until(lambda: len(activity_runs()) == 2, what="the activity to run again")
    assert completed(host, "timer")["output"] == ["before", "after"]
    assert call("POST", f"{host.base_url}{WEBHOOKS}/instances/waiting/raiseEvent/Answer",
                {"approved": True}).status == 202
    start(host, "counter", {"n": 0, "stop": 2}, "fresh")
    host.kill()

    host = launch(APPS / "features", data)
    assert completed(host, "in-flight")["output"] == "slow"
    assert completed(host, "waiting")["output"] == {"approved": True}
    assert completed(host, "fresh")["output"] == {"final": 2}
    assert status(host, "timer")["runtimeStatus"] == "Completed"
    assert activity_runs()[:2] == ["slow", "slow"]  # at least once: the crash cut a run short
    assert host.stop()[0] == 0


# -- durable entities ---------------------------------------------------------------------

def entity_state(host, key):
    reply = call("GET", f"{host.base_url}{WEBHOOKS}/entities/counter/{key}")
    return reply.json if reply.status == 200 else None


def test_an_entity_batch_cut_short_by_kill_9_runs_again_and_counts_once(launch, tmp_path):
    data, mark = tmp_path / "state", tmp_path / "started"
    host = launch(APPS / "entities", data)
    job = json.dumps({"by": 5, "mark": str(mark), "seconds": 3})
    assert call("POST", f"{host.base_url}{WEBHOOKS}/entities/counter/k?op=slow_add",
                raw=json.dumps(job).encode()).status == 202
    wait_until(mark.exists, what="the batch to start")
    host.kill()
    mark.unlink()
    again = launch(APPS / "entities", data)
    wait_until(lambda: entity_state(again, "k") == 5, timeout=15, what="the batch to run again")
    assert mark.exists()  # it did run again
    # Requests run in arrival order, so once this later one is applied, a second run of the
    # batch, had there been one, would have been applied before it.
    assert call("POST", f"{again.base_url}{WEBHOOKS}/entities/counter/k?op=add",
                raw=json.dumps(json.dumps(1)).encode()).status == 202
    later = wait_until(lambda: (state := entity_state(again, "k")) != 5 and state, timeout=15,
                       what="the later request")
    assert later == 6


def test_signals_and_calls_accepted_before_kill_9_are_all_applied(launch, tmp_path):
    data = tmp_path / "state"
    host = launch(APPS / "entities", data)
    for _ in range(3):
        assert call("POST", f"{host.base_url}{WEBHOOKS}/entities/counter/c?op=add",
                    raw=json.dumps(json.dumps(2)).encode()).status == 202
    start(host, "add_and_read", json.dumps({"key": "o", "signal": 1, "add": 2}), "entity-caller")
    host.kill()
    again = launch(APPS / "entities", data)
    wait_until(lambda: entity_state(again, "c") == 6, timeout=15, what="the signals")
    assert completed(again, "entity-caller")["output"]["after_add"] == 3
