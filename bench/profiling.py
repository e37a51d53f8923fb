"""A profile of the host for one measured phase: py-spy attached from outside, or cProfile
inside the host's event loop thread.

    --profile DIR [--profiler py-spy|cprofile] [--py-spy PATH]

``py-spy`` (the default) samples process 0 from outside, 100 times a second, the thread
that holds the GIL (``--gil``): the host runs Python on one core at a time, so those
samples are where its CPU goes; time inside SQLite with the GIL released is not in them.
It writes DIR/devhost.raw, DIR/meta.json and DIR/report.txt (``bench.profile_report``).
py-spy is not a project dependency: install it anywhere and pass ``--py-spy PATH``.

``cprofile`` needs nothing installed. The host is then started as
``python -m bench.profiling --cprofile FILE <devhost arguments>``, which runs the devhost
unchanged and, on SIGUSR1, starts ``cProfile`` in every running asyncio loop's thread (the
host loop, where requests and episodes run); on SIGUSR2 it stops them and writes the merged
stats to FILE. Activity threads without a loop of their own are not in it. cProfile
counts every call, so a profiled host runs slower than an unprofiled one: its latencies
are not figures to quote, only the shares. It writes DIR/devhost.pstats, DIR/meta.json
and DIR/report.txt (the heaviest functions, inclusive and self, and self time by part of
the host).

Either way, process 0 only: with ``--workers N`` the other processes are not profiled.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import runpy
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from bench import REPO, proc
from bench.devhost_process import DEVHOST_MODULE, Devhost

PROFILERS = ("py-spy", "cprofile")
# The host writes this beside its stats file once the file is complete.
DONE_SUFFIX = ".done"
# What the host loop thread is called (devhost/server.py); its loop is the one that matters.
HOST_LOOP_THREAD = "host loop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="profile the host during the measured phase; report in DIR")
    parser.add_argument("--profiler", choices=PROFILERS, default="py-spy",
                        help="--profile: py-spy from outside (default) or cProfile inside the host")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"),
                        help="py-spy executable for --profile (default: the one on PATH)")


class Profiling:
    """One profiled phase; does nothing when no directory was asked for, so the benchmarks
    call it unconditionally. Construct it before the host: ``launcher`` is how the host
    must be started (``Devhost(..., launcher=profiling.launcher)``)."""

    def __init__(self, out_dir: Optional[Path], py_spy: Optional[str] = None, rate: int = 100,
                 tool: str = "py-spy"):
        if tool not in PROFILERS:
            raise ValueError(f"unknown profiler {tool!r}")
        self.out_dir, self.py_spy, self.rate, self.tool = out_dir, py_spy, rate, tool
        self.host: Optional[Devhost] = None
        self._started = 0.0
        self._cpu_before: dict[str, float] = {}
        self._py_spy_process: Optional[subprocess.Popen] = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Profiling":
        return cls(args.profile, args.py_spy, tool=args.profiler)

    @property
    def _stats_path(self) -> Path:
        return self.out_dir.resolve() / "devhost.pstats"

    @property
    def launcher(self) -> tuple:
        if self.out_dir and self.tool == "cprofile":
            return ("-m", "bench.profiling", "--cprofile", str(self._stats_path))
        return DEVHOST_MODULE

    def begin(self, host: Devhost) -> None:
        if not self.out_dir:
            return
        if self.tool == "py-spy" and not self.py_spy:
            raise RuntimeError("--profile needs py-spy: pip install py-spy (any venv), then pass "
                               "--py-spy PATH or put it on PATH; or use --profiler cprofile")
        if host.launcher != self.launcher:
            raise RuntimeError("--profiler cprofile: the host was not started with Profiling.launcher")
        self.host = host
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.tool == "py-spy":
            self._start_py_spy()
        else:
            self._stats_path.with_suffix(DONE_SUFFIX).unlink(missing_ok=True)
            os.kill(host.pid, signal.SIGUSR1)
        self._cpu_before = proc.thread_cpu(host.pid)
        self._started = time.monotonic()

    def end(self) -> None:
        if not self.out_dir or not self._started:
            return
        seconds = time.monotonic() - self._started
        cpu = {tid: round(used - self._cpu_before.get(tid, 0.0), 3)
               for tid, used in proc.thread_cpu(self.host.pid).items()}
        meta = {"profiler": self.tool, "seconds": seconds, "thread_cpu_s_by_tid": cpu,
                "workers": self.host.workers}
        if self.tool == "py-spy":
            self._stop_py_spy()
            meta["rate"] = self.rate
            from bench.profile_report import summarise
            report = summarise(self.out_dir / "devhost.raw", meta)
        else:
            self._collect_cprofile()
            report = cprofile_report(self._stats_path, meta)
        (self.out_dir / "meta.json").write_text(json.dumps(meta, indent=1))
        (self.out_dir / "report.txt").write_text(report)
        print(f"profile: {self.out_dir / 'report.txt'}")
        self._started = 0.0

    def abort(self) -> None:
        """On the way out after an error: leave no py-spy running."""
        if self._py_spy_process:
            self._stop_py_spy()

    # -- py-spy, from outside -----------------------------------------------------------

    def _start_py_spy(self) -> None:
        """Attach py-spy to the running host, sampling the thread that holds the GIL.

        Attached after start-up, so imports are not in the profile.
        """
        command = [self.py_spy, "record", "--pid", str(self.host.pid), "--rate", str(self.rate),
                   "--gil", "--threads", "--format", "raw", "--output", str(self.out_dir / "devhost.raw")]
        log_path = self.host.log_path.with_suffix(".py-spy.log")
        with open(log_path, "ab") as log:
            self._py_spy_process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL)
        time.sleep(0.5)  # py-spy needs a moment to attach before the measured work starts
        if self._py_spy_process.poll() is not None:
            raise RuntimeError(f"py-spy exited at once; see {log_path}")

    def _stop_py_spy(self) -> None:
        process, self._py_spy_process = self._py_spy_process, None
        if process and process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- cProfile, inside the host --------------------------------------------------------

    def _collect_cprofile(self, timeout_s: float = 60.0) -> None:
        done = self._stats_path.with_suffix(DONE_SUFFIX)
        os.kill(self.host.pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout_s
        while not done.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the host wrote no profile within {timeout_s:.0f}s; "
                                   f"see {self.host.log_path}")
            time.sleep(0.05)


def component_of(filename: str, function: str) -> str:
    """The part of the host a function belongs to, as ``bench.profile_report`` names them."""
    from bench.profile_report import COMPONENTS
    if filename == "~":  # a C function: cProfile names it, not its file
        return "SQLite (C calls)" if "sqlite3" in function else f"C built-ins ({function[:60]})"
    for needle, name in COMPONENTS:
        if needle in filename:
            return name
    if "site-packages/" in filename:
        return "other " + filename.split("site-packages/", 1)[1].split("/", 1)[0]
    return "stdlib " + Path(filename).name


def cprofile_report(stats_path: Path, meta: dict, top: int = 30) -> str:
    stats = pstats.Stats(str(stats_path))
    rows = stats.stats  # (file, line, function) -> (calls, primitive calls, tottime, cumtime, callers)
    total = sum(row[2] for row in rows.values()) or 1e-9
    lines = [f"cProfile in the host loop thread, {meta['seconds']:.1f} s measured: "
             f"{total:.2f} s of profiled time (cProfile's own overhead included)."]
    cpu = meta.get("thread_cpu_s_by_tid") or {}
    if cpu:
        lines.append(f"Host CPU in that time, all threads (from /proc): {sum(cpu.values()):.2f} s")
    if meta.get("workers", 1) > 1:
        lines.append(f"Process 0 of {meta['workers']} only: the other host processes were not profiled.")

    def name(key) -> str:
        filename, line, function = key
        return function if filename == "~" else f"{function} ({_short(filename)}:{line})"

    by_part = Counter()
    for key, row in rows.items():
        by_part[component_of(key[0], key[2])] += row[2]
    lines += ["", "Self time by part of the host:"]
    for part, seconds in by_part.most_common(20):
        lines.append(f"  {100 * seconds / total:5.1f}%  {seconds:8.3f} s  {part}")
    lines += ["", "Top functions, inclusive (cumulative time; calls):"]
    for key, row in sorted(rows.items(), key=lambda kv: -kv[1][3])[:top]:
        lines.append(f"  {100 * row[3] / total:5.1f}%  {row[3]:8.3f} s  {row[0]:>9}  {name(key)}")
    lines += ["", "Top functions, self (time in the function itself; calls):"]
    for key, row in sorted(rows.items(), key=lambda kv: -kv[1][2])[:top]:
        lines.append(f"  {100 * row[2] / total:5.1f}%  {row[2]:8.3f} s  {row[0]:>9}  {name(key)}")
    return "\n".join(lines) + "\n"


def _short(filename: str) -> str:
    """A path from the package or repository folder on, as py-spy shows them."""
    for marker in ("site-packages/", "/lib/python3", str(REPO) + "/"):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest.split("/", 1)[1] if marker == "/lib/python3" and "/" in rest else rest
    return filename


# -- the host side of --profiler cprofile --------------------------------------------------

class _LoopProfiler:
    """Start and stop cProfile in the threads of the asyncio loops that run in this process."""

    def __init__(self, out: Path):
        import cProfile
        self.out = out
        self._new_profile = cProfile.Profile
        self._loops: dict[asyncio.AbstractEventLoop, str] = {}
        self._profiles: list = []
        self._lock = threading.Lock()
        self._install()

    def _install(self) -> None:
        original = asyncio.BaseEventLoop.run_forever
        loops, lock = self._loops, self._lock

        def run_forever(loop):
            with lock:
                loops[loop] = threading.current_thread().name
            try:
                return original(loop)
            finally:
                with lock:
                    loops.pop(loop, None)
        asyncio.BaseEventLoop.run_forever = run_forever
        signal.signal(signal.SIGUSR1, lambda *_: self.begin())
        signal.signal(signal.SIGUSR2, lambda *_: self.end())

    def _chosen_loops(self) -> list:
        with self._lock:
            running = dict(self._loops)
        chosen = [loop for loop, thread in running.items() if thread == HOST_LOOP_THREAD]
        return chosen or list(running)

    def begin(self) -> None:
        for loop in self._chosen_loops():
            profile = self._new_profile()
            self._profiles.append((loop, profile))
            loop.call_soon_threadsafe(profile.enable)  # enable() profiles the calling thread

    def end(self) -> None:
        stopped = []
        for loop, profile in self._profiles:
            event = threading.Event()

            def stop(profile=profile, event=event):
                profile.disable()
                event.set()
            try:
                loop.call_soon_threadsafe(stop)
            except RuntimeError:  # the loop closed meanwhile
                continue
            if event.wait(30):
                stopped.append(profile)
        self._profiles = []
        if stopped:
            stats = pstats.Stats(stopped[0])
            for profile in stopped[1:]:
                stats.add(profile)
            stats.dump_stats(str(self.out))
        self.out.with_suffix(DONE_SUFFIX).write_text(str(len(stopped)))


def host_main(argv: list[str]) -> None:
    """``python -m bench.profiling --cprofile FILE <devhost arguments>``: the devhost, as
    ``python -m devhost`` would run it, with the SIGUSR1/SIGUSR2 profiler installed."""
    if len(argv) < 2 or argv[0] != "--cprofile":
        sys.exit("usage: python -m bench.profiling --cprofile FILE <devhost arguments>")
    _LoopProfiler(Path(argv[1]))
    sys.argv = ["devhost", *argv[2:]]
    runpy.run_module("devhost", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    host_main(sys.argv[1:])
