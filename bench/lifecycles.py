"""HITL lifecycle benchmark over real HTTP against a devhost child process.

A lifecycle is: POST /api/hitl/run -> poll GET /api/hitl/status/{id} until the round-1
draft is awaiting review -> POST /api/hitl/approve/{id} -> poll until Completed.

Modes (each starts its own devhost on a fresh temporary state folder, offline writer):

  python -m bench.lifecycles                     # N=500 lifecycles, C=50 at a time
  python -m bench.lifecycles --pending 1000      # 1,000 reviews waiting, then a stream of
                                                 # decisions: approve->Completed p50/p99
  python -m bench.lifecycles --pending 10000 --decisions 0   # memory of 10,000 waiting
  python -m bench.lifecycles --replay            # cost of a decision at round 1 vs later
                                                 # rounds, over HTTP and in the engine

  --workers N    runs the host as N processes (``python -m devhost --workers N``); host CPU
                 and RSS figures cover all of them and are also given per process
  --profile DIR  profiles the host during the measured phase (bench/profiling.py: py-spy,
                 or cProfile with --profiler cprofile)

The benchmark is a closed loop: each of the C reviewers starts its next lifecycle only when
the last one is done, and waits for every step by polling the status every --poll-ms. So
throughput is bounded by the latency of a lifecycle (C / seconds per lifecycle) as well
as by the host's CPU; the host CPU per lifecycle is printed to tell the two apart.

How latencies are taken: every request is timed by the client from send to the last byte
of the reply. "approve->Completed" runs from the moment the approve request is sent to the
first status reply showing Completed, so it includes up to one poll interval (--poll-ms)
of waiting plus one status round trip; the host's own ExecutionCompleted time stamp gives
a second figure without the polling (from the same wall clock, same machine). The approve
route answers 200 once the review has applied the decision (202 while it is delivered but
not yet applied: the lifecycle then goes on polling), so the approve figure includes that.

The final stdout line is one JSON object with every figure and setting.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Optional

from bench import profiling as profilers
from bench import devhost_process
from bench.devhost_process import Devhost, MemorySampler, scratch_folder
from bench.proc import client_cpu_seconds
from bench.profiling import Profiling
from bench.review_api import ReviewApi, awaiting_round, completed_at, poll_until
from bench.stats import Recorder, print_result, print_settings, print_table, summarize

ROUTES = ("run", "status", "approve")
# Targets from the performance issue; the benchmark reports against them, never asserts.
TARGET_LIFECYCLES_PER_S = 200
TARGET_APPROVE_P99_MS = 50
TARGET_ROUND_RATIO = 1.2
TARGET_PENDING_RSS_MB = 150


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="lifecycles to run (default 500)")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="lifecycles (or starts) in flight at once (default 50)")
    parser.add_argument("--poll-ms", type=float, default=10.0,
                        help="pause between two status polls of one instance (default 10)")
    parser.add_argument("--pending", type=int, default=0,
                        help="create this many reviews awaiting a decision, then stream decisions")
    parser.add_argument("--decisions", type=int, default=300,
                        help="--pending: decisions in the stream (default 300; 0 = memory only)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="--pending: decisions sent per second, open loop (default 20)")
    parser.add_argument("--replay", action="store_true",
                        help="measure decision cost by round (HTTP and in-process engine)")
    parser.add_argument("--replay-instances", type=int, default=20,
                        help="--replay: instances per measurement (default 20)")
    parser.add_argument("--long-rounds", type=int, default=50,
                        help="--replay: rounds of the hand-made long-loop orchestrators (default 50)")
    devhost_process.add_arguments(parser)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up on the whole run after this many seconds (default 600)")
    profilers.add_arguments(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    return parser.parse_args(argv)


# -- one lifecycle -----------------------------------------------------------------------

class Lifecycles:
    def __init__(self, client: ReviewApi, poll_s: float, timeout_s: float):
        self.client, self.poll_s, self.timeout_s = client, poll_s, timeout_s
        self.approve_to_completed_ms: list[float] = []
        self.approve_sent_at: dict[str, float] = {}  # instance -> wall clock at approve send
        self.completed: list[str] = []
        self.approvals_not_yet_applied = 0  # approvals answered 202 rather than 200

    async def start_pending(self, topic: str) -> Optional[str]:
        """Start a review and wait until its round-1 draft awaits a decision."""
        reply = await self.client.run(topic)
        if reply.status != 202:
            self.client.recorder.error("run", f"HTTP {reply.status}", str(reply.body))
            return None
        instance_id = reply.body["instanceId"]
        ready, _ = await poll_until(self.client, instance_id, awaiting_round(1),
                                    interval_s=self.poll_s, timeout_s=self.timeout_s)
        return instance_id if ready else None

    async def approve_and_wait(self, instance_id: str, round_: int = 1) -> bool:
        self.approve_sent_at[instance_id] = time.time()
        started = time.perf_counter()
        reply = await self.client.approve(instance_id, True, round_=round_)
        if reply.status == 202:
            self.approvals_not_yet_applied += 1  # delivered, not applied yet: the poll shows it
        elif reply.status != 200:
            self.client.recorder.error("approve", f"HTTP {reply.status}", str(reply.body))
            return False
        done, _ = await poll_until(self.client, instance_id,
                                   lambda review: review.runtime in ("Completed", "Failed"),
                                   interval_s=self.poll_s, timeout_s=self.timeout_s)
        if not done:
            return False
        if not done.ended("Completed", "published"):
            self.client.recorder.error("lifecycle", "not published", str(done.body)[:200])
            return False
        self.approve_to_completed_ms.append((time.perf_counter() - started) * 1000)
        self.completed.append(instance_id)
        return True

    async def server_stamped_ms(self) -> list[float]:
        """approve sent (client wall clock) -> ExecutionCompleted (host's stamp), per instance."""
        figures = []
        for instance_id in self.completed:
            stamp = await completed_at(self.client, instance_id)
            if stamp is not None:
                figures.append((stamp - self.approve_sent_at[instance_id]) * 1000)
        return figures


async def bounded_gather(count: int, concurrency: int, make) -> list:
    """Run ``make(i)`` for i < count with at most ``concurrency`` in flight."""
    queue = iter(range(count))
    results: list = [None] * count

    async def worker() -> None:
        for index in queue:  # a shared iterator: each index is taken by one worker only
            results[index] = await make(index)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return results


def host_figures(host: Devhost, cpu_before: dict, lifecycles: int) -> dict:
    """Peak RSS and CPU of every host process, in all and per process ("K/N")."""
    host.sample_memory()
    cpu = host.cpu_since(cpu_before)
    total = sum(cpu.values())
    return {"host_peak_rss_mb": round(host.peak_rss_kb / 1024, 1),
            "host_peak_rss_mb_by_process": {label: round(kb / 1024, 1) for label, kb
                                            in sorted(host.peak_rss_kb_by_process.items())},
            "host_cpu_s": round(total, 2),
            "host_cpu_s_by_process": dict(sorted(cpu.items())),
            "host_cpu_ms_per_lifecycle": round(1000 * total / lifecycles, 2) if lifecycles else None}


def host_line(figures: dict) -> str:
    """The host figures as one line; per process only when there is more than one."""
    line = f"host peak RSS {figures['host_peak_rss_mb']} MB, host CPU {figures['host_cpu_s']} s"
    if figures["host_cpu_ms_per_lifecycle"] is not None:
        line += f" ({figures['host_cpu_ms_per_lifecycle']} ms per lifecycle)"
    if len(figures["host_cpu_s_by_process"]) > 1:
        line += ("; by process: " + ", ".join(
            f"{label} {figures['host_peak_rss_mb_by_process'].get(label)} MB "
            f"{cpu} s" for label, cpu in figures["host_cpu_s_by_process"].items()))
    return line


# -- mode: N lifecycles ------------------------------------------------------------------

async def run_lifecycles(args, host: Devhost, profiling: Profiling) -> dict:
    recorder = Recorder()
    async with ReviewApi(host.base_url, recorder, connections=args.concurrency + 8) as client:
        flows = Lifecycles(client, args.poll_ms / 1000, args.timeout)
        sampler = MemorySampler(host)
        sampler.start()
        profiling.begin(host)
        cpu_before, client_cpu_before = host.cpu_snapshot(), client_cpu_seconds()
        started = time.perf_counter()

        async def lifecycle(index: int) -> bool:
            instance_id = await flows.start_pending(f"benchmark topic {index}")
            return bool(instance_id) and await flows.approve_and_wait(instance_id)

        outcomes = await bounded_gather(args.n, args.concurrency, lifecycle)
        elapsed = time.perf_counter() - started
        client_cpu = client_cpu_seconds() - client_cpu_before
        figures = host_figures(host, cpu_before, sum(1 for ok in outcomes if ok))
        profiling.end()
        await sampler.stop()
        stamped = await flows.server_stamped_ms()

    done = sum(1 for ok in outcomes if ok)
    result = {
        "mode": "lifecycles", "lifecycles": done, "failed": args.n - done,
        "seconds": round(elapsed, 2), "lifecycles_per_s": round(done / elapsed, 1),
        "routes": recorder.table(ROUTES),
        "approve_to_completed": summarize(flows.approve_to_completed_ms),
        "approve_to_completed_host_stamp": summarize(stamped),
        "errors": recorder.error_count, "error_kinds": dict(recorder.errors),
        "approvals_answered_202": flows.approvals_not_yet_applied,
        "client_cpu_s": round(client_cpu, 2), **figures,
        "targets": {"lifecycles_per_s": TARGET_LIFECYCLES_PER_S},
    }
    result["met"] = {"lifecycles_per_s": result["lifecycles_per_s"] >= TARGET_LIFECYCLES_PER_S}
    print(f"lifecycles: {done}/{args.n} in {elapsed:.2f}s = {result['lifecycles_per_s']}/s "
          f"(target >= {TARGET_LIFECYCLES_PER_S}/s: {'met' if result['met']['lifecycles_per_s'] else 'NOT met'})")
    print_table({**result["routes"],
                 "approve->Completed": result["approve_to_completed"],
                 "  (host stamp)": result["approve_to_completed_host_stamp"]})
    print(f"{host_line(figures)}; client CPU {result['client_cpu_s']} s, errors {result['errors']}")
    if recorder.error_samples:
        print("first errors: " + "; ".join(recorder.error_samples[:5]))
    return result


# -- mode: many pending, then a stream of decisions --------------------------------------

async def run_pending(args, host: Devhost, profiling: Profiling) -> dict:
    recorder = Recorder()
    async with ReviewApi(host.base_url, recorder, connections=args.concurrency + 64) as client:
        flows = Lifecycles(client, args.poll_ms / 1000, args.timeout)
        sampler = MemorySampler(host)
        sampler.start()
        cpu_before = host.cpu_snapshot()
        started = time.perf_counter()
        created = await bounded_gather(args.pending, args.concurrency,
                                       lambda i: flows.start_pending(f"pending topic {i}"))
        pending = [i for i in created if i]
        create_s = time.perf_counter() - started
        host.sample_memory()
        rss_after_create_mb = round((host.sample_memory() or 0) / 1024, 1)
        peak_after_create_mb = round(host.peak_rss_kb / 1024, 1)
        print(f"created {len(pending)}/{args.pending} pending reviews in {create_s:.1f}s "
              f"({len(pending) / create_s:.1f}/s); host RSS now {rss_after_create_mb} MB, "
              f"peak {peak_after_create_mb} MB")
        creation_table = recorder.table(ROUTES)

        # The stream: open loop at a fixed rate, so a slow answer does not slow the offered
        # load (which would hide queueing from the latency figures).
        recorder.latencies_ms.clear()
        rng = random.Random(1)
        chosen = rng.sample(pending, min(args.decisions, len(pending)))
        profiling.begin(host)  # the stream only: creating the backlog is not what is asked about
        stream_started = time.perf_counter()
        tasks = []
        for index, instance_id in enumerate(chosen):
            due = stream_started + index / args.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.ensure_future(flows.approve_and_wait(instance_id)))
        outcomes = await asyncio.gather(*tasks)
        stream_s = time.perf_counter() - stream_started
        profiling.end()
        # No CPU per lifecycle: the CPU covers starting every review and deciding only some.
        figures = host_figures(host, cpu_before, 0)
        await sampler.stop()
        stamped = await flows.server_stamped_ms()

    a2c = summarize(flows.approve_to_completed_ms)
    result = {
        "mode": "pending", "pending": len(pending), "requested_pending": args.pending,
        "create_seconds": round(create_s, 1), "create_per_s": round(len(pending) / create_s, 1),
        "creation_routes": creation_table,
        "rss_after_create_mb": rss_after_create_mb, "peak_rss_after_create_mb": peak_after_create_mb,
        "decisions": len(chosen), "decisions_ok": sum(1 for ok in outcomes if ok),
        "decision_rate_per_s": args.rate, "stream_seconds": round(stream_s, 1),
        "routes": recorder.table(ROUTES), "approve_to_completed": a2c,
        "approve_to_completed_host_stamp": summarize(stamped),
        "approvals_answered_202": flows.approvals_not_yet_applied,
        "errors": recorder.error_count, "error_kinds": dict(recorder.errors), **figures,
        "targets": {"approve_to_completed_p99_ms": TARGET_APPROVE_P99_MS,
                    "pending_10000_rss_mb": TARGET_PENDING_RSS_MB},
    }
    met = {}
    if chosen and a2c["p99_ms"] is not None:
        met["approve_to_completed_p99_ms"] = a2c["p99_ms"] < TARGET_APPROVE_P99_MS
    if args.pending >= 10_000:
        met["pending_10000_rss_mb"] = figures["host_peak_rss_mb"] <= TARGET_PENDING_RSS_MB
    result["met"] = met
    if chosen:
        print(f"decision stream: {result['decisions_ok']}/{len(chosen)} completed at "
              f"{args.rate}/s offered, with {len(pending)} reviews pending")
        print_table({**result["routes"], "approve->Completed": a2c,
                     "  (host stamp)": result["approve_to_completed_host_stamp"]})
    for name, ok in met.items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    print(f"{host_line(figures)}; errors {result['errors']}")
    if recorder.error_samples:
        print("first errors: " + "; ".join(recorder.error_samples[:5]))
    return result


