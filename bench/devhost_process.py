"""A devhost as a child process of the benchmark: start it, kill it as a crash would, stop
it, and read its memory and CPU.

Every benchmark runs the devhost as a separate process (the way ``make run`` does), so
the client's own CPU use does not land in the host's figures, and so the host's peak RSS
can be read from ``/proc/<pid>/status`` (VmHWM) without counting the client. With
``--workers N`` the host is N processes (process 0, started here, and the workers it
starts); CPU and memory figures cover all of them, found by the state folder on their
command lines, and are also given per process.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from bench import REPO, TASK_HUB, proc

PYTHON = sys.executable
# How long the workers may outlive process 0: PR_SET_PDEATHSIG kills them at once, so
# anything alive after this long survived its parent.
STRAY_WAIT_S = 10.0
# What runs the host: ``python -m devhost``, unless a profiler wraps it (bench.profiling).
DEVHOST_MODULE = ("-m", "devhost")
# The banner line that says how many processes the host runs (every release prints it).
WORKERS_LINE = re.compile(rb"Workers: +(\d+) process")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The host options every benchmark that starts a ``Devhost`` takes."""
    parser.add_argument("--workers", type=int, default=1,
                        help="host processes (python -m devhost --workers N; default 1)")


def free_port() -> int:
    """A port the kernel just handed out on loopback; the host binds it right after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Devhost:
    """``python -m devhost --workers N`` as a child process on a fixed loopback port.

    The port stays the same across restarts, so a client that retries after a crash
    reaches the new process at the same URL. Output goes to a log file, never to a pipe
    nobody reads (a full pipe would stall the host); the workers inherit it.

    ``workers=None`` leaves ``--workers`` out, so the host runs as many processes as its
    default gives; the count is then read from its banner. ``tree`` is the checkout whose
    devhost runs (another commit's, for an A/B), with ``python`` (default: this one).
    """

    def __init__(self, data_dir: Path, publish_dir: Path, log_path: Path, *,
                 app_dir: Optional[Path] = None, port: Optional[int] = None,
                 workers: Optional[int] = 1, extra_env: Optional[dict] = None,
                 launcher: tuple = DEVHOST_MODULE, tree: Path = REPO, python: str = PYTHON):
        self.tree, self.python = tree, python
        self.app_dir, self.data_dir, self.publish_dir = app_dir or tree, data_dir, publish_dir
        self.workers = workers
        self.log_path = log_path
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.launcher = tuple(launcher)
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        # The highest VmHWM of each host process ("0/N" is process 0, "K/N" worker K), over
        # every process that held that place: a restarted one takes its predecessor's place.
        self.peak_rss_kb_by_process: dict[str, int] = {}
        self.startup_s: list[float] = []
        # Host processes still alive STRAY_WAIT_S after process 0 died: each one is a
        # worker that did not die with it, which --workers promises cannot happen.
        self.stray_processes = 0

    def _command(self) -> list[str]:
        command = [self.python, *self.launcher, str(self.app_dir), "--port", str(self.port),
                   "--data", str(self.data_dir)]
        return command if self.workers is None else command + ["--workers", str(self.workers)]

    def _banner_workers(self) -> Optional[int]:
        """The process count the host's banner states, once it has printed it."""
        found = WORKERS_LINE.findall(self.log_path.read_bytes())
        return int(found[-1]) if found else None

    def _env(self) -> dict:
        env = dict(os.environ)
        # Only the offline writer: a benchmark never calls a model service.
        for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL",
                     "OPENAI_API_KEY"):
            env.pop(name, None)
        env.update({"HITL_WRITER": "offline", "HITL_PUBLISH_DIR": str(self.publish_dir),
                    "PYTHONUNBUFFERED": "1"}, **self.extra_env)
        env.setdefault("TASKHUB_NAME", TASK_HUB)
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
            self.proc = subprocess.Popen(self._command(), cwd=str(self.tree), env=self._env(),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devhost exited with {self.proc.returncode} during start; "
                                   f"see {self.log_path}")
            expected = self.workers or self._banner_workers()
            if expected and proc.loopback_listeners(self.port) >= expected and self._healthy():
                self.workers = expected
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

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def processes(self) -> dict[int, str]:
        """Live host processes, pid -> "K/N" (K = 0 for process 0, else the worker's shard).

        Found by the ``--data`` folder on their command line, which is unique to this run:
        a worker is a child of process 0 only while process 0 lives, and whether it dies
        with it is one of the things to check.
        """
        found = {}
        for pid, argv in proc.processes_with_argument("--data", str(self.data_dir)).items():
            found[pid] = argv[argv.index("--shard") + 1] if "--shard" in argv else f"0/{self.workers}"
        return found

    def sample_memory(self) -> Optional[int]:
        """Fold each live host process's VmHWM into ``peak_rss_kb_by_process``; returns the
        sum of their current VmRSS, or None when none is running."""
        current = None
        for pid, label in self.processes().items():
            hwm, rss = proc.status_kb(pid, "VmHWM"), proc.status_kb(pid, "VmRSS")
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
            fields = proc.stat_fields(Path(f"/proc/{pid}/stat"))
            if fields:
                snapshot[(pid, proc.start_time_of(fields))] = proc.cpu_seconds_of(fields)
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

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM: process 0 stops its workers, closes its store and exits."""
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


@contextmanager
def scratch_folder(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh folder for one run's state, removed afterwards unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"state kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
