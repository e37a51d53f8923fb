"""What one orchestrator episode produces, decided without reading or writing the store.

``Decider.decide`` takes an instance's row, its history and its due messages, applies
terminate, suspend and resume, replays the orchestrator on the history with the new events
(``replay``), checks determinism and returns a ``Decision``: the history events the
episode adds, the messages it sends (timers, entity requests, a parent's result, a new
execution's start), the activities it schedules, the children it starts, the timers it
cancels and the instance as it leaves it. ``orchestration_episode`` writes a decision in
the engine's transaction; what depends on other instances at that moment (whether a
child's id is free, whether the parent still runs, whether a held instance still exists)
is settled there.
"""
from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional, Union

from . import entities, payloads, sdk_seams, versioning
from .clock import parse_iso, to_iso
from .errors import InvalidArgument
from .history import (CONTROL_EVENTS, ENTITY_ACTIONS, ORCHESTRATION_STATUS_NUMBERS,
                      SCHEDULING_ACTIONS, SCHEDULING_EVENTS, ActionType, EventType, event, mark_played)
from .instances import check_instance_id, new_instance
from .registry import Registry
from .replay import Replay, Replayer, actions_of, determinism_problem
from .storage import InstanceRow, Message
from .versioning import Versioning

CUSTOM_STATUS_LIMIT_KB = 16
UNSUPPORTED_ACTIONS = {ActionType.CALL_HTTP: "durable HTTP (call_http)"}


@dataclass(frozen=True)
class Send:
    """A message for an instance or an entity, offered from ``visible_at`` (a timer's fire
    time; ``timer_id`` lets the timer be cancelled)."""
    instance_id: str
    execution_id: Optional[str]
    event: dict
    visible_at: float
    timer_id: Optional[int] = None


@dataclass(frozen=True)
class ActivityCall:
    """An activity to run: a work item for the registered function ``name``."""
    execution_id: str
    task_id: int
    name: str
    input: Optional[str]


@dataclass(frozen=True)
class ChildStart:
    """A sub-orchestration to create: its row and ExecutionStarted, for the parent's task."""
    row: InstanceRow
    started: dict
    task_id: int


@dataclass(frozen=True)
class Executed:
    """The orchestrator function ran: what its log line says."""
    name: str
    succeeded: bool
    milliseconds: float
    error: str = ""


@dataclass
class Decision:
    """Everything one episode produces, for ``orchestration_episode.write`` to apply."""
    instance_id: str
    now: datetime
    consumed: list[int] = field(default_factory=list)    # the messages the episode takes
    # versionFailureStrategy Reject: nothing is taken and the instance is held back until then.
    held_until: Optional[float] = None
    release_hold: bool = False                           # the instance runs: a hold has ended
    row: Optional[InstanceRow] = None                    # the instance as it leaves it; None: unchanged
    outbox: list[Union[Send, ActivityCall, ChildStart]] = field(default_factory=list)  # in the order produced
    cancelled_timers: list[int] = field(default_factory=list)
    restarts: bool = False          # continue-as-new: the history starts again
    ends_execution: bool = False    # the execution's timers and activities are dropped (after the outbox)
    new_execution: Optional[Send] = None   # continue-as-new: the next execution's ExecutionStarted
    parent_result: Optional[Send] = None   # for the parent, if it still runs
    history_start: int = 0
    history: list[dict] = field(default_factory=list)   # appended at history_start
    # The execution's whole history once written, for the engine's cache; None when the
    # execution has ended or the episode did not run the orchestrator (the cache forgets it).
    history_after: Optional[list[dict]] = None
    execution_id_after: str = ""
    woken: list[str] = field(default_factory=list)      # other instances and entities given work
    log_lines: list[str] = field(default_factory=list)  # logged once the episode is written
    refusal: Optional[str] = None                       # logged once per instance
    executed: Optional[Executed] = None


def refused_child(child: ChildStart, reason: str, now: datetime) -> Send:
    """What the parent gets when its child cannot start: the task fails with the reason."""
    failed = event(EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, now, TaskScheduledId=child.task_id,
                   Reason=reason, Details=None)
    return Send(child.row.parent_instance_id, child.row.parent_execution_id, failed, now.timestamp())


