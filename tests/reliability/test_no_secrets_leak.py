"""A full run with every secret configured: no key value may appear in a log or a reply."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from devhost.testing import TestingHost, wait_until
from tests.conftest import SIGNING_KEY
from tests.support.fake_openai import FakeOpenAI
from tests.support.http import call
from tests.support.webhook import WebhookReceiver

API_KEY = "sk-test-secret-8c1f0e5d2b7a4e9f"
WEBHOOK_SECRET = "hook-secret-5f2a9c"


def test_secrets_never_appear_in_logs_or_responses(offline_env, monkeypatch, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    replies = []

    def record(reply):
        replies.append(reply.text + reply.headers.as_string())
        return reply

    with FakeOpenAI(required_key=API_KEY) as writer, WebhookReceiver() as hook:
        monkeypatch.setenv("HITL_WRITER", "openai")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", writer.url)
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "drafts")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", API_KEY)
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", hook.url.replace("s3cr3t", WEBHOOK_SECRET))
        with TestingHost.served(".", data_dir=tmp_path / "state") as host:
            base = host.base_url
            started = record(call("POST", f"{base}/api/hitl/run", {"topic": "Secrets"})).json
            instance_id = started["instanceId"]
            wait_until(lambda: record(call("GET", f"{base}/api/hitl/status/{instance_id}")).json
                     ["customStatus"].get("stage") == "awaiting_review" and hook.delivered)
            token = parse_qs(urlsplit(hook.delivered[0]["reviewUrl"]).query)["token"][0]
            record(call("GET", f"{base}/api/hitl/review/{instance_id}?token={token}"))
            record(call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token}"))
            record(call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token}",
                        {"approved": False, "feedback": "more"}))
            record(call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token=bad.token", {"approved": True}))
            record(call("GET", f"{base}/api/hitl/pending"))
            record(call("POST", f"{base}/api/hitl/run", raw=b"{broken", headers={"Content-Type": "application/json"}))
            record(call("POST", f"{base}/api/agents/WriterAgent/run", {"message": "agent"}))
            writer.required_key = "a-different-key"  # the next draft fails with a 401
            failed = record(call("POST", f"{base}/api/hitl/run", {"topic": "Denied"})).json["instanceId"]
            wait_until(lambda: record(call("GET", f"{base}/api/hitl/status/{failed}")).json["runtimeStatus"] == "Failed")
            record(call("GET", f"{base}/runtime/webhooks/durabletask/instances/{failed}?showHistory=true&showHistoryOutput=true"))

    assert len(replies) >= 10 and any("writer authentication failed" in r for r in replies)
    everything = "\n".join(replies) + caplog.text
    for secret in (API_KEY, SIGNING_KEY, WEBHOOK_SECRET):
        assert secret not in everything, f"a secret leaked: {secret[:6]}…"
