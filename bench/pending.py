"""GET /api/hitl/pending with many reviews waiting: how long a page takes, and whether its
callers delay everyone else (issue 12, item 10).

    python -m bench.pending --pending 10000          # the issue's size; about 2-3 minutes
    python -m bench.pending --pending 50             # a quick look (tests/bench runs one of 45)
    python -m bench.pending --pending 10000 --profile DIR --profiler cprofile
    python -m bench.pending --in-store 99000 --pending 1000 --caller-top 100 --inbox
                                                     # 100,000 waiting, 99,000 of them copied

Each run starts its own devhost on a fresh state folder (offline writer), then:

0. **backlog in the store** (``--in-store N``): one review is started over HTTP and brought
   to "awaiting review", the host is stopped, N copies of it are written straight into
   its database (bench/backlog.py: starting them over HTTP would take most of ten minutes
   at 100,000), and the host is started again on that folder, so everything after runs
   with N + 1 reviews already waiting in the store.
1. **create**: ``--pending`` reviews through ``POST /api/hitl/run``, ``--concurrency`` at a
   time, each polled until its round-1 draft awaits review. How long that took is printed.
2. **pages, one call at a time** on the otherwise idle host:
   ``--calls`` calls of ``GET /api/hitl/pending?top=20``, every other one asking for the
   first page and the others following the ``continuation`` of the call before, so the
   walk goes down the list (a page deep in the list must cost what the first one does);
   then ``?top=100`` from the first page to the last, following ``continuation`` (at most
   ``--top100-calls`` pages). That walk must list every pending review exactly once.
3. **idle baseline**, ``--idle-seconds``: ``/api/health`` every ``--health-interval-ms``
   and ``--approvals`` approvals spread over the phase, with no pending callers.
4. **under load**, ``--load-seconds``: ``--callers`` concurrent callers each request
   ``pending?top=<--caller-top>`` in a loop (following ``continuation``, starting again at
   the end), while health and approvals go on as in phase 3.
5. **with the inbox** (``--inbox``), ``--load-seconds``: the callers alternate the inbox's
   first page (``GET /api/hitl/inbox/items``) and ``pending?top=100`` (following
   ``continuation``), with health as before; reported on its own rows.

Health checks and approvals leave on a fixed schedule whatever the answers do (open loop),
so a stalled host shows as many slow answers, not as fewer requests. An approval names its
round; the route answers 200 once the review has applied it, so its latency is
approve→applied. Targets (issue 12): a pending page under 50 ms at 10,000 pending (judged
on the p99 of ``top=20`` in phase 2), and health not delayed by pending callers (judged
here as health p99 under load under 50 ms; the idle figure is beside it).

``--profile DIR`` profiles the host during phases 2-4 (``bench.profiling``; cProfile slows
the host, so a profiled run's latencies are not the figures to quote). The last stdout line
is one JSON object with every figure and setting; the exit status is 1 on any error.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Optional

from bench import backlog, devhost_process
from bench import profiling as profilers
from bench.devhost_process import Devhost, MemorySampler, scratch_folder
from bench.lifecycles import Lifecycles, bounded_gather
from bench.profiling import Profiling
from bench.review_api import ReviewApi
from bench.stats import Recorder, print_result, print_settings, print_table, summarize

TARGET_PENDING_MS = 50
TARGET_HEALTH_UNDER_LOAD_MS = 50
# With 100,000 waiting (the lifecycle issue): pages under load, health, memory and starts.
TARGET_BACKLOG_HEALTH_MS = 20
TARGET_BACKLOG_RSS_MB = 300
TARGET_BACKLOG_STARTS_PER_S = 200
PERCENTILES = (50, 95, 99)
PAGE, BIG_PAGE = 20, 100


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=10_000,
                        help="reviews awaiting a decision (default 10000)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="starts in flight while creating them (default 64)")
    parser.add_argument("--poll-ms", type=float, default=20.0,
                        help="pause between two status polls of a new review (default 20)")
    parser.add_argument("--calls", type=int, default=200,
                        help="sequential pending?top=20 calls, half following continuation (default 200)")
    parser.add_argument("--top100-calls", type=int, default=None,
                        help="most pages of the pending?top=100 walk (default: enough for the "
                             "whole list)")
    parser.add_argument("--in-store", type=int, default=0, metavar="N",
                        help="first write N copies of a waiting review straight into the store "
                             "(default 0)")
    parser.add_argument("--caller-top", type=int, default=PAGE,
                        help=f"page size of the callers under load (default {PAGE})")
    parser.add_argument("--inbox", action="store_true",
                        help="add phase 5: callers alternating the inbox's first page and "
                             "pending?top=100")
    parser.add_argument("--callers", type=int, default=4,
                        help="concurrent pending callers under load (default 4)")
    parser.add_argument("--load-seconds", type=float, default=10.0,
                        help="seconds of pending callers (default 10)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="seconds of the idle baseline (default 5)")
    parser.add_argument("--health-interval-ms", type=float, default=50.0,
                        help="one health check every this many ms (default 50)")
    parser.add_argument("--approvals", type=int, default=20,
                        help="approvals in each of the idle and loaded phases (default 20)")
    devhost_process.add_arguments(parser)
    parser.add_argument("--seed", type=int, default=1, help="random seed for the approvals (default 1)")
    parser.add_argument("--timeout", type=float, default=1200.0,
                        help="give up on the whole run after this many seconds (default 1200)")
    profilers.add_arguments(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    return parser.parse_args(argv)


class Pending:
    def __init__(self, api: ReviewApi, args):
        self.api, self.args = api, args
        self.listed_short = 0   # pages with fewer items than asked, before the end of the list

    def error(self, route: str, what: str, detail: str = "") -> None:
        self.api.recorder.error(route, what, detail)

    async def page(self, route: str, top: int, token: Optional[str]) -> Optional[dict]:
        """One page; its body, or None (recorded as an error) when it is not a page."""
        reply = await self.api.pending(top, token, route=route)
        body = reply.body
        if reply.status != 200 or not isinstance(body, dict) or not isinstance(body.get("items"), list):
            self.error(route, f"HTTP {reply.status}", str(body)[:200])
            return None
        if len(body["items"]) < top and body.get("continuation"):
            self.listed_short += 1
        return body

    async def sequential_pages(self) -> None:
        """Phase 2a: first pages and continuation pages of top=20, one call at a time."""
        token = None
        for index in range(self.args.calls):
            follow = index % 2 == 1 and token
            route = "pending top=20 (next)" if follow else "pending top=20 (first)"
            body = await self.page(route, PAGE, token if follow else None)
            if body is None:
                token = None
                continue
            # The walk goes on from the deepest page reached; a first page restarts it
            # only when the walk reached the end.
            if follow or token is None:
                token = body.get("continuation")

    async def full_walk(self, waiting: int) -> tuple[int, int, int]:
        """Phase 2b: top=100 from first to last page; (pages, ids listed, distinct ids)."""
        token, pages, seen = None, 0, []
        most = self.args.top100_calls or waiting // BIG_PAGE + 2
        while pages < most:
            body = await self.page("pending top=100", BIG_PAGE, token)
            pages += 1
            if body is None:
                break
            seen.extend(item.get("instanceId") for item in body["items"])
            token = body.get("continuation")
            if not token:
                break
        return pages, len(seen), len(set(seen))

    async def caller(self, stop_at: float) -> int:
        """Phase 4: request pages back to back until ``stop_at``; returns the calls made."""
        token, calls, top = None, 0, self.args.caller_top
        while time.perf_counter() < stop_at:
            body = await self.page(f"pending top={top} (loaded)", top, token)
            calls += 1
            token = body.get("continuation") if body else None
        return calls

    async def inbox_caller(self, stop_at: float) -> int:
        """Phase 5: the inbox's first page and pending?top=100 in turn; returns the calls."""
        token, calls = None, 0
        while time.perf_counter() < stop_at:
            if calls % 2 == 0:
                reply = await self.api.request("inbox first page (inbox phase)", "GET",
                                               "/api/hitl/inbox/items?sort=deadline")
                if reply.status != 200:
                    self.error("inbox first page (inbox phase)", f"HTTP {reply.status}",
                               str(reply.body)[:200])
            else:
                body = await self.page("pending top=100 (inbox phase)", BIG_PAGE, token)
                token = body.get("continuation") if body else None
            calls += 1
        return calls

    async def health_checks(self, route: str, seconds: float) -> None:
        interval = self.args.health_interval_ms / 1000
        tasks, started = [], time.perf_counter()
        for index in range(int(seconds / interval)):
            await asyncio.sleep(max(0.0, started + index * interval - time.perf_counter()))
            tasks.append(asyncio.ensure_future(self.health(route)))
        await asyncio.gather(*tasks)

    async def health(self, route: str) -> None:
        reply = await self.api.request(route, "GET", "/api/health")
        if reply.status != 200:
            self.error(route, f"HTTP {reply.status}", str(reply.body))

    async def approvals(self, route: str, chosen: list[str], seconds: float) -> None:
        tasks, started = [], time.perf_counter()
        spacing = seconds / max(len(chosen), 1)
        for index, instance_id in enumerate(chosen):
            await asyncio.sleep(max(0.0, started + index * spacing - time.perf_counter()))
            tasks.append(asyncio.ensure_future(self.approve(route, instance_id)))
        await asyncio.gather(*tasks)

    async def approve(self, route: str, instance_id: str) -> None:
        body = {"approved": True, "round": 1}
        reply = await self.api.request(route, "POST", f"/api/hitl/approve/{instance_id}", body)
        if reply.status != 200:  # 200 only once applied; 202 means it was not applied in time
            self.error(route, f"HTTP {reply.status}", str(reply.body))


