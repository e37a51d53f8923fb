"""Reliability under load: 1,000 reviews pending, plus a steady mix of every route.

    python -m bench.load                      # defaults below; about a minute
    python -m bench.load --pending 1000 --duration 30 --decision-rate 20 --seed 1
    python -m bench.load --workers 2          # the host as two processes

Phase 1 starts ``--pending`` reviews and waits until each draft awaits review. Phase 2
runs for ``--duration`` seconds with open-loop traffic (requests leave on a fixed
schedule whatever the answers do, so a slow host meets the same offered load):

- decisions (``--decision-rate``/s) on pending reviews, approving with probability
  ``--approve-share`` and otherwise rejecting with feedback, each bound to its round;
  every decision is followed to its outcome (next draft awaiting review, published, or
  rejected after the last round) and a wrong outcome is an error;
- new reviews (``--run-rate``/s), which join the pending pool once drafted;
- status reads of random pending reviews (``--status-rate``/s);
- health checks (``--health-rate``/s).

An error is any reply other than the one the contract promises (202 for run, 200 for
status/approve/health), a connection failure, a timeout, or a wrong outcome. The script
prints p50/p99 of every route, the error count, and the peak RSS and CPU of the host (all
its processes with ``--workers N``, and each one), and exits 1 when there was any error.
The last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Optional

from bench import devhost_process
from bench.devhost_process import Devhost, MemorySampler, scratch_folder
from bench.review_api import ReviewApi, awaiting_round, finished, poll_until
from bench.stats import Recorder, print_result, print_settings, print_table

ROUTES = ("run", "status", "approve", "health")
MAX_ROUNDS = 3  # the app's default max_review_attempts, which new reviews here use


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1000, help="reviews pending (default 1000)")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="starts in flight while building the backlog (default 50)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of mixed traffic (default 30)")
    parser.add_argument("--decision-rate", type=float, default=20.0, help="decisions/s (default 20)")
    parser.add_argument("--run-rate", type=float, default=5.0, help="new reviews/s (default 5)")
    parser.add_argument("--status-rate", type=float, default=50.0, help="status reads/s (default 50)")
    parser.add_argument("--health-rate", type=float, default=10.0, help="health checks/s (default 10)")
    parser.add_argument("--approve-share", type=float, default=0.5,
                        help="share of decisions that approve (default 0.5)")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="pause between polls (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    devhost_process.add_arguments(parser)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    return parser.parse_args(argv)


class Load:
    def __init__(self, client: ReviewApi, args, rng: random.Random):
        self.client, self.args, self.rng = client, args, rng
        self.poll_s = args.poll_ms / 1000
        self.pool: list[tuple[str, int]] = []  # (instance, round) awaiting a decision, idle
        self.outcomes = {"approved": 0, "rejected_next_round": 0, "rejected_final": 0,
                         "started": 0}

    def error(self, route: str, what: str, detail: str = "") -> None:
        self.client.recorder.error(route, what, detail)

    async def start_one(self, topic: str) -> None:
        reply = await self.client.run(topic)
        if reply.status != 202:
            self.error("run", f"HTTP {reply.status}", str(reply.body))
            return
        instance_id = reply.body["instanceId"]
        ready, _ = await poll_until(self.client, instance_id, awaiting_round(1),
                                    interval_s=self.poll_s, timeout_s=60)
        if ready:
            self.pool.append((instance_id, 1))
            self.outcomes["started"] += 1

    async def decide_one(self) -> None:
        if not self.pool:
            self.error("approve", "no pending review to decide on")
            return
        # Take a random pending review out of the pool while its decision is in flight.
        index = self.rng.randrange(len(self.pool))
        self.pool[index], self.pool[-1] = self.pool[-1], self.pool[index]
        instance_id, round_ = self.pool.pop()
        approved = self.rng.random() < self.args.approve_share
        feedback = "" if approved else f"Please expand section {round_}."
        reply = await self.client.approve(instance_id, approved, feedback, round_)
        if reply.status != 200:  # 200: the review applied it (202, not yet applied, is an error here)
            self.error("approve", f"HTTP {reply.status}", str(reply.body))
            return
        if approved:
            expect, done = ("Completed", "published"), finished
        elif round_ < MAX_ROUNDS:
            expect, done = ("Running", "awaiting_review"), awaiting_round(round_ + 1)
        else:
            expect, done = ("Failed", "rejected"), finished
        final, _ = await poll_until(self.client, instance_id, done, interval_s=self.poll_s,
                                    timeout_s=60)
        if final is None:
            return
        if not final.ended(*expect):
            self.error("outcome", f"expected {expect}", str(final.body)[:200])
        elif approved:
            self.outcomes["approved"] += 1
        elif round_ < MAX_ROUNDS:
            self.outcomes["rejected_next_round"] += 1
            self.pool.append((instance_id, round_ + 1))
        else:
            self.outcomes["rejected_final"] += 1

    async def read_status(self) -> None:
        if not self.pool:
            return
        instance_id, _ = self.pool[self.rng.randrange(len(self.pool))]
        reply = await self.client.status(instance_id)
        if reply.status != 200:
            self.error("status", f"HTTP {reply.status}", str(reply.body))

    async def check_health(self) -> None:
        reply = await self.client.health()
        if reply.status != 200:
            self.error("health", f"HTTP {reply.status}", str(reply.body))


async def paced(rate: float, duration: float, action, tasks: list) -> None:
    """Launch ``action()`` ``rate`` times a second for ``duration`` seconds, on schedule."""
    if rate <= 0:
        return
    count = int(rate * duration)
    started = time.perf_counter()
    for index in range(count):
        await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
        tasks.append(asyncio.ensure_future(action()))


async def main_async(args, work: Path) -> dict:
    host = Devhost(work / "state", work / "published", work / "devhost.log",
                   workers=args.workers)
    host.start()
    recorder = Recorder()
    rng = random.Random(args.seed)
    try:
        async with ReviewApi(host.base_url, recorder, connections=args.concurrency + 200) as client:
            load = Load(client, args, rng)
            sampler = MemorySampler(host)
            sampler.start()
            started = time.perf_counter()
            queue = iter(range(args.pending))

            async def builder() -> None:
                for index in queue:
                    await load.start_one(f"load topic {index}")

            await asyncio.gather(*(builder() for _ in range(min(args.concurrency, args.pending))))
            build_s = time.perf_counter() - started
            print(f"backlog: {len(load.pool)}/{args.pending} reviews pending after {build_s:.1f}s; "
                  f"host RSS {round((host.sample_memory() or 0) / 1024, 1)} MB")
            backlog_errors = recorder.error_count
            recorder.latencies_ms.clear()

            cpu_before = host.cpu_snapshot()
            tasks: list = []
            mix_started = time.perf_counter()
            counter = iter(range(10**9))
            await asyncio.gather(
                paced(args.decision_rate, args.duration, load.decide_one, tasks),
                paced(args.run_rate, args.duration,
                      lambda: load.start_one(f"load new topic {next(counter)}"), tasks),
                paced(args.status_rate, args.duration, load.read_status, tasks),
                paced(args.health_rate, args.duration, load.check_health, tasks))
            await asyncio.gather(*tasks)
            mix_s = time.perf_counter() - mix_started
            cpu_used = host.cpu_since(cpu_before)
            await sampler.stop()
    finally:
        host.stop()
    table = recorder.table(ROUTES)
    return {"mode": "load", "pending_after_backlog": args.pending, "backlog_seconds": round(build_s, 1),
            "backlog_errors": backlog_errors, "mix_seconds": round(mix_s, 1),
            "requests": sum(row["n"] for row in table.values()), "routes": table,
            "outcomes": load.outcomes, "pending_at_end": len(load.pool),
            "errors": recorder.error_count, "error_kinds": dict(recorder.errors),
            "error_samples": recorder.error_samples[:5],
            "host_peak_rss_mb": round(host.peak_rss_kb / 1024, 1),
            "host_peak_rss_mb_by_process": {label: round(kb / 1024, 1) for label, kb
                                            in sorted(host.peak_rss_kb_by_process.items())},
            "host_cpu_s_during_mix": round(sum(cpu_used.values()), 2),
            "host_cpu_s_during_mix_by_process": dict(sorted(cpu_used.items()))}


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    settings = {k: v for k, v in vars(args).items() if k != "timeout"}
    settings["writer"] = "offline"
    print_settings("bench.load", settings)
    with scratch_folder("hitl-load-", False) as work:
        result = asyncio.run(asyncio.wait_for(main_async(args, work), args.timeout))
    print(f"mixed traffic: {result['requests']} requests in {result['mix_seconds']}s with "
          f"{args.pending} reviews pending; outcomes {result['outcomes']}")
    print_table(result["routes"])
    print(f"errors: {result['errors']} {result['error_kinds'] or ''}")
    for sample in result["error_samples"]:
        print(f"  e.g. {sample}")
    print(f"host peak RSS {result['host_peak_rss_mb']} MB "
          f"{result['host_peak_rss_mb_by_process']}, host CPU during the mix "
          f"{result['host_cpu_s_during_mix']} s {result['host_cpu_s_during_mix_by_process']}")
    result["settings"] = settings
    print_result(result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
