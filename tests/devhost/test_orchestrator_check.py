"""The orchestrator check (devhost/orchestrator_check.py, DEVHOST-CONFORMANCE.md W11): with
it on, every episode is invoked through the Python worker as well, and a state that differs
from the replay's fails the episode loudly, naming the instance, the function and the
first field that differs."""
from __future__ import annotations

import itertools
import math

import pytest
from azure.durable_functions.models.TaskOrchestrationExecutor import TaskOrchestrationExecutor

from devhost import replay as replay_module
from devhost.history import EventType
from devhost.host import HostConfigError
from devhost.orchestrator_check import (CHECK_SETTING, MISSING, NONDETERMINISM_HINT, OrchestratorCheckFailed,
                                        check_mode, first_difference)
from devhost.testing import TestingHost

from .conftest import APPS


@pytest.fixture
def devhost_app_dir():
    return APPS / "features"


@pytest.fixture
def devhost_check_orchestrators():
    return "worker"


def tampered_replays(monkeypatch, tamper):
    """The fast path's replay, changed by ``tamper(replay)`` before the check sees it."""
    replay = replay_module.Replayer._replay

    def changed(self, handle, row, fields):
        result = replay(self, handle, row, fields)
        tamper(result)
        return result
    monkeypatch.setattr(replay_module.Replayer, "_replay", changed)


def drop_first_action(replay):
    del replay.state["actions"][0][0]


def rename_first_call(replay):
    replay.state["actions"][0][0]["functionName"] = "shout"


def reword_error(replay):
    replay.state["error"] = "something else"


def test_every_episode_is_checked_and_an_equal_state_passes(manual_host):
    """The plugin's fixture turns the check on; each episode is invoked through the worker."""
    instance_id = manual_host.start("custom_status")
    manual_host.run_until_idle()
    manual_host.raise_event(instance_id, "Answer", 1)
    status = manual_host.wait_for_instance(instance_id)
    assert status["runtimeStatus"] == "Completed"
    episodes = [e for e in manual_host.history(instance_id) if e["EventType"] == EventType.ORCHESTRATOR_STARTED]
    assert manual_host.engine.orchestrator_check.episodes == len(episodes) == 2


@pytest.mark.parametrize("orchestrator, input, tamper, field, replayed", [
    ("counter", {"n": 1, "stop": 1}, drop_first_action, "actions[0][0]", "the replay has nothing"),
    ("counter", {"n": 1, "stop": 1}, rename_first_call, "actions[0][0].functionName",
     'from character 0 the replay has "shout"'),
    ("raises", {"why": "no"}, reword_error, "error", 'from character 0 the replay has "something else"'),
])
def test_a_state_that_differs_from_the_workers_fails_the_episode_naming_the_field(
        manual_host, monkeypatch, orchestrator, input, tamper, field, replayed):
    """The failing orchestrator's state is the one recovered from the exception text, on
    both paths (the SDK's ``$OutOfProcData$:``)."""
    instance_id = manual_host.start(orchestrator, input)
    if orchestrator == "raises":
        manual_host.step(instance_id)  # the first episode schedules the activity; the next one raises
    tampered_replays(monkeypatch, tamper)
    with pytest.raises(OrchestratorCheckFailed) as failed:
        manual_host.run_until_idle()
    message = str(failed.value)
    assert message.startswith(f"orchestrator check: instance {instance_id}, function '{orchestrator}': ")
    assert f"differs from the replay's at {field}: {replayed}, the worker " in message
    assert message.endswith(NONDETERMINISM_HINT)
    assert (failed.value.instance_id, failed.value.function, failed.value.field) == (instance_id, orchestrator, field)
    status = manual_host.status(instance_id)
    assert (status["runtimeStatus"], status["output"]) == ("Failed", message)
    manual_host.close()  # raised once: closing does not raise it again


def test_an_sdk_that_raises_outside_its_protocol_is_compared_by_its_error(manual_host, monkeypatch):
    """No state either way: the replay reports ``<type>: <message>``, as the worker's
    ``serialize_exception`` does, so the two agree and the instance fails with it."""
    def broken(self, context, history, fn):
        raise RuntimeError("the executor broke")
    monkeypatch.setattr(TaskOrchestrationExecutor, "execute", broken)
    instance_id = manual_host.start("counter", {"n": 1, "stop": 1})
    manual_host.run_until_idle()
    status = manual_host.status(instance_id)
    assert (status["runtimeStatus"], status["output"]) == (
        "Failed", "Orchestrator function 'counter' failed: RuntimeError: the executor broke")
    assert manual_host.engine.orchestrator_check.episodes == 1

    calls = itertools.count()

    def broken_differently(self, context, history, fn):  # the replay runs first, then the worker
        raise (RuntimeError if next(calls) % 2 == 0 else ValueError)("the executor broke")
    monkeypatch.setattr(TaskOrchestrationExecutor, "execute", broken_differently)
    other = manual_host.start("counter", {"n": 1, "stop": 1})
    with pytest.raises(OrchestratorCheckFailed, match=r"at error: from character 0 the replay has \"RuntimeError: "
                                                      r"the executor broke\", the worker \"ValueError: "):
        manual_host.run_until_idle()
    assert manual_host.status(other)["runtimeStatus"] == "Failed"