# -- mode: decision cost by round ---------------------------------------------------------

async def run_replay_http(args, host: Devhost) -> dict:
    """Reject rounds 1..9 and approve round 10, one instance at a time, on an idle host.

    One at a time, so each figure is the latency of one decision and not queueing behind
    other work; the poll interval is short for the same reason.
    """
    recorder = Recorder()
    poll_s = 0.002
    reject_ms: dict[int, list[float]] = {r: [] for r in range(1, 10)}
    approve_ms: dict[int, list[float]] = {1: [], 10: []}
    async with ReviewApi(host.base_url, recorder, connections=4) as client:
        for index in range(args.replay_instances):
            # An instance approved at round 1, for the round-1 approval figure.
            flows = Lifecycles(client, poll_s, args.timeout)
            instance_id = await flows.start_pending(f"replay topic a{index}")
            if instance_id and await flows.approve_and_wait(instance_id):
                approve_ms[1].append(flows.approve_to_completed_ms[-1])
            # An instance rejected nine times and approved at round 10.
            reply = await client.run(f"replay topic b{index}", max_review_attempts=10)
            if reply.status != 202:
                recorder.error("run", f"HTTP {reply.status}", str(reply.body))
                continue
            instance_id = reply.body["instanceId"]
            if not (await poll_until(client, instance_id, awaiting_round(1), interval_s=poll_s,
                                     timeout_s=args.timeout))[0]:
                continue
            for round_ in range(1, 10):
                started = time.perf_counter()
                sent = await client.approve(instance_id, False, f"feedback {round_}", round_)
                if sent.status not in (200, 202):  # 202: delivered, applied later (the poll waits)
                    recorder.error("approve", f"HTTP {sent.status}", str(sent.body))
                    break
                ready, _ = await poll_until(client, instance_id, awaiting_round(round_ + 1),
                                            interval_s=poll_s, timeout_s=args.timeout)
                if not ready:
                    break
                reject_ms[round_].append((time.perf_counter() - started) * 1000)
            else:
                flows = Lifecycles(client, poll_s, args.timeout)
                if await flows.approve_and_wait(instance_id, 10):
                    approve_ms[10].append(flows.approve_to_completed_ms[-1])
    return {"reject_to_next_draft_ms": {r: summarize(v) for r, v in reject_ms.items()},
            "approve_to_completed_ms": {r: summarize(v) for r, v in approve_ms.items()},
            "errors": recorder.error_count, "error_kinds": dict(recorder.errors)}


