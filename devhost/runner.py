"""Drivers that move work through the engine.

``drain`` runs everything that is due, inline, until nothing is left: tests use it with a
manual clock. ``BackgroundRunner`` runs episodes on one event loop (which keeps one
episode per instance at a time) and invokes activities through the Python worker on the
same loop, and is what the HTTP host uses.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Optional

from .activities import ActivityOutcome
from .engine import Engine
from .orchestrator_check import OrchestratorCheckFailed
from .storage import StoreBusy, StoreDamaged, StoreError, StoreUnavailable, WorkItem

log = logging.getLogger("devhost")


def drain(engine: Engine, max_rounds: int = 100_000) -> int:
    """Run due episodes and pending activities until idle; returns the episodes run."""
    episodes = 0
    for _ in range(max_rounds):
        due = engine.due_instances()
        run_episodes_safely(engine, due)
        engine.raise_check_failure()
        episodes += len(due)
        work = engine.pending_work()
        if work:
            engine.complete_activities([(item, engine.execute_activity(item)) for item in work])
        if not due and not work:
            return episodes
    raise RuntimeError(f"still busy after {max_rounds} rounds: an orchestration never settles")


def run_episodes_safely(engine: Engine, instance_ids: list[str]) -> list[WorkItem]:
    """Run a batch of episodes; when it fails, run them one at a time so that only a broken
    instance fails, and postpone what finds the state locked. A state that cannot be
    written (disk full, I/O error) fails no instance: StoreUnavailable goes to the caller,
    and every message stays queued for the next try. An episode whose orchestrator check
    failed (``orchestrator_check``) fails its instance with the check's message, which the
    engine keeps for ``Engine.raise_check_failure``."""
    if not instance_ids:
        return []
    try:
        return engine.run_episodes(instance_ids)
    except StoreBusy:
        # Another worker process held the write lock too long; the messages are still
        # queued, so the episodes simply run again on a later pass.
        log.warning("%d instance(s): state busy, episodes postponed", len(instance_ids))
        return []
    except StoreUnavailable:
        raise
    except OrchestratorCheckFailed as exc:
        if len(instance_ids) > 1:
            return _run_one_at_a_time(engine, instance_ids)
        log.error("%s", exc)
        engine.fail_instance(instance_ids[0], str(exc))
        engine.check_failures.append(exc)
        return []
    except StoreDamaged as exc:
        if len(instance_ids) > 1:
            return _run_one_at_a_time(engine, instance_ids)
        # A damaged page holds this instance: it fails, and says why (if its row can still be
        # written; if not, the runner backs off and logs the damage).
        log.error("instance %s: %s", instance_ids[0], exc)
        engine.fail_instance(instance_ids[0], DAMAGED_STATE)
        return []
    except Exception:
        return _run_one_at_a_time(engine, instance_ids)


DAMAGED_STATE = "the devhost's state file is damaged where this instance is kept; see the host log"


def _run_one_at_a_time(engine: Engine, instance_ids: list[str]) -> list[WorkItem]:
    if len(instance_ids) > 1:
        return [item for instance_id in instance_ids
                for item in run_episodes_safely(engine, [instance_id])]
    log.exception("devhost internal error while running instance %s", instance_ids[0])
    engine.fail_instance(instance_ids[0], "devhost internal error; see the host log")
    return []


class StorageOutage:
    """Backs the runner off while the state cannot be written, and logs the outage once
    per interval instead of once per attempt."""

    FIRST_DELAY, LONGEST_DELAY, LOG_EVERY_SECONDS = 0.1, 5.0, 30.0

    def __init__(self):
        self.delay = 0.0
        self.since: Optional[float] = None
        self.failures = 0
        self._logged_at = 0.0

    def failed(self, exc: Exception) -> float:
        now = time.monotonic()
        self.failures += 1
        if self.since is None:
            self.since = now
        self.delay = min(self.LONGEST_DELAY, max(self.FIRST_DELAY, self.delay * 2))
        if now - self._logged_at >= self.LOG_EVERY_SECONDS or self.failures == 1:
            self._logged_at = now
            problem = (str(exc) if isinstance(exc, StoreDamaged)
                       else f"state storage unavailable ({exc}): nothing is lost")
            log.error("%s; work is retried every %.1f s at most (%d attempt(s) so far)",
                      problem, self.delay, self.failures)
        return self.delay

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("state storage available again after %.1f s and %d failed attempt(s)",
                        time.monotonic() - self.since, self.failures)
        self.delay, self.since, self.failures = 0.0, None, 0


class BackgroundRunner:
    """Runs episodes as callbacks on an asyncio event loop, and hands activities and entity
    batches to the Python worker, whose own loop invokes them (a sync function on its
    thread pool, an ``async def`` one on that loop).

    ``serve`` hands it the HTTP server's loop: requests and episodes then take turns on one
    thread instead of two threads trading the GIL back and forth. Due episodes go first;
    the loop reads new requests between batches, so a flood of status polls slows itself
    down rather than the orchestrations. Without a loop it makes one on its own thread.
    At most ``max_activities`` activities and entity batches run at a time
    (``maxConcurrentActivityFunctions``).
    """

    def __init__(self, engine: Engine, max_activities: int = 10, idle_poll_seconds: float = 0.5):
        self.engine = engine
        self.idle_poll_seconds = idle_poll_seconds
        self._worker = engine.registry.worker
        self._slots = asyncio.Semaphore(max_activities)
        self._running = 0
        self._all_returned = threading.Condition()
        self._stopping = threading.Event()
        self._pass_pending = False
        self._pass_lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        self._results: list[tuple[WorkItem, ActivityOutcome]] = []
        self._outage = StorageOutage()
        self._results_lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._own_thread: Optional[threading.Thread] = None
        self._idle_timer: Optional[asyncio.TimerHandle] = None
        engine.on_work = lambda instance_id: self.wake()

    def start(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        if loop is None:
            loop = asyncio.new_event_loop()
            self._own_thread = threading.Thread(target=loop.run_forever, name="orchestrations",
                                                daemon=True)
            self._own_thread.start()
        self._loop = loop
        self._submit(self.engine.pending_work())  # activities cut short by a crash run again
        self.wake()

    def stop(self) -> None:
        """Wait for the activities that have started (those still waiting for a slot do not
        start: their work items run after a restart), then save what they returned."""
        self._stopping.set()
        with self._all_returned:
            self._all_returned.wait_for(lambda: self._running == 0)
        try:
            self._save_activity_results()  # what finished while stopping need not run again
        except StoreError:
            log.warning("activity results could not be saved while stopping; they run again")
        if self._own_thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._own_thread.join(timeout=10)
            self._loop.close()

    def wake(self) -> None:
        """Ask for a pass over the due episodes; safe from any thread, cheap when one is queued."""
        with self._pass_lock:
            if self._pass_pending or self._loop is None:
                return
            self._pass_pending = True
        if _running_loop() is self._loop:
            self._loop.call_soon(self._pass)  # no need to write to the loop's wake-up pipe
            return
        try:
            self._loop.call_soon_threadsafe(self._pass)
        except RuntimeError:  # the loop has closed: the host is stopping
            pass

    def _pass(self) -> None:
        with self._pass_lock:
            self._pass_pending = False
        if self._stopping.is_set():
            return
        try:
            due = self._run_due_episodes()
            self._outage.recovered()
        except StoreError as exc:  # the work stays queued in the database: back off
            self._schedule_pass(self._outage.failed(exc))
            return
        except Exception:  # keep the host alive; the work stays queued in the database
            log.exception("devhost internal error in the episode loop")
            due = []
        if due:
            self.wake()  # there may be more; requests that came in meanwhile go first
            return
        self._schedule_pass(self._idle_wait())

    def _schedule_pass(self, delay: float) -> None:
        if self._idle_timer:
            self._idle_timer.cancel()
        self._idle_timer = self._loop.call_later(delay, self.wake)

    def _run_due_episodes(self) -> list[str]:
        self._save_activity_results()
        due = self.engine.due_instances()
        self._submit(run_episodes_safely(self.engine, due))
        return due

    def _save_activity_results(self) -> None:
        with self._results_lock:
            results, self._results = self._results, []
        if results:
            self._save(results)

    def _save(self, results: list[tuple[WorkItem, ActivityOutcome]]) -> None:
        try:
            self.engine.complete_activities(results)
        except StoreError:
            with self._results_lock:  # kept for the next pass; the activities need not rerun
                self._results[:0] = results
            raise
        except Exception:
            if len(results) > 1:  # one at a time, so that a result that cannot be saved
                for result in results:  # holds up none of the others
                    self._save([result])
                return
            log.exception("devhost internal error saving the result of activity %s; "
                          "it will run again", results[0][0].name)
            rerun = [results[0][0]]
        else:
            rerun = []
        with self._in_flight_lock:
            self._in_flight.difference_update(item.id for item, _ in results)
        self._submit(rerun)

    def _idle_wait(self) -> float:
        next_due = self.engine.next_due()
        if next_due is None:
            return self.idle_poll_seconds
        return max(0.0, min(self.idle_poll_seconds, next_due - self.engine.clock.now().timestamp()))

    def _submit(self, items: list[WorkItem]) -> None:
        if self._loop is None:  # not started: start() submits every work item there is
            return
        for item in items:
            with self._in_flight_lock:
                if item.id in self._in_flight:
                    continue
                self._in_flight.add(item.id)
            try:
                self._worker.submit(self._run_activity(item))
            except RuntimeError:  # the worker's loop has closed: the item runs after a restart
                return

    async def _run_activity(self, item: WorkItem) -> None:
        """Runs on the worker's loop; the result is saved by the next pass of the host's
        loop, with the others that arrived meanwhile, in one transaction."""
        async with self._slots:
            if self._stopping.is_set():
                return
            with self._all_returned:
                self._running += 1
            try:
                outcome = await self.engine.invoke(item)
            except Exception as exc:  # the engine's own failure, not the activity's
                outcome = _internal_failure(item, exc)
            self._hand_back(item, outcome)
            with self._all_returned:
                self._running -= 1
                self._all_returned.notify_all()

    def _hand_back(self, item: WorkItem, outcome: ActivityOutcome) -> None:
        with self._results_lock:
            self._results.append((item, outcome))
        self.wake()


def _internal_failure(item: WorkItem, exc: Exception) -> ActivityOutcome:
    log.exception("devhost internal error running activity %s", item.name)
    return ActivityOutcome(False, None, f"devhost internal error running activity '{item.name}'; "
                                        "see the host log", type(exc).__name__)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
