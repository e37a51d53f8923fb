"""Reviews started by the previous release finish on this one.

``state_before_versioning/`` is a devhost state folder written by the release before
review states carried a version and the storage had numbered migrations (commit 8b53147):
one review waiting in round 2 after a rejection, one waiting in round 1 in its second
timer slice (it had continued as new once). This release must open the folder, keep both
instances, replay their in-flight executions (written by the old orchestrator code)
without a determinism error, and take decisions to publication.
"""
from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from devhost import ManualClock
from devhost.migrations import LATEST_VERSION
from devhost.testing import TestingHost

FOLDER = Path(__file__).parent / "state_before_versioning"
OLD_HUB = "TestHubName"  # the task hub that state folder was written under
# Later than every timestamp in the saved state, so the clock never runs backwards.
RESUMED_AT = datetime(2026, 1, 2, 7, 0, tzinfo=timezone.utc)


def host_on_a_copy(folder: Path, tmp_path: Path, monkeypatch, resumed_at: datetime):
    """A host on a copy of a state folder an earlier release wrote, its clock at ``resumed_at``."""
    monkeypatch.setenv("TASKHUB_NAME", OLD_HUB)
    state = tmp_path / "state"
    shutil.copytree(folder, state)
    return TestingHost(".", data_dir=state, clock=ManualClock(resumed_at))


@pytest.fixture
def upgraded_host(offline_env, tmp_path, monkeypatch):
    with host_on_a_copy(FOLDER, tmp_path, monkeypatch, RESUMED_AT) as host:
        yield host


def test_the_old_state_folder_is_migrated_and_keeps_its_instances(upgraded_host):
    db = sqlite3.connect(upgraded_host.data_dir / "TestHubName.sqlite")
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(LATEST_VERSION,)]
    assert sorted(r[0] for r in db.execute("SELECT instance_id FROM instances")) == [
        "upgrade-round-1", "upgrade-round-2"]
    for instance_id, round_ in (("upgrade-round-1", 1), ("upgrade-round-2", 2)):
        status = upgraded_host.status(instance_id)
        assert status["runtimeStatus"] == "Running"
        assert status["customStatus"]["stage"] == "awaiting_review"
        assert status["customStatus"]["round"] == round_


@pytest.mark.parametrize("instance_id, round_", [("upgrade-round-2", 2), ("upgrade-round-1", 1)])
def test_an_in_flight_review_from_the_previous_release_is_approved_and_published(
        upgraded_host, offline_env, instance_id, round_):
    upgraded_host.raise_event(instance_id, "ApprovalEvent",
                              {"approved": True, "round": round_, "id": "after-upgrade"})
    upgraded_host.run_until_idle()
    status = upgraded_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed", status["output"]
    decisions = status["output"]["decisions"]
    assert decisions[-1]["id"] == "after-upgrade" and decisions[-1]["round"] == round_
    if round_ == 2:
        # The old release's record of round 1 reads in today's words.
        assert decisions[0]["by"] == "function key" and decisions[0]["feedback"] == "Add an example"
    assert (offline_env / "published" / f"{instance_id}.json").is_file()


def test_a_state_folder_from_a_newer_release_is_refused(offline_env, tmp_path, monkeypatch):
    from devhost.storage import StoreTooNew

    monkeypatch.setenv("TASKHUB_NAME", OLD_HUB)
    state = tmp_path / "state"
    shutil.copytree(FOLDER, state)
    db = sqlite3.connect(state / f"{OLD_HUB}.sqlite")
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (99)")
    db.commit()
    db.close()
    with pytest.raises(StoreTooNew, match="schema version 99"):
        TestingHost(".", data_dir=state)


# ``state_of_release_1ef2995/`` was written by the release before team review (1ef2995),
# whose executions scheduled no inbox-card signals: a review waiting in its first
# execution (started from the bare run request), one waiting in round 2 after a rejection
# (reminders and escalation set), and one whose deadline the owner moved.
RELEASE_1EF2995 = Path(__file__).parent / "state_of_release_1ef2995"
WRITTEN_AT = datetime(2026, 1, 1, 1, 0, 1, tzinfo=timezone.utc)


@pytest.fixture
def release_host(offline_env, tmp_path, monkeypatch):
    with host_on_a_copy(RELEASE_1EF2995, tmp_path, monkeypatch, WRITTEN_AT) as host:
        yield host


@pytest.mark.parametrize("instance_id, round_", [
    ("release-first-execution", 1), ("release-round-two", 2), ("release-deadline-moved", 1)])
