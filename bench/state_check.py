"""What the start-up check of the state file costs: SQLite's quick_check of a large state
file, alone and as part of ``python -m devhost`` reaching its banner.

  python -m bench.state_check [--instances 100000] [--runs 3] [--state DIR]

The state file is built once: ``--seed`` reviews run in process (offline writer) to
round 1 awaiting review, then their rows (instance, history, messages) are copied under
new ids until there are ``--instances`` of them, as many waiting reviews would leave it
(``--state DIR`` keeps it there, and a later run with the same DIR reuses it).
Each figure is then taken with the file in the page cache ("warm") and after asking the
kernel to drop it from there (posix_fadvise DONTNEED, "cold"), ``--runs`` times; the
median is printed with the runs. The last stdout line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import REPO
from bench.devhost_process import free_port
from bench.stats import print_result, print_settings

HUB = "StateCheckHub"  # a state file of its own, whatever TASKHUB_NAME says


def build_state(data_dir: Path, instances: int, seed: int) -> None:
    from devhost import DevHost

    # On the real clock, so that the deadlines lie days ahead and nothing is due when a
    # devhost starts on the file.
    with DevHost(REPO, data_dir=data_dir, local_settings=False) as host:
        for n in range(seed):
            host.start("hitl_orchestration", {"topic": f"Waiting review {n}"})
        host.run_until_idle()
        path = Path(host.store.path)
    # Copies, not more reviews run: 100,000 of them would take the host most of an hour.
    db = sqlite3.connect(path, isolation_level=None)
    columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(instances)") if row[1] != "instance_id")
    db.execute("BEGIN")
    for copy in range(1, -(-instances // seed)):
        renamed = f"instance_id || '-{copy}'"
        originals = "WHERE instance_id NOT LIKE '%-%'"
        db.execute(f"INSERT INTO instances (instance_id, {columns}) SELECT {renamed}, {columns} "
                   f"FROM instances {originals}")
        db.execute(f"INSERT INTO history (instance_id, seq, event) SELECT {renamed}, seq, event "
                   f"FROM history {originals}")
        db.execute("INSERT INTO messages (instance_id, execution_id, visible_at, timer_id, event) "
                   f"SELECT {renamed}, execution_id, visible_at, timer_id, event FROM messages {originals}")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def drop_from_page_cache(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def timed_check(path: Path) -> float:
    from devhost.storage import check_integrity

    started = time.perf_counter()
    check_integrity(path)
    return time.perf_counter() - started


def time_to_banner(data_dir: Path, env: dict) -> float:
    started = time.perf_counter()
    host = subprocess.Popen([sys.executable, "-m", "devhost", str(REPO), "--port", str(free_port()),
                             "--data", str(data_dir)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        for line in host.stdout:
            if "/runtime/webhooks/durabletask/instances" in line:
                return time.perf_counter() - started
        raise RuntimeError(f"the devhost ended before its banner (exit {host.wait()})")
    finally:
        host.terminate()
        host.wait(timeout=30)


def measure(runs: int, cold: bool, path: Path, action) -> list[float]:
    seconds = []
    for _ in range(runs):
        if cold:
            drop_from_page_cache(path)
        seconds.append(round(action(), 3))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000, help="waiting reviews in the file")
    parser.add_argument("--seed", type=int, default=200, help="reviews run for real, then copied")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--state", type=Path, default=None,
                        help="folder to build the state file in, or to reuse it from (default: a temporary one)")
    args = parser.parse_args()
    print_settings("state file check", vars(args))
    env = {**os.environ, "TASKHUB_NAME": HUB, "HITL_WRITER": "offline", "HITL_DEV_INSECURE_LINKS": "1"}
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="hitl-state-check-") as work:
        data_dir = args.state or Path(work) / "state"
        os.environ["HITL_PUBLISH_DIR"] = env["HITL_PUBLISH_DIR"] = str(Path(work) / "published")
        path = data_dir / f"{HUB}.sqlite"
        if not path.exists():
            started = time.perf_counter()
            build_state(data_dir, args.instances, args.seed)
            print(f"built {args.instances} instances in {time.perf_counter() - started:.0f} s")
        print(f"state file: {path.stat().st_size / 2**20:.0f} MiB")
        result = {"instances": args.instances, "file_mib": round(path.stat().st_size / 2**20)}
        for name, action in (("quick_check_s", lambda: timed_check(path)),
                             ("time_to_banner_s", lambda: time_to_banner(data_dir, env))):
            for cache in ("warm", "cold"):
                seconds = measure(args.runs, cache == "cold", path, action)
                result[f"{name}_{cache}"] = round(statistics.median(seconds), 3)
                result[f"{name}_{cache}_runs"] = seconds
                print(f"{name} ({cache}): median {statistics.median(seconds):.2f}, runs {seconds}")
    print_result(result)


if __name__ == "__main__":
    main()
