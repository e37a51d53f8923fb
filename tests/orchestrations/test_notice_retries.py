"""A notice whose channel is down is tried again on durable timers, a bounded number of
times, then left failed; the draft can be decided all along."""
from __future__ import annotations

import pytest

from orchestrations.review_state import NOTICE_RETRY_MINUTES
from tests.channels.conftest import bot_framework  # noqa: F401 (a fixture: the Bot Framework's stand-in)
from tests.channels.test_email import mailbox, serve_mail  # noqa: F401 (fixtures: an SMTP server)
from tests.support.webhook import WebhookReceiver


@pytest.fixture
def hook(monkeypatch):
    import activities.notify_reviewer as notify

    monkeypatch.setattr(notify, "RETRY_DELAYS_SECONDS", (0.0, 0.0, 0.0))  # the activity's own quick tries
    with WebhookReceiver(default_status=503) as receiver:
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", receiver.url)
        yield receiver


def start(host):
    instance_id = host.start("hitl_orchestration", {"start": {"topic": "A channel that is down"}})
    host.run_until_idle()
    return instance_id


def notification(host, instance_id):
    return host.status(instance_id)["customStatus"]["notification"]


def test_a_webhook_that_comes_back_gets_the_notice_on_a_later_try(manual_host, hook):
    instance_id = start(manual_host)
    assert notification(manual_host, instance_id)["status"] == "failed"
    posts = len(hook.received)
    hook.default_status = 200
    manual_host.advance(minutes=NOTICE_RETRY_MINUTES[0])
    assert notification(manual_host, instance_id)["status"] == "sent"
    assert len(hook.received) == posts + 1 and hook.delivered[0]["instanceId"] == instance_id
    manual_host.advance(hours=1)
    assert len(hook.received) == posts + 1  # nothing more is owed


def test_a_webhook_that_stays_down_is_tried_a_bounded_number_of_times_then_left_failed(manual_host, hook):
    instance_id = start(manual_host)
    first = len(hook.received)
    for minutes in NOTICE_RETRY_MINUTES:
        manual_host.advance(minutes=minutes)
    told = notification(manual_host, instance_id)
    assert told["status"] == "failed" and told["retries"] == len(NOTICE_RETRY_MINUTES)
    tries = len(hook.received)
    assert tries == first * (1 + len(NOTICE_RETRY_MINUTES))  # each retry is one notice's quick tries
    manual_host.advance(hours=2)
    assert len(hook.received) == tries
    manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "id": "still-decidable"})
    manual_host.run_until_idle()
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_slack_messages_that_failed_are_sent_again_on_a_later_try(manual_host, monkeypatch):
    from tests.channels.conftest import SLACK_SECRET, SLACK_TOKEN
    from tests.support.slack_api import SlackApi

    with SlackApi() as slack:
        monkeypatch.setenv("HITL_SLACK_BOT_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("HITL_SLACK_SIGNING_SECRET", SLACK_SECRET)
        monkeypatch.setenv("HITL_SLACK_API_URL", slack.url)
        slack.users.update({"U1": {"email": "bob@contoso.com", "name": "Bob"},
                            "U2": {"email": "carol@contoso.com", "name": "Carol"}})
        slack.fail.add("chat.postMessage")
        policy = {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"],
                              "require": "all"}]}
        instance_id = manual_host.start(
            "hitl_orchestration", {"start": {"topic": "Slack is down", "review": policy}})
        manual_host.run_until_idle()
        seats = notification(manual_host, instance_id)["seats"]
        assert [seat.get("slack") for seat in seats] == ["failed", "failed"]
        slack.fail.clear()
        manual_host.advance(minutes=NOTICE_RETRY_MINUTES[0])
        seats = notification(manual_host, instance_id)["seats"]
        assert [seat.get("slack") for seat in seats] == ["sent", "sent"]
        posted = [call["channel"] for call in slack.calls_of("chat.postMessage")]
        assert sorted(posted[-2:]) == ["U1", "U2"]  # the retry told both seats, once each
        manual_host.advance(hours=1)
        assert len(slack.calls_of("chat.postMessage")) == len(posted)


def teams_contact(framework, conversation):
    """A person's chat with the bot, as the run route hands it to a review."""
    from tests.channels.conftest import APP_ID

    return {"serviceUrl": framework.service_url, "conversation": conversation, "user": f"29:{conversation}",
            "bot": f"28:{APP_ID}", "tenant": "tenant-1"}


def test_a_teams_card_that_failed_is_sent_again_to_its_seat_only(manual_host, bot_framework, mailbox):
    # Alice's chat refuses the card; Bob's card and both e-mails go out at once.
    bot_framework.refused.add("a:alice-chat")
    policy = {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com", "user:bob@contoso.com"],
                          "require": "all"}]}
    contacts = {"alice@contoso.com": teams_contact(bot_framework, "a:alice-chat"),
                "bob@contoso.com": teams_contact(bot_framework, "a:bob-chat")}
    instance_id = manual_host.start("hitl_orchestration", {"start": {"topic": "Teams is down", "review": policy},
                                                           "contacts": contacts})
    manual_host.run_until_idle()
    seats = notification(manual_host, instance_id)["seats"]
    assert [(s["teams"], s["email"]) for s in seats] == [("failed", "sent"), ("sent", "sent")]
    assert [c["conversation"] for c in bot_framework.cards()] == ["a:bob-chat"]
    bot_framework.refused.clear()
    manual_host.advance(minutes=NOTICE_RETRY_MINUTES[0])
    seats = notification(manual_host, instance_id)["seats"]
    assert [(s["teams"], s["email"]) for s in seats] == [("sent", "sent"), ("sent", "sent")]
    # The retry posted Alice's card, once, and neither Bob's card nor any e-mail again.
    assert [c["conversation"] for c in bot_framework.cards()] == ["a:bob-chat", "a:alice-chat"]
    assert len(mailbox.messages) == 2
    manual_host.advance(hours=1)
    assert len(bot_framework.cards()) == 2


def test_an_email_the_server_refused_is_sent_again_to_its_seat_only(manual_host, mailbox):
    mailbox.refused.add("carol@contoso.com")
    policy = {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"],
                          "require": "all"}]}
    instance_id = manual_host.start("hitl_orchestration", {"start": {"topic": "Mail is down", "review": policy}})
    manual_host.run_until_idle()
    told = notification(manual_host, instance_id)
    assert [s["email"] for s in told["seats"]] == ["sent", "failed"]
    assert told["channelErrors"]["email"] == "127.0.0.1 answered 451"
    assert [to for to, _ in mailbox.messages] == [["bob@contoso.com"]]
    mailbox.refused.clear()
    manual_host.advance(minutes=NOTICE_RETRY_MINUTES[0])
    assert [s["email"] for s in notification(manual_host, instance_id)["seats"]] == ["sent", "sent"]
    assert [to for to, _ in mailbox.messages] == [["bob@contoso.com"], ["carol@contoso.com"]]
    manual_host.advance(hours=1)
    assert len(mailbox.messages) == 2
