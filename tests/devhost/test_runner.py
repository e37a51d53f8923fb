"""The background runner keeps going when saving a result or running an episode fails."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

from devhost import DevHost, SystemClock
from devhost import orchestration_episode as episode_module
from devhost.runner import BackgroundRunner
from devhost.storage import StoreBusy, StoreUnavailable
from devhost.testing import wait_until

APPS = Path(__file__).parent / "apps"


def run_chain_in_background(host: DevHost, name: str) -> str:
    """Start a chain and let a background runner carry it to Completed."""
    runner = BackgroundRunner(host.engine, idle_poll_seconds=0.05)
    runner.start()
    try:
        instance_id = host.start("chain", name)
        wait_until(lambda: host.status(instance_id)["runtimeStatus"] == "Completed", timeout=10)
    finally:
        runner.stop()
    return instance_id


def test_activity_whose_result_could_not_be_saved_runs_again(tmp_path):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        real_complete, failures = host.engine.complete_activities, []

        def flaky_complete(results):
            if not failures:
                failures.extend(item.name for item, _ in results)
                raise sqlite3.OperationalError("disk I/O error")
            return real_complete(results)

        host.engine.complete_activities = flaky_complete
        instance_id = run_chain_in_background(host, "Ada")
        assert failures == ["say_hello"]
        assert host.status(instance_id)["output"][0] == "Hello Ada"


def test_episode_postponed_while_the_state_is_locked(tmp_path):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        real_run, busy = host.engine.run_episodes, []

        def locked_once(instance_ids):
            if not busy:
                busy.extend(instance_ids)
                raise StoreBusy("database is locked")
            return real_run(instance_ids)

        host.engine.run_episodes = locked_once
        instance_id = run_chain_in_background(host, "Bo")
        assert busy == [instance_id]
        assert host.status(instance_id)["output"][2] == "HELLO HELLO BO"


def test_a_broken_episode_fails_only_its_own_instance_of_the_batch(tmp_path, monkeypatch):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        ids = [host.start("chain", name) for name in ("Ada", "Bo", "Cy")]
        real_apply = episode_module.OrchestrationEpisode.apply

        def apply_unless_broken(episode):
            if episode.instance_id == ids[1]:
                raise KeyError("engine bug")
            return real_apply(episode)

        monkeypatch.setattr(episode_module.OrchestrationEpisode, "apply", apply_unless_broken)
        host.run_until_idle()
        statuses = [host.status(i)["runtimeStatus"] for i in ids]
        assert statuses == ["Completed", "Failed", "Completed"]
        assert "devhost internal error" in host.status(ids[1])["output"]


def test_an_activity_that_finishes_while_the_runner_stops_is_saved_not_run_again(tmp_path):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        invoke, calls, started = host.engine.invoke, [], threading.Event()

        async def invoke_until_stopping(item):
            if item.name != "say_hello":
                return await invoke(item)
            calls.append(json.loads(item.input))
            started.set()
            while not runner._stopping.is_set():  # finish only once the runner is stopping
                await asyncio.sleep(0.01)
            return await invoke(item)

        host.engine.invoke = invoke_until_stopping
        runner = BackgroundRunner(host.engine, idle_poll_seconds=0.05)
        runner.start()
        instance_id = host.start("chain", "Di")
        assert started.wait(timeout=10)
        runner.stop()  # waits for the activity in flight, then saves its result
        assert host.engine.pending_work() == []
        host.run_until_idle()
        assert host.status(instance_id)["output"] == ["Hello Di", "Hello Hello Di", "HELLO HELLO DI"]
        assert calls == ["Di", "Hello Di"]


def test_async_activities_run_on_the_workers_event_loop(make_host):
    host = make_host("fan_out", clock=SystemClock())
    host.serve(port=0)
    add_up = host.registry.worker.user_function(host.registry.activities["add_up"].function_id)
    loops = add_up.__globals__["LOOPS"]
    loops.clear()
    ids = [host.start("fan_out_fan_in", [1, 2, 3]), host.start("fan_out_fan_in", [4, 5])]
    wait_until(lambda: all(host.status(i)["runtimeStatus"] == "Completed" for i in ids), timeout=10)
    assert [host.status(i)["output"]["total"] for i in ids] == [14, 41]
    # one loop for both calls, the worker's own, as in the Functions Python worker
    assert len(loops) == 2 and loops[0] is loops[1] is host.registry.worker._loop


def test_a_result_that_cannot_be_saved_holds_up_no_other(tmp_path):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        ada, bo = host.start("chain", "Ada"), host.start("chain", "Bo")
        items = host.engine.run_episodes(host.engine.due_instances())
        results = [(item, host.engine.execute_activity(item)) for item in items]
        real_complete = host.engine.complete_activities

        def refuse_ada(batch):
            if any(item.instance_id == ada for item, _ in batch):
                raise sqlite3.OperationalError("disk I/O error")
            return real_complete(batch)

        host.engine.complete_activities = refuse_ada
        runner = BackgroundRunner(host.engine)
        runner._save(results)  # the batch fails; Bo's result is then saved on its own
        runner.stop()
        assert {item.instance_id for item in host.engine.pending_work()} == {ada}
        assert host.store.due_messages(bo, float("inf"))[0].event["EventType"] == 5


def test_a_state_that_cannot_be_written_fails_no_instance_and_is_logged_once(tmp_path, caplog):
    """Before: the runner's fallback failed a started instance with "devhost internal
    error", and retried in a tight loop, about 1,500 tracebacks in 10 s."""
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        real_run, refused = host.engine.run_episodes, []

        def disk_full(instance_ids):
            if len(refused) < 4:
                refused.append(list(instance_ids))
                raise StoreUnavailable("database or disk is full")
            return real_run(instance_ids)

        host.engine.run_episodes = disk_full
        with caplog.at_level("WARNING", logger="devhost"):
            instance_id = run_chain_in_background(host, "Di")
        assert len(refused) == 4
        assert host.status(instance_id)["runtimeStatus"] == "Completed"
        outage_lines = [r for r in caplog.records if "state storage unavailable" in r.getMessage()]
        assert len(outage_lines) == 1
        assert any("available again" in r.getMessage() for r in caplog.records)


