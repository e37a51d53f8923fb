"""Crash soak: HITL lifecycles while the devhost is killed with SIGKILL and restarted.

    python -m bench.soak                                  # M=500 lifecycles, K=20 kills
    python -m bench.soak --lifecycles 20 --kills 3 --seed 7
    python -m bench.soak --workers 2                      # the host as two processes

``--concurrency`` reviewers each run lifecycles over HTTP: start a review with a random
number of rounds, wait for each draft, then reject it with feedback or approve it (a
seeded plan per lifecycle: ``--seed`` fixes every decision and every kill delay, though
not how they interleave, which the scheduler decides). Meanwhile a controller kills the
host with SIGKILL ``--kills`` times and restarts it on the same state folder and port.
Kill k waits until k/K of the lifecycles are finished, so the kills spread over the whole
run, and then strikes at one of three kinds of moment: a random delay, a few ms after a
decision request left the client, or a few ms after a start request left the client.

The client retries connection errors (bounded by a deadline) and treats 409 "no draft
is awaiting review" as "poll again". Every decision names its round, which is what makes
a retried decision safe: the app applies a decision only to the round it names (and a
decision without one is refused while the draft is new). Every rejection carries feedback,
which the app requires.

The ledger, and why it is kept this way
---------------------------------------
For each lifecycle the client records what it sent (``sent[round]``: approved, feedback),
which sends it got a 200 for (``acked``), and how often it had to send again. A 200 means
the review applied the decision before the route answered, so a decision with a 200 must
appear in the final state. A send without a 200 (connection reset by the kill, a 409 after
a retry, or a 202: delivered, not applied yet) is *uncertain*: the kill may have come after
the commit and before the reply, and a 202's decision may still be applied. The
client does not guess; it reads the status until the decision for that round shows in
the instance's decision list, or the instance is again awaiting review for that round
with no such decision, in which case the decision never committed and is sent again. So
at the end, per instance, comparing the server's decisions with the ledger:

- decisions lost: a decision the client got a 200 for is missing from the server's list,
  or differs from what was sent;
- decisions applied twice: the server's list has two entries for one round;
- phantom decisions: the server's list has a round the client never sent;
- applied without a 200: in the server's list, sent, never acknowledged. This is the
  kill-after-commit case; it is counted, and it is correct, not a loss;
- instances lost: a start that got a 202 whose instance the host no longer knows;
- wrong final states: the last decision was an approval but the instance is not
  Completed/published, or a rejection in the last round and it is not Failed/rejected;
- duplicate publishes: publish records (``<publish_dir>/<instanceId>.json``) beyond one
  per Completed instance; missing publishes: a Completed instance without its record;
- orphan starts: instances the client never heard of. A kill after the start committed
  and before the 202 arrived leaves one, and the client, which never learnt its id,
  starts another. Their number must not exceed the starts that were sent and got no
  reply (a refused connection does not count: that request never reached a host).

The server's list is ``output.decisions`` for a Completed instance and
``customStatus.decisions`` otherwise. Lost, twice, phantom, instances lost, wrong final
states, duplicate and missing publishes, unfinished lifecycles and excess orphans must
all be 0, and all K kills must have happened; otherwise the exit status is 1. The last
stdout line is one JSON object with every count.

With several host processes
---------------------------
With ``--workers N`` each kill is a SIGKILL of process 0 only, the one the soak started:
the workers must go down with it (the devhost ties them to it with PR_SET_PDEATHSIG).
Before each kill the soak counts the live host processes (found by the state folder on
their command lines), and every kill must find all N. After it, every one of them must be
gone within 10 s; a survivor is counted as a stray (and killed by the soak, so the next
start is clean). Strays must be 0. A restart counts as done only once all N processes
listen on the port again, so every kill strikes a whole host.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bench import devhost_process
from bench.devhost_process import Devhost, scratch_folder
from bench.http_client import NO_REPLY, NOT_SENT
from bench.review_api import ReviewApi, ReviewReply
from bench.stats import Recorder, print_result, print_settings
RETRY_PAUSE_S = 0.05
# A decision sent without a 200 is sent again only after its round has shown this long
# without it: long enough for a committed event to be processed, so resends stay rare.
RESEND_AFTER_S = 1.0


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", "-m", type=int, default=500, help="lifecycles (default 500)")
    parser.add_argument("--kills", "-k", type=int, default=20, help="SIGKILLs of the host (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--concurrency", type=int, default=20, help="reviewers at once (default 20)")
    parser.add_argument("--max-rounds", type=int, default=3,
                        help="each review gets 1..this many rounds (default 3, app cap 10)")
    parser.add_argument("--approve-share", type=float, default=0.4,
                        help="chance that a decision approves (default 0.4)")
    parser.add_argument("--think-ms", type=float, default=30.0,
                        help="reviewer pause before deciding, uniform 0..this (default 30)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="pause between polls (default 20)")
    parser.add_argument("--lifecycle-timeout", type=float, default=180.0,
                        help="seconds one lifecycle may take, restarts included (default 180)")
    parser.add_argument("--timeout", type=float, default=1200.0,
                        help="give up on the whole soak after this many seconds (default 1200)")
    devhost_process.add_arguments(parser)
    parser.add_argument("--keep", action="store_true", help="keep the state and publish folders")
    return parser.parse_args(argv)


@dataclass
class Ledger:
    """What one lifecycle's client sent and was told."""
    index: int
    max_rounds: int
    plan: list  # [(approved, feedback)] for rounds 1.. until the first approval
    instance_id: Optional[str] = None
    run_sends: int = 0
    run_unanswered: int = 0
    sent: dict = field(default_factory=dict)      # round -> {"approved", "feedback"}
    sends: dict = field(default_factory=dict)     # round -> how many times sent
    acked: set = field(default_factory=set)       # rounds that got a 200
    finished: Optional[str] = None                # runtimeStatus when the client saw the end


