"""The engine: what the Durable extension does for a Python app, and its one entry point.

It takes commands (start, raise, terminate, signal an entity, ...), runs *episodes* of the
instances with due messages, and keeps the history cache. An orchestration's episode is
decided first, without touching the store (``orchestration_decision``), then written
(``orchestration_episode``); an entity's takes its queued requests as a batch
(``entity_batches``). A batch of episodes is written in one transaction. Activities and
entity batches run outside the engine (see ``runner``) and report back through
``complete_activities``.

Every payload is stored as the extension stores it (``payloads``): parsed once, never
unwrapped, re-printed compactly. docs/DEVHOST-CONFORMANCE.md lists each rule with the
extension source it comes from and the test that checks it.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from . import activities, entities, entity_batches, sdk_timestamps
from .activities import ActivityOutcome
from .entity_batches import EntityEpisode
from .errors import InstanceFinished, InstanceNotFound, InvalidArgument, InvalidOperation
from .history import EventType, event
from .instances import check_instance_id, create_instance, new_instance
from .orchestration_decision import Decider, Decision
from .orchestration_episode import OrchestrationEpisode, Written, write
from .orchestrator_check import WORKER, OrchestratorCheckFailed, WorkerCheck
from .registry import Registry
from .replay import Replay, Replayer, TimerSettings
from .storage import EntityRow, InstanceRow, Shard, Store, WorkItem
from .versioning import Versioning

log = logging.getLogger("devhost")

# The extension's default batch size outside the Consumption plan is 5000; a smaller one
# keeps one entity from holding a worker thread for long.
ENTITY_BATCH_LIMIT = 100


@dataclass(frozen=True)
class EngineOptions:
    timers: TimerSettings = TimerSettings()
    history_cache_size: int = 2000
    shard: Shard = Shard()
    versioning: Versioning = Versioning()
    # "worker": every orchestrator episode is also invoked through the Python worker and
    # its state compared with the replay's (orchestrator_check); None: no check.
    check_orchestrators: Optional[str] = None


def log_execution(name: str, instance_id: str, ok: bool, milliseconds: float, error: str = "") -> None:
    line = (f"Executed 'Functions.{name}' ({'Succeeded' if ok else 'Failed'}, "
            f"InstanceId={instance_id}, Duration={milliseconds:.0f}ms)")
    if ok:
        log.info(line)
    else:
        log.error("%s: %s", line, error.strip().splitlines()[0] if error.strip() else "")


class Engine:
    def __init__(self, registry: Registry, store: Store, clock, options: EngineOptions = EngineOptions()):
        self.registry = registry
        self.store = store
        self.clock = clock
        self.options = options
        # Called with an instance id after a commit gave that instance new work.
        self.on_work: Callable[[str], None] = lambda instance_id: None
        # The JSON of a durableClient binding for a function no request triggered (an
        # activity that declares one); the host that owns the engine sets it.
        self.client_binding: Optional[Callable[[], str]] = None
        # Without it the SDK parses every history timestamp of every replay with dateutil,
        # a third of a busy host's CPU (docs/PERFORMANCE.md, "Releases").
        sdk_timestamps.install()
        self.orchestrator_check = WorkerCheck(registry) if options.check_orchestrators == WORKER else None
        self.decider = Decider(registry, Replayer(options.timers, self.orchestrator_check), options.versioning)
        # Check failures of episodes run in the background, for the host to raise on close.
        self.check_failures: list[OrchestratorCheckFailed] = []
        self._histories: OrderedDict[str, tuple[str, list[dict]]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._version_refusals_logged: set[str] = set()

    # -- commands --------------------------------------------------------------------

    def start_instance(self, name: str, instance_id: Optional[str] = None,
                       input_text: Optional[str] = None, version: Optional[str] = None) -> str:
        """Start ``name`` with ``input_text``, the input as the extension stores it. The
        instance keeps ``name`` as the caller spelt it (``StartNewAsync`` passes it on as
        given); the function is found ignoring case, as the extension's registry finds it.
        Without a ``version`` the instance gets host.json's ``defaultVersion``
        (``DurableClient.StartNewAsync`` passes ``DurableTaskOptions.DefaultVersion``)."""
        if version is None:
            version = self.options.versioning.default_version
        if self.registry.orchestrator_name(name) is None:
            raise InvalidArgument(self.registry.unknown_function_message(name, "orchestrator"))
        instance_id = instance_id or uuid.uuid4().hex
        check_instance_id(instance_id)
        with self.store.transaction():
            now = self.clock.now()
            create_instance(self.store, *new_instance(name, instance_id, input_text, None, version, now), now)
        self._started(instance_id)
        self.on_work(instance_id)
        return instance_id

    def _started(self, instance_id: str) -> None:
        """A new instance of this id: a finished one it replaced is no longer cached, and
        it is refused (and said) afresh."""
        self._forget(instance_id)
        with self._cache_lock:
            self._version_refusals_logged.discard(instance_id)

    def raise_event(self, instance_id: str, event_name: str, data_text: Optional[str]) -> None:
        with self.store.transaction():
            self.require_active(instance_id)
            now = self.clock.now()
            raised = event(EventType.EVENT_RAISED, now, Name=event_name, Input=data_text)
            self.store.add_message(instance_id, None, raised, now.timestamp())
        self.on_work(instance_id)

    def signal_entity(self, name: str, key: str, operation: str, input_text: Optional[str]) -> None:
        """DurableClient.SignalEntityAsync: a one-way request, from no parent."""
        entities.check_key(key)
        if self.registry.entity(name) is None:
            raise InvalidArgument(self.registry.unknown_function_message(name, "entity"))
        entity_id = entities.scheduler_id(name, key)
        with self.store.transaction():
            now = self.clock.now()
            request = entities.request_message(operation, input_text, str(uuid.uuid4()), signal=True,
                                               parent=None, parent_execution=None, moment=now)
            self.store.add_message(entity_id, None, entities.request_event(request, now), now.timestamp())
        self.on_work(entity_id)

    def entity(self, name: str, key: str) -> Optional[EntityRow]:
        return self.store.get_entity(entities.scheduler_id(name, key))

    def entities(self, name: Optional[str], **query) -> list[EntityRow]:
        return self.store.query_entities(name=name.lower() if name else None, **query)

    def terminate(self, instance_id: str, reason: Optional[str]) -> None:
        self._control(instance_id, EventType.EXECUTION_TERMINATED, reason)

    def suspend(self, instance_id: str, reason: Optional[str]) -> None:
        self._control(instance_id, EventType.EXECUTION_SUSPENDED, reason, refuse="Suspended")

    def resume(self, instance_id: str, reason: Optional[str]) -> None:
        self._control(instance_id, EventType.EXECUTION_RESUMED, reason, require="Suspended")

    def _control(self, instance_id: str, kind: EventType, reason: Optional[str],
                 refuse: str = "", require: str = "") -> None:
        with self.store.transaction():
            row = self.require_active(instance_id)
            if row.runtime_status == refuse or (require and row.runtime_status != require):
                # DurableClient.SuspendAsync / ResumeAsync check the status first
                verb = "suspend" if kind == EventType.EXECUTION_SUSPENDED else "resume"
                raise InvalidOperation(f"Cannot {verb} the orchestration instance {instance_id} "
                                       f"because instance is in the {row.runtime_status} state.")
            now = self.clock.now()
            self.store.add_message(instance_id, None, event(kind, now, Input=reason), now.timestamp())
        self.on_work(instance_id)

    def restart(self, instance_id: str, with_new_id: bool = True) -> str:
        """``DurableClient.RestartAsync``: the same orchestrator with the same stored input."""
        row = self.store.get_instance(instance_id)
        if row is None:
            raise InvalidArgument(f"An orchestrastion with the instanceId {instance_id} was not found.")
        return self.start_instance(row.name, None if with_new_id else instance_id, row.input)

    def raise_check_failure(self) -> None:
        """Raise the first orchestrator check failure not raised yet (the others are
        dropped: each has failed its instance, saying why)."""
        if self.check_failures:
            first, more = self.check_failures[0], len(self.check_failures) - 1
            self.check_failures.clear()
            if more:
                first.args = (f"{first.args[0]} (and {more} more failed check(s); see the log)",)
            raise first

    def fail_instance(self, instance_id: str, reason: str) -> None:
        """Fail an instance the engine itself could not run, and drop its due messages."""
        now = self.clock.now()
        with self.store.transaction():
            messages = self.store.due_messages(instance_id, now.timestamp())
            decision = self.decider.fail(instance_id, self.store.get_instance(instance_id), messages, now, reason)
            written = write(self.store, decision)
        self._after_commit(decision, written)

    def purge(self, instance_id: str) -> bool:
        """Delete an instance in any status (Azure Storage does not check it)."""
        with self.store.transaction():
            if self.store.get_instance(instance_id) is None:
                return False
            self.store.delete_instance(instance_id)
        self._forget(instance_id)
        return True

    def _first_refusal(self, instance_id: str) -> bool:
        """Whether this is the first time this host refuses the instance for its version."""
        with self._cache_lock:
            first = instance_id not in self._version_refusals_logged
            if len(self._version_refusals_logged) >= self.options.history_cache_size:
                self._version_refusals_logged.clear()  # bounded: at worst a line is said again
            self._version_refusals_logged.add(instance_id)
            return first

    # -- reading, for the HTTP API -----------------------------------------------------

    def instance(self, instance_id: str) -> Optional[InstanceRow]:
        return self.store.get_instance(instance_id)

    def instances(self, **query) -> list[InstanceRow]:
        """Instances in id order; ``query`` as ``Store.query_instances`` takes it."""
        return self.store.query_instances(**query)

    def instance_counts(self) -> list[tuple[str, str, int]]:
        return self.store.instance_counts()

    def stored_history(self, instance_id: str) -> list[dict]:
        return self.store.load_history(instance_id)

    def require_active(self, instance_id: str) -> InstanceRow:
        row = self.store.get_instance(instance_id)
        if row is None:
            raise InstanceNotFound(f"No instance with ID '{instance_id}' was found.")
        if row.is_terminal:
            raise InstanceFinished(f"Instance '{instance_id}' is {row.runtime_status}.")
        return row

    # -- episodes --------------------------------------------------------------------

    def due_instances(self, limit: int = 64) -> list[str]:
        return self.store.due_instance_ids(self.clock.now().timestamp(), limit, self.options.shard)

    def run_episodes(self, instance_ids: list[str]) -> list[WorkItem]:
        """Process every due message of these instances; returns the activities they scheduled.

        Every episode is decided first (the orchestrators replayed), then one transaction
        writes them all, so the write lock and the commit are paid once per batch. An error
        fails the whole batch and saves nothing; the runner then tries the instances one at
        a time.
        """
        now = self.clock.now()
        episodes = [e for e in (self._episode(i, now) for i in instance_ids) if e]
        if not episodes:
            return []
        with self.store.transaction():
            for episode in episodes:
                episode.apply()
        new_work: list[WorkItem] = []
        for episode in episodes:
            if isinstance(episode, OrchestrationEpisode):
                self._after_commit(episode.decision, episode.written)
            new_work.extend(episode.new_work)
        return new_work

    def _episode(self, instance_id: str, now) -> "OrchestrationEpisode | EntityEpisode | None":
        messages = self.store.due_messages(instance_id, now.timestamp())
        if not messages:
            return None
        if entities.is_entity(instance_id):
            return EntityEpisode(self.store, instance_id, now, messages[:ENTITY_BATCH_LIMIT])
        row = self.store.get_instance(instance_id)
        history = self.history(row) if row is not None and not row.is_terminal else []
        return OrchestrationEpisode(self.store, self.decider.decide(instance_id, row, history, messages, now))

    def _after_commit(self, decision: Decision, written: Written) -> None:
        instance_id = decision.instance_id
        if decision.history_after is not None:
            self._remember(instance_id, decision.execution_id_after, decision.history_after)
        else:
            self._forget(instance_id)
        for started in written.started:
            self._started(started)
        executed = decision.executed
        if executed is not None:
            log_execution(executed.name, instance_id, executed.succeeded, executed.milliseconds, executed.error)
        for line in decision.log_lines:
            log.error(line)
        if written.refusal and self._first_refusal(instance_id):
            log.error(written.refusal)
        for other in written.woken:
            self.on_work(other)

    def history(self, row: InstanceRow) -> list[dict]:
        with self._cache_lock:
            cached = self._histories.get(row.instance_id)
            if cached and cached[0] == row.execution_id:
                self._histories.move_to_end(row.instance_id)
                return list(cached[1])
        return self.store.load_history(row.instance_id)

    def _remember(self, instance_id: str, execution_id: str, history: list[dict]) -> None:
        with self._cache_lock:
            self._histories[instance_id] = (execution_id, history)
            self._histories.move_to_end(instance_id)
            while len(self._histories) > self.options.history_cache_size:
                self._histories.popitem(last=False)

    def _forget(self, instance_id: str) -> None:
        with self._cache_lock:
            self._histories.pop(instance_id, None)

    def replay(self, row: InstanceRow, history: list[dict]) -> Replay:
        """The orchestrator's code run on ``history``, as an episode runs it."""
        return self.decider.replay(row, history)

    # -- activities ------------------------------------------------------------------

    def pending_work(self) -> list[WorkItem]:
        return self.store.all_work_items(self.options.shard)

    async def invoke(self, item: WorkItem):
        """Run one activity, or one entity batch, through the Python worker: its outcome as
        the extension records it."""
        if item.kind == "entity":
            return await self._run_entity_batch(item)
        started = time.perf_counter()
        function = self.registry.activities[item.name]
        outcome = activities.outcome(item.name, await function.invoke(activities.inputs(function, item.input,
                                                                                      self.client_binding)))
        self._log_activity(item, outcome, started)
        return outcome

    def execute_activity(self, item: WorkItem):
        """``invoke``, waited for on this thread (hosts that are not serving run inline)."""
        return self.registry.worker.run(self.invoke(item))

    async def _run_entity_batch(self, item: WorkItem) -> entities.EntityOutcome:
        row = self.store.get_entity(item.instance_id)
        function = self.registry.entity(row.name)
        if function is None:
            # The app no longer has this entity: the extension's EntityMiddleware fails
            # inside (no function to run) and abandons the batch, as for E12.
            return entities.EntityOutcome(row.exists, row.state, (),
                                          aborted=self.registry.unknown_function_message(row.name, "entity"))
        return await entity_batches.run(function, row, item)

    def _log_activity(self, item: WorkItem, outcome: ActivityOutcome, started: float) -> None:
        log_execution(item.name, item.instance_id, outcome.succeeded, (time.perf_counter() - started) * 1000,
                      outcome.reason)

    def complete_activities(self, results: list[tuple[WorkItem, ActivityOutcome]]) -> None:
        """Deliver activity results to their instances, all in one transaction.

        A result whose work item is gone is dropped: the item is deleted whenever its
        execution ends (finish, terminate, continue-as-new, purge), so an existing item
        also means the execution that scheduled it is still running.
        """
        delivered: list[str] = []
        with self.store.transaction():
            now = self.clock.now()
            for item, outcome in results:
                if not self.store.take_work_item(item.id):
                    continue
                if item.kind == "entity":
                    delivered.extend(entity_batches.save(self.store, item, outcome, now))
                    continue
                if outcome.succeeded:
                    done = event(EventType.TASK_COMPLETED, now, TaskScheduledId=item.task_id,
                                 Result=outcome.result)
                else:
                    done = event(EventType.TASK_FAILED, now, TaskScheduledId=item.task_id,
                                 Reason=outcome.reason, Details=outcome.details)
                self.store.add_message(item.instance_id, item.execution_id, done, now.timestamp())
                delivered.append(item.instance_id)
        for instance_id in dict.fromkeys(delivered):
            self.on_work(instance_id)

    def next_due(self) -> Optional[float]:
        return self.store.next_visible_at(self.clock.now().timestamp(), self.options.shard)


