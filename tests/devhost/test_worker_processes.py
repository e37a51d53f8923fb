"""``--workers N``: several host processes share the port and the state, each running the
instances of its own shard, and none outlives the first one."""
from __future__ import annotations

import json
import os
from pathlib import Path

from devhost.storage import Shard
from devhost.testing import wait_until
from tests.support.http import call

APPS = Path(__file__).parent / "apps"
WEBHOOKS = "/runtime/webhooks/durabletask"


def worker_pids(data_dir: Path) -> list[int]:
    """Processes started as extra workers on this state folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--shard" in argv and str(data_dir).encode() in argv:
            found.append(int(entry.name))
    return found


def run_chains(host, count: int, prefix: str) -> list[str]:
    ids = [f"{prefix}-{n}" for n in range(count)]
    for instance_id in ids:
        # The body the SDK's start_new sends: the input's JSON as a JSON string. A bare
        # JSON string body would reach get_input() as text that is not JSON, as on Azure.
        reply = call("POST", f"{host.base_url}{WEBHOOKS}/orchestrators/chain/{instance_id}",
                     json.dumps(f"n{instance_id}"))
        assert reply.status == 202
    for instance_id in ids:
        done = wait_until(lambda: (s := call("GET", f"{host.base_url}{WEBHOOKS}/instances/{instance_id}").json)
                          and s["runtimeStatus"] == "Completed" and s, what=f"{instance_id} to complete")
        assert done["output"][2] == f"HELLO HELLO N{instance_id}".upper()
    return ids


def test_two_workers_share_the_instances_and_die_with_the_first(launch, tmp_path):
    data = tmp_path / "state"
    host = launch(APPS / "chaining", data, args=("--workers", "2"))
    assert "Workers:   2 process(es)" in host.banner
    wait_until(lambda: len(worker_pids(data)) == 1, what="the second worker")
    ids = run_chains(host, 12, "before")
    owners = {Shard(0, 2).owner_of(i) for i in ids}
    assert owners == {0, 1}  # both workers ran instances

    host.kill()  # SIGKILL to the first process only
    wait_until(lambda: worker_pids(data) == [], timeout=10, what="the second worker to die too")

    again = launch(APPS / "chaining", data, args=("--workers", "2"))
    run_chains(again, 6, "after")
    code, _ = again.stop()
    assert code == 0
    wait_until(lambda: worker_pids(data) == [], what="the second worker to stop with the first")


def test_a_worker_that_dies_is_started_again(launch, tmp_path):
    data = tmp_path / "state"
    host = launch(APPS / "chaining", data, args=("--workers", "2"))
    [first] = wait_until(lambda: worker_pids(data), what="the second worker")
    os.kill(first, 9)
    replacement = wait_until(lambda: [p for p in worker_pids(data) if p != first], timeout=15,
                             what="a replacement worker")
    assert replacement
    run_chains(host, 6, "healed")
    assert host.stop()[0] == 0


def test_the_worker_count_setting_starts_the_processes_without_workers(launch, tmp_path):
    data = tmp_path / "state"
    host = launch(APPS / "chaining", data, env={"FUNCTIONS_WORKER_PROCESS_COUNT": "2"})
    assert "Workers:   2 process(es)" in host.banner
    wait_until(lambda: len(worker_pids(data)) == 1, what="the second worker")
    assert {Shard(0, 2).owner_of(i) for i in run_chains(host, 12, "set")} == {0, 1}
    assert host.stop()[0] == 0
