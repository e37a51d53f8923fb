"""GET /api/hitl/analytics/data with 100,000 reviews recorded: how long an answer takes.

    .venv/bin/python -m bench.analytics                      # 100,000 reviews over 90 days
    .venv/bin/python -m bench.analytics --reviews 2000 --calls 50    # a quick look

A devhost (offline writer) is started on a fresh state folder, then:

1. **record**: the facts that ``--reviews`` reviews report over ``--days`` days (started, a
   first view per seat, votes and stage decisions with their timings, endings, the seats
   waiting), drawn from a fixed seed across three stages and ``--reviewers`` people, are
   signalled to each day's ``review_stats`` entity over the Durable HTTP API, a chunk of
   facts per signal, so the real entity code adds every one of them. The phase ends when
   every day's aggregate holds its reviews. (Running 100,000 whole reviews would take most
   of an hour on this machine and give the aggregates the same shape: the route reads
   only the aggregates, never the reviews.)
2. **first call**: one request on a process that has read no aggregate yet (it reads them
   all: one entity a day).
3. **calls**: ``--calls`` requests one at a time, cycling through the periods and filters
   an owner uses: the last 7, 30 and 90 days, one stage, CSV, and the page's call with its
   charts (``charts=svg``).
4. **concurrent calls**: ``--callers`` callers at once for ``--calls`` requests in all,
   while a reviewer process keeps signalling new facts to today's aggregate (so the index
   reads what changed, as it does in use).

The target: p99 under 200 ms with 100,000 reviews recorded. The last stdout line is one
JSON object with every figure and setting; the exit status is 1 on any error.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from typing import Optional

from bench.devhost_process import Devhost, scratch_folder
from bench.proc import machine_info
from bench.stats import summarize
from shared_code.review_analytics import fact

STAGES = ("editor", "legal", "brand")
TARGET_P99_MS = 200.0
FACTS_PER_SIGNAL = 2_000


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=100_000, help="reviews recorded (default 100,000)")
    parser.add_argument("--days", type=int, default=90, help="days they spread over, up to today (default 90)")
    parser.add_argument("--reviewers", type=int, default=40, help="people deciding (default 40)")
    parser.add_argument("--calls", type=int, default=600, help="requests per measured phase (default 600)")
    parser.add_argument("--callers", type=int, default=4, help="concurrent callers in phase 4 (default 4)")
    parser.add_argument("--seed", type=int, default=12, help="seed of the recorded reviews (default 12)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    return parser.parse_args(argv)


def review_facts(chance: random.Random, day: str, people: list[str]) -> list[dict]:
    """What one review reports: started, each stage viewed and decided, how it ended."""
    facts = [fact("started", day)]
    rounds = chance.choice((1, 1, 1, 2, 2, 3))
    for round_ in range(1, rounds + 1):
        for stage in STAGES:
            seconds = chance.lognormvariate(8, 1.3)
            approved = round_ == rounds or stage != STAGES[-1]
            facts += [fact("viewed", day, stage=stage, s=chance.lognormvariate(6, 1.2)),
                      fact("vote", day, stage=stage, who=chance.choice(people), s=seconds, ok=approved),
                      fact("decided", day, stage=stage, s=seconds, ok=approved)]
            if not approved:
                break
    how = "published" if chance.random() < 0.85 else chance.choice(("rejected", "timed_out", "cancelled"))
    if how == "timed_out":
        facts.append(fact("missed", day, stage=chance.choice(STAGES), escalated=chance.random() < 0.5))
    facts.append(fact("ended", day, how=how, rounds=rounds, s=chance.lognormvariate(10, 1) if how == "published"
                      else None))
    return facts


def recorded(args: argparse.Namespace) -> dict[str, list[dict]]:
    chance = random.Random(args.seed)
    people = [f"reviewer{n}@contoso.com" for n in range(args.reviewers)]
    today = date.today()
    days = [(today - timedelta(days=back)).isoformat() for back in range(args.days)]
    facts: dict[str, list[dict]] = {day: [] for day in days}
    for _ in range(args.reviews):
        day = chance.choice(days)
        facts[day] += review_facts(chance, day, people)
    waiting = [["legal", f"user:{person}", chance.randint(0, 5)] for person in people]
    facts[days[0]].append(fact("load", days[0], seats=waiting))
    return facts


def signal(base_url: str, day: str, facts: list[dict]) -> None:
    """Signal the day's aggregate as the SDK's client does: the input is JSON text, sent
    as a JSON string (the Python SDK's entities decode it once more)."""
    request = urllib.request.Request(f"{base_url}/runtime/webhooks/durabletask/entities/review_stats/{day}?op=add",
                                     data=json.dumps(json.dumps(facts)).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        reply.read()


def entity(base_url: str, day: str) -> Optional[dict]:
    try:
        with urllib.request.urlopen(f"{base_url}/runtime/webhooks/durabletask/entities/review_stats/{day}",
                                    timeout=60) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError:
        return None


def record(base_url: str, facts: dict[str, list[dict]]) -> float:
    started = time.monotonic()
    for day, items in facts.items():
        for at in range(0, len(items), FACTS_PER_SIGNAL):
            signal(base_url, day, items[at:at + FACTS_PER_SIGNAL])
    expected = {day: sum(1 for f in items if f["f"] == "started") for day, items in facts.items()}
    for day, count in expected.items():
        while True:
            state = entity(base_url, day)
            if state is not None and state["reviews"]["started"] == count:
                break
            time.sleep(0.2)
    return time.monotonic() - started


def queries(days: int) -> list[str]:
    today = date.today()

    def since(n: int) -> str:
        return f"from={(today - timedelta(days=n - 1)).isoformat()}&to={today.isoformat()}"
    return [since(7), since(30), since(min(days, 90)), f"{since(30)}&stage=legal", f"{since(30)}&format=csv",
            f"{since(30)}&charts=svg"]


def timed_get(base_url: str, query: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(f"{base_url}/api/hitl/analytics/data?{query}", timeout=60) as reply:
        reply.read()
        if reply.status != 200:
            raise RuntimeError(f"analytics answered {reply.status}")
    return (time.perf_counter() - started) * 1000


def one_at_a_time(base_url: str, calls: int, days: int) -> list[float]:
    asked = queries(days)
    return [timed_get(base_url, asked[n % len(asked)]) for n in range(calls)]


def concurrently(base_url: str, calls: int, callers: int, days: int) -> tuple[list[float], int]:
    """``calls`` requests from ``callers`` callers, while new facts keep reaching today's
    aggregate; returns the latencies and how many signals went out meanwhile."""
    asked = queries(days)
    today = date.today().isoformat()
    done = threading.Event()
    signals = [0]

    def reviewer() -> None:
        chance = random.Random(1)
        while not done.is_set():
            signal(base_url, today, review_facts(chance, today, ["late@contoso.com"]))
            signals[0] += 1
            time.sleep(0.05)

    async def main() -> list[float]:
        counter = iter(range(calls))
        latencies: list[float] = []

        async def caller() -> None:
            for n in counter:
                latencies.append(await asyncio.to_thread(timed_get, base_url, asked[n % len(asked)]))
        await asyncio.gather(*(caller() for _ in range(callers)))
        return latencies

    feeder = threading.Thread(target=reviewer, daemon=True)
    feeder.start()
    try:
        return asyncio.run(main()), signals[0]
    finally:
        done.set()
        feeder.join()


def run(args: argparse.Namespace) -> dict:
    with scratch_folder("bench-analytics-", keep=args.keep) as work:
        host = Devhost(work / "data", work / "published", work / "devhost.log")
        host.start()
        try:
            facts = recorded(args)
            fact_count = sum(len(items) for items in facts.values())
            record_s = record(host.base_url, facts)
            print(f"recorded {args.reviews:,} reviews ({fact_count:,} facts) over {args.days} days in {record_s:.1f} s")
            first_ms = timed_get(host.base_url, queries(args.days)[1])
            print(f"first call (reads every day's aggregate): {first_ms:.1f} ms")
            sequential = summarize(one_at_a_time(host.base_url, args.calls, args.days), (50, 90, 99))
            print(f"one at a time: {sequential}")
            latencies, signals = concurrently(host.base_url, args.calls, args.callers, args.days)
            together = summarize(latencies, (50, 90, 99))
            print(f"{args.callers} callers, {signals} signals of new facts meanwhile: {together}")
        finally:
            host.stop()
    met = max(sequential["p99_ms"], together["p99_ms"]) < TARGET_P99_MS
    print(f"target p99 < {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'}")
    return {"settings": {**vars(args), **machine_info()}, "recorded_facts": fact_count, "record_s": round(record_s, 1),
            "first_call_ms": round(first_ms, 2), "one_at_a_time": sequential, "concurrent": together,
            "signals_during_concurrent": signals, "target_p99_ms": TARGET_P99_MS, "met": met}


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
