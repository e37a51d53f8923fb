"""A Teams connector and a Slack API that hang are cut off at their bound, recorded for
their seats, and never hold the review: it is decidable all along."""
from __future__ import annotations

import time

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