def test_reviews_in_flight_from_the_release_before_team_review_are_published(release_host, instance_id, round_):
    release_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": round_, "id": "upgraded"})
    release_host.run_until_idle()
    status = release_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"]["decisions"][-1]["id"] == "upgraded"


def test_a_review_from_the_earlier_release_gets_its_inbox_card_in_its_next_execution(release_host):
    instance_id = "release-first-execution"
    release_host.raise_event(instance_id, "ApprovalEvent",
                             {"approved": False, "feedback": "Shorter", "round": 1, "id": "upgraded-reject"})
    release_host.run_until_idle()
    status = release_host.status(instance_id)
    assert status["runtimeStatus"] == "Running" and status["customStatus"]["round"] == 2
    exists, card = release_host.entity_state("review_card", instance_id)
    assert exists and card["round"] == 2 and card["topic"] == "Waiting in its first execution"


# ``state_of_commit_76002d6/`` was written by commit 76002d6: team review without the
# reviewer's aids (state version 3). It was never released, but a host that ran it holds
# such states, and they are read as any release's: its executions check no drafts, take
# no reviewers' notes and report no analytics facts. A review drafting in its first
# execution, one waiting in its first execution, one waiting in round 2 after a
# rejection, and a team review waiting in its second stage: each replays as recorded and
# reports its facts from its next execution on.
COMMIT_76002D6 = Path(__file__).parent / "state_of_commit_76002d6"


@pytest.fixture
def aids_release_host(offline_env, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKHUB_NAME", OLD_HUB)
    monkeypatch.setenv("HITL_HOUSE_RULES", "under 600 words")
    state = tmp_path / "state"
    shutil.copytree(COMMIT_76002D6, state)
    with TestingHost(".", data_dir=state, clock=ManualClock(WRITTEN_AT)) as host:
        yield host


@pytest.mark.parametrize("instance_id", ["main-drafting", "main-first-execution", "main-round-two", "main-team-legal"])
def test_executions_of_a_build_before_the_aids_replay_as_recorded(aids_release_host, instance_id):
    assert aids_release_host.replay(instance_id).problem is None
    aids_release_host.run_until_idle()
    assert aids_release_host.replay(instance_id).problem is None
    status = aids_release_host.status(instance_id)
    assert status["runtimeStatus"] == "Running" and status["customStatus"]["stage"] == "awaiting_review"
    # Nothing of this release is scheduled in an execution the earlier build started.
    assert "check_draft" not in aids_release_host.replay(instance_id).scheduled


@pytest.mark.parametrize("instance_id, round_, decide", [
    ("main-drafting", 1, {}), ("main-first-execution", 1, {}), ("main-round-two", 2, {}),
    ("main-team-legal", 1, {"stage_index": 1}),
])
def test_reviews_in_flight_from_a_build_before_the_aids_are_published(aids_release_host, instance_id, round_,
                                                                          decide):
    aids_release_host.run_until_idle()
    people = ("bob@contoso.com", "carol@contoso.com") if decide else (None,)
    for n, person in enumerate(people):
        event = {"approved": True, "round": round_, "id": f"after-upgrade-{n}", **decide}
        if person:
            event.update(person={"name": person}, by=person)
        aids_release_host.raise_event(instance_id, "ApprovalEvent", event)
        aids_release_host.run_until_idle()
    status = aids_release_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"]["decisions"][-1]["id"] == f"after-upgrade-{len(people) - 1}"


def test_a_review_from_a_build_before_the_aids_reports_facts_from_its_next_execution(aids_release_host):
    instance_id = "main-first-execution"
    aids_release_host.raise_event(instance_id, "ApprovalEvent",
                                  {"approved": False, "feedback": "Shorter", "round": 1, "id": "upgraded-reject"})
    aids_release_host.run_until_idle()
    exists, day = aids_release_host.entity_state("review_stats", WRITTEN_AT.date().isoformat())
    # The rejection was taken by the earlier build's execution: nothing reported. Round 2
    # runs in an execution this release started: its seat is reported waiting. The review
    # started with no house rules (its build had none), so its drafts are not checked.
    assert exists and day["reviews"]["started"] == 0 and day["stages"] == {}
    assert day["load"] == {"review": {"anyone": 1}}
    status = aids_release_host.status(instance_id)
    assert status["customStatus"]["round"] == 2 and status["customStatus"]["check"] is None
    assert "check_draft" not in aids_release_host.replay(instance_id).scheduled
