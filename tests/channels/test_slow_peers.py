"""A Teams connector, a Slack API and a mail server that hang are cut off at their bound,
recorded for their seats, and never hold the review: it is decidable all along.

Each bound is set on the module the served app runs, found by name when the test runs: a
test session that loaded another app in between imports the app's modules afresh, and a
module imported when this file was collected would no longer be the one the app uses."""
from __future__ import annotations

import json
import socket
import time

from devhost.testing import wait_until
from tests.support.http import call
from tests.support.slack_api import signed_interaction

from .conftest import SLACK_SECRET, install_teams_app
from .test_two_way_decisions import button, click, slack_message_to, start, status


def test_hanging_peers_are_bounded_and_hold_nobody(served_host, bot_framework, slack_api, monkeypatch):
    monkeypatch.setattr("channels.teams.SEND_SECONDS", 1.0)
    monkeypatch.setattr("channels.slack.SLACK_CALL_SECONDS", 1)
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
    monkeypatch.setattr("channels.email.EMAIL_SECONDS", 1.0)
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


SLOW_SLACK = ("users.info", "chat.update", "chat.postEphemeral", "views.open")


def test_slack_hears_back_within_3_s_however_slow_its_api_is(served_host, slack_api):
    """Slack drops an interaction it has no answer to within 3 s. With each Web API call
    the route makes taking 2.5 s, every answer still comes in time, and the decisions,
    the clicked message and the line to a late clicker follow."""
    base = served_host.base_url
    slack_api.users.update({"U0BOB": {"email": "bob@contoso.com"}, "U0CAROL": {"email": "carol@contoso.com"}})
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com",
                                                                          "user:carol@contoso.com"],
                                           "require": "any"}]}, max_review_attempts=2)
    bobs = button(slack_message_to(slack_api, "U0BOB"), "hitl_reject")["value"]
    carols = button(slack_message_to(slack_api, "U0CAROL"), "hitl_approve")["value"]
    slack_api.slow.update(dict.fromkeys(SLOW_SLACK, 2.5))

    def timed(request):
        began = time.monotonic()
        reply = request()
        return reply, time.monotonic() - began

    # Reject: the dialog's trigger lasts 3 s, so the click is answered while it opens.
    clicked, took = timed(lambda: click(base, "U0BOB", "hitl_reject", bobs))
    assert clicked.status == 200 and took < 3, (clicked.status, took)
    dialog = wait_until(lambda: slack_api.calls_of("views.open"))[-1]
    view = dialog["view"] if isinstance(dialog["view"], dict) else json.loads(dialog["view"])
    body, headers = signed_interaction({"type": "view_submission", "user": {"id": "U0BOB"}, "view": {
        "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
        "state": {"values": {"feedback": {"feedback": {"type": "plain_text_input", "value": "Cite the figures"}}}}}},
        SLACK_SECRET)
    submitted, took = timed(lambda: call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers))
    assert submitted.status == 200 and took < 3, (submitted.status, took)
    # Slack named Bob only after the answer: the rejection is his all the same.
    waiting = wait_until(lambda: (s := status(base, instance_id))["customStatus"]["decisions"] and s, timeout=20)
    assert [(d["by"], d["approved"], d["channel"]) for d in waiting["customStatus"]["decisions"]] == [
        ("bob@contoso.com", False, "slack")]
    assert wait_until(lambda: [u for u in slack_api.calls_of("chat.update")
                               if u["channel"] == "DU0BOB" and "Rejected by bob@contoso.com" in json.dumps(u["blocks"])],
                      timeout=20)

    # Carol's button is from round 1: refused, and she is told why once Slack takes the line.
    late, took = timed(lambda: click(base, "U0CAROL", "hitl_approve", carols, channel="DU0CAROL"))
    assert late.status == 200 and took < 3, (late.status, took)
    told = wait_until(lambda: slack_api.calls_of("chat.postEphemeral"), timeout=20)
    assert told[-1]["user"] == "U0CAROL" and "Not taken" in told[-1]["text"]
    assert len(status(base, instance_id)["customStatus"]["decisions"]) == 1
