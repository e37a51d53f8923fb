"""The reviewer's aids over HTTP on the devhost: comments on passages through the approve
route and the review page, resolving and reopening them, the writer's answers and
changes, the house-rules check (offline and through the real openai client against the
fake model), and a seat's first view."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devhost.testing import wait_until
from shared_code.models import MAX_COMMENT_CHARS, MAX_COMMENTS_PER_DECISION, MAX_QUOTE_CHARS
from shared_code.review_links import ReviewGrant, sign
from tests.conftest import SIGNING_KEY
from tests.support.fake_openai import FakeOpenAI
from tests.support.http import call

FIRST = "gives the same draft for the same input"
SECOND = "An offline draft about"


def start(base, topic="Durable timers", **fields):
    reply = call("POST", f"{base}/api/hitl/run", {"topic": topic, **fields})
    assert reply.status == 202, reply.text
    return reply.json["instanceId"]


def status(base, instance_id):
    return call("GET", f"{base}/api/hitl/status/{instance_id}").json


def waiting(base, instance_id, round_, settled=lambda custom: True):
    def check():
        body = status(base, instance_id)
        custom = body["customStatus"]
        return (custom["stage"] == "awaiting_review" and custom["round"] == round_
                and custom["notification"]["status"] != "sending" and settled(custom) and body)
    return wait_until(check)


def approve(base, instance_id, body):
    return call("POST", f"{base}/api/hitl/approve/{instance_id}", body)


def comment(base, instance_id, comment_id, resolved, **extra):
    return call("POST", f"{base}/api/hitl/comments/{instance_id}", {"comment": comment_id, "resolved": resolved, **extra})


def page_state(base, instance_id, round_, **headers):
    token = sign(ReviewGrant(instance_id, round_, datetime.now(timezone.utc) + timedelta(hours=1)),
                 SIGNING_KEY.encode())
    return token, call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token}", headers=headers)


def test_two_comments_are_answered_then_one_is_resolved_and_the_other_reopened(served_host):
    base = served_host.base_url
    instance_id = start(base)
    waiting(base, instance_id, 1)
    reply = approve(base, instance_id, {"approved": False, "round": 1, "comments": [
        {"quote": FIRST, "comment": "Say why that matters"}, {"quote": SECOND, "comment": "A warmer opening"}]})
    assert reply.status == 200, reply.text
    assert reply.json["decision"]["comments"] == [{"quote": FIRST, "comment": "Say why that matters"},
                                                  {"quote": SECOND, "comment": "A warmer opening"}]
    custom = waiting(base, instance_id, 2)["customStatus"]
    assert [(c["id"], c["state"], c["quoteState"], c["answerRound"]) for c in custom["comments"]] == [
        ("c1", "answered", "changed", 2), ("c2", "answered", "changed", 2)]
    assert custom["comments"][0]["answer"] == "Rewrote the passage as asked: Say why that matters"
    assert custom["changes"] == [f'rewrote "{FIRST}" (c1)', f'rewrote "{SECOND}" (c2)']

    resolved = comment(base, instance_id, "c1", True)
    assert resolved.status == 200 and resolved.json["message"] == "Comment c1 was resolved.", resolved.text
    reopened = comment(base, instance_id, "c2", False, reviewer="ann@contoso.com")
    assert reopened.status == 200 and reopened.json["message"] == "Comment c2 was reopened.", reopened.text
    again = comment(base, instance_id, "c1", True)
    assert again.status == 409 and again.json["error"] == "comment 'c1' is already resolved"
    assert [c["state"] for c in status(base, instance_id)["customStatus"]["comments"]] == ["resolved", "open"]

    assert approve(base, instance_id, {"approved": False, "round": 2, "feedback": "Closer"}).status == 200
    custom = waiting(base, instance_id, 3)["customStatus"]
    # Only the open comment went to the writer again.
    assert [(c["id"], c["state"], c["answerRound"]) for c in custom["comments"]] == [
        ("c1", "resolved", 2), ("c2", "answered", 3)]
    assert approve(base, instance_id, {"approved": True, "round": 3}).status == 200
    output = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)["output"]
    trail = {c["id"]: c for c in output["comments"]}
    assert [a["round"] for a in trail["c1"]["answers"]] == [2] and [a["round"] for a in trail["c2"]["answers"]] == [2, 3]
    assert trail["c1"]["changes"][0]["state"] == "resolved" and trail["c1"]["changes"][0]["by"] == "function key"
    assert trail["c2"]["changes"][0]["state"] == "open" and trail["c2"]["changes"][0]["by"] == "ann@contoso.com"


@pytest.mark.parametrize("body, reason", [
    ({"approved": False, "comments": [{"quote": "words nobody wrote", "comment": "x"}]},
     "comment 1: its quote is not in the draft of round 1"),
    ({"approved": True, "comments": [{"quote": FIRST, "comment": "x"}]}, "'comments' go with a rejection"),
    ({"approved": False, "comments": [{"quote": FIRST, "comment": "x"}] * (MAX_COMMENTS_PER_DECISION + 1)},
     f"at most {MAX_COMMENTS_PER_DECISION} go with one decision"),
    ({"approved": False, "comments": [{"quote": "q" * (MAX_QUOTE_CHARS + 1), "comment": "x"}]},
     f"comment 1: 'quote' must be at most {MAX_QUOTE_CHARS} characters"),
    ({"approved": False, "comments": [{"quote": FIRST, "comment": "c" * (MAX_COMMENT_CHARS + 1)}]},
     f"comment 1: 'comment' must be at most {MAX_COMMENT_CHARS} characters"),
    ({"approved": False, "comments": [{"quote": FIRST}]}, "comment 1: 'comment' is required"),
    ({"approved": False, "comments": [{"quote": FIRST, "comment": "x", "line": 3}]}, "comment 1: unknown field(s): line"),
    ({"approved": False, "comments": {"quote": FIRST}}, "'comments' must be a list"),
    ({"approved": False, "comments": []}, "a rejection needs 'feedback' or 'comments'"),
], ids=["quote-not-in-draft", "with-approval", "too-many", "long-quote", "long-comment", "no-comment",
        "unknown-field", "not-a-list", "empty"])
def test_bad_comments_get_a_400_with_the_reason(served_host, body, reason):
    base = served_host.base_url
    instance_id = start(base)
    waiting(base, instance_id, 1)
    reply = approve(base, instance_id, {"round": 1, **body})
    assert reply.status == 400 and reason in reply.json["error"], reply.text
    assert status(base, instance_id)["customStatus"]["decisions"] == []


def test_resolving_a_comment_is_refused_with_the_reason_when_it_cannot_be(served_host, monkeypatch):
    base = served_host.base_url
    instance_id = start(base)
    waiting(base, instance_id, 1)
    assert comment(base, instance_id, "c1", True).json["error"] == "this review has no comment 'c1'"
    assert approve(base, instance_id, {"approved": False, "round": 1,
                                       "comments": [{"quote": FIRST, "comment": "why?"}]}).status == 200
    waiting(base, instance_id, 2)
    for body, code, reason in [({"comment": "c1"}, 400, "'resolved' is required"),
                               ({"comment": "1", "resolved": True}, 400, "a comment's id"),
                               ({"comment": "c1", "resolved": False, "extra": 1}, 400, "unknown field(s): extra")]:
        reply = call("POST", f"{base}/api/hitl/comments/{instance_id}", body)
        assert reply.status == code and reason in reply.json["error"], reply.text
    cancel = call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "withdrawn"})
    assert cancel.status == 200
    finished = comment(base, instance_id, "c1", True)
    assert finished.status == 409 and "its comments no longer change" in finished.json["error"]


def test_the_page_shows_comments_whole_with_the_check_and_changes_and_records_the_first_view(served_host,
                                                                                           monkeypatch):
    monkeypatch.setenv("HITL_HOUSE_RULES", "under 600 words; ends with a call to action")
    base = served_host.base_url
    instance_id = start(base)
    waiting(base, instance_id, 1, settled=lambda custom: custom["check"]["status"] != "checking")
    long_comment = "Explain. " + "w" * 900
    token, _ = page_state(base, instance_id, 1)
    reply = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token}",
                 {"approved": False, "comments": [{"quote": FIRST, "comment": long_comment}]})
    assert reply.status == 200, reply.text
    waiting(base, instance_id, 2, settled=lambda custom: custom["check"]["status"] != "checking")
    _, state = page_state(base, instance_id, 2)
    body = state.json
    assert body["comments"][0]["comment"] == long_comment and body["comments"][0]["by"] == "review link"
    assert body["comments"][0]["answer"].startswith("Rewrote the passage as asked: Explain.")
    assert body["changes"] == [f'rewrote "{FIRST}" (c1)']
    assert {r["rule"]: r["verdict"] for r in body["check"]["results"]} == {
        "under 600 words": "pass", "ends with a call to action": "fail"}
    # Opening the page recorded the seat's first view; opening it again changes nothing.
    wait_until(lambda: status(base, instance_id)["customStatus"]["views"])
    page_state(base, instance_id, 2)
    views = wait_until(lambda: status(base, instance_id)["customStatus"]["views"])
    assert [v["seat"] for v in views] == [0]
    # The page resolves a comment with its link.
    token, _ = page_state(base, instance_id, 2)
    resolved = call("POST", f"{base}/api/hitl/review/{instance_id}/comment?token={token}",
                    {"comment": "c1", "resolved": True})
    assert resolved.status == 200, resolved.text
    follower = sign(ReviewGrant(instance_id, 3, datetime.now(timezone.utc) + timedelta(hours=1), follows=True),
                    SIGNING_KEY.encode())
    refused = call("POST", f"{base}/api/hitl/review/{instance_id}/comment?token={follower}",
                   {"comment": "c1", "resolved": False})
    assert refused.status == 403


@pytest.fixture
def model(monkeypatch, offline_env):
    with FakeOpenAI(deployments={"gpt-test"}) as fake:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HITL_WRITER", "openai")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.url)
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-test")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "test-key-for-the-fake-model")
        monkeypatch.setenv("HITL_HOUSE_RULES", "no claims without a source; under 600 words")
        yield fake


def test_the_models_check_shows_on_the_page_and_its_failure_shows_not_checked(model, served_host):
    base = served_host.base_url
    instance_id = start(base)
    custom = waiting(base, instance_id, 1, settled=lambda c: c["check"]["status"] != "checking")["customStatus"]
    assert custom["check"]["checker"] == "azure"
    assert {r["rule"]: (r["verdict"], r["by"]) for r in custom["check"]["results"]} == {
        "no claims without a source": ("pass", "model"), "under 600 words": ("pass", "code")}
    # The next draft's check gets a reply that is not the verdicts, twice: not checked, and
    # the review goes on.
    model.enqueue_draft("Draft 2", "Timers wait.", changes=["cut it down"], answers=[])
    model.enqueue_json_content("{not json")
    model.enqueue_json_content("[]")
    assert approve(base, instance_id, {"approved": False, "round": 1, "feedback": "Shorter"}).status == 200
    custom = waiting(base, instance_id, 2, settled=lambda c: c["check"]["status"] != "checking")["customStatus"]
    assert custom["check"]["status"] == "not_checked"
    assert custom["check"]["reason"].startswith("the model's reply was not usable")
    assert custom["changes"] == ["cut it down"]
    _, state = page_state(base, instance_id, 2)
    assert state.json["check"]["status"] == "not_checked" and state.json["canDecide"]
    assert approve(base, instance_id, {"approved": True, "round": 2}).status == 200


def test_the_page_shows_all_fifty_comments_when_the_status_shows_a_window_of_them(served_host):
    """Fifty long comments with the longest feedback do not fit the status, which shows
    some of them and counts them all: the page's state route serves every one whole from
    the review's state, a comment the status leaves out can be resolved, and a 51st is
    refused."""
    from shared_code.models import MAX_COMMENTS_PER_REVIEW, MAX_FEEDBACK_CHARS
    from shared_code.passages import draft_text

    base = served_host.base_url
    instance_id = start(base, max_review_attempts=4)
    written = []
    for round_, count in ((1, 20), (2, 20), (3, 10)):
        quote = draft_text(waiting(base, instance_id, round_)["customStatus"]["draft"]).split("\n")[1][:30].strip()
        comments = [{"quote": quote, "comment": (f"{round_}.{n} " + "w" * MAX_COMMENT_CHARS)[:MAX_COMMENT_CHARS]}
                    for n in range(count)]
        written += [c["comment"] for c in comments]
        reply = approve(base, instance_id, {"approved": False, "round": round_, "feedback": "f" * MAX_FEEDBACK_CHARS,
                                            "comments": comments})
        assert reply.status == 200, reply.text
    custom = waiting(base, instance_id, 4)["customStatus"]
    assert custom["commentCount"] == MAX_COMMENTS_PER_REVIEW and len(custom["comments"]) < MAX_COMMENTS_PER_REVIEW
    shown = {c["id"] for c in custom["comments"]}
    left_out = next(f"c{n}" for n in range(1, 51) if f"c{n}" not in shown)
    _, state = page_state(base, instance_id, 4)
    assert [c["id"] for c in state.json["comments"]] == [f"c{n}" for n in range(1, 51)]
    assert [c["comment"] for c in state.json["comments"]] == written
    assert all(c["state"] == "answered" and c["answerRound"] == 4 for c in state.json["comments"])
    resolved = comment(base, instance_id, left_out, True)
    assert resolved.status == 200, resolved.text
    one_more = approve(base, instance_id, {"approved": False, "round": 4, "comments": [{"quote": quote, "comment": "x"}]})
    assert one_more.status == 400 and "holds 50 comments" in one_more.json["error"], one_more.text
