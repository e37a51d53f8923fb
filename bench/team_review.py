"""The largest team review a policy allows (5 stages of 20 seats), decided seat by seat
over HTTP: how long each decision takes to be applied, and how large the status gets.

Each review's stages name 20 people each (``user:`` seats, "require": "all"); the function
key decides for each of them in turn, naming the person (``"reviewer"``), so every
decision fills a seat and the last one of a stage opens the next. A decision's time is the
approve route's whole call: it answers 200 only once the review has applied the decision.
``--reviews`` of them run at once (C reviewers deciding side by side), after
``--pending`` other reviews were started and left waiting.

    .venv/bin/python -m bench.team_review                   # 4 reviews, 1,000 waiting
    .venv/bin/python -m bench.team_review --engine          # one review, in process

``--engine`` decides the same seats of ``--reviews`` reviews one after another in process,
through the devhost's engine with a manual clock (``bench.engine_rounds``'s way): each
decision's time is raising its event and running everything it makes due (the episodes,
the next stage's notice, the entity batches) until the host is idle, and the process's
CPU time over those steps, which a busy neighbour on a shared machine disturbs less. No
HTTP, no polling and no other review competes: what one decision costs the host, mostly
the replay of the review's execution. The CPU is also given by the decision's place in
its execution (``cpu_ms_by_place``): the first replays nothing before it, each later one
replays those before it, the last one an execution takes (DECISIONS_PER_EXECUTION) also
continues as new, and a stage's last ends the execution and opens the next stage.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

from bench import REPO, devhost_process
from bench.devhost_process import Devhost
from bench.http_client import Recorder
from bench.proc import machine_info
from bench.review_api import ReviewApi, ReviewReply, poll_until
from bench.stats import percentile
from orchestrations.hitl_orchestration import DECISIONS_PER_EXECUTION
from shared_code.review_policy import MAX_SEATS, MAX_STAGES
from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, utf16_size

FEEDBACK = "Checked against the brief; " + "f" * 400


def largest_policy() -> dict:
    return {"stages": [{"name": f"stage-{s}", "reviewers": [f"user:p{s}-{n}@contoso.com" for n in range(MAX_SEATS)],
                        "require": "all"} for s in range(MAX_STAGES)]}


async def decide_every_seat(api: ReviewApi, instance_id: str, poll_s: float, timings: list, sizes: list,
                            failures: list) -> None:
    for stage in range(MAX_STAGES):
        review, _ = await poll_until(api, instance_id, lambda r, s=stage: r.awaiting(1) and r.status.stage_index == s,
                                     interval_s=poll_s, timeout_s=60)
        if review is None:
            failures.append(f"{instance_id}: stage {stage} never waited")
            return
        for seat in range(MAX_SEATS):
            body = {"approved": True, "round": 1, "stage": f"stage-{stage}", "reviewer": f"p{stage}-{seat}@contoso.com",
                    "feedback": FEEDBACK}
            started = time.perf_counter()
            reply = await api.request("approve (team)", "POST", f"/api/hitl/approve/{instance_id}", body)
            timings.append((time.perf_counter() - started) * 1000)
            if reply.status != 200:
                failures.append(f"{instance_id}: stage {stage} seat {seat}: HTTP {reply.status} {str(reply.body)[:200]}")
                return
            status = await api.status(instance_id)
            if status.status == 200 and isinstance(status.body, dict):
                sizes.append(utf16_size(status.body.get("customStatus")))
    done, _ = await poll_until(api, instance_id, lambda r: r.finished, interval_s=poll_s, timeout_s=60)
    if done is None or done.runtime != "Completed":
        failures.append(f"{instance_id}: not published ({done.runtime if done else 'no answer'})")


async def main_async(args, work: Path) -> dict:
    host = Devhost(work / "state", work / "published", work / "devhost.log", workers=args.workers)
    host.start()
    try:
        async with ReviewApi(host.base_url, Recorder(), connections=args.reviews + 4) as api:
            for n in range(args.pending):
                reply = await api.run(f"waiting review {n}")
                if reply.status != 202:
                    raise RuntimeError(f"starting a waiting review answered {reply.status}")
            ids = []
            for n in range(args.reviews):
                reply = await api.run(f"largest team review {n}", review=largest_policy())
                if reply.status != 202:
                    raise RuntimeError(f"starting a team review answered {reply.status}: {reply.body}")
                ids.append(reply.body["instanceId"])
            timings, sizes, failures = [], [], []
            started = time.perf_counter()
            await asyncio.gather(*(decide_every_seat(api, i, args.poll_ms / 1000, timings, sizes, failures)
                                   for i in ids))
            seconds = time.perf_counter() - started
    finally:
        host.stop()
    return {"decisions": len(timings), "seconds": round(seconds, 2),
            "decision_p50_ms": round(percentile(timings, 50), 1) if timings else None,
            "decision_p99_ms": round(percentile(timings, 99), 1) if timings else None,
            "decision_max_ms": round(max(timings), 1) if timings else None,
            "status_max_bytes_utf16": max(sizes) if sizes else None,
            "status_limit_bytes_utf16": CUSTOM_STATUS_LIMIT_BYTES, "failures": failures[:5]}


def measure_engine(work: Path, reviews: int) -> dict:
    """ms per decision in process, after one review decided to warm up; the process's
    settings are as they were once it returns."""
    from bench.engine_rounds import engine_settings

    settings = engine_settings(work)
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        return _decide_in_process(work, reviews)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _decide_in_process(work: Path, reviews: int) -> dict:
    from bench.engine_rounds import engine_host
    from shared_code.models import Decision, RunRequest

    timings: list[float] = []
    cpu_seconds = 0.0
    cpu_ms_by_place: dict[str, list[float]] = {}
    with engine_host(REPO, work / "engine") as host:
        for index in range(reviews + 1):
            start = RunRequest.from_json({"topic": f"largest team review {index}", "review": largest_policy()})
            instance_id = host.start("hitl_orchestration", start.to_start_input())
            host.run_until_idle()
            for stage in range(MAX_STAGES):
                for seat in range(MAX_SEATS):
                    person = f"p{stage}-{seat}@contoso.com"
                    requested = Decision.from_json({"approved": True, "round": 1, "feedback": FEEDBACK,
                                                    "stage": f"stage-{stage}", "reviewer": person})
                    event = requested.bound(1, person, uuid.uuid4().hex, stage_index=stage,
                                            person={"name": person}, channel="function key", asserted=True)
                    started, cpu_started = time.perf_counter(), time.process_time()
                    host.raise_event(instance_id, "ApprovalEvent", event.to_event())
                    host.run_until_idle()
                    if index > 0:  # the first review warms caches and imports
                        timings.append((time.perf_counter() - started) * 1000)
                        cpu = time.process_time() - cpu_started
                        cpu_seconds += cpu
                        cpu_ms_by_place.setdefault(place_in_execution(seat), []).append(cpu * 1000)
            status = host.status(instance_id)
            if status["runtimeStatus"] != "Completed":
                raise RuntimeError(f"team review {instance_id} ended as {status['runtimeStatus']}: "
                                   f"{str(status.get('customStatus'))[:300]}")
    return {"decisions": len(timings), "engine_ms_p50": round(percentile(timings, 50), 2),
            "engine_ms_p99": round(percentile(timings, 99), 2),
            "engine_ms_mean": round(sum(timings) / len(timings), 2),
            "cpu_ms_per_decision": round(cpu_seconds * 1000 / len(timings), 2),
            "cpu_ms_by_place": {place: round(sum(ms) / len(ms), 2) for place, ms in cpu_ms_by_place.items()}}


def place_in_execution(seat: int) -> str:
    """Where a stage's decision ``seat`` (0-based, one after another) falls in the review's
    executions: each stage opens in a new one, which continues as new after
    DECISIONS_PER_EXECUTION decisions."""
    if seat == MAX_SEATS - 1:
        return "the stage's last"
    place = seat % DECISIONS_PER_EXECUTION + 1
    if place == DECISIONS_PER_EXECUTION:
        return f"{place} of {DECISIONS_PER_EXECUTION} (continues as new)"
    return f"{place} of {DECISIONS_PER_EXECUTION}"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=4, help="team reviews decided side by side (default 4)")
    parser.add_argument("--pending", type=int, default=1000, help="other reviews left waiting (default 1000)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="status poll interval (default 20)")
    parser.add_argument("--engine", action="store_true",
                        help="decide the reviews one after another in process, without HTTP (see above)")
    devhost_process.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.engine:
        return main_engine(args)
    print("== bench.team_review")
    print(f"settings: reviews={args.reviews}, stages={MAX_STAGES}, seats={MAX_SEATS}, pending={args.pending}, "
          f"workers={args.workers}")
    print("machine:  " + ", ".join(f"{k}={v}" for k, v in machine_info().items()))
    with tempfile.TemporaryDirectory(prefix="bench-team-") as work:
        result = asyncio.run(main_async(args, Path(work)))
    print(f"decisions applied: {result['decisions']} in {result['seconds']} s; decision -> applied p50 "
          f"{result['decision_p50_ms']} ms, p99 {result['decision_p99_ms']} ms (<= 50: "
          f"{'met' if (result['decision_p99_ms'] or 1e9) <= 50 else 'NOT met'}); largest custom status "
          f"{result['status_max_bytes_utf16']} bytes of UTF-16 (limit {result['status_limit_bytes_utf16']})")
    for failure in result["failures"]:
        print(f"  failure: {failure}")
    print(json.dumps(result))
    return 1 if result["failures"] else 0


def main_engine(args: argparse.Namespace) -> int:
    print("== bench.team_review --engine")
    print(f"settings: reviews={args.reviews}, stages={MAX_STAGES}, seats={MAX_SEATS}, clock=manual, writer=offline")
    print("machine:  " + ", ".join(f"{k}={v}" for k, v in machine_info().items()))
    logging.disable(logging.ERROR)  # one warning per notice without a signing key, timed otherwise
    try:
        with tempfile.TemporaryDirectory(prefix="bench-team-engine-") as work:
            result = measure_engine(Path(work), args.reviews)
    finally:
        logging.disable(logging.NOTSET)
    print(f"decisions: {result['decisions']}; ms per decision in the engine: p50 {result['engine_ms_p50']}, "
          f"p99 {result['engine_ms_p99']}, mean {result['engine_ms_mean']}; the process's CPU "
          f"{result['cpu_ms_per_decision']} ms per decision; by its place in the execution: "
          + ", ".join(f"{place} {ms} ms" for place, ms in result["cpu_ms_by_place"].items()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
