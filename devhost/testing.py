"""Test fixtures for Durable Functions apps: the app on a devhost, under the test's control.

``TestingHost`` is a ``DevHost`` made for tests. By default it runs the app in process on
a ``ManualClock``: nothing runs until the test says so, and time moves only when the test
moves it, so a 72-hour timeout takes milliseconds. Its state lives in a temporary folder
that is removed when it closes, and ``local.settings.json`` is not read::

    from devhost.testing import TestingHost

    with TestingHost("path/to/app") as host:
        instance_id = host.start("approval_workflow", {"amount": 50})
        host.run_until_idle()                  # everything due now, activities included
        host.raise_event(instance_id, "Approved", True)
        status = host.wait_for_instance(instance_id)   # moves the clock timer by timer
        assert status["runtimeStatus"] == "Completed"

``TestingHost.served`` starts it over HTTP on a free port, on the real clock, as
``python -m devhost`` serves it; ``base_url`` says where::

    with TestingHost.served("path/to/app") as host:
        urllib.request.urlopen(f"{host.base_url}/api/orders")
        host.wait_for_instance(instance_id, lambda status: status["customStatus"] == "shipped")

``devhost.pytest_plugin`` gives both as pytest fixtures.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .clock import ManualClock, SystemClock, parse_iso
from .history import ActionType, EventType
from .host import DevHost
from .replay import actions_of, determinism_problem
from .runner import run_episodes_safely
from .storage import StoreUnavailable

__all__ = ["ConditionNotMet", "ManualClock", "ReplayResult", "SystemClock", "TestingHost", "wait_until"]

FINAL_STATUSES = ("Completed", "Failed", "Terminated", "Canceled")
# How far skip_time moves the clock before it gives up: past any timer a test means.
SKIP_LIMIT = timedelta(days=400)
_CALLS = (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY,
          ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY)


class ConditionNotMet(AssertionError):
    """What a test waited for did not happen."""


def wait_until(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02,
               what: str = "the condition") -> Any:
    """Call ``check`` until it returns something truthy and return that; after
    ``timeout`` seconds, fail with ``what`` and the last value it returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ConditionNotMet(f"{what}: not met within {timeout:g} s; last value: {value!r}")
        time.sleep(interval)


@dataclass(frozen=True)
class ReplayResult:
    """What an orchestrator's code does today with an instance's recorded history."""
    done: bool
    output: Any                 # what it returns, once done
    scheduled: list[str]        # the activities and sub-orchestrators it calls, in order
    problem: Optional[str]      # where the code departs from the history, or what it raised