@dataclass
class Counters:
    connection_errors: int = 0
    http_5xx: int = 0
    conflicts_409: int = 0
    not_yet_applied_202: int = 0
    resent_decisions: int = 0
    unexpected: int = 0


class Soak:
    def __init__(self, args, host: Devhost, client: ReviewApi):
        self.args, self.host, self.client = args, host, client
        self.counters = Counters()
        self.completed_lifecycles = 0
        self.decision_sent = asyncio.Event()
        self.run_sent = asyncio.Event()
        self.kill_kinds: list[str] = []
        self.processes_at_kill: list[int] = []  # live host processes just before each kill

    # -- requests that outlive a restart ---------------------------------------------

    async def _retrying(self, send, deadline: float):
        """Repeat ``send()`` through connection failures and 5xx until the deadline."""
        while True:
            reply = await send()
            if reply.status in (NO_REPLY, NOT_SENT):
                self.counters.connection_errors += 1
            elif reply.status >= 500:
                self.counters.http_5xx += 1
            else:
                return reply
            if time.monotonic() > deadline:
                return reply
            await asyncio.sleep(RETRY_PAUSE_S)

    async def status(self, instance_id: str, deadline: float):
        return await self._retrying(lambda: self.client.status(instance_id), deadline)

    # -- one lifecycle ---------------------------------------------------------------

    def plan(self, index: int) -> Ledger:
        rng = random.Random(f"{self.args.seed}:{index}")
        max_rounds = rng.randint(1, self.args.max_rounds)
        plan = []
        for number in range(1, max_rounds + 1):
            approved = rng.random() < self.args.approve_share
            plan.append((approved, "" if approved else f"soak {index}: fix point {number}"))
            if approved:
                break
        return Ledger(index, max_rounds, plan)

    async def lifecycle(self, ledger: Ledger) -> None:
        deadline = time.monotonic() + self.args.lifecycle_timeout
        rng = random.Random(f"{self.args.seed}:{ledger.index}:think")
        if not await self._start(ledger, deadline):
            return
        for number, (approved, feedback) in enumerate(ledger.plan, start=1):
            if not await self._wait_for_round(ledger, number, deadline):
                return
            await asyncio.sleep(rng.uniform(0, self.args.think_ms / 1000))
            if not await self._decide(ledger, number, approved, feedback, deadline):
                return
        await self._wait_finished(ledger, deadline)

    async def _start(self, ledger: Ledger, deadline: float) -> bool:
        body = {"max_review_attempts": ledger.max_rounds}
        while time.monotonic() < deadline:
            ledger.run_sends += 1
            self.run_sent.set()
            reply = await self.client.run(f"soak {self.args.seed} lifecycle {ledger.index}", **body)
            if reply.status == 202:
                ledger.instance_id = reply.body["instanceId"]
                return True
            # Sent without a reply: the start may have committed (an orphan the client cannot
            # know). Refused connections never reached a host and cannot have.
            if reply.status == NO_REPLY:
                ledger.run_unanswered += 1
                self.counters.connection_errors += 1
            elif reply.status == NOT_SENT:
                self.counters.connection_errors += 1
            elif reply.status >= 500:
                ledger.run_unanswered += 1
                self.counters.http_5xx += 1
            else:
                self.counters.unexpected += 1
                return False
            await asyncio.sleep(RETRY_PAUSE_S)
        return False

    async def _wait_for_round(self, ledger: Ledger, number: int, deadline: float) -> bool:
        """Poll until round ``number`` awaits review; False if the lifecycle cannot go on."""
        while time.monotonic() < deadline:
            reply = await self.status(ledger.instance_id, deadline)
            if reply.status == 200:
                review = ReviewReply.of(reply.body)
                if review.awaiting(number):
                    return True
                if review.finished or review.round > number:
                    return False  # ended early or skipped ahead: the final check reports it
            elif reply.status not in (NO_REPLY, NOT_SENT):
                self.counters.unexpected += 1
            await asyncio.sleep(self.args.poll_ms / 1000)
        return False

    async def _decide(self, ledger: Ledger, number: int, approved: bool, feedback: str,
                      deadline: float) -> bool:
        """Send the decision for a round until the status shows it applied."""
        ledger.sent[number] = {"approved": approved, "feedback": feedback}
        last_send = None
        needs_send = True
        while time.monotonic() < deadline:
            if needs_send:
                needs_send = False
                ledger.sends[number] = ledger.sends.get(number, 0) + 1
                if ledger.sends[number] > 1:
                    self.counters.resent_decisions += 1
                self.decision_sent.set()
                reply = await self.client.approve(ledger.instance_id, approved, feedback, number)
                last_send = time.monotonic()
                if reply.status == 200:
                    ledger.acked.add(number)
                elif reply.status == 202:
                    self.counters.not_yet_applied_202 += 1  # delivered; the status will tell
                elif reply.status == 409:
                    self.counters.conflicts_409 += 1  # already applied, or not awaiting yet
                elif reply.status in (NO_REPLY, NOT_SENT):
                    self.counters.connection_errors += 1
                elif reply.status >= 500:
                    self.counters.http_5xx += 1
                else:
                    self.counters.unexpected += 1
            status = await self.status(ledger.instance_id, deadline)
            if status.status == 200:
                review = ReviewReply.of(status.body)
                if any(d.get("round") == number for d in review.decisions):
                    return True
                if review.finished:
                    return False  # finished without this decision: the final check reports it
                still_open = review.awaiting(number)
                if (still_open and number not in ledger.acked
                        and time.monotonic() - last_send > RESEND_AFTER_S):
                    needs_send = True
            await asyncio.sleep(self.args.poll_ms / 1000)
        return False

    async def _wait_finished(self, ledger: Ledger, deadline: float) -> None:
        while time.monotonic() < deadline:
            reply = await self.status(ledger.instance_id, deadline)
            if reply.status == 200 and ReviewReply.of(reply.body).finished:
                ledger.finished = ReviewReply.of(reply.body).runtime
                self.completed_lifecycles += 1
                return
            await asyncio.sleep(self.args.poll_ms / 1000)

    # -- the killer ------------------------------------------------------------------

    async def killer(self, rng: random.Random) -> None:
        total, kills = self.args.lifecycles, self.args.kills
        for k in range(kills):
            threshold = k * total // kills
            while self.completed_lifecycles < threshold:
                await asyncio.sleep(0.02)
            # Half the kills aim at the window between a decision's commit and its 200.
            kind = rng.choice(("random", "after decision", "after decision", "after start"))
            if kind == "random":
                await asyncio.sleep(rng.uniform(0.0, 0.3))
            else:
                signal = self.decision_sent if kind == "after decision" else self.run_sent
                signal.clear()
                try:
                    await asyncio.wait_for(signal.wait(), timeout=2.0)
                except asyncio.TimeoutError:
                    kind += " (none came; random)"
                await asyncio.sleep(rng.uniform(0.0, 0.004))
            self.processes_at_kill.append(len(self.host.processes()))
            self.host.kill9()
            self.kill_kinds.append(kind)
            # Starting takes about a second of imports; a thread keeps the reviewers running
            # (and failing to connect, as real clients would) meanwhile.
            await asyncio.to_thread(self.host.start)