class Decider:
    """Decides episodes for one app: its functions, the replayer that runs orchestrator code,
    and this host's versioning settings."""

    def __init__(self, registry: Registry, replayer: Replayer, versioning_settings: Versioning):
        self.registry, self.replayer, self.versioning = registry, replayer, versioning_settings

    def replay(self, row: InstanceRow, history: list[dict]) -> Replay:
        return self.replayer.replay(self.registry.orchestrator(row.name), row, history)

    def decide(self, instance_id: str, row: Optional[InstanceRow], history: list[dict],
               messages: list[Message], now: datetime) -> Decision:
        return _Deciding(self, instance_id, row, history, messages, now).episode()

    def fail(self, instance_id: str, row: Optional[InstanceRow], messages: list[Message],
             now: datetime, reason: str) -> Decision:
        """An instance the engine itself could not run: it fails with ``reason`` and its due
        messages are dropped; its history is left as it is."""
        return _Deciding(self, instance_id, row, [], messages, now).failure(reason)


class _Deciding:
    """The state of one decision while it is being made."""

    def __init__(self, decider: Decider, instance_id: str, row: Optional[InstanceRow],
                 history: list[dict], messages: list[Message], now: datetime):
        self.decider, self.registry = decider, decider.registry
        self.row = copy.copy(row)  # the caller's row stays as it was read
        self.history, self.messages, self.now = history, messages, now
        self.decision = Decision(instance_id, now)

    def episode(self) -> Decision:
        decision, row = self.decision, self.row
        if row is None or row.is_terminal:
            decision.consumed = [m.id for m in self.messages]
            return decision
        if self._version_refused():
            self._refuse_version()
            return decision
        decision.release_hold = True
        events = self._apply_control_messages()
        if row.runtime_status == "Suspended":
            decision.consumed = [m.id for m in self.messages if m.event["EventType"] in CONTROL_EVENTS]
            return decision
        decision.consumed = [m.id for m in self.messages]
        if row.is_terminal:
            return decision
        events = [e for e in events if e is not None]
        if events:
            self._replay(events)
        return decision

    def failure(self, reason: str) -> Decision:
        self.decision.consumed = [m.id for m in self.messages]
        if self.row is not None and not self.row.is_terminal:
            self.finish("Failed", reason)
        return self.decision

    def _set_row(self, status: str) -> None:
        self.row.runtime_status = status
        self.row.last_updated_time = to_iso(self.now)
        self.decision.row = self.row

    def _apply_control_messages(self) -> list[Optional[dict]]:
        """Terminate, suspend and resume; returns the remaining events (stale ones as None)."""
        events: list[Optional[dict]] = []
        for message in self.messages:
            kind = message.event["EventType"]
            if kind == EventType.EXECUTION_TERMINATED:
                self._terminate(message.event.get("Input"))
                return []
            if kind == EventType.EXECUTION_SUSPENDED:
                self._set_row("Suspended")
            elif kind == EventType.EXECUTION_RESUMED:
                self._set_row("Running")
            elif not self._is_current(message):
                events.append(None)  # a result or timer of an execution that has ended
            else:
                events.append(message.event)
        return events

    def _current_events(self) -> list[dict]:
        """The due messages' events for the execution running now."""
        return [m.event for m in self.messages if self._is_current(m)]

    def _is_current(self, message: Message) -> bool:
        """Addressed to no execution in particular, or to the one running now."""
        return message.execution_id in (None, self.row.execution_id)

    def _version_refused(self) -> bool:
        """TaskOrchestrationDispatcher checks the execution's version against this host's
        before it processes anything of the work item (control messages included)."""
        settings = self.decider.versioning
        if settings.match == "None":
            return False
        started = self._execution_started()
        return started is not None and not settings.complies(started.get("Version"))

    def _execution_started(self) -> Optional[dict]:
        return (versioning.execution_started(self.history)
                or versioning.execution_started(self._current_events()))

    def _refuse_version(self) -> None:
        settings, decision = self.decider.versioning, self.decision
        refusal = (f"Instance {self.row.instance_id} has version {self._execution_started().get('Version')!r}, "
                   f"which this host (defaultVersion {settings.default_version!r}, versionMatchStrategy "
                   f"{settings.match}) does not run")
        if settings.failure == "Fail":
            decision.consumed = [m.id for m in self.messages]
            episode = mark_played([event(EventType.ORCHESTRATOR_STARTED, self.now), *self._current_events()])
            completed = self.finish("Failed", versioning.MISMATCH_OUTPUT)
            decision.history_start = len(self.history)
            decision.history = episode + completed + [event(EventType.ORCHESTRATOR_COMPLETED, self.now)]
            decision.log_lines.append(f"{refusal}: it failed (versionFailureStrategy Fail).")
            return
        # Reject: AbandonTaskOrchestrationWorkItemAsync leaves the whole work item, in its
        # order, to be tried again; the instance is held back until then.
        decision.held_until = self.now.timestamp() + versioning.REJECT_RETRY_SECONDS
        decision.refusal = (f"{refusal}: its work waits for a host that does and is tried again "
                            f"every {versioning.REJECT_RETRY_SECONDS:g} s (versionFailureStrategy Reject).")

    def _terminate(self, reason: Optional[str]) -> None:
        # TaskOrchestrationContext: CompleteOrchestration(terminatedEvent.Input, ...); the
        # reason is the output, shown as JSON when it parses (ParseToJToken).
        self.decision.history_start = len(self.history)
        self.decision.history = self.finish("Terminated", reason)

    def _replay(self, new_events: list[dict]) -> None:
        row, decision = self.row, self.decision
        episode_events = [event(EventType.ORCHESTRATOR_STARTED, self.now), *new_events]
        full = self.history + episode_events
        if not any(e["EventType"] == EventType.EXECUTION_STARTED for e in full):
            return  # the execution has not started yet
        started = time.perf_counter()
        result = self.decider.replay(row, full)
        milliseconds = (time.perf_counter() - started) * 1000
        added = self._apply_result(result, full)
        failure = result.error if result.error is not None else (
            row.output if row.runtime_status == "Failed" else None)
        decision.executed = Executed(row.name, failure is None, milliseconds, failure or "")
        if decision.restarts:
            return  # continued as new: the old history is gone
        decision.history_start = len(self.history)
        decision.history = mark_played(episode_events) + added + [
            event(EventType.ORCHESTRATOR_COMPLETED, self.now)]
        if not row.is_terminal:
            decision.history_after = self.history + decision.history
            decision.execution_id_after = row.execution_id

    def _apply_result(self, result: Replay, full: list[dict]) -> list[dict]:
        state = result.state
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
        self._set_row("Running")
        return added

    def _unknown_signal_target(self, actions: list[dict]) -> Optional[str]:
        """SignalEntity checks its target synchronously, and OutOfProcOrchestrationShim lets
        what InvokeAPIFromAction throws fail the orchestration (a call_entity's check fails
        only its task, which the shim ignores: see _unknown_function)."""
        for action in actions:
            if action.get("actionType") == ActionType.SIGNAL_ENTITY:
                name, _ = entities.split_scheduler_id(action.get("instanceId") or "@")
                if self.registry.entity(name) is None:
                    return self.registry.unknown_function_message(name, "entity")
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
        for task_id, task in sdk_seams.numbered_open_tasks(context):
            if task_id in scheduled_ids and sdk_seams.is_cancelled_timer(task):
                self.decision.cancelled_timers.append(task_id)
        return added

    def _schedule_action(self, task_id: int, action: dict, hidden: bool) -> dict:
        kind, row, outbox = action["actionType"], self.row, self.decision.outbox
        marks = {"DevHostHidden": True} if hidden else {}
        if kind == ActionType.CREATE_TIMER:
            fire_at = parse_iso(action["fireAt"])
            if not action.get("isCanceled"):
                fired = event(EventType.TIMER_FIRED, fire_at, TimerId=task_id, FireAt=to_iso(fire_at))
                outbox.append(Send(row.instance_id, row.execution_id, fired, fire_at.timestamp(), task_id))
            return event(EventType.TIMER_CREATED, self.now, task_id, FireAt=to_iso(fire_at), **marks)
        if kind in ENTITY_ACTIONS:
            return self._send_entity_request(task_id, action)
        name, input_text = action["functionName"], action.get("input")
        if kind in (ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            return self._start_sub_orchestration(task_id, name, action.get("instanceId"),
                                                 input_text, marks, action.get("version"))
        activity = self.registry.activity_name(name)
        if activity is None:
            return self._unknown_function(task_id, EventType.TASK_SCHEDULED, name, "activity")
        outbox.append(ActivityCall(row.execution_id, task_id, activity, input_text))
        # DurableTask.Core's ScheduleTask serializes the parameters array: the input is a
        # one-element array holding the SDK's JSON text.
        return event(EventType.TASK_SCHEDULED, self.now, task_id, Name=name,
                     Input=payloads.to_text([input_text]), **marks)

    def _unknown_function(self, task_id: int, kind: EventType, name: str, function_kind: str) -> dict:
        """The extension's ThrowIfFunctionDoesNotExist is swallowed by the shim's replay
        loop (ProcessAsyncActionsV2): nothing is scheduled and the orchestration waits for
        ever, Running. The devhost records the call as unscheduled (kept out of the public
        history, so the replay still lines up with it) and says so in its log."""
        self.decision.log_lines.append(
            f"Instance {self.row.instance_id} is stuck: "
            f"{self.registry.unknown_function_message(name, function_kind)} The Durable extension "
            "schedules nothing for this call and leaves the instance Running.")
        return event(kind, self.now, task_id, Name=name, DevHostUnscheduled=True)

    def _send_entity_request(self, task_id: int, action: dict) -> dict:
        """DurableOrchestrationContext.CallDurableTaskFunctionAsync for an entity: a
        RequestMessage sent as event "op" to the entity, recorded as EventSent."""
        entity_id = action["instanceId"]
        name, _ = entities.split_scheduler_id(entity_id)
        if self.registry.entity(name) is None:
            return dict(self._unknown_function(task_id, EventType.EVENT_SENT, name, "entity"),
                        InstanceId=entity_id)
        row = self.row
        request = entities.request_message(
            action.get("operation") or "", entities.request_input(action.get("input")),
            entities.request_id(row.instance_id, row.execution_id, task_id),
            signal=action["actionType"] == ActionType.SIGNAL_ENTITY,
            parent=row.instance_id, parent_execution=row.execution_id, moment=self.now)
        self.decision.outbox.append(Send(entity_id, None, entities.request_event(request, self.now),
                                         self.now.timestamp()))
        self.decision.woken.append(entity_id)
        return event(EventType.EVENT_SENT, self.now, task_id, InstanceId=entity_id,
                     Name=entities.REQUEST_EVENT, Input=payloads.to_text(request))

    def _start_sub_orchestration(self, task_id: int, name: str, child_id: Optional[str],
                                 input_text: Optional[str], marks: dict, version: Optional[str]) -> dict:
        if self.registry.orchestrator_name(name) is None:
            return self._unknown_function(task_id, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
                                          name, "orchestrator")
        row = self.row
        # DurableTask.Core names a child without an id "<parent execution id>:<task id>".
        child_id = child_id or f"{row.execution_id}:{task_id}"
        # The child's input is the SDK's JSON text, stored as a JSON string.
        stored_input = payloads.to_text(input_text)
        self.decision.woken.append(child_id)
        child_version = self.decider.versioning.default_version if version is None else version
        child_row, started = new_instance(name, child_id, stored_input,
                                                    (row.instance_id, task_id, row.execution_id),
                                                    child_version, self.now)
        child = ChildStart(child_row, started, task_id)
        try:
            check_instance_id(child_id)
            self.decision.outbox.append(child)
        except InvalidArgument as exc:
            self.decision.outbox.append(refused_child(child, str(exc), self.now))
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

    def _continue_as_new(self, input_text: Optional[str], full: list[dict]) -> None:
        row, decision = self.row, self.decision
        # NewVersion ?? runtimeState.Version: the Python SDK sets no new version.
        version = (versioning.execution_started(full) or {}).get("Version")
        decision.restarts = decision.ends_execution = True
        row.execution_id = uuid.uuid4().hex
        # ContinueAsNew(action.Input): the SDK's JSON text, stored as a JSON string.
        row.input = payloads.to_text(input_text)
        self._set_row("Running")
        started = event(EventType.EXECUTION_STARTED, self.now, Name=row.name, Input=row.input, Version=version,
                        OrchestrationInstance={"InstanceId": row.instance_id,
                                               "ExecutionId": row.execution_id})
        decision.new_execution = Send(row.instance_id, row.execution_id, started, self.now.timestamp())
        decision.history_after, decision.execution_id_after = [], row.execution_id

    def finish(self, status: str, output_text: Optional[str], details: Optional[str] = None) -> list[dict]:
        """Mark the instance finished; returns the ExecutionCompleted event for its history."""
        row, decision = self.row, self.decision
        row.output = output_text
        self._set_row(status)
        decision.ends_execution = True
        if row.parent_instance_id:
            if status == "Completed":
                done = event(EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED, self.now,
                             TaskScheduledId=row.parent_task_id, Result=output_text)
            else:
                # TaskOrchestrationDispatcher: the child's completion Result (the failure or
                # termination reason) and Details become the parent's Reason and Details.
                done = event(EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, self.now,
                             TaskScheduledId=row.parent_task_id, Reason=output_text, Details=details)
            # Addressed to the execution that started this child: if the parent has continued
            # as new since, the result is stale and the parent's next episode drops it.
            decision.parent_result = Send(row.parent_instance_id, row.parent_execution_id, done,
                                          self.now.timestamp())
        return [event(EventType.EXECUTION_COMPLETED, self.now,
                      OrchestrationStatus=ORCHESTRATION_STATUS_NUMBERS[status], Result=output_text)]
