"""Durable entities in the engine: taking an entity's queued requests as one batch, running
it, and saving what it did. ``entities`` holds the protocol; this module reads and writes
the store inside the engine's transactions.
"""
from __future__ import annotations

import json
import logging
import time

from . import entities, payloads
from .clock import to_iso
from .history import EventType, event
from .python_worker import WorkerFunction, succeeded, typed_data_text
from .storage import EntityRow, Store, WorkItem
from .worker_protocol import ParameterBinding, TypedData

log = logging.getLogger("devhost")

# devhost: how long an entity whose batch could not run waits before it runs it again.
ABORTED_BATCH_RETRY_SECONDS = 10.0
# Re-queued requests are offered before everything else the entity has (messages are
# taken in visible-time order).
ABORTED_BATCH_FIRST = 0.0


class EntityEpisode:
    """Takes an entity's queued requests as one batch (a work item), which the runner runs
    like an activity; ``Engine.complete_activities`` saves what it did. While the batch is
    taken, the entity's next requests wait (storage offers none of its messages)."""

    def __init__(self, store: Store, entity_id: str, now, messages):
        self.store, self.now = store, now
        self.instance_id, self.messages = entity_id, messages
        self.new_work: list[WorkItem] = []

    def apply(self) -> None:
        self.store.delete_messages([m.id for m in self.messages])
        requests = [payloads.read_token(m.event.get("Input")) for m in self.messages
                    if m.event.get("Name") == entities.REQUEST_EVENT]
        requests = [r for r in requests if isinstance(r, dict) and "op" in r]
        if not requests:
            return
        self.store.release_instance(self.instance_id)  # the entity runs: a hold has ended
        row = self.store.get_entity(self.instance_id)
        if row is None:
            name, key = entities.split_scheduler_id(self.instance_id)
            row = EntityRow(self.instance_id, name, key, False, None, to_iso(self.now), None)
            self.store.put_entity(row)
        batch = json.dumps(requests)
        item_id = self.store.add_work_item(self.instance_id, "", 0, row.name, batch, kind="entity")
        self.new_work.append(WorkItem(item_id, self.instance_id, "", 0, row.name, batch, "entity"))


def _run_again_later(store: Store, item: WorkItem, requests: list[dict], reason: str, now) -> None:
    """An aborted batch: its requests go back to the front of the entity's queue, ahead of
    any that arrived meanwhile, and the entity is held back before it runs them again."""
    for request in requests:
        store.add_message(item.instance_id, None, entities.request_event(request, now), ABORTED_BATCH_FIRST)
    store.hold_instance(item.instance_id, now.timestamp() + ABORTED_BATCH_RETRY_SECONDS)
    log.error("entity %s: the batch of %d operation(s) could not run (%s); as in the Durable "
              "extension no caller is answered and the batch runs again in %g s", item.instance_id,
              len(requests), reason, ABORTED_BATCH_RETRY_SECONDS)


async def run(function: WorkerFunction, row: EntityRow, item: WorkItem) -> entities.EntityOutcome:
    """Run a taken batch on the entity function, through the Python worker, as activities
    run: the function gets the context JSON through the worker's entityTrigger converter."""
    started = time.perf_counter()
    requests = json.loads(item.input)
    context = entities.context_json(row.name, row.key, row.exists, row.state, requests)
    response = await function.invoke(
        [ParameterBinding(name=function.trigger["name"], data=TypedData(string=context))])
    if succeeded(response):
        outcome = entities.read_reply(typed_data_text(response.return_value), row.exists, row.state, requests)
    else:
        exception = response.result.exception
        log.error("entity %s: the batch of %d operation(s) could not run\n%s", item.instance_id,
                  len(requests), exception.stack_trace.rstrip())
        outcome = entities.EntityOutcome(row.exists, row.state, (), aborted=exception.message)
    took = (time.perf_counter() - started) * 1000
    if outcome.aborted:
        log.error("Executed 'Functions.%s' (Failed, InstanceId=%s, Duration=%.0fms): %s",
                  row.name, item.instance_id, took, outcome.aborted)
        return outcome
    failed = sum(1 for is_error, _ in outcome.results if is_error)
    log.info("Executed 'Functions.%s' (Succeeded, InstanceId=%s, Duration=%.0fms): %d operation(s), "
             "%d failed", row.name, item.instance_id, took, len(requests), failed)
    return outcome


def save(store: Store, item: WorkItem, outcome, now) -> list[str]:
    """Keep the entity's new state and answer each call (TaskEntityShim
    .ExecuteOutOfProcBatch; the Python SDK's entities send no signals of their own);
    returns the instances given work. ``outcome`` is the devhost's own failure (an
    ActivityOutcome) when the batch could not be run at all."""
    row = store.get_entity(item.instance_id)
    requests = json.loads(item.input)
    if isinstance(outcome, entities.EntityOutcome) and outcome.aborted:
        _run_again_later(store, item, requests, outcome.aborted, now)
        return []
    if not isinstance(outcome, entities.EntityOutcome):
        outcome = entities.failed_batch(row.exists, row.state, len(requests), outcome.reason)
    store.put_entity(EntityRow(row.entity_id, row.name, row.key, outcome.exists,
                               outcome.state if outcome.exists else None, to_iso(now), requests[-1]["op"]))
    given_work = [item.instance_id]  # its next batch, if requests queued meanwhile
    for request, (is_error, result) in zip(requests, outcome.results):
        if request.get("signal") or not request.get("parent"):
            continue
        # The answer is an event named by the request id, for the execution that sent it.
        answer = event(EventType.EVENT_RAISED, now, Name=request["id"],
                       Input=payloads.to_text(entities.response_message(is_error, result)))
        store.add_message(request["parent"], request.get("parentExecution"), answer, now.timestamp())
        given_work.append(request["parent"])
    return given_work
