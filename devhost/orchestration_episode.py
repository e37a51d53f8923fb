"""An orchestrator episode written: its ``Decision`` (``orchestration_decision``) applied
inside the transaction the engine opens for a batch of episodes.

Writing settles what the decision could not know: whether a held instance still exists,
whether a child's id is free (a running instance of that id refuses the start, and the
parent's task fails with the reason), and whether the parent of a finished child still
runs. ``Written`` is what the engine acts on once the transaction has committed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import InstanceAlreadyExists
from .instances import create_instance
from .orchestration_decision import ActivityCall, ChildStart, Decision, Send, refused_child
from .storage import Store, WorkItem


@dataclass
class Written:
    new_work: list[WorkItem] = field(default_factory=list)     # activities to run
    woken: list[str] = field(default_factory=list)             # other instances and entities given work
    started: list[str] = field(default_factory=list)           # children created (a finished namesake replaced)
    refusal: Optional[str] = None                              # said once per instance


class OrchestrationEpisode:
    """One orchestration's part of a batch: its decision, written by ``apply`` in the
    batch's transaction."""

    def __init__(self, store: Store, decision: Decision):
        self.store, self.decision = store, decision
        self.instance_id = decision.instance_id
        self.written = Written()

    @property
    def new_work(self) -> list[WorkItem]:
        return self.written.new_work

    def apply(self) -> None:
        self.written = write(self.store, self.decision)


def write(store: Store, decision: Decision) -> Written:
    """Every write of a decision, in the caller's transaction."""
    written = Written(woken=list(decision.woken))
    instance_id = decision.instance_id
    if decision.held_until is not None:
        # Unless another worker process purged the instance meanwhile.
        if store.get_instance(instance_id) is not None:
            store.hold_instance(instance_id, decision.held_until)
            written.refusal = decision.refusal
        return written
    store.delete_messages(decision.consumed)
    if decision.release_hold:
        store.release_instance(instance_id)
    for item in decision.outbox:
        if isinstance(item, Send):
            _send(store, item)
        elif isinstance(item, ActivityCall):
            item_id = store.add_work_item(instance_id, item.execution_id, item.task_id, item.name, item.input)
            written.new_work.append(WorkItem(item_id, instance_id, item.execution_id, item.task_id,
                                             item.name, item.input))
        elif _start_child(store, item, decision):
            written.started.append(item.row.instance_id)
    for timer_id in decision.cancelled_timers:
        store.delete_timer(instance_id, timer_id)
    if decision.restarts:
        store.clear_history(instance_id)
    if decision.ends_execution:
        store.delete_pending_work(instance_id)
    if decision.row is not None:
        store.update_instance(decision.row)
    if decision.new_execution is not None:
        _send(store, decision.new_execution)
    result = decision.parent_result
    if result is not None:
        parent = store.get_instance(result.instance_id)
        if parent is not None and not parent.is_terminal:
            _send(store, result)
            written.woken.append(result.instance_id)
    if decision.history:
        store.append_history(instance_id, decision.history_start, decision.history)
    return written


def _send(store: Store, message: Send) -> None:
    store.add_message(message.instance_id, message.execution_id, message.event, message.visible_at,
                      message.timer_id)


def _start_child(store: Store, child: ChildStart, decision: Decision) -> bool:
    """Create the child; when a running instance holds its id, fail the parent's task instead."""
    try:
        create_instance(store, child.row, child.started, decision.now)
    except InstanceAlreadyExists as exc:
        _send(store, refused_child(child, str(exc), decision.now))
        return False
    return True
