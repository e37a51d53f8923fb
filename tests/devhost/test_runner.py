"""The background runner keeps going when saving a result or running an episode fails."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from devhost import DevHost
from devhost.runner import BackgroundRunner

from .helpers import wait_until

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
        real_complete, failures = host.engine.complete_activity, []

        def flaky_complete(item, outcome):
            if not failures:
                failures.append(item.name)
                raise sqlite3.OperationalError("disk I/O error")
            return real_complete(item, outcome)

        host.engine.complete_activity = flaky_complete
        instance_id = run_chain_in_background(host, "Ada")
        assert failures == ["say_hello"]
        assert host.status(instance_id)["output"][0] == "Hello Ada"


def test_episode_postponed_while_the_state_is_locked(tmp_path):
    with DevHost(APPS / "chaining", data_dir=tmp_path, local_settings=False) as host:
        real_run, busy = host.engine.run_episode, []

        def locked_once(instance_id):
            if not busy:
                busy.append(instance_id)
                raise sqlite3.OperationalError("database is locked")
            return real_run(instance_id)

        host.engine.run_episode = locked_once
        instance_id = run_chain_in_background(host, "Bo")
        assert busy == [instance_id]
        assert json.loads(host.store.get_instance(instance_id).output)[2] == "HELLO HELLO BO"
