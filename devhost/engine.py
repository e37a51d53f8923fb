"""The orchestration engine: what the Durable extension does for a Python app.

An *episode* takes an instance's due messages, appends them to its history, replays the
orchestrator (``replay``) and turns the actions it returns into history events, activity
work items and timer messages, all in one transaction. Activities run outside the engine
(see ``runner``) and report back through ``complete_activities``.

Every payload is stored as the extension stores it (``payloads``): parsed once, never
unwrapped, re-printed compactly. docs/DEVHOST-CONFORMANCE.md lists each rule with the
extension source it comes from, and tests/devhost/conformance checks them.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional

from azure.durable_functions import OrchestrationRuntimeStatus

from . import activities, entities, payloads, sdk_seams
from .activities import ActivityOutcome
from .clock import parse_iso, to_iso
from .history import (CONTROL_EVENTS, ENTITY_ACTIONS, ORCHESTRATION_STATUS_NUMBERS,
                      SCHEDULING_ACTIONS, SCHEDULING_EVENTS, ActionType, EventType, event, mark_played)
from .registry import Registry
from .replay import Replay, Replayer, TimerSettings, actions_of, determinism_problem
from .storage import EntityRow, InstanceRow, Shard, Store, WorkItem

log = logging.getLogger("devhost")

ACTIVE_STATUSES = tuple(s.value for s in (OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running,
                                          OrchestrationRuntimeStatus.Suspended))
# DurableClient.MaxInstanceIdLength
MAX_INSTANCE_ID_CHARS = 256
CUSTOM_STATUS_LIMIT_KB = 16
UNSUPPORTED_ACTIONS = {ActionType.CALL_HTTP: "durable HTTP (call_http)"}
# The extension's default batch size outside the Consumption plan is 5000; a smaller one
# keeps one entity from holding a worker thread for long.
ENTITY_BATCH_LIMIT = 100


class EngineError(Exception):
    """An operation the extension would refuse; the message is the extension's."""


class InstanceNotFound(EngineError):
    pass


class InstanceFinished(EngineError):
    pass


class InvalidArgument(EngineError):
    """The extension's ArgumentException: a bad instance id or an unknown function."""


class InstanceAlreadyExists(EngineError):
    """DurableTask's OrchestrationAlreadyExistsException."""


class InvalidOperation(EngineError):
    """The extension's InvalidOperationException (suspend a suspended instance, ...)."""


@dataclass(frozen=True)
class EngineOptions:
    timers: TimerSettings = TimerSettings()
    history_cache_size: int = 2000
    shard: Shard = Shard()


def check_instance_id(instance_id: str) -> None:
    """The checks of ``DurableClient.StartNewAsync`` (ArgumentException for each)."""
    if instance_id.startswith("@"):
        raise InvalidArgument("Orchestration instance ids must not start with @.")
    if any(c in "/\\?#" or _is_control(c) for c in instance_id):
        raise InvalidArgument("Orchestration instance ids must not contain /, \\, #, ?, "
                              "or control characters.")
    if len(instance_id) > MAX_INSTANCE_ID_CHARS:
        raise InvalidArgument(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_CHARS} characters.")


def _is_control(c: str) -> bool:
    # .NET char.IsControl: U+0000-U+001F and U+007F-U+009F
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F


