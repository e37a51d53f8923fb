"""Small helpers shared by the devhost tests."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

from devhost.engine import E

# Tests talk to 127.0.0.1 only; a proxy from the environment must not get in the way.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def events(host, instance_id: str) -> list[tuple]:
    """The scheduling and completion events of a history as (type, task id) pairs."""
    pairs = []
    for e in host.history(instance_id):
        kind = e["EventType"]
        if kind in (E.TASK_SCHEDULED, E.TIMER_CREATED, E.SUB_CREATED):
            pairs.append((kind, e["EventId"]))
        elif kind in (E.TASK_COMPLETED, E.TASK_FAILED, E.SUB_COMPLETED, E.SUB_FAILED):
            pairs.append((kind, e["TaskScheduledId"]))
        elif kind == E.TIMER_FIRED:
            pairs.append((kind, e["TimerId"]))
    return pairs


def pending_timers(host, instance_id: str) -> list[str]:
    return [m.event["FireAt"] for m in host.store.due_messages(instance_id, float("inf"))
            if m.event["EventType"] == E.TIMER_FIRED]


def module_of(host, orchestrator: str) -> dict:
    """The globals of the fixture module that defines an orchestrator."""
    return host.registry.orchestrators[orchestrator].orchestrator_function.__globals__


@dataclass
class Reply:
    status: int
    headers: Any
    text: str

    def json(self):
        return json.loads(self.text)


def call(url: str, method: str = "GET", body: Any = None, raw: Optional[bytes] = None,
         headers: Optional[dict] = None) -> Reply:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read().decode())


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition"):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
