"""A writer that answers the same bad way to every request ends the review, over real HTTP.

Each case starts a review through POST /api/hitl/run on a served devhost, with the real
openai client talking to the local stand-in (tests/support/fake_openai.py), which gives
the one faulty answer to every request. The review must try again as
orchestrations/writer_retries.py says, then end with stage `failed` and a one-line reason
naming the fault, and nothing a caller reads (the custom status, the status route's body)
may hold a stack trace, a path of the server or the API key.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from devhost.testing import wait_until
from orchestrations.writer_retries import WRITER_ATTEMPTS, WRITER_WAITS
from tests.support.fake_openai import FakeOpenAI, error_body
from tests.support.http import call

APP_DIR = Path(__file__).resolve().parents[2]
API_KEY = "sk-writer-fails-4c7e1a9b3d5f"
MB = 1024 * 1024
# The activity asks again this many times on an unusable reply (writer_backends.REPLY_ATTEMPTS),
# stated here so that a change to it shows up as a failing count, not a silent one.
REPLY_ATTEMPTS = 3
UNUSABLE = f"writer returned an unusable draft {REPLY_ATTEMPTS} times"
GAVE_UP = f"; gave up after {WRITER_ATTEMPTS} tries"


# What a proxy in front of the service answers with: HTML, labelled as such.
ERROR_PAGE = b"<html><body>" + b"y" * MB + b"</body></html>"
# Labelled JSON, but it stops in the middle of a string.
CUT_OFF = b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "' + b"z" * MB
MALFORMED = "{'title': 'single quotes', content: unquoted"


def a_1mb_draft(server):
    server.enqueue_draft("A draft far too long", "x" * MB)


def a_1mb_error_page(server):
    server.enqueue_raw(ERROR_PAGE, content_type="text/html")


def a_1mb_body_cut_off(server):
    server.enqueue_raw(CUT_OFF)


def empty_content(server):
    server.enqueue_completion("")


def malformed_json(server):
    server.enqueue_json_content(MALFORMED)


def a_429_that_never_clears(server):
    # A body that echoes the key, as a misbehaving gateway might: it must not be copied.
    server.enqueue_status(429, body=error_body(f"Rate limit exceeded for key {API_KEY}", "429"))


def a_429_asking_to_wait_every_time(server):
    server.enqueue_status(429, headers={"Retry-After": "30"})


# (how the writer answers, the reason the review ends with, how many requests reach the
# writer: every orchestrator try asks REPLY_ATTEMPTS times for an unusable reply, once for
# a status, the openai client's own retries being off)
CASES = {
    "1mb-draft": (a_1mb_draft, f"{UNUSABLE}: the reply is not a valid draft: "
                               f"draft 'content' must be at most 20000 characters{GAVE_UP}",
                  WRITER_ATTEMPTS * REPLY_ATTEMPTS),
    "1mb-html-page": (a_1mb_error_page, f"{UNUSABLE}: the reply is not a chat completion "
                                        f"({len(ERROR_PAGE):,} characters){GAVE_UP}",
                      WRITER_ATTEMPTS * REPLY_ATTEMPTS),
    "1mb-body-cut-off": (a_1mb_body_cut_off, f"{UNUSABLE}: the reply body is not JSON "
                                             f"({len(CUT_OFF):,} characters){GAVE_UP}",
                         WRITER_ATTEMPTS * REPLY_ATTEMPTS),
    "empty-content": (empty_content, f"{UNUSABLE}: the reply has no content{GAVE_UP}",
                      WRITER_ATTEMPTS * REPLY_ATTEMPTS),
    "malformed-json": (malformed_json, f"{UNUSABLE}: the reply is not JSON "
                                       f"({len(MALFORMED)} characters, finish_reason=stop){GAVE_UP}",
                       WRITER_ATTEMPTS * REPLY_ATTEMPTS),
    "429-never-clears": (a_429_that_never_clears, f"writer unavailable (429) after 1 attempt(s){GAVE_UP}",
                         WRITER_ATTEMPTS),
    "429-long-retry-after-every-time": (
        a_429_asking_to_wait_every_time,
        "writer unavailable (429) after 1 attempt(s); it asked to be called again in 30 s, "
        f"and the review waits at most 3600 s, {WRITER_WAITS} times",
        WRITER_WAITS + 1),
}


@pytest.fixture
def writer(offline_env, monkeypatch):
    with FakeOpenAI(required_key=API_KEY) as server:
        monkeypatch.setenv("HITL_WRITER", "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_MODEL", "writer-model")
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        # The orchestrator's retries are the ones under test; the client's own would only
        # multiply the requests (and wait out a Retry-After in real time).
        monkeypatch.setenv("HITL_WRITER_MAX_RETRIES", "0")
        monkeypatch.setenv("HITL_WRITER_TIMEOUT_SECONDS", "5")
        yield server


def ended_review(writer, data_dir: Path) -> tuple[dict, str, dict]:
    """Start a review over HTTP and move the manual clock past the writer's retry timers
    until it ends: (the status route's body as JSON, the same body as the caller got it,
    the instance's status as the Durable client reads it)."""
    from devhost import DevHost, ManualClock

    with DevHost(".", data_dir=data_dir, clock=ManualClock(), local_settings=False) as host:
        base = host.serve(port=0)
        started = call("POST", f"{base}/api/hitl/run", {"topic": "A writer that fails for good"})
        assert started.status == 202, started.text
        status_url = f"{base}/api/hitl/status/{started.json['instanceId']}"

        def ended():
            host.advance(seconds=30)  # the retries wait on durable timers (5 s, or as asked)
            reply = call("GET", status_url)
            return reply.json["runtimeStatus"] != "Running" and reply

        reply = wait_until(ended, timeout=30, what="the review to end")
        return reply.json, reply.text, host.status(started.json["instanceId"])


def assert_nothing_a_caller_should_not_see(text: str, *server_paths: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text[:2000]
    assert not re.search(r"[\w-]+\.py\b", text), text[:2000]
    for path in server_paths:
        assert path not in text, (path, text[:2000])
    assert API_KEY not in text


@pytest.mark.parametrize("case", CASES)
def test_a_writer_that_answers_badly_every_time_ends_the_review_in_one_line(writer, tmp_path, case):
    script, cause, requests = CASES[case]
    script(writer)
    writer.forever()

    body, raw, durable = ended_review(writer, tmp_path / "state")

    # The JSON text as sent, not only its parsed fields: a path or a traceback escaped in a
    # field the test did not think of is still found.
    server_paths = (str(APP_DIR), str(tmp_path), sys.prefix, sys.base_prefix, "site-packages")
    assert_nothing_a_caller_should_not_see(raw, *server_paths)
    assert_nothing_a_caller_should_not_see(json.dumps(durable, default=str), *server_paths)

    reason = f"The writer failed in round 1: {cause}"
    assert body["runtimeStatus"] == "Failed", body
    shown = body["customStatus"]
    assert shown["stage"] == "failed"
    assert durable["runtimeStatus"] == "Failed" and durable["customStatus"] == shown
    assert shown["message"] == reason
    assert "\n" not in reason and len(reason) < 300
    assert body["workflowStatus"] == body["failureDetails"]["errorMessage"] == reason
    # The route's ``error`` is the instance's output, which the host words as the extension
    # does: "Orchestrator function '<name>' failed: <the reason>".
    assert body["error"] == f"Orchestrator function 'hitl_orchestration' failed: {reason}"
    assert len(writer.requests) == requests