class TestingHost(DevHost):
    """A ``DevHost`` for tests (see the module's docstring). ``data_dir`` keeps the state
    in a folder of the test's choosing instead of a temporary one; ``clock`` replaces the
    manual clock; the other options are ``DevHost``'s."""

    __test__ = False  # a fixture, not a test class, whatever pytest makes of its name

    def __init__(self, app_dir: str | Path = ".", data_dir: Optional[str | Path] = None,
                 clock=None, *, local_settings: bool = False, **options):
        self._temporary_state: Optional[tempfile.TemporaryDirectory] = None
        if data_dir is None:
            self._temporary_state = tempfile.TemporaryDirectory(prefix="devhost-state-")
            data_dir = self._temporary_state.name
        try:
            super().__init__(app_dir, data_dir, clock or ManualClock(),
                             local_settings=local_settings, **options)
        except BaseException:
            self._remove_temporary_state()
            raise

    @classmethod
    def served(cls, app_dir: str | Path = ".", data_dir: Optional[str | Path] = None, clock=None,
               *, port: int = 0, **options) -> "TestingHost":
        """The app served over HTTP on ``port`` (a free one unless given), its work run in
        the background, on the real clock unless given another."""
        host = cls(app_dir, data_dir, clock or SystemClock(), **options)
        try:
            host.serve(port=port)
        except BaseException:
            host.close()
            raise
        return host

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._remove_temporary_state()

    def _remove_temporary_state(self) -> None:
        if self._temporary_state is not None:
            self._temporary_state.cleanup()

    # -- running work, in process ----------------------------------------------------

    def step(self, instance_id: str) -> bool:
        """Run one episode of an instance: what has been sent to it so far goes through its
        orchestrator once, as the extension runs one work item. What the episode schedules
        (activities, timers, other instances' work) waits for ``run_until_idle``. False
        when nothing was due for the instance."""
        self._require_in_process("step()")
        if instance_id not in self.engine.due_instances(limit=sys.maxsize):
            return False
        run_episodes_safely(self.engine, [instance_id])
        self.engine.raise_check_failure()
        return True

    def skip_time(self, until: Callable[[], Any], *, limit: timedelta = SKIP_LIMIT) -> timedelta:
        """Time skipping: run what is due, then move the manual clock to the next timer and
        run again, until ``until()`` is true; returns how far the clock moved. Fails when
        nothing is scheduled any more, or after ``limit``, with ``until`` still false."""
        self._require_in_process("skip_time()")
        clock = self._manual_clock("skip_time()")
        started = clock.now()
        self.run_until_idle()
        while not until():
            next_due = self.engine.next_due()
            if next_due is None:
                raise ConditionNotMet(f"nothing is scheduled any more, {clock.now() - started} "
                                      "after the skip began, and the condition is not met")
            wait = timedelta(microseconds=math.ceil((next_due - clock.now().timestamp()) * 1e6))
            if clock.now() + wait - started > limit:
                raise ConditionNotMet(f"the condition is not met within {limit} "
                                      f"(the next timer is due at {_moment(next_due)})")
            clock.advance(max(wait, timedelta(0)))
            self.run_until_idle()
        return clock.now() - started

    def wait_for_instance(self, instance_id: str, condition: Optional[Callable[[dict], Any]] = None,
                          *, timeout: float = 10.0) -> dict:
        """The instance's status (as ``status()`` gives it) once ``condition(status)`` is
        true, or, without a condition, once the instance has finished. A served host is
        polled for up to ``timeout`` seconds. In process, the host runs the work itself; on
        a manual clock it moves the clock timer by timer (``skip_time``), so no real time
        passes."""
        met = condition or (lambda status: status["runtimeStatus"] in FINAL_STATUSES)
        seen: list[Optional[dict]] = [None]

        def reached() -> Optional[dict]:
            seen[0] = self.status(instance_id)
            return seen[0] if seen[0] is not None and met(seen[0]) else None

        def ran_and_reached() -> Optional[dict]:
            self.run_until_idle()
            return reached()

        try:
            if self.serving:
                return wait_until(reached, timeout=timeout, what="the instance's condition")
            if isinstance(self.clock, ManualClock):
                self.skip_time(lambda: reached() is not None)
                return seen[0]
            return wait_until(ran_and_reached, timeout=timeout, what="the instance's condition")
        except ConditionNotMet as exc:
            raise ConditionNotMet(f"instance {instance_id}: {exc}; its status: {seen[0]!r}") from None

    # -- looking inside ----------------------------------------------------------------

    def pending_activities(self, instance_id: str) -> list[str]:
        """The activities the instance has scheduled that have not finished, by name."""
        return [item.name for item in self.engine.pending_work()
                if item.instance_id == instance_id and item.kind == "activity"]

    def pending_timers(self, instance_id: str) -> list[datetime]:
        """When the instance's timers that have not fired are due, earliest first."""
        return sorted(parse_iso(message.event["FireAt"])
                      for message in self.store.due_messages(instance_id, math.inf)
                      if message.event["EventType"] == EventType.TIMER_FIRED)

    def replay(self, instance_id: str) -> ReplayResult:
        """Run the orchestrator's code as it is now over the instance's recorded history (up
        to its completion, if it has one), as the next episode would replay it: a check
        that the code is deterministic, and still fits histories recorded before a change."""
        self._require_in_process("replay()")
        row = self.store.get_instance(instance_id)
        if row is None:
            raise KeyError(f"no instance {instance_id!r}")
        history = self.history(instance_id)
        ends = [i for i, e in enumerate(history) if e["EventType"] == EventType.EXECUTION_COMPLETED]
        recorded = history[:ends[0]] if ends else history
        replayed = self.engine.replay(row, recorded)
        actions = actions_of(replayed.state)
        return ReplayResult(
            done=bool(replayed.state.get("isDone")), output=replayed.state.get("output"),
            scheduled=[a["functionName"] for a in actions if a.get("actionType") in _CALLS],
            problem=replayed.error or determinism_problem(actions, recorded))

    # -- faults --------------------------------------------------------------------------

    @contextmanager
    def state_unavailable(self, reason: str = "database or disk is full") -> Iterator[None]:
        """While inside, every write to the state fails as on a full or failing disk: the
        Durable HTTP API answers 503, the SDK client's calls fail, and the runner retries
        its work later. Reads still work."""
        def refused():
            raise StoreUnavailable(reason)

        self.store.transaction = refused
        try:
            yield
        finally:
            del self.store.transaction  # the store's own method again

    # -- checks ----------------------------------------------------------------------------

    def _require_in_process(self, what: str) -> None:
        if self.serving:
            raise RuntimeError(f"{what} is for in-process use; this host is serving")

    def _manual_clock(self, what: str) -> ManualClock:
        if not isinstance(self.clock, ManualClock):
            raise RuntimeError(f"{what} needs a host on a ManualClock")
        return self.clock


def _moment(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()
