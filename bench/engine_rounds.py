"""Cost of one decision by round number, in-process through the devhost engine.

    python -m bench.engine_rounds [--instances 20] [--long-rounds 50]

No HTTP and no polling: a ``DevHost`` with a ``ManualClock`` (timers never fire on their
own), and each figure is ``raise_event`` plus everything that decision makes due
(episodes, activities, continue-as-new), run inline until idle. That isolates what the
history length costs, which over HTTP is hidden under request handling and polling.

Measured:
- hitl_orchestration: reject at rounds 1..9, approve at round 10 (the app's cap: a
  decision for round 11 is not a valid decision, so round 50 cannot be reached), and on
  other instances approve at round 1;
- bench/apps/longloop ``long_loop`` (one execution for all rounds, history grows) and
  ``bounded_loop`` (continue-as-new every round), each to round ``--long-rounds``.

Each figure is the median over ``--instances`` instances, after one warm-up instance.
``python -m bench.lifecycles --replay`` runs this too, after its HTTP measurement.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from bench import REPO, TASK_HUB

LONGLOOP_APP = REPO / "bench" / "apps" / "longloop"


def engine_host(app_dir: Path, data_dir: Path):
    """A devhost in process whose timers never fire on their own (a manual clock)."""
    from devhost import DevHost, ManualClock
    return DevHost(app_dir, data_dir=data_dir, clock=ManualClock(), local_settings=False)


def engine_settings(work: Path) -> dict[str, str]:
    """The app settings an in-process host of the review app runs with: the offline writer,
    the bench's task hub unless one is set, and a publish folder under ``work``."""
    return {"HITL_WRITER": "offline", "TASKHUB_NAME": os.environ.get("TASKHUB_NAME", TASK_HUB),
            "HITL_PUBLISH_DIR": str(work / "published")}


def _decide_rounds(host, instance_id: str, rounds: int, event: Callable[[int], tuple[str, dict]],
                   per_round: dict[int, list[float]], measure: bool) -> None:
    for number in range(1, rounds + 1):
        name, payload = event(number)
        started = time.perf_counter()
        host.raise_event(instance_id, name, payload)
        host.run_until_idle()
        if measure:
            per_round.setdefault(number, []).append((time.perf_counter() - started) * 1000)


def start_input(topic: str) -> dict:
    """What ``POST /api/hitl/run`` starts a review with. A bare request is the input of an
    older release, whose executions send no inbox-card or analytics signals: round 1 would
    then be measured without them and round 10 (after continue-as-new) with them."""
    from shared_code.models import RunRequest
    return RunRequest.from_json({"topic": topic, "max_review_attempts": 10}).to_start_input()


def measure_hitl(work: Path, instances: int) -> dict:
    """Median ms per decision for hitl_orchestration, rejecting 1..9 and approving 10."""
    os.environ.update(engine_settings(work))

    def verdict(final_round: int):
        def event(number: int) -> tuple[str, dict]:
            approved = number == final_round
            return "ApprovalEvent", {"approved": approved, "round": number, "by": "bench",
                                     "feedback": "" if approved else f"Tighten round {number}."}
        return event

    rejecting: dict[int, list[float]] = {}
    approving: dict[int, list[float]] = {}
    with engine_host(REPO, work / "hitl") as host:
        for index in range(instances + 1):
            measure = index > 0  # the first instance warms caches and imports
            long_id = host.start("hitl_orchestration", start_input(f"engine {index}"))
            host.run_until_idle()
            _decide_rounds(host, long_id, 10, verdict(10), rejecting, measure)
            short_id = host.start("hitl_orchestration", start_input(f"engine short {index}"))
            host.run_until_idle()
            _decide_rounds(host, short_id, 1, verdict(1), approving, measure)
            for instance_id, rounds in ((long_id, 10), (short_id, 1)):
                status = host.status(instance_id)
                if status["runtimeStatus"] != "Completed" or status["output"]["rounds"] != rounds:
                    raise RuntimeError(f"hitl instance {instance_id} ended as {status}")
    return {"reject": {r: statistics.median(v) for r, v in rejecting.items() if r < 10},
            "approve": {1: statistics.median(approving[1]), 10: statistics.median(rejecting[10])}}


