"""The writer agent endpoint: both wait modes, threads that remember earlier turns."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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


def test_concurrent_messages_on_one_thread_each_get_their_own_reply_or_409(served_host):
    """Eight messages sent at once on one thread, twice over. A turn that finished can be
    replaced by the next message's turn before its sender reads it: before, a waiting
    request answered with whatever turn the thread showed last, so 10 of 16 replies
    answered 200 carried another sender's turn. The offline writer ends each reply with
    the message it answers."""
    base = served_host.base_url
    thread_id = call("POST", f"{base}/api/agents/WriterAgent/run", {"message": "Idempotency"}).json["thread_id"]

    def send(text):
        return text, call("POST", f"{base}/api/agents/WriterAgent/run",
                          {"message": text, "thread_id": thread_id})

    answered = []
    for burst in range(2):
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(send, [f"burst {burst} message {n}" for n in range(8)]))
        for text, reply in replies:
            assert reply.status in (200, 409), reply.text
            if reply.status == 409:
                assert thread_id in reply.json["error"]
                continue
            assert reply.json["response"].endswith(f"Revised for feedback: {text}"), (text, reply.json)
            answered.append(text)
    assert answered, "at least one message of each burst is answered"


def test_turns_are_numbered_past_the_turns_a_thread_keeps(served_host):
    """A thread keeps its latest 20 turns (MAX_TURNS_KEPT); the turn number was counted
    from the turns kept, so from the 22nd message on every reply said turn 21."""
    base = served_host.base_url
    first = call("POST", f"{base}/api/agents/WriterAgent/run", {"message": "Backpressure"})
    thread_id = first.json["thread_id"]
    numbers = [first.json["turn"]]
    for n in range(2, 24):
        reply = call("POST", f"{base}/api/agents/WriterAgent/run",
                     {"message": f"change {n}", "thread_id": thread_id})
        assert reply.status == 200, reply.text
        numbers.append(reply.json["turn"])
    assert numbers == list(range(1, 24))
    assert call("GET", f"{base}/api/agents/WriterAgent/threads/{thread_id}").json["turn"] == 23
