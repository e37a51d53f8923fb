"""What the review does with each writer answer (orchestrations/writer_retries.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrations.writer_retries import (WRITER_ATTEMPTS, WRITER_WAITS, WriterTries, next_step,
                                           unexpected_failure)


def test_a_draft_is_taken():
    step = next_step({"title": "t", "content": "c"}, WriterTries())
    assert step.pause is None and step.give_up is None


def test_a_permanent_failure_ends_at_once():
    step = next_step({"error": "writer refused: content filter", "permanent": True}, WriterTries())
    assert step.give_up == "writer refused: content filter"


def test_transient_failures_are_tried_again_then_given_up():
    tries = WriterTries()
    for attempt in range(1, WRITER_ATTEMPTS):
        step = next_step({"error": "writer unavailable (503)"}, tries)
        assert step.pause == timedelta(seconds=5) and step.give_up is None, attempt
        assert "trying again in 5 s" in step.retrying
        tries = step.tries
    step = next_step({"error": "writer unavailable (503)"}, tries)
    assert step.give_up == f"writer unavailable (503); gave up after {WRITER_ATTEMPTS} tries"


@pytest.mark.parametrize("seconds, waits, gives_up", [
    (30, 0, False), (3600, 0, False), (3601, 0, True), (30, WRITER_WAITS - 1, False), (30, WRITER_WAITS, True)])
def test_a_writer_that_asks_to_wait_is_waited_for_within_limits(seconds, waits, gives_up):
    step = next_step({"error": "writer unavailable (429)", "retry_after_seconds": seconds}, WriterTries(0, waits))
    assert (step.give_up is not None) is gives_up
    if not gives_up:
        assert step.pause == timedelta(seconds=seconds)


def test_waits_and_quick_tries_are_counted_apart():
    step = next_step({"error": "x", "retry_after_seconds": 60}, WriterTries(failures=WRITER_ATTEMPTS - 1))
    assert step.give_up is None and step.tries == WriterTries(WRITER_ATTEMPTS - 1, 1)


@pytest.mark.parametrize("message, shown", [
    ("Activity function 'write_draft' failed:  KeyError: 'title' \n {\"StackTrace\": \"/srv/app/x.py\"}", "KeyError"),
    ("Activity function 'write_draft' failed: builtins.OSError: [Errno 2] /srv/secret/path.py", "OSError"),
    ("something else entirely", "Exception"),
])
def test_an_activity_that_raised_is_named_by_its_error_type_only(message, shown):
    described = unexpected_failure(Exception(message))
    assert described == f"an unexpected error ({shown}); the function log has the details"
    assert "/" not in described and "\n" not in described
