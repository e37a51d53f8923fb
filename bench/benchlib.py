"""Shared pieces of the benchmarks: a devhost child process, an HTTP client that times
every request, percentiles, and the settings/figures printout.

Every benchmark runs the devhost as a separate process (the way ``make run`` does), so
the client's own CPU use does not land in the host's figures, and so the host's peak RSS
can be read from ``/proc/<pid>/status`` (VmHWM) without counting the client. With
``--workers N`` the host is N processes (process 0, started here, and the workers it
starts); CPU and memory figures cover all of them, found by the state folder on their
command lines, and are also given per process.
"""
from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# A request that gets no answer in this long counts as an error, so no loop waits forever.
REQUEST_TIMEOUT_S = 30.0
# How long the workers may outlive process 0: PR_SET_PDEATHSIG kills them at once, so
# anything alive after this long survived its parent.
STRAY_WAIT_S = 10.0


def free_port() -> int:
    """A port the kernel just handed out on loopback; the host binds it right after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> Optional[float]:
    """Nearest-rank percentile: always a value that was actually measured."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def summarize(values_ms: list[float]) -> dict:
    return {"n": len(values_ms), "p50_ms": _round(percentile(values_ms, 50)),
            "p99_ms": _round(percentile(values_ms, 99)),
            "max_ms": _round(max(values_ms) if values_ms else None)}


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 2)


