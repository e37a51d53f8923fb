"""Every route against bad input: a 4xx with a reason, never a 500, and no harm done.

A healthy review runs beside the bad requests; it must still be waiting for its
reviewer afterwards and must still complete on a valid decision.
"""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import json
import time
from urllib.parse import quote

import pytest

from devhost.testing import TestingHost, wait_until
from tests.conftest import SIGNING_KEY
from tests.support.http import call

JSON = {"Content-Type": "application/json"}
LONG_ID = "a" * 300
DURABLE = "/runtime/webhooks/durabletask"


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def nested_objects(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def signed_token(fields: dict) -> str:
    """A review token signed with the test key, with whatever fields it is given."""
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    digest = hmac.new(SIGNING_KEY.encode(), payload.encode(), hashlib.sha256).digest()
    return quote(f"{payload}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}", safe="")


# JSON 450-980 levels deep: json.loads takes it at the handler's stack depth, and then
# something recursive did not. At 8b53147 the body routes' recursive depth check raised
# RecursionError (500); the continuation tokens, JSON themselves, did too; the Durable
# API stored a raised event that the orchestrator then failed to decode (the review
# ended Failed after a 202). Each must be a 4xx with a reason and do no harm.
DEEP = (450, 700, 980)
DEEP_BODY_ROUTES = [("run", "hitl/run"), ("approve", "hitl/approve/{id}"), ("cancel", "hitl/cancel/{id}"),
                    ("review-decision", "hitl/review/{id}/decision?token={token}"),
                    ("extend", "hitl/extend/{id}"), ("agent", "agents/WriterAgent/run")]
DEEP_CASES = [(f"{name}-nested-{depth}", "POST", path, nested(depth), JSON, 400, "nested")
              for name, path in DEEP_BODY_ROUTES for depth in DEEP]
DEEP_CASES += [(f"{name}-nested-objects-{depth}", "POST", path, nested_objects(depth), JSON, 400, "nested")
               for name, path in DEEP_BODY_ROUTES for depth in (450, 980)]
DEEP_CASES += [
    (f"durable-raise-event-nested-{depth}", "POST",
     DURABLE + "/instances/{victim}/raiseEvent/ApprovalEvent", nested(depth), JSON, 400, "Invalid JSON")
    for depth in DEEP]
DEEP_CASES += [
    (f"durable-raise-other-event-nested-{depth}", "POST",
     DURABLE + "/instances/{victim}/raiseEvent/SomethingElse", nested_objects(depth), JSON, 400, "Invalid JSON")
    for depth in (450, 980)]
DEEP_CASES += [
    (f"durable-start-nested-{depth}", "POST", DURABLE + "/orchestrators/hitl_orchestration",
     nested(depth), JSON, 400, "Invalid JSON") for depth in (450, 980)]
DEEP_CASES += [
    (f"durable-continuation-header-nested-{depth}", "GET", DURABLE + "/instances", None,
     {"x-ms-continuation-token": nested(depth).decode()}, 400, "continuation token") for depth in DEEP]
DEEP_CASES += [
    (f"durable-continuation-header-base64-nested-{depth}", "GET", DURABLE + "/instances", None,
     {"x-ms-continuation-token": b64(nested(depth))}, 400, "continuation token") for depth in DEEP]
DEEP_CASES += [
    (f"pending-continuation-nested-{depth}", "GET", f"hitl/pending?continuation={quote(nested(depth))}",
     None, {}, 400, "'continuation'") for depth in DEEP]
DEEP_CASES += [
    (f"pending-continuation-base64-nested-{depth}", "GET", f"hitl/pending?continuation={b64(nested(depth))}",
     None, {}, 400, "'continuation'") for depth in DEEP]
# A token in the app's alphabet that the backend refuses: the route must say so (400),
# not report the backend unavailable (503).
DEEP_CASES += [
    ("pending-continuation-refused-by-backend", "GET", "hitl/pending?continuation=ab%2Bcd", None, {}, 400,
     "'continuation'")]

# Numbers no float holds, expiries no clock holds, text no encoder writes. At 8b53147
# the first two were OverflowErrors (500: math.isfinite of the integer, and
# datetime.fromtimestamp in review_links.verify); lone surrogates were accepted (202/200)
# and the approved review then failed in publish_content with UnicodeEncodeError.
HUGE_HOURS = b'{"topic": "t", "approval_timeout_hours": 1' + b"0" * 400 + b"}"
RANGE_CASES = [
    ("run-timeout-1e400", "POST", "hitl/run", HUGE_HOURS, JSON, 400, "at most 720"),
    ("run-timeout-1e400-negative", "POST", "hitl/run", HUGE_HOURS.replace(b": 1", b": -1"), JSON, 400, "greater than 0"),
    ("run-attempts-1e400", "POST", "hitl/run", b'{"topic": "t", "max_review_attempts": 1' + b"0" * 400 + b"}", JSON, 400, "between 1 and 10"),
    ("run-timeout-1e400-float", "POST", "hitl/run", b'{"topic": "t", "approval_timeout_hours": 1e400}', JSON, 400, "at most 720"),
    ("review-page-expiry-1e20", "GET", "hitl/review/{id}?token={expiry_1e20}", None, {}, 403, ""),
    ("review-state-expiry-1e20", "GET", "hitl/review/{id}/state?token={expiry_1e20}", None, {}, 403, "expiry"),
    ("review-decision-expiry-1e20", "POST", "hitl/review/{id}/decision?token={expiry_1e20}", b'{"approved": true}', JSON, 403, "expiry"),
    ("review-state-expiry-minus-1e20", "GET", "hitl/review/{id}/state?token={expiry_minus_1e20}", None, {}, 403, "expiry"),
    ("review-state-expiry-infinity", "GET", "hitl/review/{id}/state?token={expiry_infinity}", None, {}, 403, "expiry"),
    ("run-topic-lone-surrogate", "POST", "hitl/run", b'{"topic": "a\\ud800b"}', JSON, 400, "lone surrogate"),
    ("run-topic-lone-low-surrogate", "POST", "hitl/run", b'{"topic": "\\udfff"}', JSON, 400, "lone surrogate"),
    ("approve-feedback-lone-surrogate", "POST", "hitl/approve/{id}", b'{"approved": false, "feedback": "no \\ud800", "round": 1}', JSON, 400, "lone surrogate"),
    ("approve-feedback-lone-surrogate-approval", "POST", "hitl/approve/{id}", b'{"approved": true, "feedback": "\\udc00", "round": 1}', JSON, 400, "lone surrogate"),
    ("review-decision-feedback-lone-surrogate", "POST", "hitl/review/{id}/decision?token={token}", b'{"approved": false, "feedback": "x\\ud800y"}', JSON, 400, "lone surrogate"),
    ("cancel-reason-lone-surrogate", "POST", "hitl/cancel/{id}", b'{"reason": "\\ud800"}', JSON, 400, "lone surrogate"),
    ("agent-message-lone-surrogate", "POST", "agents/WriterAgent/run", b'{"message": "hi \\ud800"}', JSON, 400, "lone surrogate"),
]


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
    # What a form on another site can send without the browser asking first.
    ("approve-form", "POST", "hitl/approve/{id}", b"approved=true&round=1",
     {"Content-Type": "application/x-www-form-urlencoded"}, 415, "content type"),
    ("approve-text-plain", "POST", "hitl/approve/{id}", b'{"approved": true, "round": 1}',
     {"Content-Type": "text/plain"}, 415, "content type"),
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
] + DEEP_CASES + RANGE_CASES


