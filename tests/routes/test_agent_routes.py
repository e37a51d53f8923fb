"""The writer agent endpoint: both wait modes, threads that remember earlier turns."""
from __future__ import annotations

from devhost.testing import wait_until
from tests.support.http import call


def test_waits_for_the_reply_by_default_and_threads_remember(served_host):
    base = served_host.base_url
    first = call("POST", f"{base}/api/agents/WriterAgent/run", {"message": "Durable timers"})
    assert first.status == 200, first.text
    thread_id = first.json["thread_id"]
    assert first.json["turn"] == 1 and "Durable timers" in first.json["response"]

    second = call("POST", f"{base}/api/agents/WriterAgent/run",
                  {"message": "Add an example", "thread_id": thread_id})
    assert second.status == 200 and second.json["thread_id"] == thread_id
    assert second.json["turn"] == 2
    assert "Add an example" in second.json["response"]
    assert first.json["title"] in second.json["response"]  # the writer saw the earlier reply


def test_plain_text_body(served_host):
    reply = call("POST", f"{served_host.base_url}/api/agents/WriterAgent/run",
                 raw=b"Event sourcing", headers={"Content-Type": "text/plain"})
    assert reply.status == 200 and "Event sourcing" in reply.json["response"]


def test_header_false_returns_202_and_status_url(served_host):
    base = served_host.base_url
    reply = call("POST", f"{base}/api/agents/WriterAgent/run",
                 {"message": "Sagas", "wait_for_response": True},
                 headers={"x-ms-wait-for-response": "false"})
    assert reply.status == 202, reply.text
    url = reply.json["statusQueryGetUri"]
    assert url == f"{base}/api/agents/WriterAgent/threads/{reply.json['thread_id']}"
    done = wait_until(lambda: (s := call("GET", url).json)["status"] == "Completed" and s)
    assert "Sagas" in done["response"]


def test_body_false_returns_202_and_header_true_wins(served_host):
    base = served_host.base_url
    no_wait = call("POST", f"{base}/api/agents/WriterAgent/run",
                   {"message": "Outbox", "wait_for_response": False})
    assert no_wait.status == 202
    waited = call("POST", f"{base}/api/agents/WriterAgent/run",
                  {"message": "Inbox", "wait_for_response": False},
                  headers={"x-ms-wait-for-response": "true"})
    assert waited.status == 200 and "Inbox" in waited.json["response"]


def test_busy_thread_gets_409(served_host):
    base = served_host.base_url
    first = call("POST", f"{base}/api/agents/WriterAgent/run", {"message": "CQRS"})
    thread_id = first.json["thread_id"]
    busy = call("POST", f"{base}/api/agents/WriterAgent/run",
                {"message": "More", "thread_id": thread_id, "wait_for_response": False})
    again = call("POST", f"{base}/api/agents/WriterAgent/run",
                 {"message": "Even more", "thread_id": thread_id})
    assert busy.status == 202
    assert again.status in (200, 409)
    if again.status == 409:
        assert "still answering" in again.json["error"]