def test_a_long_text_that_differs_is_shown_where_it_differs(manual_host, monkeypatch):
    """An orchestrator that puts the wall clock into an activity's input (as Agent Framework's
    agent requests carry a ``created_at``) gives each invocation its own text: the message
    shows both around the first character that differs."""
    def clock_in_the_input(replay):
        action = replay.state["actions"][0][0]
        action["input"] = action["input"].replace("10:40:47.081765", "10:40:47.082817")
    tampered_replays(monkeypatch, clock_in_the_input)
    manual_host.start("child_ok", {"message": "x" * 200, "created_at": "2026-12-07T10:40:47.081765"})
    with pytest.raises(OrchestratorCheckFailed) as failed:
        manual_host.run_until_idle()
    message = str(failed.value)
    assert "at actions[0][0].input: from character " in message
    assert 'the replay has "...' in message and "10:40:47.082817" in message and "10:40:47.081765" in message
    assert "x" * 200 not in message  # only the part around the difference
    assert len(message) < 1000


def test_nan_in_a_state_is_the_same_on_both_paths():
    """NaN compares unequal to itself, but a state that carries it (a custom status JSON
    allows here) is the same state through the worker."""
    assert first_difference({"customStatus": {"score": math.nan}}, {"customStatus": {"score": math.nan}}) is None
    assert first_difference({"score": math.nan}, {"score": 1.0})[0] == "score"


def test_step_raises_the_checks_failure_too(manual_host, monkeypatch):
    instance_id = manual_host.start("counter", {"n": 1, "stop": 1})
    tampered_replays(monkeypatch, rename_first_call)
    with pytest.raises(OrchestratorCheckFailed, match=r"at actions\[0\]\[0\]\.functionName"):
        manual_host.step(instance_id)


def test_a_served_host_fails_the_instance_and_raises_when_it_closes(monkeypatch, tmp_path):
    tampered_replays(monkeypatch, rename_first_call)
    host = TestingHost.served(APPS / "features", tmp_path / "state", check_orchestrators="worker")
    try:
        instance_id = host.start("counter", {"n": 1, "stop": 1})
        status = host.wait_for_instance(instance_id)
        assert status["runtimeStatus"] == "Failed"
        assert "at actions[0][0].functionName" in status["output"]
    finally:
        with pytest.raises(OrchestratorCheckFailed, match=f"instance {instance_id}, function 'counter'"):
            host.close()


def test_the_setting_turns_the_check_on_and_the_option_decides_over_it(monkeypatch, make_host):
    monkeypatch.setenv(CHECK_SETTING, "worker")
    assert make_host("chaining").engine.orchestrator_check is not None
    assert make_host("chaining", check_orchestrators="").engine.orchestrator_check is None
    monkeypatch.delenv(CHECK_SETTING)
    assert make_host("chaining").engine.orchestrator_check is None
    assert check_mode(" Worker ", {}) == "worker" and check_mode(None, {CHECK_SETTING: ""}) is None


def test_an_unknown_check_is_refused_naming_where_it_came_from(monkeypatch, make_host):
    monkeypatch.setenv(CHECK_SETTING, "always")
    with pytest.raises(HostConfigError, match=f"{CHECK_SETTING} must be 'worker' .*got 'always'"):
        make_host("chaining")
    with pytest.raises(HostConfigError, match="check_orchestrators must be 'worker' .*got 'yes'"):
        make_host("chaining", check_orchestrators="yes")


def test_the_first_difference_is_named_by_its_path():
    state = {"isDone": False, "actions": [[{"actionType": 0, "functionName": "a"}]], "output": None}
    assert first_difference(state, state) is None
    assert first_difference(state, {**state, "actions": [[{"actionType": 0, "functionName": "b"}]]}) == (
        "actions[0][0].functionName", "a", "b")
    assert first_difference(state, {**state, "actions": [[], []]}) == (
        "actions[0][0]", {"actionType": 0, "functionName": "a"}, MISSING)
    assert first_difference({"n": 1}, {"n": True}) == ("n", 1, True)
    assert first_difference({"n": 1}, {"n": 1, "extra": 2}) == ("extra", MISSING, 2)
    assert first_difference([1], {"a": 1}) == ("the state", [1], {"a": 1})