@pytest.fixture(scope="module")
def review(request, tmp_path_factory):
    """A served host with one healthy review waiting for its reviewer."""
    monkeypatch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("bad-input")
    monkeypatch.setenv("HITL_WRITER", "offline")
    monkeypatch.setenv("HITL_REVIEW_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("HITL_PUBLISH_DIR", str(folder / "published"))
    with TestingHost.served(".", data_dir=folder / "state") as host:
        base = host.base_url
        instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Healthy neighbour"}).json["instanceId"]
        wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("stage") == "awaiting_review")
        yield base, instance_id
    monkeypatch.undo()


@pytest.fixture(scope="module")
def victim(review):
    """A second waiting review, the target of the bad events sent through the Durable API."""
    base, _ = review
    instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Events target"}).json["instanceId"]
    wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("stage") == "awaiting_review")
    return instance_id


def case_url(base: str, path: str, instance_id: str, victim_id: str) -> str:
    hour = int(time.time()) + 3600
    values = {"{id}": instance_id, "{victim}": victim_id,
              "{token}": signed_token({"i": instance_id, "r": 1, "e": hour}),
              "{expiry_1e20}": signed_token({"i": instance_id, "r": 1, "e": 1e20}),
              "{expiry_minus_1e20}": signed_token({"i": instance_id, "r": 1, "e": -1e20}),
              "{expiry_infinity}": signed_token({"i": instance_id, "r": 1, "e": float("inf")})}
    for placeholder, value in values.items():
        path = path.replace(placeholder, value)
    return f"{base}{path}" if path.startswith(DURABLE) else f"{base}/api/{path}"


