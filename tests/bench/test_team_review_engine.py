"""bench.team_review --engine at its smallest: the largest team review is decided seat by
seat in process to publication, and every decision is counted (never a check of how fast
anything was)."""
from __future__ import annotations

import json
import logging
import os

import pytest

from bench import team_review

pytestmark = pytest.mark.slow


def test_the_engine_run_decides_every_seat_of_the_largest_review_to_publication(capsys, monkeypatch):
    monkeypatch.setenv("HITL_WRITER", "model")
    monkeypatch.delenv("HITL_PUBLISH_DIR", raising=False)
    # It raises unless each review ends Completed (published) after its 100 seats.
    assert team_review.main(["--engine", "--reviews", "1"]) == 0
    # The process's settings and logging are as they were.
    assert os.environ["HITL_WRITER"] == "model" and "HITL_PUBLISH_DIR" not in os.environ
    assert not logging.getLogger().manager.disable
    printed = capsys.readouterr().out.strip().splitlines()
    result = json.loads(printed[-1])
    assert printed[0] == "== bench.team_review --engine"
    assert result["decisions"] == team_review.MAX_STAGES * team_review.MAX_SEATS
    assert 0 < result["engine_ms_p50"] <= result["engine_ms_p99"] and result["cpu_ms_per_decision"] > 0
    per_execution = team_review.DECISIONS_PER_EXECUTION
    assert set(result["cpu_ms_by_place"]) == (
        {f"{n} of {per_execution}" for n in range(1, per_execution)}
        | {f"{per_execution} of {per_execution} (continues as new)", "the stage's last"})


def test_a_decisions_place_follows_the_executions_of_a_stage():
    per_execution = team_review.DECISIONS_PER_EXECUTION
    assert team_review.place_in_execution(0) == f"1 of {per_execution}"
    assert team_review.place_in_execution(per_execution - 1) == f"{per_execution} of {per_execution} (continues as new)"
    assert team_review.place_in_execution(per_execution) == f"1 of {per_execution}"
    assert team_review.place_in_execution(team_review.MAX_SEATS - 1) == "the stage's last"