def run_replay_engine(args, work: Path) -> dict:
    """Decision cost by round inside one process, through the engine with a manual clock.

    No HTTP, no polling: each figure is raise_event + everything the decision makes due
    (episodes, activities, continue-as-new), run inline to idle.
    """
    from bench import engine_rounds
    return engine_rounds.measure_all(work, instances=args.replay_instances,
                                     long_rounds=args.long_rounds)


def report_replay(http: dict, engine: dict) -> dict:
    def p50(table: dict, key) -> Optional[float]:
        row = table.get(key) or table.get(str(key))
        return row["p50_ms"] if row else None

    print("HTTP, one decision at a time (poll 2 ms): reject at round r -> draft r+1 awaiting review")
    print(f"  {'round':>5}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}")
    for round_, row in http["reject_to_next_draft_ms"].items():
        if row["n"]:
            print(f"  {round_:>5}{row['n']:>5}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}")
    a1, a10 = p50(http["approve_to_completed_ms"], 1), p50(http["approve_to_completed_ms"], 10)
    r1, r9 = p50(http["reject_to_next_draft_ms"], 1), p50(http["reject_to_next_draft_ms"], 9)
    ratios = {
        "http_reject_round9_vs_round1": round(r9 / r1, 3) if r1 and r9 else None,
        "http_approve_round10_vs_round1": round(a10 / a1, 3) if a1 and a10 else None,
    }
    print(f"  approve->Completed p50: round 1 {a1} ms, round 10 {a10} ms")
    print("Engine in-process (manual clock), median ms per decision:")
    for name, rows in engine["per_round_ms"].items():
        shown = ", ".join(f"r{r}={v:.2f}" for r, v in rows.items())
        print(f"  {name}: {shown}")
    for name, value in engine["ratios"].items():
        ratios[f"engine_{name}"] = value
    for name, value in ratios.items():
        verdict = "" if value is None else ("  (<= 1.2: met)" if value <= TARGET_ROUND_RATIO
                                            else "  (> 1.2: NOT met)")
        print(f"  ratio {name}: {value}{verdict}")
    return {"mode": "replay", "http": http, "engine": engine, "ratios": ratios,
            "targets": {"round_ratio": TARGET_ROUND_RATIO}}


