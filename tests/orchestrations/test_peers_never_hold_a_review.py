"""A notice channel or a writer that misbehaves never holds a review, and a writer that
fails for good ends it with a one-line reason, over real HTTP on the devhost."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

import pytest

from tests.support.fake_openai import FakeOpenAI
from devhost.testing import wait_until
from tests.support.http import call
from tests.support.loopback import LoopbackService


class HeldWebhook(LoopbackService):
    """A webhook that takes each notice and answers only when released."""

    def __init__(self):
        self.release = threading.Event()
        self.arrived = threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                held.arrived.set()
                held.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._serve(Handler)

    @property
    def url(self) -> str:
        return f"{self.origin}/hook"

    def __exit__(self, *exc):
        self.release.set()
        super().__exit__(*exc)


def custom_status(base, instance_id):
    return call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"]


@pytest.fixture
def held_webhook(monkeypatch):
    with HeldWebhook() as hook:
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", hook.url)
        yield hook


def test_a_draft_is_reviewable_while_its_notice_is_still_being_sent(offline_env, held_webhook, tmp_path):
    from devhost import DevHost

    with DevHost(".", data_dir=tmp_path / "state", local_settings=False) as host:
        base = host.serve(port=0)
        started = call("POST", f"{base}/api/hitl/run", {"topic": "Slow channels"}).json
        instance_id = started["instanceId"]
        assert held_webhook.arrived.wait(10), "the notice never reached the webhook"
        waiting = wait_until(lambda: (s := custom_status(base, instance_id))["stage"] == "awaiting_review" and s,
                           timeout=5)
        assert waiting["notification"]["status"] == "sending"
        reply = call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 1})
        assert reply.status == 200, reply.text
        held_webhook.release.set()
        wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["runtimeStatus"] == "Completed")


def test_a_writer_that_fails_for_good_says_why_in_one_line(offline_env, tmp_path, monkeypatch):
    from devhost import DevHost

    with FakeOpenAI() as server:
        monkeypatch.setenv("HITL_WRITER", "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_MODEL", "writer-model")
        monkeypatch.setenv("HITL_WRITER_MAX_RETRIES", "0")
        for _ in range(20):
            server.enqueue_status(500)
        from devhost import ManualClock
        with DevHost(".", data_dir=tmp_path / "state", clock=ManualClock(), local_settings=False) as host:
            base = host.serve(port=0)
            instance_id = call("POST", f"{base}/api/hitl/run", {"topic": "Failing writer"}).json["instanceId"]

            def ended():
                host.advance(minutes=1)  # the retries wait on durable timers
                status = call("GET", f"{base}/api/hitl/status/{instance_id}").json
                return status["runtimeStatus"] != "Running" and status
            status = wait_until(ended, timeout=20)
    assert status["runtimeStatus"] == "Failed"
    shown = status["customStatus"]
    assert shown["stage"] == "failed"
    assert "writer unavailable (500)" in shown["message"] and "round 1" in shown["message"]
    for told in (status["error"], status["failureDetails"]["errorMessage"], status["workflowStatus"]):
        assert "\n" not in told and "Traceback" not in told and ".py" not in told, told
        assert "writer unavailable (500)" in told and len(told) < 300, told