class Engine:
    def __init__(self, registry: Registry, store: Store, clock, options: EngineOptions = EngineOptions()):
        self.registry = registry
        self.store = store
        self.clock = clock
        self.options = options
        # Called with an instance id after a commit gave that instance new work.
        self.on_work: Callable[[str], None] = lambda instance_id: None
        self.replayer = Replayer(options.timers)
        self._histories: OrderedDict[str, tuple[str, list[dict]]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- commands --------------------------------------------------------------------

    def start_instance(self, name: str, instance_id: Optional[str] = None,
                       input_text: Optional[str] = None, parent: Optional[tuple[str, int, str]] = None,
                       _in_transaction: bool = False) -> str:
        """Start ``name`` with ``input_text``, the input as the extension stores it."""
        known = self.registry.orchestrator_name(name)
        if known is None:
            raise InvalidArgument(self._unknown_function_message(name, "orchestrator"))
        instance_id = instance_id or uuid.uuid4().hex
        check_instance_id(instance_id)
        if _in_transaction:
            self._create_instance(known, instance_id, input_text, parent)
        else:
            with self.store.transaction():
                self._create_instance(known, instance_id, input_text, parent)
            self.on_work(instance_id)
        return instance_id

    def _unknown_function_message(self, name: str, kind: str) -> str:
        # DurableTaskExtension.ThrowIfFunctionDoesNotExist
        known = {"orchestrator": self.registry.orchestrators, "activity": self.registry.activities,
                 "entity": self.registry.entities}[kind]
        listed = (f"The following are the known {kind} functions: "
                  + ", ".join(f"'{n}'" for n in known) + "." if known
                  else f"No {kind} functions are currently registered!")
        return (f"The function '{name}' doesn't exist, is disabled, or is not an {kind} "
                f"function. Additional info: {listed}")

    def _create_instance(self, name, instance_id, input_text, parent) -> None:
        existing = self.store.get_instance(instance_id)
        if existing and existing.runtime_status in ACTIVE_STATUSES:
            # overridableExistingInstanceStates defaults to NonRunningStates
            raise InstanceAlreadyExists(
                f"An Orchestration instance with the status {existing.runtime_status} already exists.")
        if existing:
            self.store.delete_instance(instance_id)
            self._forget(instance_id)
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        self.store.put_instance(InstanceRow(
            instance_id, name, execution_id, "Pending", input_text, None, None,
            to_iso(now), to_iso(now), *(parent or (None, None, None))))
        started = event(EventType.EXECUTION_STARTED, now, Name=name, Input=input_text, Version="",
                        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id})
        if parent:
            started["ParentInstance"] = {
                "OrchestrationInstance": {"InstanceId": parent[0], "ExecutionId": parent[2]},
                "TaskScheduleId": parent[1]}
        self.store.add_message(instance_id, execution_id, started, now.timestamp())

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
        if name.lower() not in self.registry.entities:
            raise InvalidArgument(self._unknown_function_message(name, "entity"))
        entity_id = entities.scheduler_id(name, key)
        with self.store.transaction():
            now = self.clock.now()
            request = entities.request_message(operation, input_text, str(uuid.uuid4()), signal=True,
                                               parent=None, parent_execution=None, moment=now)
            self._deliver_request(entity_id, request, now)
        self.on_work(entity_id)

    def _deliver_request(self, entity_id: str, request: dict, now) -> None:
        # The request travels as an event named "op" whose input is the RequestMessage.
        message = event(EventType.EVENT_RAISED, now, Name=entities.REQUEST_EVENT,
                        Input=payloads.to_text(request))
        self.store.add_message(entity_id, None, message, now.timestamp())

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
                raise InvalidOperation(f"Cannot {kind.name.split('_')[-1].lower()} orchestration "
                                       f"instance '{instance_id}': it is {row.runtime_status}.")
            now = self.clock.now()
            self.store.add_message(instance_id, None, event(kind, now, Input=reason), now.timestamp())
        self.on_work(instance_id)

    def restart(self, instance_id: str, with_new_id: bool = True) -> str:
        """``DurableClient.RestartAsync``: the same orchestrator with the same stored input."""
        row = self.store.get_instance(instance_id)
        if row is None:
            raise InvalidArgument(f"An orchestrastion with the instanceId {instance_id} was not found.")
        return self.start_instance(row.name, None if with_new_id else instance_id, row.input)

    def fail_instance(self, instance_id: str, reason: str) -> None:
        """Fail an instance the engine itself could not run, and drop its due messages."""
        now = self.clock.now()
        with self.store.transaction():
            row = self.store.get_instance(instance_id)
            self.store.delete_messages([m.id for m in self.store.due_messages(instance_id, now.timestamp())])
            if row is not None and not row.is_terminal:
                _Episode(self, instance_id, row, now, [])._finish("Failed", reason)
        self._forget(instance_id)

    def purge(self, instance_id: str) -> bool:
        """Delete an instance in any status (Azure Storage does not check it)."""
        with self.store.transaction():
            if self.store.get_instance(instance_id) is None:
                return False
            self.store.delete_instance(instance_id)
        self._forget(instance_id)
        return True

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

        The replays run first, then one transaction saves every episode, so the write lock
        and the commit are paid once per batch. An error fails the whole batch and saves
        nothing; the runner then tries the instances one at a time.
        """
        now = self.clock.now()
        episodes = [e for e in (self._prepared_episode(i, now) for i in instance_ids) if e]
        if not episodes:
            return []
        with self.store.transaction():
            for episode in episodes:
                episode.apply()
        new_work: list[WorkItem] = []
        for episode in episodes:
            self._after_commit(episode)
            new_work.extend(episode.new_work)
        return new_work

    def _prepared_episode(self, instance_id: str, now):
        messages = self.store.due_messages(instance_id, now.timestamp())
        if not messages:
            return None
        if entities.is_entity(instance_id):
            return _EntityEpisode(self, instance_id, now, messages[:ENTITY_BATCH_LIMIT])
        episode = _Episode(self, instance_id, self.store.get_instance(instance_id), now, messages)
        episode.prepare()
        return episode

    def _after_commit(self, episode: "_Episode") -> None:
        if episode.history_after is not None:
            self._remember(episode.instance_id, episode.execution_id_after, episode.history_after)
        else:
            self._forget(episode.instance_id)
        for line in episode.log_lines:
            log.error(line)
        for other in episode.other_instances:
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
        return self.replayer.replay(self.registry.orchestrators[row.name], row, history)

    # -- activities ------------------------------------------------------------------

    def pending_work(self) -> list[WorkItem]:
        return self.store.all_work_items(self.options.shard)

    def is_async_activity(self, item: WorkItem) -> bool:
        if item.kind == "entity":
            return False
        _, fn = self.registry.activities.get(item.name, (None, None))
        return inspect.iscoroutinefunction(fn)

    def execute_activity(self, item: WorkItem):
        """Run one activity, or one entity batch, here. An async activity gets an event loop
        of its own; a host with a loop runs those with ``execute_async_activity`` instead."""
        if item.kind == "entity":
            return self._run_entity_batch(item)
        started = time.perf_counter()
        try:
            result = activities.call(*self.registry.activities[item.name], item.input)
            if hasattr(result, "__await__"):
                result = asyncio.run(_await(result))
            outcome = activities.succeeded(result)
        except Exception as exc:
            outcome = activities.failed(item.name, exc)
        self._log_activity(item, outcome, started)
        return outcome

    async def execute_async_activity(self, item: WorkItem) -> ActivityOutcome:
        """Run one async activity on the running event loop, as the Functions Python worker
        runs async functions on its own loop."""
        started = time.perf_counter()
        try:
            result = await activities.call(*self.registry.activities[item.name], item.input)
            outcome = activities.succeeded(result)
        except Exception as exc:
            outcome = activities.failed(item.name, exc)
        self._log_activity(item, outcome, started)
        return outcome

    def _run_entity_batch(self, item: WorkItem) -> entities.EntityOutcome:
        started = time.perf_counter()
        row = self.store.get_entity(item.instance_id)
        requests = json.loads(item.input)
        if row.name not in self.registry.entities:  # the app no longer has this entity
            return entities.failed_batch(row.exists, row.state, len(requests),
                                         self._unknown_function_message(row.name, "entity"))
        param, handle = self.registry.entities[row.name]
        outcome = entities.run_batch(handle, param, row.name, row.key, row.exists, row.state, requests)
        failed = sum(1 for is_error, _ in outcome.results if is_error)
        ms = (time.perf_counter() - started) * 1000
        log.info("Executed 'Functions.%s' (Succeeded, InstanceId=%s, Duration=%.0fms): %d operation(s), "
                 "%d failed", row.name, item.instance_id, ms, len(requests), failed)
        return outcome

    def _log_activity(self, item: WorkItem, outcome: ActivityOutcome, started: float) -> None:
        _log_execution(item.name, item.instance_id, outcome.succeeded, started, outcome.reason)

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
                    delivered.extend(self._save_entity_batch(item, outcome, now))
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

    def _save_entity_batch(self, item: WorkItem, outcome: entities.EntityOutcome, now) -> list[str]:
        """Keep the entity's new state and answer each call (TaskEntityShim
        .ExecuteOutOfProcBatch; the Python SDK's entities send no signals of their own);
        returns the instances given work."""
        row = self.store.get_entity(item.instance_id)
        if not isinstance(outcome, entities.EntityOutcome):  # the devhost's own failure
            outcome = entities.failed_batch(row.exists, row.state, len(json.loads(item.input)),
                                            outcome.reason)
        self.store.put_entity(EntityRow(row.entity_id, row.name, row.key, outcome.exists,
                                        outcome.state if outcome.exists else None, to_iso(now)))
        given_work = [item.instance_id]  # its next batch, if requests queued meanwhile
        for request, (is_error, result) in zip(json.loads(item.input), outcome.results):
            if request.get("signal") or not request.get("parent"):
                continue
            # The response is an event named by the request id, for the execution that sent it.
            response = event(EventType.EVENT_RAISED, now, Name=request["id"],
                             Input=payloads.to_text(entities.response_message(is_error, result)))
            self.store.add_message(request["parent"], request.get("parentExecution"), response,
                                   now.timestamp())
            given_work.append(request["parent"])
        return given_work

    def next_due(self) -> Optional[float]:
        return self.store.next_visible_at(self.options.shard)


async def _await(awaitable):
    return await awaitable


def _log_execution(name: str, instance_id: str, ok: bool, started: float, error: str = "") -> None:
    ms = (time.perf_counter() - started) * 1000
    line = (f"Executed 'Functions.{name}' ({'Succeeded' if ok else 'Failed'}, "
            f"InstanceId={instance_id}, Duration={ms:.0f}ms)")
    if ok:
        log.info(line)
    else:
        log.error("%s: %s", line, error.strip().splitlines()[0] if error.strip() else "")


class _Episode:
    """One orchestrator episode for one instance, applied inside a transaction.

    ``prepare`` replays the orchestrator before the transaction when the episode is a plain
    one (no terminate, suspend or resume): the replay is pure computation on what was read,
    and running it outside keeps SQLite's write lock, which every worker process shares,
    for the writes alone.
    """

    def __init__(self, engine: Engine, instance_id: str, row: Optional[InstanceRow], now, messages):
        self.engine, self.store, self.row, self.now = engine, engine.store, row, now
        self.instance_id, self.messages = instance_id, messages
        self.new_work: list[WorkItem] = []
        self.other_instances: list[str] = []  # sub-orchestrations and parents it sent work to
        self.log_lines: list[str] = []         # written once the episode is committed
        self.history_after: Optional[list[dict]] = None
        self.execution_id_after = row.execution_id if row else ""
        self._replayed: Optional[tuple[list[dict], list[dict], Replay, float]] = None

    def prepare(self) -> None:
        row = self.row
        if row is None or row.is_terminal or row.runtime_status == "Suspended":
            return
        if any(m.event["EventType"] in CONTROL_EVENTS for m in self.messages):
            return
        events = [m.event for m in self.messages if self._is_current(m)]
        if events:
            self._replayed = self._run_orchestrator(events)

    def apply(self) -> None:
        consumed = [m.id for m in self.messages]
        row = self.row
        if row is None or row.is_terminal:
            self.store.delete_messages(consumed)
            return
        events = self._apply_control_messages()
        if self.row.runtime_status == "Suspended":
            self.store.delete_messages([m.id for m in self.messages if m.event["EventType"] in CONTROL_EVENTS])
            return
        self.store.delete_messages(consumed)
        if self.row.is_terminal:
            return
        events = [e for e in events if e is not None]
        if events:
            self._replay(events)

    def _apply_control_messages(self) -> list[Optional[dict]]:
        """Handle terminate/suspend/resume; returns the remaining events (stale ones as None)."""
        events: list[Optional[dict]] = []
        for message in self.messages:
            kind = message.event["EventType"]
            if kind == EventType.EXECUTION_TERMINATED:
                self._terminate(message.event.get("Input"))
                return []
            if kind == EventType.EXECUTION_SUSPENDED:
                self._set_status("Suspended")
            elif kind == EventType.EXECUTION_RESUMED:
                self._set_status("Running")
            elif not self._is_current(message):
                events.append(None)  # a result or timer of an execution that has ended
            else:
                events.append(message.event)
        return events

    def _is_current(self, message) -> bool:
        """Addressed to no execution in particular, or to the one running now."""
        return message.execution_id in (None, self.row.execution_id)

    def _terminate(self, reason: Optional[str]) -> None:
        history_length = len(self.engine.history(self.row))
        # TaskOrchestrationContext: CompleteOrchestration(terminatedEvent.Input, ...); the
        # reason is the output, shown as JSON when it parses (ParseToJToken).
        completed = self._finish("Terminated", reason)
        self.store.append_history(self.row.instance_id, history_length, completed)

    def _set_status(self, status: str) -> None:
        self.row.runtime_status = status
        self.row.last_updated_time = to_iso(self.now)
        self.store.update_instance(self.row)

    def _run_orchestrator(self, new_events: list[dict]):
        """Replay with the new events: (history, episode events, result, start), or None
        when the execution has not started yet."""
        engine, row = self.engine, self.row
        history = engine.history(row)
        episode_events = [event(EventType.ORCHESTRATOR_STARTED, self.now), *new_events]
        full = history + episode_events
        if not any(e["EventType"] == EventType.EXECUTION_STARTED for e in full):
            return None
        started = time.perf_counter()
        return history, episode_events, engine.replay(row, full), started

    def _replay(self, new_events: list[dict]) -> None:
        row = self.row
        replayed = self._replayed or self._run_orchestrator(new_events)
        if replayed is None:
            return
        history, episode_events, result, started = replayed
        full = history + episode_events
        added = self._apply_result(result, full)
        failure = result.error if result.error is not None else (
            row.output if row.runtime_status == "Failed" else None)
        _log_execution(row.name, row.instance_id, failure is None, started, failure or "")
        if self.history_after is not None:
            return  # continued as new: the old history is gone
        episode_events = mark_played(episode_events) + added + [
            event(EventType.ORCHESTRATOR_COMPLETED, self.now)]
        self.store.append_history(row.instance_id, len(history), episode_events)
        self.history_after = None if row.is_terminal else history + episode_events

    def _apply_result(self, result: Replay, full: list[dict]) -> list[dict]:
        state, row = result.state, self.row
        problem = self._set_custom_status(state)
        if problem:
            return self._fail(problem)
        if result.error is not None:
            return self._fail(result.error)
        actions = actions_of(state)
        unsupported = [UNSUPPORTED_ACTIONS[a["actionType"]] for a in actions
                       if a.get("actionType") in UNSUPPORTED_ACTIONS]
        if unsupported:
            return self._fail(f"the devhost does not support {unsupported[0]}.")
        problem = determinism_problem(actions, full)
        if problem:
            return self._fail(f"Non-Deterministic workflow detected: {problem}")
        problem = self._unknown_signal_target(actions)
        if problem:
            return self._fail(problem)
        added = self._schedule(actions, full, result.context)
        if state.get("isDone"):
            # What the last episode sent (signals) is delivered with its completion.
            continued = [a for a in actions if a.get("actionType") == ActionType.CONTINUE_AS_NEW]
            if continued:
                self._continue_as_new(continued[-1].get("input"))
                return []
            return added + self._finish("Completed", payloads.to_text(state.get("output")))
        row.runtime_status = "Running"
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        return added

    def _unknown_signal_target(self, actions: list[dict]) -> Optional[str]:
        """SignalEntity checks its target synchronously, and OutOfProcOrchestrationShim lets
        what InvokeAPIFromAction throws fail the orchestration (a call_entity's check fails
        only its task, which the shim ignores: see _unknown_function)."""
        for action in actions:
            if action.get("actionType") == ActionType.SIGNAL_ENTITY:
                name, _ = entities.split_scheduler_id(action.get("instanceId") or "@")
                if name not in self.engine.registry.entities:
                    return self.engine._unknown_function_message(name, "entity")
        return None

    def _set_custom_status(self, state: dict) -> Optional[str]:
        """Keep this episode's custom status (the SDK sends it on every episode and leaves
        it out when falsy, which Azure Storage then stores as null); returns why it was
        refused when it is over the extension's 16 KB limit."""
        text = payloads.to_text(state.get("customStatus"))
        if text is not None:
            size = payloads.utf16_kilobytes(text)
            if size > CUSTOM_STATUS_LIMIT_KB:
                return ("The UTF-16 size of the JSON-serialized payload must not exceed "
                        f"{CUSTOM_STATUS_LIMIT_KB} KB. The current payload size is {size:,} KB.")
        self.row.custom_status = text
        return None

    def _fail(self, error: str) -> list[dict]:
        # OutOfProcOrchestrationShim: OrchestrationFailureException("Orchestrator function
        # '<name>' failed: <error>"); the reason text is the instance's output.
        return self._finish("Failed", f"Orchestrator function '{self.row.name}' failed: {error}",
                            details=f"Message: {error}, StackTrace: ")

    def _schedule(self, actions: list[dict], history: list[dict], context) -> list[dict]:
        """Turn new actions and new hidden tasks into history events, work items and timers."""
        scheduled_ids = {e["EventId"] for e in history if e["EventType"] in SCHEDULING_EVENTS}
        hidden_tasks = sorted(((task_id, task) for task_id, task in sdk_seams.numbered_open_tasks(context)
                               if task_id not in scheduled_ids and sdk_seams.is_hidden_task(task)),
                              key=lambda pair: pair[0])
        hidden_ids = {task_id for task_id, _ in hidden_tasks}
        # Each yielded task and each signal took the next task id, in the order of its
        # action; a signal leaves no open task, so the ids come from the counter.
        visible_ids = [i for i in range(sdk_seams.sequence_number(context))
                       if i not in scheduled_ids and i not in hidden_ids]
        recorded_count = sum(1 for e in history if e["EventType"] in SCHEDULING_EVENTS
                             and not e.get("DevHostHidden"))
        visible_actions = [a for a in actions if a.get("actionType") in SCHEDULING_ACTIONS][recorded_count:]
        added: list[dict] = []
        for task_id, action in zip(visible_ids, visible_actions):
            added.append(self._schedule_action(task_id, action, hidden=False))
        for task_id, task in hidden_tasks:
            added.append(self._schedule_hidden(task_id, task))
        self._cancel_timers(context, scheduled_ids)
        return added

    def _schedule_action(self, task_id: int, action: dict, hidden: bool) -> dict:
        kind = action["actionType"]
        marks = {"DevHostHidden": True} if hidden else {}
        if kind == ActionType.CREATE_TIMER:
            fire_at = parse_iso(action["fireAt"])
            if not action.get("isCanceled"):
                fired = event(EventType.TIMER_FIRED, fire_at, TimerId=task_id, FireAt=to_iso(fire_at))
                self.store.add_message(self.row.instance_id, self.row.execution_id, fired,
                                       fire_at.timestamp(), timer_id=task_id)
            return event(EventType.TIMER_CREATED, self.now, task_id, FireAt=to_iso(fire_at), **marks)
        if kind in ENTITY_ACTIONS:
            return self._send_entity_request(task_id, action)
        name, input_text = action["functionName"], action.get("input")
        if kind in (ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            return self._start_sub_orchestration(task_id, name, action.get("instanceId"),
                                                 input_text, marks)
        activity = self.engine.registry.activity_name(name)
        if activity is None:
            return self._unknown_function(task_id, EventType.TASK_SCHEDULED, name, "activity")
        # DurableTask.Core's ScheduleTask serializes the parameters array: the input is a
        # one-element array holding the SDK's JSON text.
        scheduled = event(EventType.TASK_SCHEDULED, self.now, task_id, Name=name,
                          Input=payloads.to_text([input_text]), **marks)
        item_id = self.store.add_work_item(self.row.instance_id, self.row.execution_id,
                                           task_id, activity, input_text)
        self.new_work.append(WorkItem(item_id, self.row.instance_id, self.row.execution_id,
                                      task_id, activity, input_text))
        return scheduled

    def _unknown_function(self, task_id: int, kind: EventType, name: str, function_kind: str) -> dict:
        """The extension's ThrowIfFunctionDoesNotExist is swallowed by the shim's replay
        loop (ProcessAsyncActionsV2): nothing is scheduled and the orchestration waits for
        ever, Running. The devhost records the call as unscheduled (kept out of the public
        history, so the replay still lines up with it) and says so in its log."""
        self.log_lines.append(
            f"Instance {self.row.instance_id} is stuck: "
            f"{self.engine._unknown_function_message(name, function_kind)} The Durable extension "
            "schedules nothing for this call and leaves the instance Running.")
        return event(kind, self.now, task_id, Name=name, DevHostUnscheduled=True)

    def _send_entity_request(self, task_id: int, action: dict) -> dict:
        """DurableOrchestrationContext.CallDurableTaskFunctionAsync for an entity: a
        RequestMessage sent as event "op" to the entity, recorded as EventSent."""
        entity_id = action["instanceId"]
        name, _ = entities.split_scheduler_id(entity_id)
        if name not in self.engine.registry.entities:
            return dict(self._unknown_function(task_id, EventType.EVENT_SENT, name, "entity"),
                        InstanceId=entity_id)
        row = self.row
        request = entities.request_message(
            action.get("operation") or "", entities.request_input(action.get("input")),
            entities.request_id(row.instance_id, row.execution_id, task_id),
            signal=action["actionType"] == ActionType.SIGNAL_ENTITY,
            parent=row.instance_id, parent_execution=row.execution_id, moment=self.now)
        self.engine._deliver_request(entity_id, request, self.now)
        self.other_instances.append(entity_id)
        return event(EventType.EVENT_SENT, self.now, task_id, InstanceId=entity_id,
                     Name=entities.REQUEST_EVENT, Input=payloads.to_text(request))

    def _start_sub_orchestration(self, task_id, name, child_id, input_text, marks) -> dict:
        if self.engine.registry.orchestrator_name(name) is None:
            return self._unknown_function(task_id, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
                                          name, "orchestrator")
        # DurableTask.Core names a child without an id "<parent execution id>:<task id>".
        child_id = child_id or f"{self.row.execution_id}:{task_id}"
        # The child's input is the SDK's JSON text, stored as a JSON string.
        stored_input = payloads.to_text(input_text)
        try:
            self.other_instances.append(child_id)
            self.engine.start_instance(name, child_id, stored_input,
                                       parent=(self.row.instance_id, task_id, self.row.execution_id),
                                       _in_transaction=True)
        except EngineError as exc:
            failed = event(EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, self.now,
                           TaskScheduledId=task_id, Reason=str(exc), Details=None)
            self.store.add_message(self.row.instance_id, self.row.execution_id, failed,
                                   self.now.timestamp())
        return event(EventType.SUB_ORCHESTRATION_INSTANCE_CREATED, self.now, task_id, Name=name,
                     InstanceId=child_id, Input=stored_input, **marks)

    def _schedule_hidden(self, task_id: int, task) -> dict:
        retry_action = sdk_seams.retried_action(task)
        if not sdk_seams.is_retry_timer(task):
            return self._schedule_action(task_id, retry_action, hidden=True)
        attempts, allowed = sdk_seams.retry_attempts(task)
        if attempts >= allowed:
            # RetryInterceptor: after the last attempt, a "dummy timer for back-compat" at
            # the orchestration's current time, so it fires at once.
            fire_at = self.now
        else:
            fire_at = self.now + timedelta(
                milliseconds=retry_action["retryOptions"]["firstRetryIntervalInMilliseconds"])
        timer = {"actionType": ActionType.CREATE_TIMER, "fireAt": to_iso(fire_at)}
        return self._schedule_action(task_id, timer, hidden=True)

    def _cancel_timers(self, context, scheduled_ids: set[int]) -> None:
        for task_id, task in sdk_seams.numbered_open_tasks(context):
            if task_id in scheduled_ids and sdk_seams.is_cancelled_timer(task):
                self.store.delete_timer(self.row.instance_id, task_id)

    def _continue_as_new(self, input_text: Optional[str]) -> None:
        row = self.row
        self.store.clear_history(row.instance_id)
        self.store.delete_pending_work(row.instance_id)
        row.execution_id = uuid.uuid4().hex
        # ContinueAsNew(action.Input): the SDK's JSON text, stored as a JSON string.
        row.input = payloads.to_text(input_text)
        row.runtime_status = "Running"
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        started = event(EventType.EXECUTION_STARTED, self.now, Name=row.name, Input=row.input, Version="",
                        OrchestrationInstance={"InstanceId": row.instance_id,
                                               "ExecutionId": row.execution_id})
        self.store.add_message(row.instance_id, row.execution_id, started, self.now.timestamp())
        self.execution_id_after = row.execution_id
        self.history_after = []

    def _finish(self, status: str, output_text: Optional[str], details: Optional[str] = None) -> list[dict]:
        """Mark the instance finished; returns the ExecutionCompleted event for its history."""
        row = self.row
        row.runtime_status, row.output = status, output_text
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        self.store.delete_pending_work(row.instance_id)
        if row.parent_instance_id:
            self._notify_parent(status, output_text, details)
        return [event(EventType.EXECUTION_COMPLETED, self.now, OrchestrationStatus=ORCHESTRATION_STATUS_NUMBERS[status],
                      Result=output_text)]

    def _notify_parent(self, status: str, output_text: Optional[str], details: Optional[str]) -> None:
        parent = self.store.get_instance(self.row.parent_instance_id)
        if parent is None or parent.is_terminal:
            return
        if status == "Completed":
            done = event(EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED, self.now,
                         TaskScheduledId=self.row.parent_task_id, Result=output_text)
        else:
            # TaskOrchestrationDispatcher: the child's completion Result (the failure or
            # termination reason) and Details become the parent's Reason and Details.
            done = event(EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, self.now,
                         TaskScheduledId=self.row.parent_task_id, Reason=output_text, Details=details)
        # Addressed to the execution that started this child: if the parent has continued
        # as new since, the result is stale and the parent's next episode drops it.
        self.store.add_message(parent.instance_id, self.row.parent_execution_id, done,
                               self.now.timestamp())
        self.other_instances.append(parent.instance_id)




class _EntityEpisode:
    """Takes an entity's queued requests as one batch (a work item), which the runner runs
    like an activity; ``Engine.complete_activities`` saves what it did. While the batch is
    taken, the entity's next requests wait (storage offers none of its messages)."""

    def __init__(self, engine: Engine, entity_id: str, now, messages):
        self.engine, self.store, self.now = engine, engine.store, now
        self.instance_id, self.messages = entity_id, messages
        self.new_work: list[WorkItem] = []
        self.other_instances: list[str] = []
        self.log_lines: list[str] = []
        self.history_after = None
        self.execution_id_after = ""

    def prepare(self) -> None:
        pass

    def apply(self) -> None:
        self.store.delete_messages([m.id for m in self.messages])
        requests = [payloads.read_token(m.event.get("Input")) for m in self.messages
                    if m.event.get("Name") == entities.REQUEST_EVENT]
        requests = [r for r in requests if isinstance(r, dict) and "op" in r]
        if not requests:
            return
        row = self.store.get_entity(self.instance_id)
        if row is None:
            name, key = entities.split_scheduler_id(self.instance_id)
            row = EntityRow(self.instance_id, name, key, False, None, to_iso(self.now))
            self.store.put_entity(row)
        batch = json.dumps(requests)
        item_id = self.store.add_work_item(self.instance_id, "", 0, row.name, batch, kind="entity")
        self.new_work.append(WorkItem(item_id, self.instance_id, "", 0, row.name, batch, "entity"))