async def card_shown(api: ReviewApi, instance_id: str, timeout_s: float = 30.0) -> None:
    """Wait until the review's inbox card exists (it is shown once its first notice is out),
    so that the copies have one too."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        reply = await api.request("inbox card of the template", "GET",
                                  f"/runtime/webhooks/durabletask/entities/review_card/{instance_id}")
        if reply.status == 200:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the template {instance_id} got no inbox card within {timeout_s:g} s")


async def backlog_in_store(args, work: Path) -> list[str]:
    """Phase 0: a waiting review started over HTTP, then ``--in-store`` copies of it
    written into the stopped host's database; returns the ids of all of them."""
    host = Devhost(work / "state", work / "published", work / "devhost.log", workers=args.workers)
    host.start()
    try:
        async with ReviewApi(host.base_url, Recorder(), connections=2) as api:
            template = await Lifecycles(api, args.poll_ms / 1000, timeout_s=60).start_pending(
                "pending bench topic (copied)")
            if template:
                await card_shown(api, template)
    finally:
        host.stop()
    if not template:
        raise RuntimeError("the template review did not reach awaiting review")
    started = time.perf_counter()
    copies = backlog.copy_waiting_review(backlog.state_database(work / "state"), template, args.in_store)
    print(f"wrote {len(copies)} copies of a waiting review into the store in "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    return [template, *copies]


async def main_async(args, work: Path) -> dict:
    stored = await backlog_in_store(args, work) if args.in_store else []
    in_store = len(stored)
    profiling = Profiling.from_args(args)
    host = Devhost(work / "state", work / "published", work / "devhost.log",
                   workers=args.workers, launcher=profiling.launcher)
    host.start()
    rss_at_start_mb = round((host.sample_memory() or 0) / 1024, 1)
    recorder = Recorder()
    inbox_calls, inbox_s = [], 0.0
    try:
        connections = args.concurrency + args.callers + 64
        async with ReviewApi(host.base_url, recorder, connections=connections) as api:
            sampler = MemorySampler(host)
            sampler.start()
            # 1. create
            flows = Lifecycles(api, args.poll_ms / 1000, timeout_s=300)
            started = time.perf_counter()
            created = await bounded_gather(args.pending, args.concurrency,
                                           lambda i: flows.start_pending(f"pending bench topic {i}"))
            pending = [instance_id for instance_id in created if instance_id]
            create_s = time.perf_counter() - started
            rss_mb = round((host.sample_memory() or 0) / 1024, 1)
            print(f"created {len(pending)}/{args.pending} pending reviews in {create_s:.1f}s "
                  f"({len(pending) / create_s:.1f}/s, {args.concurrency} at a time, "
                  f"{in_store} already waiting); host RSS now {rss_mb} MB "
                  f"({rss_at_start_mb} MB at start)", flush=True)
            creation = {"run": summarize(recorder.latencies_ms.get("run", []), PERCENTILES),
                        "status": summarize(recorder.latencies_ms.get("status", []), PERCENTILES)}
            creation_errors = recorder.error_count
            recorder.latencies_ms.clear()
            bench = Pending(api, args)
            rng = random.Random(args.seed)
            # From every waiting review: a copy must take a decision as any review does.
            everyone = stored + pending
            to_approve = rng.sample(everyone, min(2 * args.approvals, len(everyone)))
            idle_approvals, loaded_approvals = to_approve[::2], to_approve[1::2]

            profiling.begin(host)
            cpu_before = host.cpu_snapshot()
            # 2. pages, one at a time (before any approval, so every review is pending)
            await bench.sequential_pages()
            waiting = in_store + len(pending)
            pages, listed, distinct = await bench.full_walk(waiting)
            if distinct != waiting or listed != distinct:
                bench.error("pending top=100", "walk",
                            f"{listed} listed, {distinct} distinct, {waiting} pending")
            # 3. idle baseline
            await asyncio.gather(
                bench.health_checks("health (idle)", args.idle_seconds),
                bench.approvals("approve→applied (idle)", idle_approvals, args.idle_seconds))
            # 4. under load
            loaded_cpu_before = host.cpu_snapshot()
            loaded_started = time.perf_counter()
            stop_at = loaded_started + args.load_seconds
            calls, *_ = await asyncio.gather(
                asyncio.gather(*(bench.caller(stop_at) for _ in range(args.callers))),
                bench.health_checks("health (loaded)", args.load_seconds),
                bench.approvals("approve→applied (loaded)", loaded_approvals, args.load_seconds))
            loaded_s = time.perf_counter() - loaded_started
            loaded_cpu = sum(host.cpu_since(loaded_cpu_before).values())
            # 5. with the inbox. A process reads every inbox card once, at its first inbox
            # request; that read is timed on its own, then the readers measure the steady state.
            if args.inbox:
                first_read = time.perf_counter()
                await bench.api.request("inbox first read (every card)", "GET", "/api/hitl/inbox/items?sort=deadline")
                print(f"the inbox's first read of every card took {time.perf_counter() - first_read:.2f} s",
                      flush=True)
                inbox_started = time.perf_counter()
                inbox_calls, _ = await asyncio.gather(
                    asyncio.gather(*(bench.inbox_caller(inbox_started + args.load_seconds)
                                     for _ in range(args.callers))),
                    bench.health_checks("health (inbox phase)", args.load_seconds))
                inbox_s = time.perf_counter() - inbox_started
            measured_cpu = sum(host.cpu_since(cpu_before).values())
            profiling.end()
            await sampler.stop()
    finally:
        profiling.abort()
        host.stop()

    loaded_pages = f"pending top={args.caller_top} (loaded)"
    rows = ("pending top=20 (first)", "pending top=20 (next)", "pending top=100",
            "health (idle)", "approve→applied (idle)",
            loaded_pages, "health (loaded)", "approve→applied (loaded)")
    if args.inbox:
        rows += ("inbox first read (every card)", "inbox first page (inbox phase)", "pending top=100 (inbox phase)",
                 "health (inbox phase)")
    table = recorder.table(rows, PERCENTILES)
    top20 = summarize(recorder.latencies_ms.get("pending top=20 (first)", [])
                      + recorder.latencies_ms.get("pending top=20 (next)", []), PERCENTILES)
    health_loaded = table["health (loaded)"]
    met = {"pending_top20_p99_ms": top20["p99_ms"] is not None and top20["p99_ms"] < TARGET_PENDING_MS,
           "health_under_load_p99_ms": health_loaded["p99_ms"] is not None
           and health_loaded["p99_ms"] < TARGET_HEALTH_UNDER_LOAD_MS}
    pages_loaded = table[loaded_pages]
    backlog_met = {
        "pages_under_load_p99_ms": pages_loaded["p99_ms"] is not None and pages_loaded["p99_ms"] <= TARGET_PENDING_MS,
        "health_under_load_p99_ms": health_loaded["p99_ms"] is not None
        and health_loaded["p99_ms"] <= TARGET_BACKLOG_HEALTH_MS,
        "peak_rss_mb": host.peak_rss_kb / 1024 <= TARGET_BACKLOG_RSS_MB,
        "starts_per_s": len(pending) / create_s >= TARGET_BACKLOG_STARTS_PER_S}
    return {
        "mode": "pending", "pending": len(pending) + in_store, "requested_pending": args.pending,
        "in_store": in_store, "started_over_http": len(pending), "rss_at_start_mb": rss_at_start_mb,
        "create_seconds": round(create_s, 1), "create_per_s": round(len(pending) / create_s, 1),
        "creation_routes": creation, "creation_errors": creation_errors,
        "rss_after_create_mb": rss_mb,
        "routes": table, "pending_top20": top20,
        "top100_walk": {"pages": pages, "listed": listed, "distinct": distinct},
        "pages_short_before_the_end": bench.listed_short,
        "loaded_seconds": round(loaded_s, 1), "loaded_pending_calls": sum(calls),
        "loaded_pending_calls_per_s": round(sum(calls) / loaded_s, 1),
        "host_cpu_s_measured": round(measured_cpu, 2), "host_cpu_s_loaded": round(loaded_cpu, 2),
        "host_peak_rss_mb": round(host.peak_rss_kb / 1024, 1),
        "errors": recorder.error_count, "error_kinds": dict(recorder.errors),
        "error_samples": recorder.error_samples[:5],
        "host_startup_s": round(host.startup_s[0], 2) if host.startup_s else None,
        "inbox_phase_calls": sum(inbox_calls), "inbox_phase_seconds": round(inbox_s, 1),
        "targets": {"pending_top20_p99_ms": TARGET_PENDING_MS,
                    "health_under_load_p99_ms": TARGET_HEALTH_UNDER_LOAD_MS},
        "met": met,
        "backlog_targets": {"pages_under_load_p99_ms": TARGET_PENDING_MS,
                            "health_under_load_p99_ms": TARGET_BACKLOG_HEALTH_MS,
                            "peak_rss_mb": TARGET_BACKLOG_RSS_MB,
                            "starts_per_s": TARGET_BACKLOG_STARTS_PER_S},
        "backlog_met": backlog_met,
    }


def report(result: dict, args) -> None:
    print(f"pending reviews: {result['pending']}; one call at a time, then {args.callers} "
          f"callers for {result['loaded_seconds']}s ({result['loaded_pending_calls']} calls, "
          f"{result['loaded_pending_calls_per_s']}/s)")
    print_table({**result["routes"], "pending top=20 (all)": result["pending_top20"]},
                PERCENTILES, width=28)
    walk = result["top100_walk"]
    print(f"top=100 walk: {walk['pages']} pages, {walk['listed']} reviews listed, "
          f"{walk['distinct']} distinct, of {result['pending']} pending")
    top20, health = result["pending_top20"], result["routes"]["health (loaded)"]
    for name, figure, target in (("pending?top=20 p99", top20["p99_ms"], TARGET_PENDING_MS),
                                 ("health p99 under load", health["p99_ms"], TARGET_HEALTH_UNDER_LOAD_MS)):
        verdict = "met" if figure is not None and figure < target else "NOT met"
        print(f"target {name} < {target} ms: {figure} ms, {verdict}")
    if result["in_store"]:
        loaded = result["routes"][f"pending top={args.caller_top} (loaded)"]
        met = result["backlog_met"]
        print(f"with {result['pending']} waiting: pending top={args.caller_top} p99 under load "
              f"{loaded['p99_ms']} ms (<= {TARGET_PENDING_MS}: {_verdict(met['pages_under_load_p99_ms'])}), "
              f"health p99 under load {health['p99_ms']} ms (<= {TARGET_BACKLOG_HEALTH_MS}: "
              f"{_verdict(met['health_under_load_p99_ms'])}), peak RSS {result['host_peak_rss_mb']} MB "
              f"(<= {TARGET_BACKLOG_RSS_MB}: {_verdict(met['peak_rss_mb'])}), starts "
              f"{result['create_per_s']}/s (>= {TARGET_BACKLOG_STARTS_PER_S}: {_verdict(met['starts_per_s'])})")
    print(f"host CPU {result['host_cpu_s_measured']} s over phases 2-4 "
          f"({result['host_cpu_s_loaded']} s under load), peak RSS {result['host_peak_rss_mb']} MB; "
          f"errors {result['errors']} {result['error_kinds'] or ''}")
    for sample in result["error_samples"]:
        print(f"  e.g. {sample}")


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                if k not in ("keep", "timeout", "py_spy")}
    settings["writer"] = "offline"
    print_settings("bench.pending", settings)
    with scratch_folder("hitl-pending-", args.keep) as work:
        result = asyncio.run(asyncio.wait_for(main_async(args, work), args.timeout))
    report(result, args)
    result["settings"] = settings
    print_result(result)
    return 1 if result["errors"] or result["creation_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
