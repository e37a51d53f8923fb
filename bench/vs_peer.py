"""A review's lifecycle on the devhost beside the same lifecycle on Microsoft's in-memory
Durable Task backend, in one run, and the ratio between them.

    .venv/bin/python -m bench.vs_peer                       # 3 rounds: devhost, peer, ...
    .venv/bin/python -m bench.vs_peer --baseline ../other   # + another checkout's devhost
    .venv/bin/python -m bench.vs_peer --baseline A --baseline B   # + two of them (releases)

Our lifecycle, as a user runs it: ``python -m devhost . --port P --data D`` with the
host's default settings (no ``--workers``: the host decides), the offline writer, and
``--threads`` client threads (16) over HTTP, each running one lifecycle after another
until N (300) are done: ``POST /api/hitl/run`` -> poll ``GET /api/hitl/status/{id}``
until round 1's draft awaits review -> ``POST /api/hitl/approve/{id}`` with
``"round": 1`` -> poll until Completed (published).

The peer (bench/peer.py): the same shape, start -> activity -> wait for an external event
-> activity -> complete, on ``durabletask.testing``'s in-memory backend with the SDK's
worker, in a child process, driven by the same number of client threads through the
SDK's gRPC client, polling the same way.

Each round runs every subject once (this tree, each baseline, the peer; every other round in
reverse order, so that no subject always has the same place), so a slow minute of a shared
machine falls on all of them; the summary gives the medians
and ranges over the rounds, and each round's ratio of the devhost to the peer it ran
beside. Every host is fresh (its own state folder) and is warmed up with one lifecycle
per thread before the measured N. ``approve->Completed`` runs from sending the approval
to the first status reply that shows Completed, so it includes up to one poll interval.

After its lifecycles, each devhost also starts ``--starts`` (300) reviews with
``--start-threads`` (64) client threads, each polling its review every 20 ms until the
draft awaits review, as a team starting many reviews at once does: starts/s and the
polls each start took. A host that lets polls crowd out its orchestrations shows there
(more polls per start, fewer starts), though the lifecycle figures may not.

``--floor`` adds a third kind of subject: this tree's devhost serving bench/apps/peer_shape,
the peer's orchestration and nothing more as a Functions app, with routes of the same
paths and shapes. Its ratio to the peer is the host's part of the gap, with the review
app's own work taken out; ``this / floor`` is the review app's part.

The last stdout line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Callable, Optional

from bench import REPO
from bench import profiling as profilers
from bench.devhost_process import Devhost, free_port, scratch_folder
from bench.proc import machine_info
from bench.stats import percentile

PEER_REQUIREMENTS = REPO / "bench" / "requirements.txt"
FLOOR_APP = REPO / "bench" / "apps" / "peer_shape"
READY_TIMEOUT_S = 60.0
# gRPC's C core prints a notice when the peer stops (GOAWAY); errors only, here and there.
PEER_ENV = {"GRPC_VERBOSITY": "ERROR"}
os.environ.update(PEER_ENV)
# How long one step of one lifecycle may take before it counts as failed.
STEP_TIMEOUT_S = 30.0
# The starts' pause between two polls of one review (bench.pending's, for the same figure).
START_POLL_S = 0.02


def round_order(subjects: list[tuple[str, Optional[Path]]], with_peer: bool, round_: int) -> list:
    """The subjects of round ``round_`` (from 1) in the order they run, the peer last; every
    other round in reverse. Where a subject runs in a round may weigh on what it measures on
    a shared machine (first, or right after another's load): reversing spreads that place
    over all of them instead of giving one side of an A/B the same place every round."""
    order = [*subjects, *([("peer", None)] if with_peer else [])]
    return order[::-1] if round_ % 2 == 0 else order


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="measured lifecycles per run (default 300)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each subject, alternating (default 3)")
    parser.add_argument("--poll-ms", type=float, default=10.0,
                        help="pause between two status polls of one lifecycle (default 10)")
    parser.add_argument("--baseline", type=Path, action="append", default=[], metavar="DIR",
                        help="another checkout whose devhost runs beside this one, with DIR/.venv's "
                             "Python when it has one; named by its commit (repeatable)")
    parser.add_argument("--workers", type=int, default=None,
                        help="pass --workers N to the devhost (default: leave it out, so the "
                             "host's own default applies)")
    parser.add_argument("--starts", type=int, default=300,
                        help="reviews each devhost starts after its lifecycles, 0 for none (default 300)")
    parser.add_argument("--start-threads", type=int, default=64,
                        help="client threads of the starts, each polling every 20 ms (default 64)")
    parser.add_argument("--floor", action="store_true",
                        help="also run this tree's devhost on bench/apps/peer_shape, the peer's own "
                             "orchestration as a Functions app: the host's part of the gap")
    parser.add_argument("--no-peer", action="store_true", help="leave the peer out")
    parser.add_argument("--only-peer", action="store_true", help="run the peer alone")
    parser.add_argument("--keep", action="store_true", help="keep the state folders")
    profilers.add_arguments(parser)
    return parser.parse_args(argv)


@dataclass
class Run:
    """One subject's measured lifecycles."""
    subject: str
    seconds: float = 0.0
    done: int = 0
    failed: int = 0
    approve_to_completed_ms: list = field(default_factory=list)
    # The two other steps of a lifecycle: start -> the draft seen awaiting review, and the
    # decision's own call (on the devhost the route answers once the decision is applied).
    start_to_awaiting_ms: list = field(default_factory=list)
    decision_call_ms: list = field(default_factory=list)
    host_cpu_s: Optional[float] = None
    processes: Optional[int] = None
    errors: list = field(default_factory=list)
    requests: int = 0  # HTTP requests (or gRPC calls) the measured lifecycles made
    client_cpu_s: float = 0.0
    # The starts after the lifecycles: how many reached their reviewer, in how long, and
    # the status polls they took (the devhost only).
    starts: int = 0
    starts_seconds: float = 0.0
    start_polls: int = 0

    @property
    def starts_per_s(self) -> Optional[float]:
        return self.starts / self.starts_seconds if self.starts_seconds else None

    @property
    def per_s(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def figures(self) -> dict:
        return {"subject": self.subject, "lifecycles": self.done, "failed": self.failed,
                "seconds": round(self.seconds, 2), "lifecycles_per_s": round(self.per_s, 1),
                "approve_to_completed_p50_ms": _ms(percentile(self.approve_to_completed_ms, 50)),
                "approve_to_completed_p99_ms": _ms(percentile(self.approve_to_completed_ms, 99)),
                "start_to_awaiting_p50_ms": _ms(percentile(self.start_to_awaiting_ms, 50)),
                "decision_call_p50_ms": _ms(percentile(self.decision_call_ms, 50)),
                "decision_call_p99_ms": _ms(percentile(self.decision_call_ms, 99)),
                "host_cpu_ms_per_lifecycle": (round(1000 * self.host_cpu_s / self.done, 2)
                                              if self.host_cpu_s is not None and self.done else None),
                "requests_per_lifecycle": round(self.requests / self.done, 1) if self.done else None,
                "client_cpu_ms_per_lifecycle": (round(1000 * self.client_cpu_s / self.done, 2)
                                                if self.done else None),
                "starts_per_s": _ms(self.starts_per_s),
                "polls_per_start": round(self.start_polls / self.starts, 1) if self.starts else None,
                "host_processes": self.processes, "errors": self.errors[:5]}

    def line(self) -> str:
        f = self.figures()
        cpu = (f"; host CPU {f['host_cpu_ms_per_lifecycle']} ms/lifecycle"
               if f["host_cpu_ms_per_lifecycle"] is not None else "")
        procs = f", {self.processes} process(es)" if self.processes else ""
        starts = (f"; starts {f['starts_per_s']}/s ({f['polls_per_start']} polls/start)"
                  if self.starts else "")
        return (f"{self.subject:<10} {f['lifecycles_per_s']:>7.1f} lifecycles/s "
                f"({self.done}/{self.done + self.failed} in {f['seconds']} s{procs}); "
                f"approve->Completed p50 {f['approve_to_completed_p50_ms']} ms, "
                f"p99 {f['approve_to_completed_p99_ms']} ms (start->awaiting p50 "
                f"{f['start_to_awaiting_p50_ms']} ms, decision call p50 {f['decision_call_p50_ms']} ms)"
                f"{cpu}; "
                f"{f['requests_per_lifecycle']} calls/lifecycle; client CPU "
                f"{f['client_cpu_ms_per_lifecycle']} ms/lifecycle{starts}")


def _ms(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class Lifecycle:
    """One lifecycle's steps, in milliseconds, and the calls it made."""
    start_to_awaiting_ms: float
    decision_call_ms: float
    approve_to_completed_ms: float
    calls: int


def on_threads(threads: int, indexes: range, body: Callable[[int], None]) -> float:
    """``body`` for every index, on ``threads`` threads that each take the next index
    until none is left; the seconds it took."""
    lock = threading.Lock()
    remaining = iter(indexes)

    def worker() -> None:
        while True:
            with lock:
                index = next(remaining, None)
            if index is None:
                return
            body(index)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started


def drive(run: Run, count: int, threads: int, lifecycle: Callable[[int], Lifecycle],
          first_index: int = 0) -> None:
    """``count`` lifecycles on ``threads`` threads, one after another on each; a lifecycle
    that fails raises, and is counted."""
    lock = threading.Lock()

    def one(index: int) -> None:
        try:
            took = lifecycle(index)
        except Exception as exc:  # a broken lifecycle is counted, never fatal to the run
            took = None
            run.errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            if took is None:
                run.failed += 1
            else:
                run.done += 1
                run.requests += took.calls
                run.approve_to_completed_ms.append(took.approve_to_completed_ms)
                run.start_to_awaiting_ms.append(took.start_to_awaiting_ms)
                run.decision_call_ms.append(took.decision_call_ms)

    cpu_before = time.process_time()
    run.seconds = on_threads(threads, range(first_index, first_index + count), one)
    run.client_cpu_s = time.process_time() - cpu_before


def poll(read: Callable[[], object], done: Callable[[object], bool], pause_s: float) -> tuple[object, int]:
    """Read until ``done``: (the last value, reads made); raises after STEP_TIMEOUT_S."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    reads = 0
    while True:
        value = read()
        reads += 1
        if done(value):
            return value, reads
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value!r:.200} after {STEP_TIMEOUT_S:.0f} s")
        time.sleep(pause_s)


# -- the devhost ---------------------------------------------------------------------------

class ReviewConnection:
    """One client thread's keep-alive connection to the app's routes."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=STEP_TIMEOUT_S)

    def call(self, method: str, path: str, body: Optional[dict] = None) -> tuple[int, object]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        self.connection.request(method, path, body=payload, headers=headers)
        reply = self.connection.getresponse()
        raw = reply.read()
        return reply.status, (json.loads(raw) if raw else None)

    def status(self, instance_id: str) -> dict:
        code, body = self.call("GET", f"/api/hitl/status/{instance_id}")
        if code != 200:
            raise RuntimeError(f"status answered {code}: {body!r:.200}")
        return body


def awaiting_round_1(body: dict) -> bool:
    custom = body.get("customStatus") or {}
    return (body.get("runtimeStatus") == "Running" and custom.get("stage") == "awaiting_review"
            and custom.get("round") == 1)


def finished(body: dict) -> bool:
    return body.get("runtimeStatus") in ("Completed", "Failed", "Terminated")


def devhost_lifecycles(port: int, pause_s: float) -> Callable[[int], Lifecycle]:
    local = threading.local()

    def lifecycle(index: int) -> Lifecycle:
        if not hasattr(local, "api"):
            local.api = ReviewConnection(port)
        api = local.api
        began = time.perf_counter()
        code, body = api.call("POST", "/api/hitl/run", {"topic": f"benchmark topic {index}"})
        if code != 202:
            raise RuntimeError(f"run answered {code}: {body!r:.200}")
        instance_id = body["instanceId"]
        _, before = poll(lambda: api.status(instance_id), awaiting_round_1, pause_s)
        started = time.perf_counter()
        code, body = api.call("POST", f"/api/hitl/approve/{instance_id}",
                              {"approved": True, "round": 1})
        answered = time.perf_counter()
        if code not in (200, 202):
            raise RuntimeError(f"approve answered {code}: {body!r:.200}")
        final, after = poll(lambda: api.status(instance_id), finished, pause_s)
        if final["runtimeStatus"] != "Completed":
            raise RuntimeError(f"ended {final['runtimeStatus']}: {final!r:.200}")
        return Lifecycle((started - began) * 1000, (answered - started) * 1000,
                         (time.perf_counter() - started) * 1000, 2 + before + after)

    return lifecycle


def drive_starts(run: Run, count: int, threads: int, port: int) -> None:
    """``count`` reviews started on ``threads`` threads, each polled every 20 ms until its
    draft awaits review; a start that fails is counted."""
    lock = threading.Lock()
    local = threading.local()

    def one(index: int) -> None:
        try:
            if not hasattr(local, "api"):
                local.api = ReviewConnection(port)
            api = local.api
            code, body = api.call("POST", "/api/hitl/run", {"topic": f"benchmark start {index}"})
            if code != 202:
                raise RuntimeError(f"run answered {code}: {body!r:.200}")
            _, polls = poll(lambda: api.status(body["instanceId"]), awaiting_round_1, START_POLL_S)
        except Exception as exc:  # counted, never fatal to the run
            with lock:
                run.failed += 1
                run.errors.append(f"start: {type(exc).__name__}: {exc}")
            return
        with lock:
            run.starts += 1
            run.start_polls += polls

    run.starts_seconds = on_threads(threads, range(count), one)


def run_devhost(subject: str, tree: Path, args, work: Path, round_: int, app_dir: Optional[Path] = None) -> Run:
    """One measured run of a fresh devhost from ``tree`` serving ``app_dir`` (the tree's own
    app by default); ``--profile DIR`` profiles its process 0 during the measured lifecycles
    into DIR/<subject>-<round>."""
    python = tree / ".venv" / "bin" / "python"
    folder = work / subject
    profiling = profilers.Profiling(args.profile and args.profile / f"{subject}-{round_}",
                                    args.py_spy, tool=args.profiler)
    host = Devhost(folder / "state", folder / "published", folder / "devhost.log",
                   tree=tree, app_dir=app_dir, workers=args.workers, launcher=profiling.launcher,
                   python=str(python) if python.exists() else sys.executable)
    run = Run(subject)
    host.start(timeout_s=READY_TIMEOUT_S)
    try:
        lifecycle = devhost_lifecycles(host.port, args.poll_ms / 1000)
        drive(Run("warm-up"), args.threads, args.threads, lifecycle, first_index=10**6)
        profiling.begin(host)
        before = host.cpu_snapshot()
        drive(run, args.n, args.threads, lifecycle)
        run.host_cpu_s = sum(host.cpu_since(before).values())
        run.processes = host.workers
        profiling.end()
        if args.starts:
            drive_starts(run, args.starts, args.start_threads, host.port)
    finally:
        profiling.abort()
        host.stop()
    return run


# -- the peer ------------------------------------------------------------------------------

def peer_lifecycles(port: int, pause_s: float) -> Callable[[int], Lifecycle]:
    from durabletask import client as dt_client

    from bench.peer import AWAITING, DECISION_EVENT
    local = threading.local()
    waiting = json.dumps(AWAITING)
    quiet = quiet_logger("durabletask-client")
    ended = (dt_client.OrchestrationStatus.COMPLETED, dt_client.OrchestrationStatus.FAILED,
             dt_client.OrchestrationStatus.TERMINATED)

    def lifecycle(index: int) -> Lifecycle:
        if not hasattr(local, "client"):
            local.client = dt_client.TaskHubGrpcClient(host_address=f"127.0.0.1:{port}",
                                                       logger=quiet)
        client = local.client
        began = time.perf_counter()
        instance_id = client.schedule_new_orchestration("review", input=f"benchmark topic {index}")
        _, before = poll(lambda: client.get_orchestration_state(instance_id),
                         lambda state: state is not None and state.serialized_custom_status == waiting,
                         pause_s)
        started = time.perf_counter()
        client.raise_orchestration_event(instance_id, DECISION_EVENT,
                                         data={"approved": True, "round": 1})
        answered = time.perf_counter()
        final, after = poll(lambda: client.get_orchestration_state(instance_id),
                            lambda state: state is not None and state.runtime_status in ended,
                            pause_s)
        if final.runtime_status != dt_client.OrchestrationStatus.COMPLETED:
            raise RuntimeError(f"peer lifecycle ended {final.runtime_status}")
        return Lifecycle((started - began) * 1000, (answered - started) * 1000,
                         (time.perf_counter() - started) * 1000, 2 + before + after)

    return lifecycle


def quiet_logger(name: str) -> logging.Logger:
    """Warnings and errors only: the SDK logs a line per call at INFO, which is not part of
    what is compared (the devhost's per-execution lines are batched, docs/ARCHITECTURE.md)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    return logger


def run_peer(args, work: Path) -> Run:
    port = free_port()
    log_path = work / "peer.log"
    run = Run("peer")
    with open(log_path, "ab") as log:
        child = subprocess.Popen([sys.executable, "-m", "bench.peer", "--port", str(port)],
                                 cwd=str(REPO), stdout=subprocess.PIPE, stderr=log,
                                 stdin=subprocess.DEVNULL, env={**os.environ, **PEER_ENV})
    try:
        if child.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the peer did not start; see {log_path}")
        lifecycle = peer_lifecycles(port, args.poll_ms / 1000)
        drive(Run("warm-up"), args.threads, args.threads, lifecycle, first_index=10**6)
        before = _cpu_seconds(child.pid)
        drive(run, args.n, args.threads, lifecycle)
        run.host_cpu_s = _cpu_seconds(child.pid) - before
        run.processes = 1
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return run


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peer_available() -> bool:
    try:
        import durabletask.testing  # noqa: F401
        return True
    except ImportError:
        return False


# -- the run -------------------------------------------------------------------------------

def subject_name(tree: Path, taken: list[str]) -> str:
    """A baseline's name in the printout: its commit, else its folder's name."""
    try:
        name = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True,
                              text=True, timeout=10).stdout.strip() or tree.name
    except (OSError, subprocess.SubprocessError):
        name = tree.name
    while name in taken:
        name += "'"
    return name


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return f"median {median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    with_peer = not args.no_peer
    if with_peer and not peer_available():
        print(f"the peer needs durabletask: make install, or {sys.executable} -m pip install "
              f"-r {PEER_REQUIREMENTS.relative_to(REPO)}", file=sys.stderr)
        return 2
    subjects = [] if args.only_peer else [("this", REPO)]
    for tree in [] if args.only_peer else args.baseline:
        if not (tree / "devhost").is_dir():
            print(f"--baseline {tree}: no devhost/ there", file=sys.stderr)
            return 2
        subjects.append((subject_name(tree, [name for name, _ in subjects]), tree.resolve()))
    settings = {"n": args.n, "threads": args.threads, "rounds": args.rounds, "poll_ms": args.poll_ms,
                "starts": args.starts, "start_threads": args.start_threads,
                "devhost_workers": args.workers if args.workers else "host default",
                "baselines": {name: str(tree) for name, tree in subjects[1:]}, "floor": args.floor,
                **machine_info()}
    print("vs_peer: " + ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)

    apps = {name: None for name, _ in subjects}
    if args.floor and not args.only_peer:
        subjects.append(("floor", REPO))
        apps["floor"] = FLOOR_APP
    runs: dict[str, list[Run]] = {name: [] for name, _ in subjects}
    if with_peer:
        runs["peer"] = []
    ratios: dict[str, list[float]] = {name: [] for name, _ in subjects}
    with scratch_folder("vs-peer-", keep=args.keep) as work:
        for round_ in range(1, args.rounds + 1):
            order = round_order(subjects, with_peer, round_)
            print(f"-- round {round_}: " + ", ".join(name for name, _ in order), flush=True)
            this_round = {}
            for name, tree in order:
                if name == "peer":
                    (work / f"r{round_}").mkdir(parents=True, exist_ok=True)
                    run = run_peer(args, work / f"r{round_}")
                else:
                    run = run_devhost(name, tree, args, work / f"r{round_}", round_, apps[name])
                this_round[name] = run
                print("   " + run.line(), flush=True)
            for name, run in this_round.items():
                runs[name].append(run)
            if with_peer and this_round["peer"].per_s:
                for name, _ in subjects:
                    ratios[name].append(this_round[name].per_s / this_round["peer"].per_s)

    print("-- summary over", args.rounds, "round(s)")
    summary = {}
    for name, done in runs.items():
        rates = [r.per_s for r in done]
        p99s = [r.figures()["approve_to_completed_p99_ms"] for r in done]
        p99s = [p for p in p99s if p is not None]
        summary[name] = {"lifecycles_per_s": [round(r, 1) for r in rates],
                         "approve_to_completed_p99_ms": p99s,
                         "failed": sum(r.failed for r in done)}
        line = f"{name:<10} lifecycles/s {spread(rates)}; approve->Completed p99 {spread(p99s)} ms"
        starts = [r.starts_per_s for r in done if r.starts_per_s]
        if starts:
            summary[name]["starts_per_s"] = [round(r, 1) for r in starts]
            line += f"; starts/s {spread(starts)}"
        if name in ratios and ratios[name]:
            summary[name]["ratio_to_peer"] = [round(r, 2) for r in ratios[name]]
            line += f"; ratio to the peer {spread(ratios[name], 2)}"
        print(line)
    for name, _ in [s for s in subjects[1:] if s[0] != "floor"]:
        pairs = [a.per_s / b.per_s for a, b in zip(runs["this"], runs[name]) if b.per_s]
        summary.setdefault("this_vs", {})[name] = [round(p, 2) for p in pairs]
        print(f"this / {name}, round by round: {', '.join(f'{p:.2f}' for p in pairs)} "
              f"({spread(pairs, 2)})")
        starts = [a.starts_per_s / b.starts_per_s for a, b in zip(runs["this"], runs[name])
                  if a.starts_per_s and b.starts_per_s]
        if starts:
            summary.setdefault("this_vs_starts", {})[name] = [round(p, 2) for p in starts]
            print(f"this / {name}, starts, round by round: {', '.join(f'{p:.2f}' for p in starts)} "
                  f"({spread(starts, 2)})")
    if runs.get("floor"):
        shares = [a.per_s / b.per_s for a, b in zip(runs["this"], runs["floor"]) if b.per_s]
        summary["this_vs_floor"] = [round(p, 2) for p in shares]
        print(f"this / floor (the review app against the peer's orchestration on the same host), "
              f"round by round: {', '.join(f'{p:.2f}' for p in shares)} ({spread(shares, 2)})")
    print(json.dumps({"settings": settings, "summary": summary,
                      "runs": {name: [r.figures() for r in done] for name, done in runs.items()}}))
    return 0 if all(r.failed == 0 for done in runs.values() for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
