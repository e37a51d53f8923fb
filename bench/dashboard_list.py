"""The dashboard's list of instances with 100,000 in the store: the first page's latency,
without a filter and with each filter, over HTTP.

    python -m bench.dashboard_list                        # 100,000 instances; about 30 seconds
    python -m bench.dashboard_list --instances 2000 --calls 20   # a quick look

The instances are written straight into the store of a host that is not running
(``devhost.storage.Store``: ``put_instance`` and ``append_history``, 5,000 to a
transaction), not started through the engine: starting 100,000 takes most of ten minutes
here, and the list reads instance rows only. Each row is as the engine writes one, with
an input and a custom status of a review's size and ten history events, so the file has
the size of a real backlog. ``MIX`` gives the orchestrators, their id shapes and the
statuses; creation times are spread over 30 days, newest last.

The host (``python -m devhost``, the project's app) is then started on that folder, and
each scenario's first page (``top=50``) is asked for ``--calls`` times, one request at a
time on a keep-alive connection, on an otherwise idle host. Then ``summary`` polls with
the current mark (what every open page sends every 2 s while nothing changes), and, after
the host has stopped, the counts are computed in process ``--calls`` times (what the first
poll after a change costs, at most once a second, however many pages are open).

Target: the first page in under 100 ms p99 with 100,000 instances, with every filter.
The last stdout line is one JSON object with every figure and setting; the exit status is
1 when a request failed or a scenario missed the target.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional
from urllib.parse import urlencode

from bench import TASK_HUB
from bench.devhost_process import Devhost, scratch_folder
from bench.http_client import Client
from bench.stats import Recorder, print_result, print_settings, print_table, summarize

TARGET_P99_MS = 100
PERCENTILES = (50, 99)
PAGE_SIZE = 50
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=30)
# (orchestrator, share of the instances, how its ids look)
MIX = (("hitl_orchestration", 0.90, "review"), ("nightly_report", 0.05, "nightly"),
       ("translate_draft", 0.05, "child"))
STATUS_MIX = (("Running", 60), ("Completed", 28), ("Failed", 5), ("Terminated", 4), ("Suspended", 2),
              ("Pending", 1))
HISTORY_EVENTS = 10
BATCH = 5000
DATA = "/runtime/devhost/dashboard/data"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000, help="instances in the store (default 100000)")
    parser.add_argument("--calls", type=int, default=200, help="requests per scenario (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    return parser.parse_args(argv)


def build_store(path: Path, count: int, seed: int = 1) -> dict:
    """Write ``count`` instances into a new store; returns what the scenarios need to know
    about them (an id, the oldest day's id prefix)."""
    from devhost.clock import to_iso
    from devhost.storage import InstanceRow, Store

    rng = random.Random(seed)
    statuses = [status for status, weight in STATUS_MIX for _ in range(weight)]
    names = [(name, shape) for name, share, shape in MIX for _ in range(round(share * 100))]
    review_input = json.dumps({"topic": "Durable timers in Azure Functions " + "x" * 200, "max_review_attempts": 3})
    custom_status = json.dumps({"stage": "awaiting_review", "round": 1, "draft": {"content": "y" * 900}})
    event = json.dumps({"EventType": 4, "EventId": 0, "Name": "write_draft", "Input": "z" * 250})
    store = Store(path)
    sample_id = ""
    try:
        for first in range(0, count, BATCH):
            with store.transaction():
                for number in range(first, min(first + BATCH, count)):
                    created = START + SPAN * number / count
                    name, shape = rng.choice(names)
                    instance_id = _instance_id(shape, created, rng)
                    status = rng.choice(statuses)
                    moment = to_iso(created)
                    store.put_instance(InstanceRow(
                        instance_id, name, uuid.UUID(int=rng.getrandbits(128)).hex, status, review_input,
                        '"done"' if status == "Completed" else None, custom_status, moment, moment, None, None))
                    store.append_history(instance_id, 0, [json.loads(event)] * HISTORY_EVENTS)
                    if number == count // 2:
                        sample_id = instance_id
    finally:
        store.close()
    return {"sample_id": sample_id, "oldest_day_prefix": f"review-{START:%Y%m%d}"}


def _instance_id(shape: str, created: datetime, rng: random.Random) -> str:
    suffix = uuid.UUID(int=rng.getrandbits(128)).hex
    if shape == "review":  # the app's shape: review-<UTC time>-<12 hex>
        return f"review-{created:%Y%m%dT%H%M%S%f}-{suffix[:12]}"
    if shape == "nightly":
        return f"nightly-{created:%Y%m%d}-{suffix[:8]}"
    return f"{suffix}:{rng.randrange(8)}"  # a sub-orchestration: <parent execution>:<task id>


def scenarios(known: dict) -> dict[str, dict]:
    """Each scenario's query string parameters."""
    middle = START + SPAN / 2
    day = {"createdFrom": middle.isoformat(), "createdTo": (middle + timedelta(days=1)).isoformat()}
    return {
        "no filter": {},
        "status Failed": {"status": "Failed"},
        "status Running,Suspended": {"status": "Running,Suspended"},
        "name (5%)": {"name": "nightly_report"},
        "name + status": {"name": "nightly_report", "status": "Failed"},
        "created: one day": day,
        "status + one day": {"status": "Failed", **day},
        "id prefix: one id": {"prefix": known["sample_id"]},
        "id prefix: 90% of ids": {"prefix": "review-"},
        "id prefix: oldest day": {"prefix": known["oldest_day_prefix"]},
        "no match": {"prefix": "nobody-"},
    }


async def measure(base_url: str, known: dict, calls: int, recorder: Recorder) -> dict[str, int]:
    """Every scenario's first page ``calls`` times; returns the rows each one listed."""
    listed: dict[str, int] = {}
    async with Client(base_url, recorder, connections=1) as client:
        for name, params in scenarios(known).items():
            path = f"{DATA}/instances?{urlencode({**params, 'top': PAGE_SIZE})}"
            for _ in range(calls):
                reply = await client.request(name, "GET", path)
                if reply.status != 200:
                    recorder.error(name, f"HTTP {reply.status}", str(reply.body))
                    break
                listed[name] = len(reply.body["instances"])
        mark = (await client.request("summary", "GET", f"{DATA}/summary", record=False)).body["mark"]
        for _ in range(calls):
            reply = await client.request("summary, unchanged", "GET", f"{DATA}/summary?since={mark}")
            if reply.status != 200 or reply.body["changed"]:
                recorder.error("summary, unchanged", f"HTTP {reply.status}", str(reply.body))
    return listed


def counts_in_process(path: Path, calls: int) -> list[float]:
    from devhost.storage import Store

    store = Store(path)
    try:
        timings = []
        for _ in range(calls):
            started = time.perf_counter()
            store.instance_counts()
            timings.append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        store.close()


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    print_settings("dashboard list", {"instances": args.instances, "calls": args.calls, "top": PAGE_SIZE})
    with scratch_folder("devhost-dashboard-", args.keep) as work:
        database = work / "state" / f"{TASK_HUB}.sqlite"
        database.parent.mkdir(parents=True)
        started = time.perf_counter()
        known = build_store(database, args.instances)
        print(f"wrote {args.instances} instances into the store in {time.perf_counter() - started:.1f} s "
              f"({database.stat().st_size / 2**20:.0f} MiB)")
        host = Devhost(work / "state", work / "published", work / "devhost.log")
        host.start()
        recorder = Recorder()
        try:
            listed = asyncio.run(measure(host.base_url, known, args.calls, recorder))
        finally:
            host.stop()
        counts_ms = counts_in_process(database, args.calls)
    names = [*scenarios(known), "summary, unchanged"]
    table = recorder.table(tuple(names), PERCENTILES)
    table["counts (in process)"] = summarize(counts_ms, PERCENTILES)
    print_table(table, PERCENTILES, width=28)
    print("rows on each first page: " + ", ".join(f"{name} {rows}" for name, rows in listed.items()))
    missed = [name for name in scenarios(known) if (table[name]["p99_ms"] or 0) >= TARGET_P99_MS]
    print(f"target: first page p99 < {TARGET_P99_MS} ms with every filter: "
          + ("met" if not missed else f"missed by {', '.join(missed)}"))
    if recorder.error_count:
        print(f"errors: {dict(recorder.errors)} {recorder.error_samples[:3]}")
    print_result({"instances": args.instances, "calls": args.calls, "top": PAGE_SIZE, "latency": table,
                  "rows": listed, "target_p99_ms": TARGET_P99_MS, "target_met": not missed,
                  "errors": recorder.error_count})
    return 1 if missed or recorder.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
