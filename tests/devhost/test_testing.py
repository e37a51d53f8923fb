"""devhost.testing: the app on a host the test controls, in process or served."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from devhost import ManualClock, SystemClock
from devhost.testing import ConditionNotMet, TestingHost, wait_until
from tests.support.http import call

from .conftest import APPS
from .helpers import module_of

START = datetime(2026, 1, 1, tzinfo=timezone.utc)  # where a ManualClock starts
WEBHOOKS = "/runtime/webhooks/durabletask"


@pytest.fixture
def host():
    """The host app on a testing host as it comes, in process."""
    with TestingHost(APPS / "features") as testing_host:
        yield testing_host


@pytest.fixture
def served():
    """The host app on a testing host as it comes, served."""
    with TestingHost.served(APPS / "features") as testing_host:
        yield testing_host


# -- the host ----------------------------------------------------------------------------

def test_a_testing_host_is_in_process_on_a_manual_clock_with_state_it_removes():
    with TestingHost(APPS / "chaining") as host:
        assert isinstance(host.clock, ManualClock) and not host.serving
        state = host.data_dir
        assert any(state.glob("*.sqlite"))
        instance_id = host.start("chain", "Ada")
        assert host.status(instance_id)["runtimeStatus"] == "Pending"  # nothing ran by itself
        host.run_until_idle()
        assert host.status(instance_id)["output"] == ["Hello Ada", "Hello Hello Ada", "HELLO HELLO ADA"]
    assert not state.exists()


def test_a_state_folder_the_test_names_is_kept(tmp_path):
    with TestingHost(APPS / "chaining", data_dir=tmp_path / "state") as host:
        instance_id = host.start("chain", "Bo")
        host.run_until_idle()
    with TestingHost(APPS / "chaining", data_dir=tmp_path / "state") as again:
        assert again.status(instance_id)["runtimeStatus"] == "Completed"


def test_local_settings_are_read_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("DEVHOST_TESTING_PROBE", raising=False)
    app = tmp_path / "app"
    shutil.copytree(APPS / "chaining", app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "local.settings.json").write_text(json.dumps({"Values": {"DEVHOST_TESTING_PROBE": "read"}}))
    with TestingHost(app) as host:
        assert host.applied_settings == []
    with TestingHost(app, local_settings=True) as host:
        assert host.applied_settings == ["DEVHOST_TESTING_PROBE"]
    monkeypatch.delenv("DEVHOST_TESTING_PROBE")


def test_a_served_host_is_on_the_real_clock_at_its_base_url(served):
    assert isinstance(served.clock, SystemClock) and served.serving
    reply = call("POST", f"{served.base_url}{WEBHOOKS}/orchestrators/custom_status/served")
    assert reply.status == 202 and reply.json["id"] == "served"


def test_the_in_process_controls_refuse_a_served_host(served):
    instance_id = served.start("custom_status")
    for control in (served.run_until_idle, lambda: served.step(instance_id),
                    lambda: served.skip_time(lambda: True),
                    lambda: served.replay(instance_id)):
        with pytest.raises(RuntimeError, match="is for in-process use; this host is serving"):
            control()


# -- running work -------------------------------------------------------------------------

def test_step_runs_one_episode_and_leaves_what_it_scheduled(host):
    instance_id = host.start("sleepy_chain", {"seconds": 30})
    assert host.step(instance_id)
    assert host.pending_activities(instance_id) == ["echo"]
    assert not host.step(instance_id)  # the activity has not run, so nothing is due
    host.run_until_idle()
    assert host.pending_activities(instance_id) == []
    assert host.pending_timers(instance_id) == [START + timedelta(seconds=30)]
    assert host.status(instance_id)["runtimeStatus"] == "Running"


def test_skip_time_moves_the_clock_timer_by_timer_until_the_condition_holds(host):
    instance_id = host.start("long_timer", 10)   # the SDK splits it into 3-day pieces
    skipped = host.skip_time(lambda: host.status(instance_id)["runtimeStatus"] == "Completed")
    assert skipped == timedelta(days=10)
    assert host.clock.now() == START + timedelta(days=10)
    assert host.status(instance_id)["output"] == "2026-01-11T00:00:00+00:00"


def test_skip_time_stops_as_soon_as_the_condition_holds(host):
    waiting = host.start("long_timer", 10)
    early = host.start("timer_race", 60)
    host.skip_time(lambda: host.status(early)["output"] == "timeout")
    assert host.clock.now() == START + timedelta(minutes=1)
    assert host.status(waiting)["runtimeStatus"] == "Running"


def test_skip_time_fails_when_nothing_is_scheduled(host):
    instance_id = host.start("custom_status")   # waits for an event, with no timer
    with pytest.raises(ConditionNotMet, match="nothing is scheduled any more"):
        host.skip_time(lambda: host.status(instance_id)["runtimeStatus"] == "Completed")


def test_skip_time_fails_past_its_limit_without_moving_past_it(host):
    instance_id = host.start("long_timer", 10)
    with pytest.raises(ConditionNotMet, match="not met within 5 days"):
        host.skip_time(lambda: host.status(instance_id)["runtimeStatus"] == "Completed",
                           limit=timedelta(days=5))
    assert host.clock.now() == START + timedelta(days=3)  # the first piece, not the second


def test_wait_for_instance_in_process_runs_the_work_and_skips_time(host):
    instance_id = host.start("long_timer", 4)
    status = host.wait_for_instance(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert host.clock.now() == START + timedelta(days=4)


def test_wait_for_instance_says_what_it_saw_when_the_condition_cannot_come(host):
    instance_id = host.start("custom_status")
    with pytest.raises(ConditionNotMet, match=r"instance .*'customStatus': \{'stage': 'waiting'\}"):
        host.wait_for_instance(instance_id)


def test_wait_for_instance_polls_a_served_host(served):
    instance_id = served.start("custom_status")
    waiting = served.wait_for_instance(instance_id, lambda s: s["customStatus"] == {"stage": "waiting"})
    assert waiting["runtimeStatus"] == "Running"
    with pytest.raises(ConditionNotMet, match="not met within 0.2 s"):
        served.wait_for_instance(instance_id, timeout=0.2)
    served.raise_event(instance_id, "Answer", "yes")
    assert served.wait_for_instance(instance_id)["output"] == '"yes"'


def test_wait_for_instance_on_the_real_clock_in_process_runs_the_work(make_host):
    host = make_host("features", clock=None)
    instance_id = host.start("sleepy_chain", {"seconds": 0.1})
    assert host.wait_for_instance(instance_id)["output"] == ["before", "after"]


# -- looking inside ------------------------------------------------------------------------

def test_pending_timers_are_the_timers_that_have_not_fired(host):
    instance_id = host.start("timer_race", 60)
    host.run_until_idle()
    assert host.pending_timers(instance_id) == [START + timedelta(minutes=1)]
    host.raise_event(instance_id, "Go", 1)
    host.run_until_idle()
    assert host.pending_timers(instance_id) == []  # cancelled with the race won


def test_replay_gives_what_the_code_does_now_with_the_recorded_history(host, monkeypatch):
    choice = module_of(host, "nondeterministic")["CHOICE"]
    monkeypatch.setitem(choice, "activity", "echo")
    instance_id = host.start("nondeterministic")
    host.run_until_idle()
    host.raise_event(instance_id, "Continue", "on")
    host.run_until_idle()
    replayed = host.replay(instance_id)
    assert (replayed.done, replayed.output, replayed.scheduled, replayed.problem) == (
        True, ["x", '"on"'], ["echo"], None)
    monkeypatch.setitem(choice, "activity", "shout")  # the code changed after the history was recorded
    changed = host.replay(instance_id)
    assert changed.scheduled == ["shout"]
    assert "activity 'echo' as task #1" in changed.problem and "deterministic" in changed.problem


def test_replay_of_an_unknown_instance_is_refused(host):
    with pytest.raises(KeyError, match="nobody"):
        host.replay("nobody")


# -- faults --------------------------------------------------------------------------------

def test_while_the_state_is_unavailable_writes_get_503_and_reads_work(served):
    base = f"{served.base_url}{WEBHOOKS}"
    instance_id = served.start("custom_status")
    served.wait_for_instance(instance_id, lambda s: s["customStatus"])
    with served.state_unavailable():
        refused = call("POST", f"{base}/instances/{instance_id}/raiseEvent/Answer", "now")
        assert refused.status == 503 and refused.headers["Retry-After"] == "5"
        assert call("GET", f"{base}/instances/{instance_id}").json["runtimeStatus"] == "Running"
    assert call("POST", f"{base}/instances/{instance_id}/raiseEvent/Answer", "later").status == 202
    assert served.wait_for_instance(instance_id)["output"] == "later"


# -- waiting on any condition ----------------------------------------------------------------

def test_wait_until_returns_the_first_truthy_value():
    values = iter([None, 0, "found"])
    assert wait_until(lambda: next(values)) == "found"


def test_wait_until_names_what_it_waited_for_and_the_last_value():
    with pytest.raises(ConditionNotMet, match=r"the reply: not met within 0.05 s; last value: \[\]"):
        wait_until(lambda: [], timeout=0.05, what="the reply")