async def all_instance_ids(client: ReviewApi) -> Optional[set]:
    """Every instance the host knows, through the Durable HTTP API's paged query."""
    ids, token = set(), None
    for _ in range(10_000):  # pages of 1,000: far more than any soak creates
        headers = {"x-ms-continuation-token": token} if token else {}
        reply = await client.request("query", "GET", "/runtime/webhooks/durabletask/instances?top=1000",
                                     record=False, headers=headers)
        if reply.status != 200:
            return None
        ids.update(item["instanceId"] for item in reply.body)
        token = reply.headers.get("x-ms-continuation-token")
        if not token:
            return ids
    return None


async def verify(soak: Soak, ledgers: list[Ledger], publish_dir: Path) -> dict:
    counts = {"instances_lost": 0, "decisions_lost": 0, "decisions_applied_twice": 0,
              "phantom_decisions": 0, "applied_without_ack": 0, "wrong_final_states": 0,
              "unfinished": 0, "duplicate_publishes": 0, "missing_publishes": 0,
              "orphan_starts": 0, "excess_orphans": 0, "decisions_acked": 0,
              "starts_without_reply": sum(ledger.run_unanswered for ledger in ledgers)}
    problems: list[str] = []
    completed: set[str] = set()
    deadline = time.monotonic() + 120
    for ledger in ledgers:
        if ledger.instance_id is None:
            counts["unfinished"] += 1
            problems.append(f"lifecycle {ledger.index}: never started")
            continue
        reply = await soak.status(ledger.instance_id, deadline)
        if reply.status == 404:
            counts["instances_lost"] += 1
            problems.append(f"{ledger.instance_id}: lost (404)")
            continue
        if reply.status != 200:
            counts["unfinished"] += 1
            problems.append(f"{ledger.instance_id}: status HTTP {reply.status}")
            continue
        review = ReviewReply.of(reply.body)
        runtime, stage = review.runtime, review.stage
        if ledger.finished is None or not review.finished:
            counts["unfinished"] += 1
            problems.append(f"{ledger.instance_id}: unfinished ({runtime}, {stage})")
        if runtime == "Completed":
            completed.add(ledger.instance_id)
        server = review.decisions
        rounds = [d.get("round") for d in server]
        counts["decisions_applied_twice"] += len(rounds) - len(set(rounds))
        by_round = {d.get("round"): d for d in server}
        counts["decisions_acked"] += len(ledger.acked)
        for number in ledger.acked:
            got, want = by_round.get(number), ledger.sent[number]
            if got is None or got.get("approved") != want["approved"] \
                    or (got.get("feedback") or "") != want["feedback"]:
                counts["decisions_lost"] += 1
                problems.append(f"{ledger.instance_id}: acknowledged round {number} "
                                f"decision {want} is {got}")
        for number in by_round:
            if number not in ledger.sent:
                counts["phantom_decisions"] += 1
                problems.append(f"{ledger.instance_id}: round {number} never sent")
            elif number not in ledger.acked:
                counts["applied_without_ack"] += 1
        if ledger.plan and len(server) == len(ledger.plan):
            expected = ("Completed", "published") if ledger.plan[-1][0] else ("Failed", "rejected")
            if (runtime, stage) != expected:
                counts["wrong_final_states"] += 1
                problems.append(f"{ledger.instance_id}: {runtime}/{stage}, expected {expected}")
        elif review.finished:
            counts["wrong_final_states"] += 1
            problems.append(f"{ledger.instance_id}: {runtime} after {len(server)} of "
                            f"{len(ledger.plan)} planned decisions")

    # Publish records: one file per Completed instance, nothing else (temporary files a
    # kill left behind are in the .staging folder and are not records).
    records = {p.stem for p in publish_dir.glob("*.json") if not p.name.startswith(".")}
    counts["duplicate_publishes"] = len(records - completed)
    counts["missing_publishes"] = len(completed - records)
    for instance_id in sorted(records - completed)[:5]:
        problems.append(f"{instance_id}: published but not Completed")
    staging = publish_dir / ".staging"
    counts["leftover_temp_files"] = sum(1 for _ in staging.iterdir()) if staging.is_dir() else 0

    known = {ledger.instance_id for ledger in ledgers if ledger.instance_id}
    everything = await all_instance_ids(soak.client)
    if everything is None:
        problems.append("could not list the host's instances")
        counts["instances_lost"] += 1
    else:
        orphans = everything - known
        counts["orphan_starts"] = len(orphans)
        counts["excess_orphans"] = max(0, len(orphans) - counts["starts_without_reply"])
    counts["problems"] = problems[:20]
    return counts


