"""Starting an orchestration instance: the rules ``DurableClient.StartNewAsync`` checks, the
row and ExecutionStarted a new execution begins with, and the writes that create it.

A client's start (``Engine.start_instance``) and a sub-orchestration an episode starts
(``orchestration_episode``) create an instance the same way.
"""
from __future__ import annotations

import uuid
from typing import Optional

from azure.durable_functions import OrchestrationRuntimeStatus

from . import entities
from .clock import to_iso
from .errors import InstanceAlreadyExists, InvalidArgument
from .history import EventType, event
from .storage import InstanceRow, Store

ACTIVE_STATUSES = tuple(s.value for s in (OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running,
                                          OrchestrationRuntimeStatus.Suspended))
# DurableClient.MaxInstanceIdLength
MAX_INSTANCE_ID_CHARS = 256


def check_instance_id(instance_id: str) -> None:
    """The checks of ``DurableClient.StartNewAsync`` (ArgumentException for each; the first
    two pass their arguments swapped, so .NET's message is the parameter's name followed by
    the text as the "parameter")."""
    if instance_id.startswith("@"):
        raise InvalidArgument("instanceId (Parameter 'Orchestration instance ids must not start with @.')")
    if entities.has_invalid_character(instance_id):
        raise InvalidArgument("instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, "
                              "or control characters.')")
    if len(instance_id) > MAX_INSTANCE_ID_CHARS:
        raise InvalidArgument(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_CHARS} characters.")


def new_instance(name: str, instance_id: str, input_text: Optional[str],
                 parent: Optional[tuple[str, int, str]], version: Optional[str], now) -> tuple[InstanceRow, dict]:
    """The Pending row of a new instance and the ExecutionStarted that starts it. ``parent``
    is (instance id, task id, execution id) of the orchestration that called it."""
    execution_id = uuid.uuid4().hex
    row = InstanceRow(instance_id, name, execution_id, "Pending", input_text, None, None,
                      to_iso(now), to_iso(now), *(parent or (None, None, None)))
    started = event(EventType.EXECUTION_STARTED, now, Name=name, Input=input_text, Version=version,
                    OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id})
    if parent:
        started["ParentInstance"] = {
            "OrchestrationInstance": {"InstanceId": parent[0], "ExecutionId": parent[2]},
            "TaskScheduleId": parent[1]}
    return row, started


def create_instance(store: Store, row: InstanceRow, started: dict, now) -> None:
    """Write a new instance, in the caller's transaction. An instance of the same id that
    has finished is replaced (history, messages and work go with it); one that is still
    active refuses the start."""
    existing = store.get_instance(row.instance_id)
    if existing and existing.runtime_status in ACTIVE_STATUSES:
        # overridableExistingInstanceStates defaults to NonRunningStates
        raise InstanceAlreadyExists(
            f"An Orchestration instance with the status {existing.runtime_status} already exists.")
    if existing:
        store.delete_instance(row.instance_id)
    store.put_instance(row)
    store.add_message(row.instance_id, row.execution_id, started, now.timestamp())