def error_text(reply) -> str:
    """The reason in an app reply ({"error"}) or a Durable API reply ({"Message", ...})."""
    body = reply.json
    if "error" in body:
        return body["error"]
    return " ".join(str(body.get(key) or "") for key in ("Message", "ExceptionMessage"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(review, victim, case):
    base, instance_id = review
    _, method, path, body, headers, expected, words = case
    reply = call(method, case_url(base, path, instance_id, victim), raw=body, headers=headers)
    assert reply.status == expected, reply.text
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    if words:
        assert words.lower() in error_text(reply).lower()


def test_case_count_meets_the_bar():
    assert len(CASES) >= 40


def test_the_target_of_the_bad_events_is_still_waiting(review, victim):
    """No raised event that was refused reached the review: at 8b53147 (and until the
    Durable API refuses deep JSON) a 980-level ApprovalEvent was stored, and the
    orchestrator failed decoding it with RecursionError."""
    base, _ = review
    status = call("GET", f"{base}/api/hitl/status/{victim}").json
    assert status["runtimeStatus"] == "Running", status.get("error")
    assert status["customStatus"]["stage"] == "awaiting_review"
    assert status["customStatus"]["decisions"] == [] and status["customStatus"]["ignored"] == []


def test_no_review_was_started_by_the_refused_starts(review):
    """Only the routes' own reviews exist: a deep start body through the Durable API was
    accepted at 8b53147 (202) and left an instance that failed on its first episode."""
    base, _ = review
    rows = call("GET", f"{base}{DURABLE}/instances").json
    assert all(r["instanceId"].startswith("review-") for r in rows), [
        (r["instanceId"], r["runtimeStatus"]) for r in rows if not r["instanceId"].startswith("review-")]


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
    wait_until(lambda: call("GET", status_url).json["customStatus"].get("stage") == "awaiting_review")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda i: call("POST", f"{base}/api/hitl/approve/{instance_id}",
                                               {"approved": False, "feedback": f"click {i}", "round": 1}),
                                range(10)))
    assert all(r.status in (200, 409) for r in replies)
    second = wait_until(lambda: (s := call("GET", status_url).json)["customStatus"].get("round") == 2
                      and s["customStatus"].get("stage") == "awaiting_review" and s)
    assert len(second["customStatus"]["decisions"]) == 1
    call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 2})
    done = wait_until(lambda: (s := call("GET", status_url).json)["runtimeStatus"] == "Completed" and s)
    assert [d["round"] for d in done["output"]["decisions"]] == [1, 2]


def test_decision_for_terminated_instance_is_refused(review):
    base, _ = review
    instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Doomed"}).json["instanceId"]
    terminate = call("POST", f"{base}/runtime/webhooks/durabletask/instances/{instance_id}/terminate?reason=cancelled")
    assert terminate.status == 202
    wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["runtimeStatus"] == "Terminated")
    reply = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True})
    assert reply.status == 409 and "the review was terminated: cancelled" in reply.json["error"]
