"""A Teams connector, a Slack API and a mail server that hang are cut off at their bound,
recorded for their seats, and never hold the review: it is decidable all along."""
from __future__ import annotations

import socket
import time

from channels import email as mail
from channels import slack, teams

from devhost.testing import wait_until
from tests.support.http import call

from .conftest import install_teams_app
from .test_two_way_decisions import start, status


def test_hanging_peers_are_bounded_and_hold_nobody(served_host, bot_framework, slack_api, monkeypatch):
    monkeypatch.setattr(teams, "SEND_SECONDS", 1.0)
    monkeypatch.setattr(slack, "SLACK_CALL_SECONDS", 1)
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    slack_api.users["U0BOB"] = {"email": "bob@contoso.com"}
    bot_framework.slow_seconds = slack_api.slow["chat.postMessage"] = 30.0
    began = time.monotonic()
    instance_id = start(base, {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com",
                                                                           "user:bob@contoso.com"]}]})
    waiting = wait_until(lambda: (s := status(base, instance_id))["customStatus"]["stage"] == "awaiting_review" and s)
    assert waiting["customStatus"]["notification"]["status"] == "sending"  # decidable while the notice is out
    told = wait_until(lambda: (status(base, instance_id)["customStatus"].get("notification") or {}).get("seats"),
                    timeout=20)
    assert time.monotonic() - began < 15
    assert told[0]["teams"] == "failed" and told[1]["slack"] == "failed"
    approved = call("POST", f"{base}/api/hitl/approve/{instance_id}",
                    {"approved": True, "round": 1, "reviewer": "alice@contoso.com"})
    assert approved.status == 200, approved.text


def test_a_mail_server_that_never_answers_is_bounded_and_holds_nobody(served_host, monkeypatch):
    monkeypatch.setattr(mail, "EMAIL_SECONDS", 1.0)
    with socket.socket() as silent:  # takes connections (the kernel's backlog) and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("HITL_EMAIL_FROM", "reviews@contoso.com")
        monkeypatch.setenv("HITL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HITL_SMTP_PORT", str(silent.getsockname()[1]))
        base = served_host.base_url
        began = time.monotonic()
        instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
        told = wait_until(lambda: (n := status(base, instance_id)["customStatus"].get("notification") or {})
                          .get("seats") and n, timeout=20)
        assert time.monotonic() - began < 15
        assert told["seats"] == [{"index": 0, "email": "failed"}] and told["channelErrors"]["email"]
        approved = call("POST", f"{base}/api/hitl/approve/{instance_id}",
                        {"approved": True, "round": 1, "reviewer": "bob@contoso.com"})
        assert approved.status == 200, approved.text
