"""The channels' secrets (Slack's token and signing secret, the SMTP password) reach no
log, status, history, card, message or reply, also when every channel fails."""
from __future__ import annotations

import json
import logging

from devhost.testing import wait_until
from tests.support.http import call

from .conftest import SLACK_SECRET, SLACK_TOKEN, install_teams_app
from .test_two_way_decisions import click, start

SMTP_PASSWORD = "smtp-secret-7e2c1a9b"


def test_channel_secrets_never_appear_in_logs_statuses_or_messages(served_host, bot_framework, slack_api, monkeypatch,
                                                                   caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HITL_EMAIL_FROM", "reviews@contoso.com")
    monkeypatch.setenv("HITL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HITL_SMTP_PORT", "9")
    monkeypatch.setenv("HITL_SMTP_USERNAME", "reviews")
    monkeypatch.setenv("HITL_SMTP_PASSWORD", SMTP_PASSWORD)
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    slack_api.users["U0BOB"] = {"email": "bob@contoso.com"}
    slack_api.fail.add("chat.postMessage")
    instance_id = start(base, {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com",
                                                                           "user:bob@contoso.com"]}]})
    def told():
        reply = call("GET", f"{base}/api/hitl/status/{instance_id}")
        return (reply.json["customStatus"].get("notification") or {}).get("seats") and reply

    replies = [wait_until(told).text]
    replies.append(call("GET", f"{base}/api/hitl/inbox/items").text)
    replies.append(click(base, "U0BOB", "hitl_approve", "x y", secret="forged").text)
    replies.append(call("POST", f"{base}/api/messages", {"type": "message"}, headers={"Authorization": "Bearer x"}).text)
    replies.append(call("GET", f"{base}/runtime/webhooks/durabletask/instances/{instance_id}"
                               "?showHistory=true&showHistoryOutput=true&showInput=true").text)
    notification = json.loads(replies[0])["customStatus"]["notification"]
    assert notification["seats"][1]["slack"] == "failed" and "internal_error" in notification["channelErrors"]["slack"]
    everything = "\n".join(replies) + caplog.text + json.dumps(bot_framework.sent)
    for secret in (SLACK_TOKEN, SLACK_SECRET, SMTP_PASSWORD):
        assert secret not in everything, f"a secret leaked: {secret[:6]}…"
