"""The writer's failures, injected at a local OpenAI-compatible server, through a whole review.

Each case runs the real openai client over real HTTP inside the real orchestration on the
devhost: a transient fault must be recovered and the review must go on to publication; a
permanent one must fail the review at once with a clear message. docs/RELIABILITY.md
maps each fault to its test here.
"""
from __future__ import annotations

import pytest

from devhost.history import EventType
from devhost.testing import TestingHost
from tests.support.fake_openai import FakeOpenAI

ORCHESTRATOR = "hitl_orchestration"


@pytest.fixture
def writer(monkeypatch, offline_env):
    with FakeOpenAI() as server:
        monkeypatch.setenv("HITL_WRITER", "openai")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "drafts")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "fault-injection-key")
        monkeypatch.setenv("HITL_WRITER_TIMEOUT_SECONDS", "1")
        yield server


@pytest.fixture
def host(writer, tmp_path):
    with TestingHost(".", data_dir=tmp_path / "state") as h:
        yield h


def start(host):
    instance_id = host.start(ORCHESTRATOR, {"topic": "Fault tolerance", "max_review_attempts": 2,
                                            "approval_timeout_hours": 24})
    host.run_until_idle()
    return instance_id


def assert_review_goes_on(host, instance_id):
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Running", status["output"]
    assert status["customStatus"]["stage"] == "awaiting_review"
    host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1})
    host.run_until_idle()
    assert host.status(instance_id)["runtimeStatus"] == "Completed"


def writer_attempts(host, instance_id):
    return sum(1 for e in host.history(instance_id)
               if e["EventType"] == EventType.TASK_SCHEDULED and e["Name"] == "write_draft")


def test_429_with_retry_after_is_recovered(host, writer):
    writer.enqueue_status(429, headers={"Retry-After": "1"})
    instance_id = start(host)
    assert len(writer.requests) == 2
    assert_review_goes_on(host, instance_id)


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_is_recovered_by_the_client(host, writer, status):
    writer.enqueue_status(status)
    instance_id = start(host)
    assert_review_goes_on(host, instance_id)


def test_connection_reset_is_recovered(host, writer):
    writer.enqueue_reset()
    instance_id = start(host)
    assert_review_goes_on(host, instance_id)


def test_reply_that_never_comes_times_out_and_is_recovered(host, writer):
    writer.enqueue_hang(3)
    instance_id = start(host)
    assert_review_goes_on(host, instance_id)


def test_reply_that_trickles_is_cut_off_and_the_review_goes_on(host, writer):
    """A reply sent a byte every 50 ms never trips a per-read timeout: before, the one
    request took 15 s (and a slower trickle held the review in "drafting" for good). Each
    request is cut off after HITL_WRITER_TIMEOUT_SECONDS (1 s here), the client's three
    attempts fail, and the orchestrator's retry writes the draft."""
    for _ in range(3):
        writer.enqueue_trickle(0.05)
    instance_id = start(host)
    assert len(writer.requests) == 3
    assert host.status(instance_id)["customStatus"]["stage"] == "drafting"
    host.advance(seconds=5)  # the orchestrator's retry timer
    assert writer_attempts(host, instance_id) == 2
    assert_review_goes_on(host, instance_id)


def test_invalid_json_reply_is_retried(host, writer):
    writer.enqueue_json_content("{'title': oops")
    instance_id = start(host)
    assert_review_goes_on(host, instance_id)


@pytest.mark.parametrize("script", ["no-content-field", "no-message-content"])
def test_json_missing_content_is_retried(host, writer, script):
    if script == "no-content-field":
        writer.enqueue_json_content('{"title": "Only a title"}')
    else:
        writer.enqueue_missing_content()
    instance_id = start(host)
    assert_review_goes_on(host, instance_id)


def test_outage_longer_than_the_client_retries_is_recovered_by_the_orchestrator(host, writer):
    for _ in range(3):  # the client's three attempts all fail: the activity fails
        writer.enqueue_status(503)
    instance_id = start(host)
    assert host.status(instance_id)["customStatus"]["stage"] == "drafting"
    host.advance(seconds=5)  # the orchestrator's retry timer
    assert writer_attempts(host, instance_id) == 2
    assert_review_goes_on(host, instance_id)


def test_outage_that_never_ends_fails_the_review_without_hanging(host, writer):
    for _ in range(9):
        writer.enqueue_status(503)
    instance_id = start(host)
    host.advance(seconds=5)
    host.advance(seconds=5)
    host.advance(seconds=5)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["customStatus"]["stage"] == "failed"
    assert "The writer failed in round 1: writer unavailable (503)" in status["customStatus"]["message"]
    assert "gave up after 3 tries" in status["output"] and "\n" not in status["output"]
    assert writer_attempts(host, instance_id) == 3


@pytest.mark.parametrize("fault", ["content-filter-400", "filtered-completion", "refusal"])
def test_content_filter_fails_fast_with_a_clear_message(host, writer, fault):
    {"content-filter-400": writer.enqueue_content_filter,
     "filtered-completion": writer.enqueue_filtered_completion,
     "refusal": writer.enqueue_refusal}[fault]()
    instance_id = start(host)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "writer refused: content filter" in status["output"]
    assert len(writer.requests) == 1 and writer_attempts(host, instance_id) == 1


def test_401_fails_fast_with_a_clear_message(host, writer):
    writer.required_key = "another-key"
    instance_id = start(host)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "writer authentication failed (401)" in status["output"]
    assert "fault-injection-key" not in status["output"]
    assert len(writer.requests) == 1


# -- a writer that says when to call again ----------------------------------------------

def test_long_retry_after_is_waited_for_with_a_durable_timer(host, writer, monkeypatch):
    """Before: the client does not wait past 60 s and the orchestrator retried three times
    5 s apart, ignoring the header, so the review failed within about 15 s."""
    monkeypatch.setenv("HITL_WRITER_MAX_RETRIES", "0")
    writer.enqueue_status(429, headers={"Retry-After": "300"})
    instance_id = start(host)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Running"
    assert "asked to wait 300 s" in status["customStatus"]["retrying"]
    host.advance(seconds=299)
    assert writer_attempts(host, instance_id) == 1
    host.advance(seconds=1)
    assert writer_attempts(host, instance_id) == 2
    assert_review_goes_on(host, instance_id)


def test_retry_after_beyond_an_hour_fails_with_the_reason(host, writer, monkeypatch):
    monkeypatch.setenv("HITL_WRITER_MAX_RETRIES", "0")
    writer.enqueue_status(429, headers={"Retry-After": "7200"})
    instance_id = start(host)
    status = host.status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "asked to be called again in 7200 s" in status["output"]
    assert "at most 3600 s" in status["output"]