async def main_async(args, work: Path) -> dict:
    publish_dir = work / "published"
    host = Devhost(work / "state", publish_dir, work / "devhost.log", workers=args.workers)
    host.start()
    recorder = Recorder()
    started = time.monotonic()
    try:
        async with ReviewApi(host.base_url, recorder, connections=args.concurrency + 8) as client:
            soak = Soak(args, host, client)
            ledgers = [soak.plan(i) for i in range(args.lifecycles)]
            queue = iter(ledgers)

            async def reviewer() -> None:
                for ledger in queue:
                    await soak.lifecycle(ledger)

            killer = asyncio.ensure_future(soak.killer(random.Random(f"{args.seed}:kills")))
            await asyncio.gather(*(reviewer() for _ in range(args.concurrency)))
            # Every kill waits for a share of finished lifecycles; if some never finished,
            # the remaining kills could wait forever: give them a bounded moment, then stop.
            try:
                await asyncio.wait_for(asyncio.shield(killer), timeout=30)
            except asyncio.TimeoutError:
                killer.cancel()
            soak_s = time.monotonic() - started
            counts = await verify(soak, ledgers, publish_dir)
    finally:
        host.stop()
    log_text = (work / "devhost.log").read_text(errors="replace")
    return {
        "lifecycles": soak.completed_lifecycles, "requested_lifecycles": args.lifecycles,
        "kills": len(soak.kill_kinds), "requested_kills": args.kills,
        "kill_kinds": {k: soak.kill_kinds.count(k) for k in sorted(set(soak.kill_kinds))},
        "seconds": round(soak_s, 1), **counts,
        "completed": sum(1 for ledger in ledgers if ledger.finished == "Completed"),
        "rejected": sum(1 for ledger in ledgers if ledger.finished == "Failed"),
        "decisions_sent": sum(len(ledger.sent) for ledger in ledgers),
        "resent_decisions": soak.counters.resent_decisions,
        "connection_errors": soak.counters.connection_errors,
        "http_5xx": soak.counters.http_5xx, "conflicts_409": soak.counters.conflicts_409,
        "not_yet_applied_202": soak.counters.not_yet_applied_202,
        "unexpected_replies": soak.counters.unexpected,
        # The publish activity ran again after a kill and found its record: idempotence at work.
        "publish_reruns_absorbed": log_text.count("was already published"),
        "host_starts": host.starts,
        "processes_at_kill": sorted(set(soak.processes_at_kill)),
        "stray_processes": host.stray_processes,
        "host_startup_s_max": round(max(host.startup_s), 2) if host.startup_s else None,
        "host_peak_rss_mb": round(host.peak_rss_kb / 1024, 1),
    }


