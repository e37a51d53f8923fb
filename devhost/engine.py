"""The orchestration engine: what the Durable extension does for a Python app.

An *episode* takes an instance's due messages, appends them to its history, replays
the orchestrator through the SDK (``azure.durable_functions``) and turns the actions
it returns into history events, activity work items and timer messages, all in one
transaction. Activities run outside the engine (see ``runner``) and report back
through ``complete_activities``.

Hidden tasks: ``call_activity_with_retry`` creates retry timers and re-attempts that
never appear in the action list, yet take task ids. The extension imitates the SDK's
numbering; here the SDK context is kept after the episode and its open tasks tell the
exact id of each hidden task.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional

from azure.durable_functions.models import DurableOrchestrationContext
from azure.durable_functions.models.actions.NoOpAction import NoOpAction
from azure.durable_functions.models.Task import TimerTask
from azure.durable_functions.orchestrator import Orchestrator
from azure.functions.durable_functions import ActivityTriggerConverter
from azure.functions.meta import Datum

from . import sdk_timestamps
from .clock import parse_iso, to_iso
from .registry import Registry
from .storage import CONTROL_EVENT_TYPES, InstanceRow, Shard, Store, WorkItem

log = logging.getLogger("devhost")


class EventType:
    """History event types (DurableTask.Core EventType)."""
    EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_TERMINATED = 0, 1, 3
    TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
    SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
    TIMER_CREATED, TIMER_FIRED = 10, 11
    ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 12, 13
    EVENT_RAISED = 15
    EXECUTION_SUSPENDED, EXECUTION_RESUMED = 19, 20


class ActionType:
    """Orchestrator action types (azure.durable_functions ActionType)."""
    CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
    CONTINUE_AS_NEW, CREATE_TIMER, WAIT_FOR_EVENT = 4, 5, 6
    CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 7, 8, 9
    WHEN_ANY, WHEN_ALL = 11, 12


UNSUPPORTED_ACTIONS = {ActionType.CALL_ENTITY: "durable entities (call_entity)",
                       ActionType.SIGNAL_ENTITY: "durable entities (signal_entity)",
                       ActionType.CALL_HTTP: "durable HTTP (call_http)"}
SCHEDULING_EVENTS = (EventType.TASK_SCHEDULED, EventType.TIMER_CREATED, EventType.SUB_CREATED)
ACTIVE_STATUSES = ("Pending", "Running", "Suspended")
OUT_OF_PROC_LABEL = "$OutOfProcData$:"


class EngineError(Exception):
    status = 400


class InstanceNotFound(EngineError):
    status = 404


class InstanceNotActive(EngineError):
    status = 410


class InstanceConflict(EngineError):
    status = 409


@dataclass(frozen=True)
class EngineOptions:
    hub_name: str = "DevHostHub"
    long_timer_interval: timedelta = timedelta(days=3)
    max_short_timer: timedelta = timedelta(days=6)
    history_cache_size: int = 2000
    shard: Shard = Shard()


def _dotnet_timespan(delta: timedelta) -> str:
    hours, rest = divmod(int(delta.total_seconds()) % 86400, 3600)
    return f"{delta.days}.{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _flatten(actions: list) -> list[dict]:
    """Atomic actions in the order the SDK numbered their tasks (depth-first)."""
    flat: list[dict] = []
    for action in actions:
        if action.get("actionType") in (ActionType.WHEN_ANY, ActionType.WHEN_ALL):
            flat.extend(_flatten(action.get("compoundActions") or []))
        else:
            flat.append(action)
    return flat


def _signature(kind: int, name: Optional[str]) -> tuple[str, Optional[str]]:
    if kind in (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_RETRY, EventType.TASK_SCHEDULED):
        return ("activity", name)
    if kind in (ActionType.CALL_SUB, ActionType.CALL_SUB_RETRY, EventType.SUB_CREATED):
        return ("sub-orchestration", name)
    return ("timer", None)


@dataclass
class EpisodeResult:
    state: dict
    context: Optional[DurableOrchestrationContext]
    error: Optional[str]


class Engine:
    def __init__(self, registry: Registry, store: Store, clock, options: EngineOptions = EngineOptions()):
        self.registry = registry
        self.store = store
        self.clock = clock
        self.options = options
        # Called with an instance id after a commit gave that instance new work.
        self.on_work: Callable[[str], None] = lambda instance_id: None
        sdk_timestamps.install()
        self._histories: OrderedDict[str, tuple[str, list[dict]]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._orchestrators: dict[str, Orchestrator] = {}
        self._timer_settings = {
            "longRunningTimerIntervalDuration": _dotnet_timespan(options.long_timer_interval),
            "maximumShortTimerDuration": _dotnet_timespan(options.max_short_timer),
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }

    # -- commands --------------------------------------------------------------------

    def start_instance(self, name: str, instance_id: Optional[str] = None,
                       input_json: Optional[str] = None, parent: Optional[tuple[str, int, str]] = None,
                       _in_transaction: bool = False) -> str:
        if name not in self.registry.orchestrators:
            raise EngineError(f"The function '{name}' doesn't exist, is disabled, "
                              "or is not an orchestrator function.")
        instance_id = instance_id or uuid.uuid4().hex
        if _in_transaction:
            self._create_instance(name, instance_id, input_json, parent)
        else:
            with self.store.transaction():
                self._create_instance(name, instance_id, input_json, parent)
            self.on_work(instance_id)
        return instance_id

    def _create_instance(self, name, instance_id, input_json, parent) -> None:
        existing = self.store.get_instance(instance_id)
        if existing and existing.runtime_status in ACTIVE_STATUSES:
            raise InstanceConflict(f"An instance with ID '{instance_id}' already exists "
                                   f"and is {existing.runtime_status}.")
        if existing:
            self.store.delete_instance(instance_id)
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        self.store.put_instance(InstanceRow(
            instance_id, name, execution_id, "Pending", input_json, None, None,
            to_iso(now), to_iso(now), *(parent or (None, None, None))))
        started = self._event(EventType.EXECUTION_STARTED, now, Name=name, Input=input_json, Version="",
                              OrchestrationInstance={"InstanceId": instance_id,
                                                     "ExecutionId": execution_id})
        if parent:
            started["ParentInstance"] = {
                "OrchestrationInstance": {"InstanceId": parent[0], "ExecutionId": parent[2]},
                "TaskScheduleId": parent[1]}
        self.store.add_message(instance_id, execution_id, started, now.timestamp())

    def raise_event(self, instance_id: str, event_name: str, data_json: Optional[str]) -> None:
        with self.store.transaction():
            self._require_active(instance_id, f"raise event '{event_name}' on")
            now = self.clock.now()
            event = self._event(EventType.EVENT_RAISED, now, Name=event_name, Input=data_json)
            self.store.add_message(instance_id, None, event, now.timestamp())
        self.on_work(instance_id)

    def terminate(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, EventType.EXECUTION_TERMINATED, "terminate", reason)

    def suspend(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, EventType.EXECUTION_SUSPENDED, "suspend", reason)

    def resume(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, EventType.EXECUTION_RESUMED, "resume", reason)

    def _control(self, instance_id: str, kind: int, verb: str, reason: str) -> None:
        with self.store.transaction():
            self._require_active(instance_id, verb)
            now = self.clock.now()
            self.store.add_message(instance_id, None, self._event(kind, now, Input=reason),
                                   now.timestamp())
        self.on_work(instance_id)

    def fail_instance(self, instance_id: str, reason: str) -> None:
        """Fail an instance the engine itself could not run, and drop its due messages."""
        now = self.clock.now()
        with self.store.transaction():
            row = self.store.get_instance(instance_id)
            self.store.delete_messages([m.id for m in self.store.due_messages(instance_id, now.timestamp())])
            if row is not None and not row.is_terminal:
                _Episode(self, instance_id, row, now, [])._finish("Failed", json.dumps(reason))
        self._forget(instance_id)

    def purge(self, instance_id: str) -> bool:
        with self.store.transaction():
            row = self.store.get_instance(instance_id)
            if row is None or not row.is_terminal:
                return False
            self.store.delete_instance(instance_id)
        self._forget(instance_id)
        return True

    def _require_active(self, instance_id: str, verb: str) -> InstanceRow:
        row = self.store.get_instance(instance_id)
        if row is None:
            raise InstanceNotFound(f"No instance with ID '{instance_id}' was found.")
        if row.is_terminal:
            raise InstanceNotActive(f"Cannot {verb} instance '{instance_id}': "
                                    f"it is {row.runtime_status}.")
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

    def _prepared_episode(self, instance_id: str, now) -> Optional["_Episode"]:
        messages = self.store.due_messages(instance_id, now.timestamp())
        if not messages:
            return None
        episode = _Episode(self, instance_id, self.store.get_instance(instance_id), now, messages)
        episode.prepare()
        return episode

    def _after_commit(self, episode: "_Episode") -> None:
        if episode.history_after is not None:
            self._remember(episode.instance_id, episode.execution_id_after, episode.history_after)
        else:
            self._forget(episode.instance_id)
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

    def invoke_orchestrator(self, row: InstanceRow, history: list[dict]) -> EpisodeResult:
        handle = self.registry.orchestrators[row.name]
        fields = {
            "history": history, "input": row.input, "instanceId": row.instance_id,
            "isReplaying": False, "parentInstanceId": row.parent_instance_id,
            "upperSchemaVersion": 1, "upperSchemaVersionNew": 3,
            **self._timer_settings,
        }
        # Same steps as the SDK's own ``handle``, keeping the context for its open tasks. The
        # fields are what ``from_json`` would decode from the extension's JSON; building the
        # context from them directly skips encoding the history only to decode it again.
        context = DurableOrchestrationContext(**fields)
        context._input_expected_type = getattr(handle, "_df_input_type", None)
        try:
            state = json.loads(self._orchestrator(row.name, handle).handle(context))
            return EpisodeResult(state, context, None)
        except Exception as exc:  # the SDK reports orchestrator failures by raising
            message = str(exc)
            if OUT_OF_PROC_LABEL in message:
                state = json.loads(message.split(OUT_OF_PROC_LABEL, 1)[1])
                return EpisodeResult(state, context, state.get("error") or message)
            log.debug("orchestrator %s raised outside the SDK protocol", row.name, exc_info=True)
            return EpisodeResult({"isDone": False, "actions": []}, None,
                                 f"{type(exc).__name__}: {exc}")

    def _orchestrator(self, name: str, handle) -> Orchestrator:
        """The SDK's Orchestrator for a function, reset as if new.

        The SDK builds a new one per episode, and its executor defines a namedtuple class
        in ``__init__`` (a sizeable share of a replay here); ``initialize()`` is what that
        constructor calls to reset the per-episode state.
        """
        orchestrator = self._orchestrators.get(name)
        if orchestrator is None:
            orchestrator = self._orchestrators[name] = Orchestrator(handle.orchestrator_function)
        orchestrator.task_orchestration_executor.initialize()
        return orchestrator

    # -- activities ------------------------------------------------------------------

    def pending_work(self) -> list[WorkItem]:
        return self.store.all_work_items(self.options.shard)

    def is_async_activity(self, name: str) -> bool:
        _, fn = self.registry.activities.get(name, (None, None))
        return inspect.iscoroutinefunction(fn)

    def execute_activity(self, item: WorkItem) -> tuple[bool, str, str]:
        """Run one activity here; returns (succeeded, result JSON or reason, details).

        An async activity gets an event loop of its own; a host with a loop runs those
        with ``execute_async_activity`` instead.
        """
        started = time.perf_counter()
        try:
            result = self._call_activity(item)
            if hasattr(result, "__await__"):
                result = asyncio.run(_await(result))
            outcome = self._activity_succeeded(result)
        except Exception as exc:
            outcome = self._activity_failed(item, exc)
        self._log_activity(item, outcome, started)
        return outcome

    async def execute_async_activity(self, item: WorkItem) -> tuple[bool, str, str]:
        """Run one async activity on the running event loop, as the Functions Python worker
        runs async functions on its own loop."""
        started = time.perf_counter()
        try:
            outcome = self._activity_succeeded(await self._call_activity(item))
        except Exception as exc:
            outcome = self._activity_failed(item, exc)
        self._log_activity(item, outcome, started)
        return outcome

    def _call_activity(self, item: WorkItem):
        param, fn = self.registry.activities[item.name]
        value = ActivityTriggerConverter.decode(Datum(item.input, "json"), trigger_metadata={})
        return fn(**{param: value})

    @staticmethod
    def _activity_succeeded(result) -> tuple[bool, str, str]:
        return True, ActivityTriggerConverter.encode(result, expected_type=None).value, ""

    @staticmethod
    def _activity_failed(item: WorkItem, exc: Exception) -> tuple[bool, str, str]:
        reason = f"Activity function '{item.name}' failed: {type(exc).__name__}: {exc}"
        log.warning("%s\n%s", reason, traceback.format_exc().rstrip())
        return False, reason, type(exc).__name__

    def _log_activity(self, item: WorkItem, outcome: tuple[bool, str, str], started: float) -> None:
        self._log_execution(item.name, item.instance_id, outcome[0], started,
                            "" if outcome[0] else outcome[1])

    def complete_activities(self, results: list[tuple[WorkItem, tuple[bool, str, str]]]) -> None:
        """Deliver activity results to their instances, all in one transaction.

        A result whose work item is gone is dropped: the item is deleted whenever its
        execution ends (finish, terminate, continue-as-new, purge), so an existing item
        also means the execution that scheduled it is still running.
        """
        delivered: list[str] = []
        with self.store.transaction():
            now = self.clock.now()
            for item, (succeeded, payload, details) in results:
                if not self.store.take_work_item(item.id):
                    continue
                if succeeded:
                    event = self._event(EventType.TASK_COMPLETED, now, TaskScheduledId=item.task_id,
                                        Result=payload)
                else:
                    event = self._event(EventType.TASK_FAILED, now, TaskScheduledId=item.task_id,
                                        Reason=payload, Details=details)
                self.store.add_message(item.instance_id, item.execution_id, event, now.timestamp())
                delivered.append(item.instance_id)
        for instance_id in dict.fromkeys(delivered):
            self.on_work(instance_id)

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _event(kind: int, when, event_id: int = -1, **fields) -> dict:
        return {"EventType": kind, "EventId": event_id, "IsPlayed": False,
                "Timestamp": to_iso(when), **fields}

    @staticmethod
    def _log_execution(name: str, instance_id: str, ok: bool, started: float, error: str = "") -> None:
        ms = (time.perf_counter() - started) * 1000
        line = (f"Executed 'Functions.{name}' ({'Succeeded' if ok else 'Failed'}, "
                f"InstanceId={instance_id}, Duration={ms:.0f}ms)")
        if ok:
            log.info(line)
        else:
            log.error("%s: %s", line, error.splitlines()[0] if error else "")

    def next_due(self) -> Optional[float]:
        return self.store.next_visible_at(self.options.shard)


async def _await(awaitable):
    return await awaitable


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
        self.history_after: Optional[list[dict]] = None
        self.execution_id_after = row.execution_id if row else ""
        self._replayed: Optional[tuple[list[dict], list[dict], EpisodeResult, float]] = None

    def prepare(self) -> None:
        row = self.row
        if row is None or row.is_terminal or row.runtime_status == "Suspended":
            return
        if any(m.event["EventType"] in CONTROL_EVENT_TYPES for m in self.messages):
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
            self.store.delete_messages([m.id for m in self.messages if m.event["EventType"] in CONTROL_EVENT_TYPES])
            return
        self.store.delete_messages(consumed)
        if self.row.is_terminal:
            return
        events = [e for e in events if e is not None]
        if not events:
            return
        self._replay(events)

    def _apply_control_messages(self) -> list[Optional[dict]]:
        """Handle terminate/suspend/resume; returns the remaining events (stale ones as None)."""
        events: list[Optional[dict]] = []
        for message in self.messages:
            kind = message.event["EventType"]
            if kind == EventType.EXECUTION_TERMINATED:
                self._terminate(message.event.get("Input") or "")
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

    def _terminate(self, reason: str) -> None:
        history_length = len(self.engine.history(self.row))
        completed = self._finish("Terminated", json.dumps(reason))
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
        episode_events = [engine._event(EventType.ORCHESTRATOR_STARTED, self.now), *new_events]
        full = history + episode_events
        if not any(e["EventType"] == EventType.EXECUTION_STARTED for e in full):
            return None
        started = time.perf_counter()
        return history, episode_events, engine.invoke_orchestrator(row, full), started

    def _replay(self, new_events: list[dict]) -> None:
        engine, row = self.engine, self.row
        replayed = self._replayed or self._run_orchestrator(new_events)
        if replayed is None:
            return
        history, episode_events, result, started = replayed
        full = history + episode_events
        added = self._apply_result(result, full)
        engine._log_execution(row.name, row.instance_id, result.error is None, started,
                              result.error or "")
        if self.history_after is not None:
            return  # continued as new: the old history is gone
        episode_events += added + [engine._event(EventType.ORCHESTRATOR_COMPLETED, self.now)]
        self.store.append_history(row.instance_id, len(history), episode_events)
        self.history_after = None if row.is_terminal else history + episode_events

    def _apply_result(self, result: EpisodeResult, full: list[dict]) -> list[dict]:
        state, row = result.state, self.row
        row.custom_status = json.dumps(state["customStatus"]) if "customStatus" in state else row.custom_status
        if result.error is not None:
            return self._finish("Failed", json.dumps(
                f"Orchestrator function '{row.name}' failed: {result.error}"))
        actions = _flatten(state.get("actions", [[]])[0] if state.get("actions") else [])
        unsupported = [UNSUPPORTED_ACTIONS[a["actionType"]] for a in actions
                       if a.get("actionType") in UNSUPPORTED_ACTIONS]
        if unsupported:
            return self._finish("Failed", json.dumps(
                f"Orchestrator function '{row.name}' failed: the devhost does not support "
                f"{unsupported[0]}."))
        problem = self._determinism_problem(actions, full)
        if problem:
            return self._finish("Failed", json.dumps(
                f"Orchestrator function '{row.name}' failed: Non-Deterministic workflow "
                f"detected: {problem}"))
        if state.get("isDone"):
            continued = [a for a in actions if a.get("actionType") == ActionType.CONTINUE_AS_NEW]
            if continued:
                self._continue_as_new(continued[-1].get("input"))
                return []
            return self._finish("Completed", json.dumps(state.get("output")))
        added = self._schedule(actions, full, result.context)
        row.runtime_status = "Running"
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        return added

    def _determinism_problem(self, actions: list[dict], history: list[dict]) -> Optional[str]:
        recorded = [_signature(e["EventType"], e.get("Name")) for e in history
                    if e["EventType"] in SCHEDULING_EVENTS and not e.get("DevHostHidden")]
        produced = [_signature(a["actionType"], a.get("functionName")) for a in actions
                    if a.get("actionType") in (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_RETRY, ActionType.CALL_SUB,
                                               ActionType.CALL_SUB_RETRY, ActionType.CREATE_TIMER)]
        for index, expected in enumerate(recorded):
            got = produced[index] if index < len(produced) else None
            if got != expected:
                shown = f"{got[0]} '{got[1]}'" if got and got[1] else (got[0] if got else "nothing")
                want = f"{expected[0]} '{expected[1]}'" if expected[1] else expected[0]
                return (f"the history has {want} as task #{index + 1}, but the replay "
                        f"scheduled {shown}. Orchestrator code must be deterministic.")
        return None

    def _schedule(self, actions: list[dict], history: list[dict], context) -> list[dict]:
        """Turn new actions and new hidden tasks into history events, work items and timers."""
        scheduled_ids = {e["EventId"] for e in history if e["EventType"] in SCHEDULING_EVENTS}
        new_tasks = sorted(((task_id, task) for task_id, task in context.open_tasks.items()
                            if isinstance(task_id, int) and task_id not in scheduled_ids),
                           key=lambda pair: pair[0])
        recorded_count = sum(1 for e in history if e["EventType"] in SCHEDULING_EVENTS
                             and not e.get("DevHostHidden"))
        visible_actions = [a for a in actions if a.get("actionType") in
                           (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_RETRY, ActionType.CALL_SUB, ActionType.CALL_SUB_RETRY,
                            ActionType.CREATE_TIMER)][recorded_count:]
        visible_tasks = [(i, t) for i, t in new_tasks if not isinstance(t.action_repr, NoOpAction)]
        added: list[dict] = []
        for (task_id, _), action in zip(visible_tasks, visible_actions):
            added.append(self._schedule_action(task_id, action, hidden=False))
        for task_id, task in new_tasks:
            if isinstance(task.action_repr, NoOpAction):
                added.append(self._schedule_hidden(task_id, task))
        self._cancel_timers(context, scheduled_ids)
        return added

    def _schedule_action(self, task_id: int, action: dict, hidden: bool) -> dict:
        kind = action["actionType"]
        marks = {"DevHostHidden": True} if hidden else {}
        if kind == ActionType.CREATE_TIMER:
            fire_at = parse_iso(action["fireAt"])
            if not action.get("isCanceled"):
                fired = self.engine._event(EventType.TIMER_FIRED, fire_at, TimerId=task_id,
                                           FireAt=to_iso(fire_at))
                self.store.add_message(self.row.instance_id, self.row.execution_id, fired,
                                       fire_at.timestamp(), timer_id=task_id)
            return self.engine._event(EventType.TIMER_CREATED, self.now, task_id, FireAt=to_iso(fire_at),
                                      **marks)
        name, input_json = action["functionName"], action.get("input")
        if kind in (ActionType.CALL_SUB, ActionType.CALL_SUB_RETRY):
            return self._start_sub_orchestration(task_id, name, action.get("instanceId"),
                                                 input_json, marks)
        event = self.engine._event(EventType.TASK_SCHEDULED, self.now, task_id, Name=name,
                                   Input=input_json, **marks)
        if name in self.engine.registry.activities:
            item_id = self.store.add_work_item(self.row.instance_id, self.row.execution_id,
                                               task_id, name, input_json)
            self.new_work.append(WorkItem(item_id, self.row.instance_id, self.row.execution_id,
                                          task_id, name, input_json))
        else:
            failed = self.engine._event(
                EventType.TASK_FAILED, self.now, TaskScheduledId=task_id,
                Reason=f"The function '{name}' doesn't exist, is disabled, or is not an "
                       "activity function.", Details="")
            self.store.add_message(self.row.instance_id, self.row.execution_id, failed,
                                   self.now.timestamp())
        return event

    def _start_sub_orchestration(self, task_id, name, child_id, input_json, marks) -> dict:
        child_id = child_id or f"{self.row.instance_id}:{task_id}"
        try:
            self.other_instances.append(child_id)
            self.engine.start_instance(name, child_id, input_json,
                                       parent=(self.row.instance_id, task_id, self.row.execution_id),
                                       _in_transaction=True)
        except EngineError as exc:
            failed = self.engine._event(EventType.SUB_FAILED, self.now, TaskScheduledId=task_id,
                                        Reason=str(exc), Details="")
            self.store.add_message(self.row.instance_id, self.row.execution_id, failed,
                                   self.now.timestamp())
        return self.engine._event(EventType.SUB_CREATED, self.now, task_id, Name=name,
                                  InstanceId=child_id, Input=input_json, **marks)

    def _schedule_hidden(self, task_id: int, task) -> dict:
        retry_action = task.parent.actions.to_json()
        if task.action_repr.metadata == "-WithRetry timer":
            interval = retry_action["retryOptions"]["firstRetryIntervalInMilliseconds"]
            fire_at = self.now + timedelta(milliseconds=interval)
            timer = {"actionType": ActionType.CREATE_TIMER, "fireAt": to_iso(fire_at)}
            return self._schedule_action(task_id, timer, hidden=True)
        return self._schedule_action(task_id, retry_action, hidden=True)

    def _cancel_timers(self, context, scheduled_ids: set[int]) -> None:
        for task_id, task in context.open_tasks.items():
            if isinstance(task, TimerTask) and task_id in scheduled_ids and task.is_cancelled:
                self.store.delete_timer(self.row.instance_id, task_id)

    def _continue_as_new(self, input_json: Optional[str]) -> None:
        row = self.row
        self.store.clear_history(row.instance_id)
        self.store.delete_pending_work(row.instance_id)
        row.execution_id = uuid.uuid4().hex
        row.input = input_json
        row.runtime_status = "Running"
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        started = self.engine._event(EventType.EXECUTION_STARTED, self.now, Name=row.name, Input=row.input, Version="",
                                     OrchestrationInstance={"InstanceId": row.instance_id,
                                                            "ExecutionId": row.execution_id})
        self.store.add_message(row.instance_id, row.execution_id, started, self.now.timestamp())
        self.execution_id_after = row.execution_id
        self.history_after = []

    def _finish(self, status: str, output_json: str) -> list[dict]:
        """Mark the instance finished; returns the ExecutionCompleted event for its history."""
        row = self.row
        row.runtime_status, row.output = status, output_json
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        self.store.delete_pending_work(row.instance_id)
        if row.parent_instance_id:
            self._notify_parent(status, output_json)
        return [self.engine._event(EventType.EXECUTION_COMPLETED, self.now, OrchestrationStatus=status,
                                   Result=output_json)]

    def _notify_parent(self, status: str, output_json: str) -> None:
        parent = self.store.get_instance(self.row.parent_instance_id)
        if parent is None or parent.is_terminal:
            return
        if status == "Completed":
            event = self.engine._event(EventType.SUB_COMPLETED, self.now,
                                       TaskScheduledId=self.row.parent_task_id, Result=output_json)
        else:
            event = self.engine._event(
                EventType.SUB_FAILED, self.now, TaskScheduledId=self.row.parent_task_id,
                Reason=f"Sub-orchestration '{self.row.instance_id}' {status.lower()}: "
                       f"{json.loads(output_json)}", Details="")
        # Addressed to the execution that started this child: if the parent has continued
        # as new since, the result is stale and the parent's next episode drops it.
        self.store.add_message(parent.instance_id, self.row.parent_execution_id, event,
                               self.now.timestamp())
        self.other_instances.append(parent.instance_id)
