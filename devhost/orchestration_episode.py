"""One orchestrator episode: the instance's due messages appended to its history, the
orchestrator replayed (``replay``), and its actions turned into history events, activity
work items, timers, sub-orchestrations and entity requests, all written inside the
transaction the engine opens. It reaches the rest of the engine only through the
``Engine`` it is given (history cache, replayer, registry, instance start).
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Optional

from . import entities, payloads, sdk_seams, versioning
from .clock import parse_iso, to_iso
from .errors import EngineError
from .history import (CONTROL_EVENTS, ENTITY_ACTIONS, ORCHESTRATION_STATUS_NUMBERS,
                      SCHEDULING_ACTIONS, SCHEDULING_EVENTS, ActionType, EventType, event, mark_played)
from .replay import Replay, actions_of, determinism_problem
from .storage import InstanceRow, WorkItem

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("devhost")

CUSTOM_STATUS_LIMIT_KB = 16
UNSUPPORTED_ACTIONS = {ActionType.CALL_HTTP: "durable HTTP (call_http)"}


def log_execution(name: str, instance_id: str, ok: bool, started: float, error: str = "") -> None:
    ms = (time.perf_counter() - started) * 1000
    line = (f"Executed 'Functions.{name}' ({'Succeeded' if ok else 'Failed'}, "
            f"InstanceId={instance_id}, Duration={ms:.0f}ms)")
    if ok:
        log.info(line)
    else:
        log.error("%s: %s", line, error.strip().splitlines()[0] if error.strip() else "")


class OrchestrationEpisode:
    """One orchestrator episode for one instance, applied inside a transaction.

    ``prepare`` replays the orchestrator before the transaction when the episode is a plain
    one (no terminate, suspend or resume): the replay is pure computation on what was read,
    and running it outside keeps SQLite's write lock, which every worker process shares,
    for the writes alone.
    """

    def __init__(self, engine: "Engine", instance_id: str, row: Optional[InstanceRow], now, messages):
        self.engine, self.store, self.row, self.now = engine, engine.store, row, now
        self.instance_id, self.messages = instance_id, messages
        self.new_work: list[WorkItem] = []
        self.other_instances: list[str] = []  # sub-orchestrations and parents it sent work to
        self.log_lines: list[str] = []         # written once the episode is committed
        self.refusal_once: Optional[str] = None  # written once per instance, after the commit
        self.history_after: Optional[list[dict]] = None
        self.execution_id_after = row.execution_id if row else ""
        self._replayed: Optional[tuple[list[dict], list[dict], Replay, float]] = None
        self._history: Optional[list[dict]] = None

    def _stored_history(self) -> list[dict]:
        """The execution's history before this episode, read once per episode (prepare and
        apply see the same one: only this worker writes this instance)."""
        if self._history is None:
            self._history = self.engine.history(self.row)
        return self._history

    def prepare(self) -> None:
        row = self.row
        if row is None or row.is_terminal or row.runtime_status == "Suspended":
            return
        if any(m.event["EventType"] in CONTROL_EVENTS for m in self.messages):
            return
        events = self._current_events()
        if events and not self._version_refused():
            self._replayed = self._run_orchestrator(events)

    def apply(self) -> None:
        consumed = [m.id for m in self.messages]
        row = self.row
        if row is None or row.is_terminal:
            self.store.delete_messages(consumed)
            return
        if self._version_refused():
            return self._refuse_version(consumed)
        self.store.release_instance(row.instance_id)  # a hold ends once the instance runs
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

    def _current_events(self) -> list[dict]:
        """The due messages' events for the execution running now."""
        return [m.event for m in self.messages if self._is_current(m)]

    def _version_refused(self) -> bool:
        """TaskOrchestrationDispatcher checks the execution's version against this host's
        before it processes anything of the work item (control messages included)."""
        settings = self.engine.options.versioning
        if settings.match == "None":
            return False
        started = self._execution_started()
        return started is not None and not settings.complies(started.get("Version"))

    def _execution_started(self) -> Optional[dict]:
        return (versioning.execution_started(self._stored_history())
                or versioning.execution_started(self._current_events()))

    def _refuse_version(self, consumed: list[int]) -> None:
        settings, row = self.engine.options.versioning, self.row
        started = self._execution_started()
        refusal = (f"Instance {row.instance_id} has version {started.get('Version')!r}, which this host "
                   f"(defaultVersion {settings.default_version!r}, versionMatchStrategy "
                   f"{settings.match}) does not run")
        if settings.failure == "Fail":
            self.store.delete_messages(consumed)
            history = self._stored_history()
            episode = mark_played([event(EventType.ORCHESTRATOR_STARTED, self.now),
                                   *self._current_events()])
            completed = self.finish("Failed", versioning.MISMATCH_OUTPUT)
            self.store.append_history(row.instance_id, len(history),
                                      episode + completed + [event(EventType.ORCHESTRATOR_COMPLETED, self.now)])
            self.log_lines.append(f"{refusal}: it failed (versionFailureStrategy Fail).")
            return
        # Reject: AbandonTaskOrchestrationWorkItemAsync leaves the whole work item, in its
        # order, to be tried again; the instance is held back until then (unless it was
        # purged meanwhile by another worker process).
        if self.store.get_instance(row.instance_id) is None:
            return
        self.store.hold_instance(row.instance_id, self.now.timestamp() + versioning.REJECT_RETRY_SECONDS)
        self.refusal_once = (f"{refusal}: its work waits for a host that does and is tried again "
                             f"every {versioning.REJECT_RETRY_SECONDS:g} s (versionFailureStrategy Reject).")

    def _is_current(self, message) -> bool:
        """Addressed to no execution in particular, or to the one running now."""
        return message.execution_id in (None, self.row.execution_id)

    def _terminate(self, reason: Optional[str]) -> None:
        history_length = len(self._stored_history())
        # TaskOrchestrationContext: CompleteOrchestration(terminatedEvent.Input, ...); the
        # reason is the output, shown as JSON when it parses (ParseToJToken).
        completed = self.finish("Terminated", reason)
        self.store.append_history(self.row.instance_id, history_length, completed)

    def _set_status(self, status: str) -> None:
        self.row.runtime_status = status
        self.row.last_updated_time = to_iso(self.now)
        self.store.update_instance(self.row)

    def _run_orchestrator(self, new_events: list[dict]):
        """Replay with the new events: (history, episode events, result, start), or None
        when the execution has not started yet."""
        engine, row = self.engine, self.row
        history = self._stored_history()
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
        log_execution(row.name, row.instance_id, failure is None, started, failure or "")
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
                self._continue_as_new(continued[-1].get("input"), full)
                return []
            return added + self.finish("Completed", payloads.to_text(state.get("output")))
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
                if self.engine.registry.entity(name) is None:
                    return self.engine.unknown_function_message(name, "entity")
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
        return self.finish("Failed", f"Orchestrator function '{self.row.name}' failed: {error}",
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
                                                 input_text, marks, action.get("version"))
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
            f"{self.engine.unknown_function_message(name, function_kind)} The Durable extension "
            "schedules nothing for this call and leaves the instance Running.")
        return event(kind, self.now, task_id, Name=name, DevHostUnscheduled=True)

    def _send_entity_request(self, task_id: int, action: dict) -> dict:
        """DurableOrchestrationContext.CallDurableTaskFunctionAsync for an entity: a
        RequestMessage sent as event "op" to the entity, recorded as EventSent."""
        entity_id = action["instanceId"]
        name, _ = entities.split_scheduler_id(entity_id)
        if self.engine.registry.entity(name) is None:
            return dict(self._unknown_function(task_id, EventType.EVENT_SENT, name, "entity"),
                        InstanceId=entity_id)
        row = self.row
        request = entities.request_message(
            action.get("operation") or "", entities.request_input(action.get("input")),
            entities.request_id(row.instance_id, row.execution_id, task_id),
            signal=action["actionType"] == ActionType.SIGNAL_ENTITY,
            parent=row.instance_id, parent_execution=row.execution_id, moment=self.now)
        self.engine.deliver_request(entity_id, request, self.now)
        self.other_instances.append(entity_id)
        return event(EventType.EVENT_SENT, self.now, task_id, InstanceId=entity_id,
                     Name=entities.REQUEST_EVENT, Input=payloads.to_text(request))

    def _start_sub_orchestration(self, task_id, name, child_id, input_text, marks, version) -> dict:
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
                                       _in_transaction=True, version=version)
        except EngineError as exc:
            failed = event(EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, self.now,
                           TaskScheduledId=task_id, Reason=str(exc), Details=None)
            self.store.add_message(self.row.instance_id, self.row.execution_id, failed,
                                   self.now.timestamp())
        return event(EventType.SUB_ORCHESTRATION_INSTANCE_CREATED, self.now, task_id, Name=name,
                     InstanceId=child_id, Input=stored_input, Version=version, **marks)

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

    def _continue_as_new(self, input_text: Optional[str], full: list[dict]) -> None:
        row = self.row
        # NewVersion ?? runtimeState.Version: the Python SDK sets no new version.
        version = (versioning.execution_started(full) or {}).get("Version")
        self.store.clear_history(row.instance_id)
        self.store.delete_pending_work(row.instance_id)
        row.execution_id = uuid.uuid4().hex
        # ContinueAsNew(action.Input): the SDK's JSON text, stored as a JSON string.
        row.input = payloads.to_text(input_text)
        row.runtime_status = "Running"
        row.last_updated_time = to_iso(self.now)
        self.store.update_instance(row)
        started = event(EventType.EXECUTION_STARTED, self.now, Name=row.name, Input=row.input, Version=version,
                        OrchestrationInstance={"InstanceId": row.instance_id,
                                               "ExecutionId": row.execution_id})
        self.store.add_message(row.instance_id, row.execution_id, started, self.now.timestamp())
        self.execution_id_after = row.execution_id
        self.history_after = []

    def finish(self, status: str, output_text: Optional[str], details: Optional[str] = None) -> list[dict]:
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
