"""Each place the devhost relies on the SDK's internals, checked against the installed SDK.

When an SDK release moves one of these, a test here fails and names the seam, instead of
an episode going wrong somewhere later.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from devhost import DevHost, sdk_seams
from devhost.sdk_seams import UnsupportedSdk

from .conftest import APPS


def test_a_release_the_seams_were_not_checked_against_is_refused(monkeypatch, tmp_path):
    with pytest.raises(UnsupportedSdk, match="written for azure-functions-durable 1.7.x, but 2.0.0"):
        sdk_seams.check_sdk_version("2.0.0")
    assert sdk_seams.check_sdk_version() == sdk_seams.installed_sdk_version()
    monkeypatch.setattr(sdk_seams, "installed_sdk_version", lambda: "1.9.3")
    with pytest.raises(UnsupportedSdk, match="1.9.3 is installed"):
        DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False)


def test_the_orchestrator_handle_leads_to_the_apps_generator(features):
    handle = features.registry.orchestrators["counter"]
    assert sdk_seams.orchestrator_function(handle).__name__ == "counter"


def test_a_reset_orchestrator_replays_like_a_new_one(features):
    handle = features.registry.orchestrators["counter"]
    history = [{"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2026-01-01T00:00:00Z"},
               {"EventType": 0, "EventId": -1, "IsPlayed": False, "Timestamp": "2026-01-01T00:00:00Z",
                "Name": "counter", "Input": None, "Version": ""}]
    fields = {"history": history, "input": json.dumps({"n": 1, "stop": 2}), "instanceId": "i",
              "isReplaying": False, "parentInstanceId": None}
    orchestrator = sdk_seams.new_orchestrator(handle)
    first = orchestrator.handle(sdk_seams.orchestration_context(handle, fields))
    again = sdk_seams.reset_orchestrator(orchestrator).handle(sdk_seams.orchestration_context(handle, fields))
    assert first == again and json.loads(first)["actions"][0][0]["functionName"] == "echo"


def test_open_tasks_tell_hidden_retry_tasks_and_their_attempts(features):
    instance_id = features.start("retry_activity", {"key": "seam", "fail_times": 5, "interval_ms": 1000,
                                                    "max_attempts": 2})
    features.run_until_idle()
    row = features.engine.instance(instance_id)
    replay = features.engine.replay(row, features.history(row.instance_id))
    hidden = [(i, t) for i, t in sdk_seams.numbered_open_tasks(replay.context) if sdk_seams.is_hidden_task(t)]
    assert [i for i, _ in hidden] == [1]
    task_id, timer = hidden[0]
    assert sdk_seams.is_retry_timer(timer)
    assert sdk_seams.retry_attempts(timer) == (1, 2)
    assert sdk_seams.retried_action(timer)["functionName"] == "flaky"


def test_a_cancelled_timer_is_seen_as_cancelled(features):
    instance_id = features.start("timer_race", 60)
    features.run_until_idle()
    features.raise_event(instance_id, "Go", 1)
    row = features.engine.instance(instance_id)
    history = features.history(instance_id) + [
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2026-01-01T00:00:01Z"},
        {"EventType": 15, "EventId": -1, "IsPlayed": False, "Timestamp": "2026-01-01T00:00:01Z",
         "Name": "Go", "Input": "1"}]
    replay = features.engine.replay(row, history)
    timers = [t for _, t in sdk_seams.numbered_open_tasks(replay.context)]
    assert timers and all(sdk_seams.is_cancelled_timer(t) for t in timers)


def test_the_client_module_has_the_request_functions_the_transport_replaces():
    module = sdk_seams.client_module()
    for name in sdk_seams.CLIENT_REQUEST_FUNCTIONS:
        assert asyncio.iscoroutinefunction(getattr(module, name)), name


def test_the_timestamp_parsers_can_be_read_and_replaced():
    modules = sdk_seams.timestamp_parser_modules()
    assert len(modules) == 2
    for module in modules:
        parser = sdk_seams.timestamp_parser(module)
        sdk_seams.replace_timestamp_parser(module, parser)
        assert sdk_seams.timestamp_parser(module) is parser


def test_a_reset_client_session_is_closed_and_the_next_loop_gets_a_new_one():
    from azure.durable_functions.models.utils import http_utils

    async def open_session():
        return await http_utils._get_session()

    async def reset():
        await sdk_seams.reset_client_session()

    first = asyncio.run(open_session())
    lock = http_utils._session_lock
    asyncio.run(reset())
    assert first.closed and http_utils._client_session is None
    assert http_utils._session_lock is not lock and not http_utils._session_lock.locked()
    second = asyncio.run(open_session())  # on another loop, as a second host's worker
    try:
        assert second is not first and not second.closed
    finally:
        asyncio.run(reset())


def test_the_task_counter_counts_yielded_tasks_and_signals(make_host):
    # A signal takes a task id without leaving an open task; the episode numbers new
    # actions from this counter (see tests/devhost/test_entities.py for the history).
    host = make_host("entities")
    instance_id = host.start("add_and_read", {"key": "seam", "signal": 1, "add": 1})
    host.engine.run_episodes(host.engine.due_instances())
    row = host.engine.instance(instance_id)
    replay = host.engine.replay(row, host.engine.history(row))
    # Signal (0) and call (1) so far. The signal left no task; the call's task waits under
    # its request id (the SDK re-keys it on EventSent), so no numbered task is open.
    assert sdk_seams.sequence_number(replay.context) == 2
    assert [task_id for task_id, _ in sdk_seams.numbered_open_tasks(replay.context)] == []


def test_the_private_names_the_seams_write_are_the_ones_the_sdk_reads():
    # orchestration_context sets the input's expected type where get_input looks for it,
    # and reset_client_session replaces the lock the SDK's shared session is made under.
    import inspect

    from azure.durable_functions.models import DurableOrchestrationContext
    from azure.durable_functions.models.utils import http_utils

    assert "_input_expected_type" in inspect.getsource(DurableOrchestrationContext.get_input)
    assert isinstance(http_utils._session_lock, asyncio.Lock)
    assert "_session_lock" in inspect.getsource(http_utils)


def test_a_host_gives_the_sdk_the_fast_timestamp_parser(make_host):
    from dateutil.parser import parse as general_parse

    from devhost.clock import to_iso

    make_host("chaining")
    stamp = to_iso(datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone.utc))
    for module in sdk_seams.timestamp_parser_modules():
        parser = sdk_seams.timestamp_parser(module)
        assert getattr(parser, "devhost_fast_path", False), module.__name__
        assert parser(stamp) == general_parse(stamp)


# -- the Python worker runtime ----------------------------------------------------------------

def test_a_worker_runtime_release_the_seams_were_not_checked_against_is_refused():
    with pytest.raises(UnsupportedSdk, match="written for azure-functions-runtime 1.3.x, but 1.4.0"):
        sdk_seams.check_runtime_version("azure-functions-runtime", "1.4.0")
    assert sdk_seams.check_runtime_version("azure-functions-runtime-v1", "1.2.0") == "1.2.0"


def test_the_worker_registry_gives_each_function_its_registered_function(features):
    worker = features.registry.worker
    echo = features.registry.activities["echo"]
    assert worker.user_function(echo.function_id).__name__ == "echo"
    counter = next(m for m in worker.indexed_functions() if m.name == "counter")
    assert sdk_seams.worker_user_function(worker.runtime, counter.function_id) \
        is features.registry.orchestrators["counter"]


def test_a_new_v1_app_no_longer_searches_the_folders_of_the_one_before(tmp_path):
    from devhost.host import load_functions

    for app in ("one", "two"):
        folder = tmp_path / app / "Hello"
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("def main(name):\n    return name\n")
        (folder / "function.json").write_text(json.dumps({"bindings": [
            {"type": "activityTrigger", "name": "name", "direction": "in"}]}))
    first = load_functions(tmp_path / "one")
    second = load_functions(tmp_path / "two")
    try:
        assert second.worker.runtime.loader._submodule_dirs == [str(tmp_path / "two")]
    finally:
        first.worker.close()
        second.worker.close()


def test_closing_the_worker_cancels_what_the_app_left_running_on_its_loop():
    """Work an app starts beside a reply (a Slack follow-up, say) and that is still waiting
    when the host closes is cancelled, its cleanup run, as asyncio.run ends its loop; left
    pending on the closed loop it would be reported as destroyed whenever collected."""
    from devhost.python_worker import V2_RUNTIME, PythonWorker

    worker = PythonWorker(V2_RUNTIME)
    cleaned_up = []

    async def follow_up():
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.append(True)

    async def reply_and_leave_work_running():
        return asyncio.get_running_loop().create_task(follow_up())

    task = worker.run(reply_and_leave_work_running())
    worker.close()
    assert task.cancelled() and cleaned_up == [True]
