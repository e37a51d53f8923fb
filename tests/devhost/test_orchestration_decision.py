"""An episode's decision is made from the instance's row, history and due messages alone,
and leaves them as they were; the commit settles what depends on other instances."""
from __future__ import annotations

import copy
import json

from devhost.history import EventType
from devhost.orchestration_decision import ActivityCall, ChildStart, Send


def next_episode(host, instance_id: str) -> tuple:
    """What the engine decides the instance's next episode from: row, history, due messages."""
    engine = host.engine
    row = engine.instance(instance_id)
    return row, engine.history(row), engine.store.due_messages(instance_id, host.clock.now().timestamp())


def decide_next(host, instance_id: str):
    """The decision of the instance's next episode, as the engine would make it."""
    return host.engine.decider.decide(instance_id, *next_episode(host, instance_id), host.clock.now())


def test_a_decision_changes_nothing_it_was_given_and_nothing_stored(features):
    instance_id = features.start("slow_job", {"log": "unused", "label": "a", "seconds": 0})
    row, history, messages = next_episode(features, instance_id)
    given = copy.deepcopy((row, history, messages))
    decision = features.engine.decider.decide(instance_id, row, history, messages, features.clock.now())
    again = decide_next(features, instance_id)

    assert [type(item) for item in decision.outbox] == [ActivityCall]
    assert decision.row.runtime_status == "Running" and (row, history, messages) == given
    assert decision.consumed == [m.id for m in messages]
    assert [e["EventType"] for e in decision.history] == [
        EventType.ORCHESTRATOR_STARTED, EventType.EXECUTION_STARTED, EventType.TASK_SCHEDULED,
        EventType.ORCHESTRATOR_COMPLETED]
    # Deciding wrote nothing: the same decision again, and the instance still Pending.
    assert again.outbox == decision.outbox and again.history == decision.history
    assert features.status(instance_id)["runtimeStatus"] == "Pending"
    assert features.engine.pending_work() == []


def test_a_terminate_is_decided_without_running_the_orchestrator(features):
    instance_id = features.start("slow_job", {"log": "unused", "label": "a", "seconds": 0})
    features.engine.run_episodes([instance_id])  # the activity is scheduled
    features.terminate(instance_id, "enough")
    decision = decide_next(features, instance_id)

    assert decision.executed is None and decision.outbox == []
    assert decision.row.runtime_status == "Terminated" and decision.row.output == "enough"
    assert decision.ends_execution  # the scheduled activity is dropped when it is written
    assert [e["EventType"] for e in decision.history] == [EventType.EXECUTION_COMPLETED]


def test_a_child_whose_id_is_taken_when_written_fails_the_parents_task(features):
    # Decided while the id is free; by the commit a running instance holds it.
    instance_id = features.start("parent", {"key": "taken"})
    decision = decide_next(features, instance_id)
    [child] = [item for item in decision.outbox if isinstance(item, ChildStart)]
    assert child.row.instance_id == f"{instance_id}-ok" and child.row.parent_instance_id == instance_id
    features.start("child_ok", "squatter", instance_id=child.row.instance_id)

    features.step(instance_id)
    features.step(instance_id)
    [failed] = [e for e in features.history(instance_id)
                if e["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_FAILED]
    assert failed["TaskScheduledId"] == 0
    assert failed["Reason"] == "An Orchestration instance with the status Pending already exists."
    assert features.status(child.row.instance_id)["input"] == json.dumps("squatter")  # left as it was
    assert features.engine.instance(child.row.instance_id).execution_id != child.row.execution_id


def test_a_timer_is_a_message_offered_at_its_fire_time(features):
    instance_id = features.start("timer_race", 60)
    decision = decide_next(features, instance_id)
    [timer] = [item for item in decision.outbox if isinstance(item, Send)]
    assert timer.instance_id == instance_id and timer.timer_id == 0
    assert timer.visible_at == features.clock.now().timestamp() + 60
