"""Every route against bad input: a 4xx with a reason, never a 500, and no harm done.

A healthy review runs beside the bad requests; it must still be waiting for its
reviewer afterwards and must still complete on a valid decision.
"""
from __future__ import annotations

import concurrent.futures

import pytest

from tests.conftest import SIGNING_KEY
from tests.support.http import call, wait_for

JSON = {"Content-Type": "application/json"}
LONG_ID = "a" * 300


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


# (case id, method, path, raw body, headers, expected status, words expected in the error)
CASES = [
    ("run-not-json", "POST", "hitl/run", b"topic=x", JSON, 400, "not valid JSON"),
    ("run-empty-body", "POST", "hitl/run", b"", JSON, 400, "empty"),
    ("run-array", "POST", "hitl/run", b'["topic"]', JSON, 400, "JSON object"),
    ("run-string", "POST", "hitl/run", b'"topic"', JSON, 400, "JSON object"),
    ("run-missing-topic", "POST", "hitl/run", b"{}", JSON, 400, "'topic' is required"),
    ("run-blank-topic", "POST", "hitl/run", b'{"topic": "   "}', JSON, 400, "blank"),
    ("run-topic-number", "POST", "hitl/run", b'{"topic": 42}', JSON, 400, "must be a string"),
    ("run-topic-too-long", "POST", "hitl/run", b'{"topic": "' + b"x" * 2001 + b'"}', JSON, 400, "at most 2000"),
    ("run-topic-nul", "POST", "hitl/run", b'{"topic": "a\\u0000b"}', JSON, 400, "control characters"),
    ("run-attempts-string", "POST", "hitl/run", b'{"topic": "t", "max_review_attempts": "3"}', JSON, 400, "integer"),
    ("run-attempts-float", "POST", "hitl/run", b'{"topic": "t", "max_review_attempts": 2.5}', JSON, 400, "integer"),
    ("run-attempts-bool", "POST", "hitl/run", b'{"topic": "t", "max_review_attempts": true}', JSON, 400, "integer"),
    ("run-attempts-zero", "POST", "hitl/run", b'{"topic": "t", "max_review_attempts": 0}', JSON, 400, "between 1 and 10"),
    ("run-attempts-eleven", "POST", "hitl/run", b'{"topic": "t", "max_review_attempts": 11}', JSON, 400, "between 1 and 10"),
    ("run-timeout-zero", "POST", "hitl/run", b'{"topic": "t", "approval_timeout_hours": 0}', JSON, 400, "greater than 0"),
    ("run-timeout-negative", "POST", "hitl/run", b'{"topic": "t", "approval_timeout_hours": -5}', JSON, 400, "greater than 0"),
    ("run-timeout-too-long", "POST", "hitl/run", b'{"topic": "t", "approval_timeout_hours": 721}', JSON, 400, "at most 720"),
    ("run-timeout-nan", "POST", "hitl/run", b'{"topic": "t", "approval_timeout_hours": NaN}', JSON, 400, "NaN"),
    ("run-timeout-string", "POST", "hitl/run", b'{"topic": "t", "approval_timeout_hours": "1"}', JSON, 400, "number"),
    ("run-unknown-field", "POST", "hitl/run", b'{"topic": "t", "admin": true}', JSON, 400, "unknown field"),
    ("run-deep-nesting", "POST", "hitl/run", nested(5000), JSON, 400, "nested"),
    ("run-moderate-nesting", "POST", "hitl/run", b'{"topic": "t", "x": ' + nested(30) + b"}", JSON, 400, "nested deeper"),
    ("run-invalid-utf8", "POST", "hitl/run", b'{"topic": "\xff\xfe"}', JSON, 400, "UTF-8"),
    ("run-large-body", "POST", "hitl/run", b'{"topic": "' + b"x" * 70_000 + b'"}', JSON, 400, "larger than"),
    ("run-huge-body", "POST", "hitl/run", b'{"topic": "' + b"x" * 1_100_000 + b'"}', JSON, 413, "too large"),
    ("run-xml", "POST", "hitl/run", b"<topic>t</topic>", {"Content-Type": "application/xml"}, 415, "content type"),
    ("run-multipart", "POST", "hitl/run", b"--b--", {"Content-Type": "multipart/form-data; boundary=b"}, 415, "content type"),
    ("run-get", "GET", "hitl/run", None, {}, 405, "not allowed"),
    ("approve-not-json", "POST", "hitl/approve/{id}", b"yes", JSON, 400, "not valid JSON"),
    ("approve-array", "POST", "hitl/approve/{id}", b"[true]", JSON, 400, "JSON object"),
    ("approve-missing", "POST", "hitl/approve/{id}", b'{"feedback": "x"}', JSON, 400, "'approved' is required"),
    ("approve-string-true", "POST", "hitl/approve/{id}", b'{"approved": "true"}', JSON, 400, "JSON boolean"),
    ("approve-number", "POST", "hitl/approve/{id}", b'{"approved": 1}', JSON, 400, "JSON boolean"),
    ("approve-null", "POST", "hitl/approve/{id}", b'{"approved": null}', JSON, 400, "JSON boolean"),
    ("approve-feedback-too-long", "POST", "hitl/approve/{id}", b'{"approved": false, "feedback": "' + b"f" * 4001 + b'"}', JSON, 400, "at most 4000"),
    ("approve-feedback-number", "POST", "hitl/approve/{id}", b'{"approved": false, "feedback": 7}', JSON, 400, "must be a string"),
    ("approve-round-negative", "POST", "hitl/approve/{id}", b'{"approved": true, "round": -1}', JSON, 400, "between 1 and 10"),
    ("approve-round-zero", "POST", "hitl/approve/{id}", b'{"approved": true, "round": 0}', JSON, 400, "between 1 and 10"),
    ("approve-round-float", "POST", "hitl/approve/{id}", b'{"approved": true, "round": 1.5}', JSON, 400, "integer"),
    ("approve-round-string", "POST", "hitl/approve/{id}", b'{"approved": true, "round": "1"}', JSON, 400, "integer"),
    ("approve-unknown-instance", "POST", "hitl/approve/0123456789abcdef", b'{"approved": true}', JSON, 404, "no review"),
    ("approve-long-id", "POST", f"hitl/approve/{LONG_ID}", b'{"approved": true}', JSON, 400, "instance id"),
    ("approve-nul-id", "POST", "hitl/approve/abc%00def", b'{"approved": true}', JSON, 400, "instance id"),
    ("approve-dotdot-id", "POST", "hitl/approve/..%2F..%2Fetc", b'{"approved": true}', JSON, 400, "instance id"),
    ("approve-put", "PUT", "hitl/approve/{id}", b'{"approved": true}', JSON, 405, "not allowed"),
    ("approve-wrong-type", "POST", "hitl/approve/{id}", b"approved=true", {"Content-Type": "application/xml"}, 415, "content type"),
    ("status-unknown", "GET", "hitl/status/0123456789abcdef", None, {}, 404, "no review"),
    ("status-long-id", "GET", f"hitl/status/{LONG_ID}", None, {}, 400, "instance id"),
    ("status-post", "POST", "hitl/status/{id}", b"{}", JSON, 405, "not allowed"),
    ("agent-empty", "POST", "agents/WriterAgent/run", b"", {"Content-Type": "text/plain"}, 400, "'message'"),
    ("agent-bad-json", "POST", "agents/WriterAgent/run", b"{oops", JSON, 400, "not valid JSON"),
    ("agent-unknown-thread", "POST", "agents/WriterAgent/run", b'{"message": "hi", "thread_id": "writer-none"}', JSON, 404, "no thread"),
    ("agent-wait-string", "POST", "agents/WriterAgent/run", b'{"message": "hi", "wait_for_response": "no"}', JSON, 400, "JSON boolean"),
    ("agent-too-long", "POST", "agents/WriterAgent/run", b'{"message": "' + b"m" * 2001 + b'"}', JSON, 400, "at most 2000"),
    ("agent-thread-unknown-status", "GET", "agents/WriterAgent/threads/writer-none", None, {}, 404, "no thread"),
    ("review-page-non-ascii-token", "GET", "hitl/review/{id}?token=abc.%C3%A9", None, {}, 403, ""),
    ("review-state-non-ascii-token", "GET", "hitl/review/{id}/state?token=abc.%C3%A9", None, {}, 403, "not valid"),
    ("review-decision-no-token", "POST", "hitl/review/{id}/decision", b'{"approved": true}', JSON, 403, "malformed"),
    ("pending-unicode-top", "GET", "hitl/pending?top=%C2%B2", None, {}, 400, "'top'"),
    ("pending-bad-continuation", "GET", "hitl/pending?continuation=%25%25", None, {}, 400, "continuation"),
    ("cancel-reason-number", "POST", "hitl/cancel/{id}", b'{"reason": 5}', JSON, 400, "'reason'"),
    ("cancel-reason-control", "POST", "hitl/cancel/{id}", b'{"reason": "a\\u0007b"}', JSON, 400, "control characters"),
    ("cancel-unknown-field", "POST", "hitl/cancel/{id}", b'{"reason": "x", "force": true}', JSON, 400, "unknown field"),
    ("unknown-route", "GET", "hitl/nothing/here/at/all", None, {}, 404, ""),
]


