"""Small helpers shared by the devhost tests."""
from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from devhost.history import EventType


def events(host, instance_id: str) -> list[tuple]:
    """The scheduling and completion events of a history as (type, task id) pairs."""
    pairs = []
    for e in host.history(instance_id):
        kind = e["EventType"]
        if kind in (EventType.TASK_SCHEDULED, EventType.TIMER_CREATED,
                    EventType.SUB_ORCHESTRATION_INSTANCE_CREATED):
            pairs.append((kind, e["EventId"]))
        elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED,
                      EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                      EventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
            pairs.append((kind, e["TaskScheduledId"]))
        elif kind == EventType.TIMER_FIRED:
            pairs.append((kind, e["TimerId"]))
    return pairs


def module_of(host, orchestrator: str) -> dict:
    """The globals of the fixture module that defines an orchestrator."""
    return host.registry.orchestrators[orchestrator].orchestrator_function.__globals__


REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevHostProcess:
    """``python -m devhost`` in a child process, ready once its banner is printed."""

    def __init__(self, app_dir: Path, data_dir: Path, log_path: Path, env: Optional[dict] = None,
                 startup_timeout: float = 20.0, args: tuple[str, ...] = (),
                 python: str = sys.executable):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [python, "-m", "devhost", str(app_dir), "--port", str(self.port),
             "--data", str(data_dir), *args],
            cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
            stderr=self._log, text=True)
        self.lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.banner = self._read_banner(startup_timeout)

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def _read_banner(self, timeout: float) -> str:
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line == "":
                break
            seen.append(line)
            if "/runtime/webhooks/durabletask/instances" in line:
                return "".join(seen)
        self.kill()
        raise AssertionError(f"devhost did not start:\n{''.join(seen)}\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> tuple[int, str]:
        """SIGTERM; returns the exit code and the rest of stdout."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self._log.close()
        rest = []
        while (line := self.lines.get(timeout=5)) != "":
            rest.append(line)
        return code, "".join(rest)


def run(host, orchestrator, input=None, instance_id=None) -> str:
    """Start an orchestration in process and run everything that becomes due."""
    instance_id = host.start(orchestrator, input, instance_id)
    host.run_until_idle()
    return instance_id


def of_type(history: list[dict], kind) -> list[dict]:
    return [e for e in history if e["EventType"] == kind]


def execution_of(host, instance_id: str) -> Optional[str]:
    """The id of the instance's current execution, from its ExecutionStarted event (None
    before its first episode)."""
    started = of_type(host.history(instance_id), EventType.EXECUTION_STARTED)
    return started[0]["OrchestrationInstance"]["ExecutionId"] if started else None


def public_history(host, instance_id: str) -> list[dict]:
    """``GET /instances/{id}?showHistory=true&showHistoryOutput=true`` through the API's
    own handler (no socket): the historyEvents DurableClient shows."""
    reply = asyncio.run(host.api.handle("GET", f"/instances/{instance_id}", "http://localhost",
                                        "showHistory=true&showHistoryOutput=true", {}, b""))
    return reply.payload["historyEvents"]