MUST_BE_ZERO = ("instances_lost", "decisions_lost", "decisions_applied_twice", "phantom_decisions",
                "wrong_final_states", "unfinished", "duplicate_publishes", "missing_publishes",
                "excess_orphans", "stray_processes")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    settings = {k: v for k, v in vars(args).items() if k not in ("keep",)}
    settings["writer"] = "offline"
    print_settings("bench.soak", settings)
    with scratch_folder("hitl-soak-", args.keep) as work:
        result = asyncio.run(asyncio.wait_for(main_async(args, work), args.timeout))
    failed = [name for name in MUST_BE_ZERO if result[name]]
    if result["kills"] != args.kills:
        failed.append("kills")
    if result["lifecycles"] != args.lifecycles:
        failed.append("lifecycles")
    if result["processes_at_kill"] not in ([], [args.workers]):
        failed.append("processes_at_kill")
    result["ok"] = not failed
    result["failed_checks"] = failed
    result["settings"] = settings
    print(f"lifecycles {result['lifecycles']}/{args.lifecycles} "
          f"({result['completed']} published, {result['rejected']} rejected) in {result['seconds']}s; "
          f"kills {result['kills']}/{args.kills} {result['kill_kinds']}")
    print(f"instances lost {result['instances_lost']}, decisions lost {result['decisions_lost']}, "
          f"applied twice {result['decisions_applied_twice']}, phantom {result['phantom_decisions']}, "
          f"duplicate publishes {result['duplicate_publishes']}, missing publishes "
          f"{result['missing_publishes']}, wrong final states {result['wrong_final_states']}, "
          f"unfinished {result['unfinished']}")
    print(f"the kill-after-commit case: {result['applied_without_ack']} decision(s) applied "
          f"without a 200; {result['orphan_starts']} orphan start(s) from "
          f"{result['starts_without_reply']} start(s) without a reply; "
          f"{result['resent_decisions']} decision(s) sent again; "
          f"{result['publish_reruns_absorbed']} publish re-run(s) absorbed")
    print(f"host processes: {args.workers}; live at each kill {result['processes_at_kill']}; "
          f"left alive after process 0 died: {result['stray_processes']}")
    for problem in result["problems"]:
        print(f"  problem: {problem}")
    print("OK" if result["ok"] else f"FAILED: {', '.join(failed)}")
    print_result(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