# -- main ---------------------------------------------------------------------------------

def settings_of(args) -> dict:
    if args.replay:
        settings = {"mode": "replay", "replay_instances": args.replay_instances,
                    "long_rounds": args.long_rounds}
    elif args.pending:
        settings = {"mode": "pending", "pending": args.pending, "concurrency": args.concurrency,
                    "decisions": args.decisions, "rate_per_s": args.rate, "poll_ms": args.poll_ms}
    else:
        settings = {"mode": "lifecycles", "n": args.n, "concurrency": args.concurrency,
                    "poll_ms": args.poll_ms}
    return {**settings, "workers": args.workers, "writer": "offline"}


async def main_async(args, work: Path) -> dict:
    profiling = Profiling.from_args(args)
    host = Devhost(work / "state", work / "published", work / "devhost.log",
                   workers=args.workers, launcher=profiling.launcher)
    host.start()
    try:
        if args.replay:
            http = await run_replay_http(args, host)
            result = {"http": http}
        elif args.pending:
            result = await run_pending(args, host, profiling)
        else:
            result = await run_lifecycles(args, host, profiling)
    finally:
        profiling.abort()
        host.stop()
    result["host_startup_s"] = round(host.startup_s[0], 2) if host.startup_s else None
    return result


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    settings = settings_of(args)
    print_settings("bench.lifecycles", settings)
    with scratch_folder("hitl-bench-", args.keep) as work:
        result = asyncio.run(asyncio.wait_for(main_async(args, work), args.timeout))
        if args.replay:
            engine = run_replay_engine(args, work / "engine")
            result = report_replay(result["http"], engine)
    result["settings"] = settings
    print_result(result)
    failed = result.get("errors", 0) or result.get("failed", 0) or result.get("http", {}).get("errors", 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