@pytest.fixture(scope="module")
def review(request, tmp_path_factory):
    """A served host with one healthy review waiting for its reviewer."""
    monkeypatch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("bad-input")
    monkeypatch.setenv("HITL_WRITER", "offline")
    monkeypatch.setenv("HITL_REVIEW_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("HITL_PUBLISH_DIR", str(folder / "published"))
    from devhost import DevHost
    with DevHost(".", data_dir=folder / "state", local_settings=False) as host:
        host.serve(port=0)
        base = host.base_url
        instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Healthy neighbour"}).json["instanceId"]
        wait_for(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("stage") == "awaiting_review")
        yield base, instance_id
    monkeypatch.undo()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(review, case):
    base, instance_id = review
    _, method, path, body, headers, expected, words = case
    reply = call(method, f"{base}/api/{path.replace('{id}', instance_id)}", raw=body, headers=headers)
    assert reply.status == expected, reply.text
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    if words:
        assert words.lower() in reply.json["error"].lower()


def test_case_count_meets_the_bar():
    assert len(CASES) >= 40


def test_neighbour_is_untouched_and_still_completes(review):
    base, instance_id = review
    status = call("GET", f"{base}/api/hitl/status/{instance_id}").json
    assert status["runtimeStatus"] == "Running"
    assert status["customStatus"]["stage"] == "awaiting_review" and status["customStatus"]["round"] == 1
    assert status["customStatus"]["decisions"] == [] and status["input"].get("ignored_events", 0) == 0


def test_ten_racing_decisions_apply_once_per_round(review):
    base, _ = review
    instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Race"}).json["instanceId"]
    status_url = f"{base}/api/hitl/status/{instance_id}"
    wait_for(lambda: call("GET", status_url).json["customStatus"].get("stage") == "awaiting_review")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda i: call("POST", f"{base}/api/hitl/approve/{instance_id}",
                                               {"approved": False, "feedback": f"click {i}", "round": 1}),
                                range(10)))
    assert all(r.status in (200, 409) for r in replies)
    second = wait_for(lambda: (s := call("GET", status_url).json)["customStatus"].get("round") == 2
                      and s["customStatus"].get("stage") == "awaiting_review" and s)
    assert len(second["customStatus"]["decisions"]) == 1
    call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 2})
    done = wait_for(lambda: (s := call("GET", status_url).json)["runtimeStatus"] == "Completed" and s)
    assert [d["round"] for d in done["output"]["decisions"]] == [1, 2]


def test_decision_for_terminated_instance_is_refused(review):
    base, _ = review
    instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Doomed"}).json["instanceId"]
    terminate = call("POST", f"{base}/runtime/webhooks/durabletask/instances/{instance_id}/terminate?reason=cancelled")
    assert terminate.status == 202
    wait_for(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["runtimeStatus"] == "Terminated")
    reply = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True})
    assert reply.status == 409 and "Terminated" in reply.json["error"]