def test_activity_results_that_cannot_be_saved_wait_instead_of_running_again(tmp_path):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        real_complete, refused = host.engine.complete_activities, []

        def disk_full(results):
            if len(refused) < 2:
                refused.append([item.name for item, _ in results])
                raise StoreUnavailable("database or disk is full")
            return real_complete(results)

        host.engine.complete_activities = disk_full
        calls, invoke = [], host.engine.invoke

        async def counted_invoke(item):
            calls.append(item.name)
            return await invoke(item)

        host.engine.invoke = counted_invoke
        instance_id = run_chain_in_background(host, "Ed")
        assert host.status(instance_id)["runtimeStatus"] == "Completed"
        assert calls == ["say_hello", "say_hello", "shout"]  # nothing ran twice


def test_a_damaged_page_fails_only_the_instance_it_holds_and_says_so(tmp_path, monkeypatch, caplog):
    """SQLite reports a damaged page when a statement reads it. Before, the instance failed
    as "devhost internal error" with a traceback in the log; now with the reason, in one
    line that names the state file."""
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        ids = [host.start("chain", name) for name in ("Ada", "Bo", "Cy")]
        real_apply = episode_module.OrchestrationEpisode.apply

        def apply_unless_on_a_damaged_page(episode):
            if episode.instance_id == ids[1]:
                damaged = sqlite3.DatabaseError("database disk image is malformed")
                damaged.sqlite_errorcode = 11  # SQLITE_CORRUPT
                raise damaged
            return real_apply(episode)

        monkeypatch.setattr(episode_module.OrchestrationEpisode, "apply", apply_unless_on_a_damaged_page)
        host.run_until_idle()
        statuses = [host.status(i)["runtimeStatus"] for i in ids]
        assert statuses == ["Completed", "Failed", "Completed"]
        assert "state file is damaged" in host.status(ids[1])["output"]
        assert str(tmp_path) not in host.status(ids[1])["output"]
        [report] = [r for r in caplog.records if "is damaged" in r.getMessage()]
        assert ids[1] in report.getMessage() and host.store.path in report.getMessage()
        assert not report.exc_info