def proc_status_kb(pid: int, field_name: str) -> Optional[int]:
    """A ``VmHWM``/``VmRSS`` line of /proc/<pid>/status in kB; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def proc_stat_fields(path: Path) -> Optional[list[str]]:
    """The fields of a /proc/<pid>/stat (or task stat) file after the command name: index 0
    is field 3 (state); None once the process is gone."""
    try:
        with open(path, encoding="ascii") as stat:
            # The command name may hold spaces; the fields after its closing ')' do not.
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_cpu_seconds_path(path: Path) -> Optional[float]:
    """User + system CPU seconds from a /proc stat file."""
    fields = proc_stat_fields(path)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                                capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "aiohttp": importlib.metadata.version("aiohttp"), "commit": commit}


class Devhost:
    """``python -m devhost --workers N`` as a child process on a fixed loopback port.

    The port stays the same across restarts, so a client that retries after a crash
    reaches the new process at the same URL. Output goes to a log file, never to a pipe
    nobody reads (a full pipe would stall the host); the workers inherit it.
    """

    def __init__(self, data_dir: Path, publish_dir: Path, log_path: Path, *,
                 app_dir: Path = REPO, port: Optional[int] = None, workers: int = 1,
                 extra_env: Optional[dict] = None):
        self.app_dir, self.data_dir, self.publish_dir = app_dir, data_dir, publish_dir
        self.workers = workers
        self.log_path = log_path
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        # The highest VmHWM of each host process ("0/N" is process 0, "K/N" worker K), over
        # every process that held that place: a restarted one takes its predecessor's place.
        self.peak_rss_kb_by_process: dict[str, int] = {}
        self.startup_s: list[float] = []
        # Host processes still alive STRAY_WAIT_S after process 0 died: each one is a
        # worker that did not die with it, which --workers promises cannot happen.
        self.stray_processes = 0
        self._profiler: Optional[subprocess.Popen] = None

    def _command(self) -> list[str]:
        return [PYTHON, "-m", "devhost", str(self.app_dir), "--port", str(self.port),
                "--data", str(self.data_dir), "--workers", str(self.workers)]

    def _env(self) -> dict:
        env = dict(os.environ)
        # Only the offline writer: a benchmark never calls a model service.
        for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL",
                     "OPENAI_API_KEY"):
            env.pop(name, None)
        env.update({"HITL_WRITER": "offline", "HITL_PUBLISH_DIR": str(self.publish_dir),
                    "PYTHONUNBUFFERED": "1"}, **self.extra_env)
        return env

    def start(self, timeout_s: float = 60.0) -> None:
        """Start process 0 and return once every one of the N processes is listening.

        Process 0 answers health checks before its workers have imported the app; a
        measurement started then would run on fewer processes than it claims to.
        """
        self.publish_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== devhost start #{self.starts + 1} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self._command(), cwd=str(REPO), env=self._env(),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devhost exited with {self.proc.returncode} during start; "
                                   f"see {self.log_path}")
            if self._listeners() >= self.workers and self._healthy():
                self.startup_s.append(time.monotonic() - started)
                return
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"devhost not ready with {self.workers} process(es) within "
                           f"{timeout_s:.0f}s; see {self.log_path}")

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Connection: close\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def _listeners(self) -> int:
        """Sockets listening on 127.0.0.1:port: one per host process (SO_REUSEPORT)."""
        local = f"0100007F:{self.port:04X}"
        with open("/proc/net/tcp", encoding="ascii") as table:
            return sum(1 for line in table
                       if line.split()[1:2] == [local] and line.split()[3] == "0A")

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def processes(self) -> dict[int, str]:
        """Live host processes, pid -> "K/N" (K = 0 for process 0, else the worker's shard).

        Found by the ``--data`` folder on their command line, which is unique to this run:
        a worker is a child of process 0 only while process 0 lives, and whether it dies
        with it is one of the things to check. A zombie has no command line, so a dead
        process that is not reaped yet is not counted.
        """
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "--data" not in argv or argv[argv.index("--data") + 1:][:1] != [str(self.data_dir)]:
                continue
            shard = argv[argv.index("--shard") + 1] if "--shard" in argv else f"0/{self.workers}"
            found[int(entry.name)] = shard
        return found

    def sample_memory(self) -> Optional[int]:
        """Fold each live host process's VmHWM into ``peak_rss_kb_by_process``; returns the
        sum of their current VmRSS, or None when none is running."""
        current = None
        for pid, label in self.processes().items():
            hwm, rss = proc_status_kb(pid, "VmHWM"), proc_status_kb(pid, "VmRSS")
            if hwm:
                self.peak_rss_kb_by_process[label] = max(
                    self.peak_rss_kb_by_process.get(label, 0), hwm)
            if rss:
                current = (current or 0) + rss
        return current

    @property
    def peak_rss_kb(self) -> int:
        """The sum of every host process's own peak: an upper bound of what the processes
        held together (their peaks need not coincide, and pages they share, such as the
        interpreter's code, count once in each)."""
        return sum(self.peak_rss_kb_by_process.values())

    def cpu_snapshot(self) -> dict[tuple[int, int], float]:
        """CPU seconds of each live host process, by (pid, start time), so a process that
        replaces another with the same pid is not mistaken for it."""
        snapshot = {}
        for pid in self.processes():
            fields = proc_stat_fields(Path(f"/proc/{pid}/stat"))
            if fields:
                snapshot[(pid, int(fields[19]))] = \
                    (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return snapshot

    def cpu_since(self, before: dict[tuple[int, int], float]) -> dict[str, float]:
        """CPU seconds each live host process used since ``before``, by "K/N". A process
        that exited in between is not counted (only the crash soak kills processes, and it
        reports no CPU figures)."""
        labels = self.processes()
        used: dict[str, float] = {}
        for (pid, started), seconds in self.cpu_snapshot().items():
            label = labels.get(pid, "?")
            used[label] = round(used.get(label, 0.0) + seconds - before.get((pid, started), 0.0), 3)
        return used

    def _await_no_processes(self) -> None:
        """After process 0 ended: its workers must follow within STRAY_WAIT_S. Any that do
        not are counted as strays and killed here, by pid, so the next start is clean."""
        deadline = time.monotonic() + STRAY_WAIT_S
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in left:
            self.stray_processes += 1
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill9(self) -> None:
        """SIGKILL process 0 only, as a crash would; its workers must go down with it."""
        if self.proc and self.proc.poll() is None:
            self.sample_memory()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self._await_no_processes()

    # -- profiling ------------------------------------------------------------------

    def start_profiler(self, py_spy: str, raw_out: Path, rate: int = 100) -> None:
        """Attach py-spy to the running host, sampling the thread that holds the GIL.

        Attached after start-up, so imports are not in the profile. Only GIL holders are
        sampled (``--gil``): the host runs Python on one core at a time, so those samples
        are where its CPU goes; time inside SQLite with the GIL released is not in them.
        Process 0 only: with ``--workers N`` its shard's episodes and the requests the
        kernel hands it are in the profile, the other processes' share is not.
        """
        command = [py_spy, "record", "--pid", str(self.pid), "--rate", str(rate), "--gil",
                   "--threads", "--format", "raw", "--output", str(raw_out)]
        with open(self.log_path.with_suffix(".py-spy.log"), "ab") as log:
            self._profiler = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)
        time.sleep(0.5)  # py-spy needs a moment to attach before the measured work starts
        if self._profiler.poll() is not None:
            raise RuntimeError(f"py-spy exited at once; see {self.log_path.with_suffix('.py-spy.log')}")

    def stop_profiler(self) -> None:
        if self._profiler and self._profiler.poll() is None:
            self._profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self._profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._profiler.kill()
        self._profiler = None

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds of each live thread of the host, by thread id."""
        cpu = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            seconds = proc_cpu_seconds_path(task / "stat")
            if seconds is not None:
                cpu[task.name] = seconds
        return cpu

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM: process 0 stops its workers, closes its store and exits."""
        self.stop_profiler()
        if not self.proc or self.proc.poll() is not None:
            return
        self.sample_memory()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
        self._await_no_processes()


class MemorySampler:
    """Samples the host's VmHWM/VmRSS on a timer, so a peak between phases is not missed."""

    def __init__(self, host: Devhost, interval_s: float = 0.5):
        self.host, self.interval_s = host, interval_s
        self.max_rss_kb = 0
        self._task: Optional[asyncio.Task] = None

    async def _run(self) -> None:
        while True:
            rss = self.host.sample_memory()
            if rss:
                self.max_rss_kb = max(self.max_rss_kb, rss)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.host.sample_memory()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict = field(default_factory=dict)


@dataclass
class Recorder:
    """Latency of every request by route name, and every unexpected outcome."""
    latencies_ms: dict = field(default_factory=lambda: defaultdict(list))
    errors: dict = field(default_factory=lambda: defaultdict(int))
    error_samples: list = field(default_factory=list)

    def error(self, route: str, what: str, detail: str = "") -> None:
        self.errors[f"{route} {what}"] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{route} {what} {detail[:200]}")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def table(self, routes: tuple[str, ...]) -> dict:
        return {route: summarize(self.latencies_ms.get(route, [])) for route in routes}


NO_REPLY = 0    # Reply.status when a request was sent and no reply came
NOT_SENT = -1   # Reply.status when no connection could be made


class Client:
    """Times each request under a route name; a failed exchange comes back with status
    NO_REPLY or NOT_SENT instead of raising, so callers decide what a failure means.

    A minimal HTTP/1.1 client over asyncio streams, with keep-alive connections. The
    client shares the machine's cores with the host it measures, so it should cost as
    little as possible: this one spends a small fraction of a general-purpose client's
    CPU per request (docs/PERFORMANCE.md).
    """

    def __init__(self, base_url: str, recorder: Recorder, connections: int):
        self.base_url, self.recorder = base_url, recorder
        address = base_url.split("://", 1)[1].rstrip("/")
        self._host, port = address.rsplit(":", 1)
        self._port = int(port)
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def request(self, route: str, method: str, path: str, body: Any = None,
                      record: bool = True, headers: Optional[dict] = None) -> Reply:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}",
                f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        started = time.perf_counter()
        async with self._slots:
            try:
                connection = self._idle_connection() or await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError) as exc:
                # Refused or unreachable: the request never left, so it cannot have taken effect.
                return Reply(NOT_SENT, f"{type(exc).__name__}: {exc}")
            try:
                status, reply_headers, raw, keep = await asyncio.wait_for(
                    self._exchange(connection, message), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, ValueError) as exc:
                # Sent, and no answer came back: it may or may not have taken effect.
                connection[1].close()
                return Reply(NO_REPLY, f"{type(exc).__name__}: {exc}")
            if keep:
                self._idle.append(connection)
            else:
                connection[1].close()
        if record:
            self.recorder.latencies_ms[route].append((time.perf_counter() - started) * 1000)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return Reply(status, parsed, reply_headers)

    def _idle_connection(self):
        """A kept-alive connection the server has not closed meanwhile (it may have restarted)."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    @staticmethod
    async def _exchange(connection, message: bytes):
        reader, writer = connection
        writer.write(message)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                raw += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, raw, headers.get("connection", "").lower() != "close"

    # -- the app's routes ------------------------------------------------------------

    async def run(self, topic: str, **options) -> Reply:
        return await self.request("run", "POST", "/api/hitl/run", {"topic": topic, **options})

    async def status(self, instance_id: str) -> Reply:
        return await self.request("status", "GET", f"/api/hitl/status/{instance_id}")

    async def approve(self, instance_id: str, approved: bool, feedback: str = "",
                      round_: Optional[int] = None) -> Reply:
        body: dict = {"approved": approved}
        if feedback:
            body["feedback"] = feedback
        if round_ is not None:
            body["round"] = round_
        return await self.request("approve", "POST", f"/api/hitl/approve/{instance_id}", body)

    async def health(self) -> Reply:
        return await self.request("health", "GET", "/api/health")


def stage_of(body: Any) -> tuple[Optional[str], Optional[str], Optional[int]]:
    """(runtimeStatus, customStatus.stage, customStatus.round) of a status reply body."""
    if not isinstance(body, dict):
        return None, None, None
    custom = body.get("customStatus") if isinstance(body.get("customStatus"), dict) else {}
    return body.get("runtimeStatus"), custom.get("stage"), custom.get("round")


async def poll_until(client: Client, instance_id: str, done, *, interval_s: float,
                     timeout_s: float) -> tuple[Optional[Reply], float]:
    """Poll the status route until ``done(body)``; returns (reply or None, seconds waited).

    Bounded by ``timeout_s``; a failed or unexpected reply is recorded as an error and the
    poll goes on, so one slow answer does not end a lifecycle early.
    """
    started = time.perf_counter()
    deadline = started + timeout_s
    while True:
        reply = await client.status(instance_id)
        if reply.status == 200:
            if done(reply.body):
                return reply, time.perf_counter() - started
        else:
            client.recorder.error("status", f"HTTP {reply.status}", str(reply.body))
        if time.perf_counter() >= deadline:
            client.recorder.error("status", "poll timeout", instance_id)
            return None, time.perf_counter() - started
        await asyncio.sleep(interval_s)


def awaiting_round(round_: int):
    def check(body: Any) -> bool:
        runtime, stage, current = stage_of(body)
        return stage == "awaiting_review" and current == round_ and runtime == "Running"
    return check


def finished(body: Any) -> bool:
    return stage_of(body)[0] in ("Completed", "Failed", "Terminated")


def parse_event_time(text: str) -> float:
    """Epoch seconds of a devhost history Timestamp (``...T..:..:..ffffffZ``, UTC)."""
    from datetime import datetime, timezone
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return moment.timestamp()


async def completed_at(client: Client, instance_id: str) -> Optional[float]:
    """Epoch time the host stamped on the instance's ExecutionCompleted event.

    The stamp is the start of the episode that finished the instance, so it is earlier
    than the commit by one replay; a cross-check on the polled figure, not a substitute.
    """
    reply = await client.request(
        "history", "GET",
        f"/runtime/webhooks/durabletask/instances/{instance_id}?showHistory=true", record=False)
    if not isinstance(reply.body, dict):
        return None
    for event in reply.body.get("historyEvents") or []:
        if event.get("EventType") == "ExecutionCompleted":
            return parse_event_time(event["Timestamp"])
    return None


class Profiling:
    """py-spy on the host for one measured phase; writes DIR/devhost.raw, meta.json, report.txt.

    Does nothing when no directory was asked for, so the benchmarks call it unconditionally.
    """

    def __init__(self, host: Devhost, out_dir: Optional[Path], py_spy: Optional[str],
                 rate: int = 100):
        self.host, self.out_dir, self.py_spy, self.rate = host, out_dir, py_spy, rate
        self._started = 0.0
        self._cpu_before: dict[str, float] = {}

    def begin(self) -> None:
        if not self.out_dir:
            return
        if not self.py_spy:
            raise RuntimeError("--profile needs py-spy: pip install py-spy (any venv), "
                               "then pass --py-spy PATH or put it on PATH")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.host.start_profiler(self.py_spy, self.out_dir / "devhost.raw", self.rate)
        self._cpu_before = self.host.thread_cpu()
        self._started = time.monotonic()

    def end(self) -> None:
        if not self.out_dir or not self._started:
            return
        seconds = time.monotonic() - self._started
        cpu = {tid: round(used - self._cpu_before.get(tid, 0.0), 3)
               for tid, used in self.host.thread_cpu().items()}
        self.host.stop_profiler()
        meta = {"rate": self.rate, "seconds": seconds, "thread_cpu_s_by_tid": cpu,
                "workers": self.host.workers}
        (self.out_dir / "meta.json").write_text(json.dumps(meta, indent=1))
        from profile_report import summarise
        report = summarise(self.out_dir / "devhost.raw", meta)
        (self.out_dir / "report.txt").write_text(report)
        print(f"profile: {self.out_dir / 'report.txt'}")
        self._started = 0.0


def print_settings(title: str, settings: dict) -> None:
    print(f"== {title}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print("machine:  " + ", ".join(f"{k}={v}" for k, v in machine_info().items()))


def print_table(rows: dict) -> None:
    print(f"  {'route':<24}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, row in rows.items():
        cells = [f"{row[k]:>10.2f}" if row[k] is not None else f"{'-':>10}"
                 for k in ("p50_ms", "p99_ms", "max_ms")]
        print(f"  {name:<24}{row['n']:>7}{''.join(cells)}")


def print_result(result: dict) -> None:
    """The last line of every benchmark: one JSON object, for tests and for the docs."""
    print(json.dumps(result, sort_keys=True), flush=True)
