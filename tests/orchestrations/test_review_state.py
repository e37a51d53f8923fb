"""The review state handed from one execution to the next, across releases."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrations.review_state import STATE_VERSION, ReviewState, UnreadableState
from shared_code.models import RunRequest

SAMPLES = Path(__file__).parent / "state_samples"


def sample(name: str):
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def test_every_shipped_version_is_read():
    """Version 1 states were read back with ReviewState(**data): any field change broke them."""
    waiting = ReviewState.read(sample("v1-awaiting-round-2.json"))
    assert waiting.round == 2 and waiting.max_rounds == 3 and waiting.draft["title"].startswith("Draft 2")
    assert waiting.decisions[0]["by"] == "function key"  # version 1 said "key"
    assert waiting.ignored_count == 0
    request = ReviewState.read(sample("v1-run-request.json"))
    assert (request.topic, request.max_rounds, request.timeout_hours, request.round) == (
        "A request, as the first execution reads it", 2, 48.0, 1)
    current = ReviewState.read(sample(f"v{STATE_VERSION}-awaiting-round-2.json"))
    assert current.round == 2 and current.reviewable_since


def test_the_current_version_round_trips():
    state = ReviewState.read(sample(f"v{STATE_VERSION}-awaiting-round-2.json"))
    again = ReviewState.read(json.loads(json.dumps(state.to_input())))
    assert again == state and again.to_input()["version"] == STATE_VERSION


def test_initial_state_comes_from_the_run_request():
    run = RunRequest.from_json({"topic": "Sagas", "max_review_attempts": 4, "approval_timeout_hours": 6})
    state = ReviewState.initial(run)
    assert (state.topic, state.max_rounds, state.timeout_hours, state.round) == ("Sagas", 4, 6.0, 1)
    assert state.request() == run.to_json()


@pytest.mark.parametrize("data, reason", [
    ({"version": 99, "topic": "x"}, "newer than this release"),
    ("a string", "JSON object"),
])
def test_unknown_states_are_refused_with_the_reason(data, reason):
    with pytest.raises(UnreadableState, match=reason):
        ReviewState.read(data)


def test_fields_a_later_release_adds_are_left_out_not_fatal():
    data = {**ReviewState.read(sample(f"v{STATE_VERSION}-awaiting-round-2.json")).to_input(),
            "field_from_the_future": True}
    assert ReviewState.read(data).round == 2
