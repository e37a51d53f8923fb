"""Durable entities on the devhost: how fast signals are accepted and applied, and how
long an orchestration's entity calls take.

    .venv/bin/python -m bench.entities                    # 2,000 signals to 20 counters, 200 callers
    .venv/bin/python -m bench.entities --signals 200 --orchestrations 20   # a quick look

It starts a devhost child process on the entity fixture app (tests/devhost/apps/entities),
then:

1. **signals**: ``--signals`` ``POST /runtime/webhooks/durabletask/entities/counter/{k}?op=add``
   spread over ``--entities`` counters, ``--concurrency`` at a time. The accept latency of
   each is timed, then the counters are read until they add up: signals applied per
   second, from the first POST to the last counter reaching its total, is the figure.
2. **calls**: ``--orchestrations`` starts of ``fan_out_calls`` (five ``call_entity`` to one
   counter each, in parallel), polled until Completed: start→Completed per orchestration.

The last stdout line is one JSON object with every figure; the exit status is 1 on any
error or wrong total.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Optional

from bench import REPO
from bench.devhost_process import Devhost, scratch_folder
from bench.http_client import Client
from bench.stats import Recorder, print_result, print_settings, print_table

APP = REPO / "tests" / "devhost" / "apps" / "entities"
WEBHOOKS = "/runtime/webhooks/durabletask"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.entities", description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=2000, help="signals to send (default 2000)")
    parser.add_argument("--entities", type=int, default=20, help="counters they go to (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="signals in flight (default 32)")
    parser.add_argument("--orchestrations", type=int, default=200,
                        help="fan_out_calls orchestrations (default 200)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="status polling interval")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long (s)")
    return parser.parse_args(argv)


async def bounded(count: int, concurrency: int, job) -> list:
    slots = asyncio.Semaphore(concurrency)

    async def one(index: int):
        async with slots:
            return await job(index)
    return await asyncio.gather(*(one(i) for i in range(count)))


async def signals_phase(client: Client, args, recorder: Recorder) -> dict:
    body = json.dumps(1)  # the SDK client's encoding: the value's JSON, sent as a JSON string
    started = time.perf_counter()

    async def send(index: int):
        reply = await client.request("signal accepted", "POST",
                                     f"{WEBHOOKS}/entities/counter/k{index % args.entities}?op=add", body)
        if reply.status != 202:
            recorder.error("signal accepted", str(reply.status), str(reply.body)[:200])
    await bounded(args.signals, args.concurrency, send)
    accepted_s = time.perf_counter() - started
    expected = {f"k{k}": args.signals // args.entities + (1 if k < args.signals % args.entities else 0)
                for k in range(args.entities)}
    while True:
        listed = await client.request("list", "GET", f"{WEBHOOKS}/entities/counter?fetchState=true&top=1000",
                                      record=False)
        states = {e["entityId"]["key"]: e.get("state") for e in listed.body or []}
        if all(states.get(k) == v for k, v in expected.items()):
            break
        if time.perf_counter() - started > args.timeout / 2:
            recorder.error("applied", "timeout", json.dumps(states)[:200])
            break
        await asyncio.sleep(args.poll_ms / 1000)
    applied_s = time.perf_counter() - started
    return {"signals": args.signals, "accepted_seconds": round(accepted_s, 3),
            "applied_seconds": round(applied_s, 3),
            "signals_applied_per_s": round(args.signals / applied_s, 1)}


async def calls_phase(client: Client, args, recorder: Recorder) -> dict:
    started = time.perf_counter()

    async def orchestrate(index: int):
        begun = time.perf_counter()
        reply = await client.request("start", "POST", f"{WEBHOOKS}/orchestrators/fan_out_calls",
                                     json.dumps(f"calls-{index}"))
        if reply.status != 202:
            recorder.error("start", str(reply.status), str(reply.body)[:200])
            return
        status_path = reply.body["statusQueryGetUri"].split(str(client.base_url), 1)[-1]
        while True:
            status = await client.request("status", "GET", status_path, record=False)
            state = (status.body or {}).get("runtimeStatus")
            if state in ("Completed", "Failed", "Terminated"):
                break
            await asyncio.sleep(args.poll_ms / 1000)
        recorder.record("start→Completed (5 calls)", (time.perf_counter() - begun) * 1000)
        if state != "Completed" or status.body.get("output") != [1, 2, 3, 4, 5]:
            recorder.error("calls", state or "none", json.dumps(status.body)[:200])
    await bounded(args.orchestrations, args.concurrency, orchestrate)
    seconds = time.perf_counter() - started
    return {"orchestrations": args.orchestrations, "calls_seconds": round(seconds, 3),
            "entity_calls_per_s": round(5 * args.orchestrations / seconds, 1)}


async def main_async(args, work: Path) -> dict:
    host = Devhost(work / "state", work / "published", work / "devhost.log", app_dir=APP)
    host.start()
    recorder = Recorder()
    try:
        async with Client(host.base_url, recorder, connections=args.concurrency) as client:
            result = await signals_phase(client, args, recorder)
            result.update(await calls_phase(client, args, recorder))
    finally:
        host.stop()
    result["routes"] = recorder.table(("signal accepted", "start→Completed (5 calls)"))
    result["errors"] = recorder.error_count
    return result


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    settings = vars(args)
    print_settings("bench.entities", settings)
    with scratch_folder("hitl-entities-") as work:
        result = asyncio.run(asyncio.wait_for(main_async(args, work), args.timeout))
    print(f"{result['signals']} signals accepted in {result['accepted_seconds']} s, all applied after "
          f"{result['applied_seconds']} s ({result['signals_applied_per_s']}/s); "
          f"{result['orchestrations']} orchestrations of 5 calls in {result['calls_seconds']} s "
          f"({result['entity_calls_per_s']} calls/s)")
    print_table(result["routes"])
    print(f"errors: {result['errors']}")
    result["settings"] = settings
    print_result(result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