def measure_loop(work: Path, orchestrator: str, rounds: int, instances: int) -> dict:
    """Median ms per decision at each round; the loop runs one extra, unmeasured round so
    that the decision at ``rounds`` is an ordinary one and not the one that ends it."""
    per_round: dict[int, list[float]] = {}
    history_events: dict[int, int] = {}
    with engine_host(LONGLOOP_APP, work / orchestrator) as host:
        for index in range(instances + 1):
            instance_id = host.start(orchestrator, {"rounds": rounds + 1})
            host.run_until_idle()
            _decide_rounds(host, instance_id, rounds,
                           lambda n: (f"Decision-{n}", {"approved": False}), per_round, index > 0)
            if index == 1:
                history_events[rounds] = len(host.history(instance_id))
            host.raise_event(instance_id, f"Decision-{rounds + 1}", {"approved": True})
            host.run_until_idle()
            status = host.status(instance_id)
            if status["runtimeStatus"] != "Completed":
                raise RuntimeError(f"{orchestrator} {instance_id} ended as {status}")
    return {"per_round": {r: statistics.median(v) for r, v in per_round.items()},
            "history_events_at_last_round": history_events.get(rounds)}


def measure_all(work: Path, instances: int = 20, long_rounds: int = 50) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    # The app's warnings (one per draft without a signing key) would be timed with the
    # engine and flood the output; the HTTP benchmarks keep the host's logging as it is.
    logging.disable(logging.ERROR)
    hitl = measure_hitl(work, instances)
    long = measure_loop(work, "long_loop", long_rounds, instances)
    bounded = measure_loop(work, "bounded_loop", long_rounds, instances)
    shown = sorted({1, 2, 5, 10, 20, 30, 40, long_rounds} & set(long["per_round"]))

    def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return round(a / b, 3) if a and b else None

    return {
        "instances": instances, "long_rounds": long_rounds,
        "per_round_ms": {
            "hitl reject": {r: round(v, 3) for r, v in hitl["reject"].items()},
            "hitl approve": {r: round(v, 3) for r, v in hitl["approve"].items()},
            "long_loop": {r: round(long["per_round"][r], 3) for r in shown},
            "bounded_loop": {r: round(bounded["per_round"][r], 3) for r in shown},
        },
        "long_loop_history_events_at_last_round": long["history_events_at_last_round"],
        "bounded_loop_history_events_at_last_round": bounded["history_events_at_last_round"],
        "ratios": {
            "hitl_reject_round9_vs_round1": ratio(hitl["reject"][9], hitl["reject"][1]),
            "hitl_approve_round10_vs_round1": ratio(hitl["approve"][10], hitl["approve"][1]),
            f"bounded_loop_round{long_rounds}_vs_round1":
                ratio(bounded["per_round"][long_rounds], bounded["per_round"][1]),
            f"long_loop_round{long_rounds}_vs_round1":
                ratio(long["per_round"][long_rounds], long["per_round"][1]),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Decision cost by round, in-process.")
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--long-rounds", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"== bench.engine_rounds\nsettings: instances={args.instances}, "
          f"long_rounds={args.long_rounds}, clock=manual, writer=offline")
    with tempfile.TemporaryDirectory(prefix="hitl-engine-") as work:
        result = measure_all(Path(work), args.instances, args.long_rounds)
    for name, rows in result["per_round_ms"].items():
        print(f"  {name}: " + ", ".join(f"r{r}={v:.2f}ms" for r, v in rows.items()))
    for name, value in result["ratios"].items():
        print(f"  {name}: {value}")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
