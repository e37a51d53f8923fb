"""Extra host processes for ``--workers N``, as the Functions host runs several language
workers (FUNCTIONS_WORKER_PROCESS_COUNT).

Process 0 (the one started by the user) owns shard 0 and starts processes 1..N-1, each a
``python -m devhost ... --shard K/N`` on the same port and state. Each runs the instances
of its own shard, so one instance still has one episode at a time. A worker that exits is
started again; a worker never outlives process 0, even after ``kill -9``.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Optional

log = logging.getLogger("devhost")
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        log.warning("cannot tie this worker's life to its parent on this platform")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class WorkerProcesses:
    def __init__(self, base_args: list[str], count: int):
        self.base_args = base_args
        self.count = count
        self._processes: dict[int, subprocess.Popen] = {}
        self._stopping = threading.Event()
        self._watcher: Optional[threading.Thread] = None

    def start(self) -> None:
        for index in range(1, self.count):
            self._spawn(index)
        self._watcher = threading.Thread(target=self._watch, name="workers", daemon=True)
        self._watcher.start()

    def _spawn(self, index: int) -> None:
        args = [sys.executable, "-m", "devhost", *self.base_args, "--shard", f"{index}/{self.count}",
                "--parent-pid", str(os.getpid())]
        self._processes[index] = subprocess.Popen(args)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for index, process in list(self._processes.items()):
                if process.poll() is not None and not self._stopping.is_set():
                    log.error("worker %d exited with code %s; starting it again", index, process.returncode)
                    self._spawn(index)

    def stop(self) -> None:
        self._stopping.set()
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
