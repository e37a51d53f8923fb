"""A status is built once per step of an execution (orchestrations/shown_status.py): a
replay that passes a step shown before sets what was built then, and a review's statuses
are exactly those built afresh."""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from azure.durable_functions.models.history import HistoryEvent, HistoryEventType

import orchestrations.hitl_orchestration as hitl
from devhost.testing import TestingHost
from orchestrations.shown_status import ShownStatuses

APP = Path(__file__).resolve().parents[2]
STARTED_AT = "2026-03-02T09:00:00Z"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Replay:
    """What ShownStatuses reads of the SDK's context: the history, and the status set."""

    def __init__(self, execution_id=None, started=True, now=NOW):
        self.current_utc_datetime = now
        instance = {"InstanceId": "review-1"}
        if execution_id is not None:
            instance["ExecutionId"] = execution_id
        self.histories = [HistoryEvent(EventType=HistoryEventType.ORCHESTRATOR_STARTED, EventId=-1,
                                       IsPlayed=True, Timestamp=STARTED_AT)]
        if started:
            self.histories.append(HistoryEvent(EventType=HistoryEventType.EXECUTION_STARTED, EventId=-1,
                                               IsPlayed=True, Timestamp=STARTED_AT,
                                               OrchestrationInstance=instance))
        self.custom_status = None

    def set_custom_status(self, status):
        self.custom_status = status


def builder(built: list):
    def build(step):
        def status():
            built.append(step)
            return {"step": step}
        return status
    return build


def test_a_later_replay_sets_the_statuses_built_for_its_steps_and_builds_only_the_new_ones():
    shown, built = ShownStatuses(), []
    build = builder(built)
    first = Replay("e1")
    shown.show(first, build("drafting"))
    assert first.custom_status == {"step": "drafting"}

    second = Replay("e1")
    shown.show(second, build("drafting, again"))
    shown.show(second, build("waiting"))
    assert second.custom_status == {"step": "waiting"}
    assert built == ["drafting", "waiting"]


def test_each_execution_has_its_own_statuses():
    shown, built = ShownStatuses(), []
    build = builder(built)
    shown.show(Replay("e1"), build("stage 1"))
    next_execution = Replay("e2")
    shown.show(next_execution, build("stage 2"))
    assert next_execution.custom_status == {"step": "stage 2"}
    assert built == ["stage 1", "stage 2"]


def test_a_step_reached_at_another_time_is_built_again():
    """A rewound execution (Azure Storage replaces its failed events) goes its new way only
    after an event that came since, at a later orchestration time."""
    shown, built = ShownStatuses(), []
    build = builder(built)
    shown.show(Replay("e1"), build("failed"))
    rewound = Replay("e1", now=NOW + timedelta(minutes=5))
    shown.show(rewound, build("waiting"))
    assert rewound.custom_status == {"step": "waiting"} and built == ["failed", "waiting"]


def test_a_history_without_an_execution_id_builds_every_status():
    for replay in (Replay(None), Replay(started=False)):
        shown, built = ShownStatuses(), []
        build = builder(built)
        shown.show(replay, build("a"))
        again = Replay(None)
        shown.show(again, build("b"))
        assert again.custom_status == {"step": "b"} and built == ["a", "b"]


def test_what_is_kept_is_bounded_and_the_oldest_goes_first():
    shown, built = ShownStatuses(kept=2), []
    build = builder(built)
    other, replay = Replay("e0"), Replay("e1")
    shown.show(other, build("other"))
    shown.show(replay, build("one"))
    shown.show(replay, build("two"))
    again, other_again = Replay("e1"), Replay("e0")
    shown.show(again, build("one, again"))
    shown.show(other_again, build("other, again"))
    assert built == ["other", "one", "two", "other, again"]
    assert again.custom_status == {"step": "one"} and other_again.custom_status == {"step": "other, again"}


def review_statuses(monkeypatch, shown: ShownStatuses) -> tuple[list, ShownStatuses]:
    """A review with two stages and two rounds, decided on a clock that never moves, so its
    executions (one per stage and round) start at one and the same moment: the status
    after every step."""
    policy = {"stages": [{"name": "editors", "reviewers": ["anyone", "anyone"], "require": "all"},
                         {"name": "legal", "reviewers": ["anyone"], "require": "any"}]}
    statuses = []
    with TestingHost(APP) as host:
        # The module the host loaded: a test before this one may have loaded the app afresh.
        monkeypatch.setattr(sys.modules[hitl.__name__], "SHOWN", shown)
        instance_id = host.start("hitl_orchestration", {"topic": "Replays", "max_review_attempts": 2,
                                                        "approval_timeout_hours": 72, "review": policy},
                                 instance_id="review-replays")
        host.run_until_idle()
        statuses.append(host.status(instance_id)["customStatus"])
        votes = [(1, 0, "ann", True), (1, 0, "ben", True), (1, 1, "cy", False),
                 (2, 0, "ann", True), (2, 0, "ben", True), (2, 1, "cy", True)]
        for number, (round_, stage, person, approved) in enumerate(votes):
            host.raise_event(instance_id, "ApprovalEvent", {
                "approved": approved, "feedback": f"{person}'s note", "round": round_, "stage_index": stage,
                "by": person, "id": f"vote-{number}"})
            host.run_until_idle()
            statuses.append(host.status(instance_id)["customStatus"])
        assert host.status(instance_id)["runtimeStatus"] == "Completed"
    return statuses, shown


def test_a_review_shows_the_statuses_it_would_build_afresh(monkeypatch, offline_env):
    kept, counting = review_statuses(monkeypatch, CountingStatuses())
    afresh, _ = review_statuses(monkeypatch, ShownStatuses(kept=0))
    assert [s["stageIndex"] for s in kept[:4]] == [0, 0, 1, 0]
    assert [s["round"] for s in kept] == [1, 1, 1, 2, 2, 2, 2]
    assert kept == afresh
    assert counting.built < counting.shown / 2


class CountingStatuses(ShownStatuses):
    def __init__(self):
        super().__init__()
        self.built = self.shown = 0

    def show(self, context, build):
        self.shown += 1

        def counted():
            self.built += 1
            return build()
        super().show(context, counted)
