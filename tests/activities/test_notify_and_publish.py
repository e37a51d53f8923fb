"""notify_reviewer's notice and publish_content, called as the Functions host would call them."""
import json
import os
import logging
import re
import threading
import time

import pytest

import activities.notify_reviewer as notify_module
import activities.publish_content as publish_module
from datetime import datetime, timezone
from urllib.parse import unquote

from shared_code.models import ValidationError
from shared_code.review_links import verify
from shared_code.settings import load_settings
from tests.support.webhook import WebhookReceiver


def notify_reviewer(request: dict) -> dict:
    """The notice as the activity sends it (its report of posted Slack messages, which needs
    a host, is tested on a devhost in tests/channels)."""
    return notify_module.send_notice(request, load_settings())


publish_content = publish_module.publish_content._function.get_user_function()

NOTICE = {"instance_id": "review-42", "topic": "Tide pools", "round": 2, "max_rounds": 3,
          "title": "Rock pools\nat low tide", "deadline": "2026-11-27T09:00:00+00:00"}
SIGNING_KEY = "k" * 40
APPROVED = {"instance_id": "review-42", "title": "Rock pools at low tide",
            "content": "Anemones wait for the sea.", "rounds": 2}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("HITL_PUBLIC_BASE_URL", "WEBSITE_HOSTNAME", "HITL_WRITER", "HITL_REVIEW_SIGNING_KEY",
                 "HITL_DEV_INSECURE_LINKS", "HITL_NOTIFY_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HITL_PUBLISH_DIR", str(tmp_path / "published"))


def test_notify_returns_and_logs_the_review_links(monkeypatch, caplog):
    monkeypatch.setenv("HITL_PUBLIC_BASE_URL", "https://hitl.example.com/")
    monkeypatch.setenv("HITL_REVIEW_SIGNING_KEY", SIGNING_KEY)
    caplog.set_level(logging.INFO, logger="activities.notify_reviewer")

    result = notify_reviewer(NOTICE)

    assert result["channel"] == "log" and result["delivered"] is True
    assert result["status_url"] == "https://hitl.example.com/api/hitl/status/review-42"
    assert result["approve_url"] == "https://hitl.example.com/api/hitl/approve/review-42"
    assert result["review_url"].startswith("https://hitl.example.com/api/hitl/review/review-42?token=")
    token = unquote(result["review_url"].split("token=")[1])
    grant = verify(token, "review-42", datetime(2026, 11, 27, 8, tzinfo=timezone.utc), SIGNING_KEY.encode())
    assert grant.round == 2 and grant.expires_at == datetime.fromisoformat(NOTICE["deadline"])
    [record] = [r for r in caplog.records if r.name == "activities.notify_reviewer"]
    line = record.getMessage()
    assert "\n" not in line and SIGNING_KEY not in line
    assert result["review_url"] in line and result["status_url"] in line
    assert "round 2 of 3" in line and NOTICE["deadline"] in line


def test_notify_without_signing_key_refuses_links_but_still_notifies(caplog):
    result = notify_reviewer(NOTICE)
    assert result["review_url"] is None
    assert "HITL_REVIEW_SIGNING_KEY" in result["links_error"]
    assert result["delivered"] is True and result["status_url"]


def test_insecure_dev_links_only_outside_azure(monkeypatch):
    monkeypatch.setenv("HITL_DEV_INSECURE_LINKS", "1")
    assert notify_reviewer(NOTICE)["review_url"]
    monkeypatch.setenv("WEBSITE_HOSTNAME", "hitl.azurewebsites.net")
    assert notify_reviewer(NOTICE)["review_url"] is None


def test_notify_defaults_to_the_local_host():
    assert notify_reviewer(NOTICE)["status_url"] == "http://localhost:7071/api/hitl/status/review-42"


@pytest.mark.parametrize("instance_id", ["../etc", "a/b", "", None, 42])
def test_notify_refuses_ids_that_would_bend_the_urls(instance_id):
    with pytest.raises(ValidationError):
        notify_reviewer({**NOTICE, "instance_id": instance_id})


def test_publish_writes_the_record(tmp_path):
    result = publish_content(APPROVED)

    location = tmp_path / "published" / "review-42.json"
    assert result["location"] == str(location)
    assert result["already_published"] is False
    record = json.loads(location.read_text(encoding="utf-8"))
    assert record == {**APPROVED, "published_at": result["published_at"]}
    assert result["published_at"].endswith("+00:00")


def test_publish_twice_publishes_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="activities.publish_content")
    first = publish_content(APPROVED)
    second = publish_content({**APPROVED, "content": "A retried activity's content."})

    assert second == {**first, "already_published": True}
    folder = tmp_path / "published"
    assert sorted(p.name for p in folder.iterdir()) == [".staging", "review-42.json"]
    assert list((folder / ".staging").iterdir()) == []
    assert json.loads((folder / "review-42.json").read_text())["content"] == APPROVED["content"]
    assert "already published" in caplog.text


def test_concurrent_publishes_create_one_record(tmp_path):
    start = threading.Barrier(8)
    results = []

    def publish_once():
        start.wait()
        results.append(publish_content(APPROVED))

    threads = [threading.Thread(target=publish_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r["already_published"] for r in results) == [False] + [True] * 7
    assert len({r["published_at"] for r in results}) == 1
    folder = tmp_path / "published"
    assert sorted(p.name for p in folder.iterdir()) == [".staging", "review-42.json"]
    assert list((folder / ".staging").iterdir()) == []


@pytest.mark.parametrize("instance_id", ["../escaped", "/tmp/abs", "a/../../b", ".hidden"])
def test_publish_refuses_path_traversal(tmp_path, instance_id):
    with pytest.raises(ValidationError):
        publish_content({**APPROVED, "instance_id": instance_id})
    assert not any(p.suffix == ".json" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("change", [{"title": ""}, {"content": None}, {"rounds": 0}, {"rounds": "2"}])
def test_publish_validates_the_content(change):
    with pytest.raises(ValidationError):
        publish_content({**APPROVED, **change})


def test_publish_does_not_overwrite_a_foreign_file(tmp_path):
    folder = tmp_path / "published"
    folder.mkdir()
    (folder / "review-42.json").write_text("not a record")
    with pytest.raises(RuntimeError, match="not a published record"):
        publish_content(APPROVED)
    assert (folder / "review-42.json").read_text() == "not a record"


@pytest.fixture
def webhook(monkeypatch):
    monkeypatch.setattr(notify_module, "RETRY_DELAYS_SECONDS", (0.0, 0.0, 0.0))
    monkeypatch.setenv("HITL_REVIEW_SIGNING_KEY", SIGNING_KEY)
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", receiver.url)
        yield receiver


def test_webhook_message_fits_slack_and_teams(webhook):
    result = notify_reviewer(NOTICE)
    assert result["channel"] == "webhook" and result["delivered"] is True and result["attempts"] == 1
    [message] = webhook.delivered
    assert "Review needed (round 2 of 3)" in message["text"] and result["review_url"] in message["text"]
    assert {k: message[k] for k in ("instanceId", "round", "reviewUrl", "deadline")} == {
        "instanceId": "review-42", "round": 2, "reviewUrl": result["review_url"],
        "deadline": NOTICE["deadline"]}
    card = message["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["actions"][0]["url"] == result["review_url"]


def test_webhook_500_twice_then_200_is_delivered_once(webhook):
    webhook.script = [500, 500]
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is True and result["attempts"] == 3
    assert [r["status"] for r in webhook.received] == [500, 500, 200]
    assert len(webhook.delivered) == 1


def test_webhook_429_is_retried(webhook):
    webhook.script = [429]
    assert notify_reviewer(NOTICE)["attempts"] == 2


def test_webhook_that_stays_down_reports_without_raising_or_leaking_the_url(webhook):
    webhook.default_status = 503
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is False and result["attempts"] == 4
    assert "answered 503 after 4 attempts" in result["error"]
    assert "s3cr3t" not in result["error"] and "/hooks/" not in result["error"]


def test_webhook_client_error_is_not_retried(webhook):
    webhook.script = [404]
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is False and result["attempts"] == 1


def test_a_webhook_that_trickles_its_answer_is_cut_off_within_the_delivery_budget(webhook, monkeypatch):
    """A peer that answers a byte every 50 ms never leaves a read waiting for the 10 s
    per-read timeout, so before, each attempt lasted as long as the peer liked (here about
    4 s, and then it counted as delivered). Each attempt is now cut off at ATTEMPT_SECONDS
    and the whole delivery at DELIVERY_SECONDS, shortened here to keep the test quick."""
    monkeypatch.setattr(notify_module, "ATTEMPT_SECONDS", 0.5, raising=False)
    monkeypatch.setattr(notify_module, "DELIVERY_SECONDS", 1.2, raising=False)
    webhook.byte_every = 0.05
    started = time.monotonic()
    result = notify_reviewer(NOTICE)
    elapsed = time.monotonic() - started
    assert result["delivered"] is False
    assert result["error"].startswith("127.0.0.1 timed out after 3 attempt(s)")
    assert len(webhook.received) == 3
    assert elapsed < 1.2 + 0.3
    assert "s3cr3t" not in result["error"] and "/hooks/" not in result["error"]


def test_pauses_between_attempts_count_against_the_delivery_budget(webhook, monkeypatch):
    """A Retry-After longer than what is left of the delivery ends it, instead of sleeping
    (before: up to 30 s per answer, 90 s over the retries)."""
    monkeypatch.setattr(notify_module, "DELIVERY_SECONDS", 1.0, raising=False)
    webhook.script = [(503, {"Retry-After": "20"})]
    started = time.monotonic()
    result = notify_reviewer(NOTICE)
    assert time.monotonic() - started < 1.0
    assert result["delivered"] is False and result["attempts"] == 1
    assert result["error"] == ("127.0.0.1 answered 503 after 1 attempt(s); gave up, as a delivery "
                               "may take 1 s at most")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_and_is_not_followed(webhook, status):
    """Before, a 302 (and 301, 303) was followed with a GET without the notice to wherever
    Location said, and the notice counted as sent; 307 and 308 read as "answered 307"."""
    with WebhookReceiver() as elsewhere:
        webhook.script = [(status, {"Location": elsewhere.url})]
        result = notify_reviewer(NOTICE)
        assert elsewhere.received == []
    assert result["delivered"] is False and result["attempts"] == 1
    assert result["error"] == (f"127.0.0.1 redirected the notice ({status}); redirects are not "
                               "followed: set HITL_NOTIFY_WEBHOOK_URL to the final address")
    assert elsewhere.url not in result["error"] and "s3cr3t" not in result["error"]


def test_an_escalation_webhook_redirect_fails_the_same_way(monkeypatch):
    from activities.notify_reviewer import send_notice
    from shared_code.settings import load_settings

    with WebhookReceiver() as reviewers, WebhookReceiver() as escalations, WebhookReceiver() as elsewhere:
        escalations.script = [(302, {"Location": elsewhere.url})]
        settings = load_settings({"HITL_NOTIFY_WEBHOOK_URL": reviewers.url,
                                  "HITL_ESCALATION_WEBHOOK_URL": escalations.url,
                                  "HITL_REVIEW_SIGNING_KEY": SIGNING_KEY})
        result = send_notice({**NOTICE, "kind": "escalation"}, settings)
        assert elsewhere.received == [] and reviewers.received == []
    assert result["delivered"] is False
    assert "redirected the notice (302)" in result["error"]
    assert "HITL_ESCALATION_WEBHOOK_URL" in result["error"]


def test_an_answer_that_is_not_http_is_a_failed_attempt_not_an_exception(webhook):
    """Before, http.client's BadStatusLine (not an OSError) left the activity as an
    exception, so the orchestrator got a traceback instead of an outcome."""
    webhook.script = [b"SPEAKING SOMETHING ELSE\r\n\r\n"]
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is True and result["attempts"] == 2
    webhook.script = [b"NOT HTTP\r\n\r\n"] * 4
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is False
    assert result["error"] == "127.0.0.1 answered with a malformed reply after 4 attempts"


def test_an_https_webhook_goes_through_the_same_bounded_connection(webhook, monkeypatch):
    """The receiver speaks plain HTTP, so the TLS handshake fails: what matters is that an
    https URL is opened (by the handler that bounds it) and its failure reported."""
    monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", webhook.url.replace("http://", "https://"))
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is False
    assert result["error"] == "127.0.0.1 unreachable (SSLError) after 4 attempts"


def test_publish_removes_temp_files_left_by_killed_runs(tmp_path):
    folder = tmp_path / "published"
    (folder / ".staging").mkdir(parents=True)
    stale = folder / ".staging" / "review-7.abc123.tmp"  # another instance's leftover
    fresh = folder / ".staging" / "review-42.def456.tmp"
    stale.write_text("partial")
    fresh.write_text("another run still writing")
    old = stale.stat().st_mtime - 3600
    os.utime(stale, (old, old))
    publish_content(APPROVED)
    assert not stale.exists() and fresh.exists()
    assert (folder / "review-42.json").exists()
    assert sorted(p.name for p in folder.iterdir()) == [".staging", "review-42.json"]


@pytest.mark.parametrize("url", ["hooks.example.com/services/T0/B0/SECRETTOKEN",
                                 "https://hooks.example.com/services/T0 B0/SECRETTOKEN"])
def test_unusable_webhook_url_is_reported_without_the_url(monkeypatch, url):
    monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", url)
    result = notify_reviewer(NOTICE)
    assert result["delivered"] is False and "HITL_NOTIFY_WEBHOOK_URL" in result["error"]
    assert "SECRETTOKEN" not in result["error"]


# Text from the review's owner (topic) and from the model (title) in the notice.

HOSTILE_TOPIC = "<!channel> <https://evil.example/login|Approve now> & [Approve now](https://evil.example/login)"
HOSTILE_TITLE = "**URGENT** [Approve now](https://evil.example/login) <!here> <@U0123> _x_"


def card_elements(card: dict):
    """Every element of an Adaptive Card body, nested ones and inlines included."""
    pending = list(card["body"])
    while pending:
        element = pending.pop()
        yield element
        for key in ("items", "inlines", "columns"):
            pending.extend(item for item in element.get(key, []) if isinstance(item, dict))


def test_hostile_topic_and_title_arrive_as_text_in_slack(webhook):
    """At 8b53147 the title went into Slack's ``text`` as it was (and the topic not at
    all): ``<!here>`` pinged the channel and ``<https://evil.example|...>`` showed a
    masked link. Now &, < and > arrive as entities, and the only <...> left is our link."""
    result = notify_reviewer({**NOTICE, "topic": HOSTILE_TOPIC, "title": HOSTILE_TITLE})
    [message] = webhook.delivered
    text = message["text"]
    assert "&lt;!channel&gt;" in text and "&lt;!here&gt;" in text and "&lt;@U0123&gt;" in text
    assert "&lt;https://evil.example/login|Approve now&gt; &amp; [Approve now]" in text
    assert re.findall(r"<([^<>]*)>", text) == [f"{result['review_url']}|Review the draft"]
    assert "\n" not in text


def test_hostile_topic_and_title_are_no_markup_in_the_teams_card(webhook):
    """At 8b53147 the title was the text of an Adaptive Card TextBlock, which renders
    Markdown: ``[Approve now](https://evil.example/login)`` became a link in Teams. Now
    user and model text is only in TextRuns, which show it literally; the card's only
    link is the Review action with our signed URL."""
    result = notify_reviewer({**NOTICE, "topic": HOSTILE_TOPIC, "title": HOSTILE_TITLE})
    [message] = webhook.delivered
    card = message["attachments"][0]["content"]
    elements = list(card_elements(card))
    markdown = [e["text"] for e in elements if e["type"] == "TextBlock"]
    assert not any("evil.example" in t or "](" in t or "<" in t for t in markdown), markdown
    runs = [e["text"] for e in elements if e["type"] == "TextRun"]
    assert HOSTILE_TITLE in runs and f"Topic: {HOSTILE_TOPIC}" in runs
    assert not any("selectAction" in e for e in elements)
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Review", "url": result["review_url"]}]
    assert result["review_url"].startswith("http://localhost:7071/api/hitl/review/review-42?token=")
    token = unquote(result["review_url"].split("token=")[1])
    assert verify(token, "review-42", datetime(2026, 11, 27, 8, tzinfo=timezone.utc),
                  SIGNING_KEY.encode()).round == 2


def test_slack_link_is_the_status_page_without_a_signing_key(monkeypatch):
    """Without review links the Slack text still links somewhere useful: the status URL,
    as a Slack link. At 8b53147 it was bare text beside the unescaped title, whose
    <!here> pinged the channel."""
    monkeypatch.setattr(notify_module, "RETRY_DELAYS_SECONDS", (0.0, 0.0, 0.0))
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("HITL_NOTIFY_WEBHOOK_URL", receiver.url)
        notify_reviewer({**NOTICE, "title": HOSTILE_TITLE})
    [message] = receiver.delivered
    assert "attachments" not in message
    assert re.findall(r"<([^<>]*)>", message["text"]) == [
        "http://localhost:7071/api/hitl/status/review-42|Review status"]


def test_reminders_and_escalations_say_what_they_are_and_escalations_take_their_own_channel(monkeypatch):
    from activities.notify_reviewer import send_notice
    from shared_code.settings import load_settings
    from tests.support.webhook import WebhookReceiver

    with WebhookReceiver() as reviewers, WebhookReceiver() as escalations:
        env = {"HITL_NOTIFY_WEBHOOK_URL": reviewers.url, "HITL_REVIEW_SIGNING_KEY": "k" * 40,
               "HITL_WRITER": "offline"}
        request = {"instance_id": "review-1", "topic": "T", "round": 1, "max_rounds": 2,
                   "title": "Draft", "deadline": "2030-01-01T00:00:00+00:00"}
        send_notice({**request, "kind": "reminder"}, load_settings(env))
        send_notice({**request, "kind": "escalation"}, load_settings(env))
        send_notice({**request, "kind": "escalation"},
                    load_settings({**env, "HITL_ESCALATION_WEBHOOK_URL": escalations.url}))
        kinds = [body["kind"] for body in reviewers.delivered]
        assert kinds == ["reminder", "escalation"]
        assert reviewers.delivered[0]["text"].startswith("Reminder: review needed")
        assert [body["kind"] for body in escalations.delivered] == ["escalation"]


def test_a_revisions_notice_says_what_the_writer_changed(webhook, monkeypatch, caplog):
    changes = ["shortened the intro", "added a timeout example as asked", "<!channel> [x](https://evil.example)"]
    notify_reviewer({**NOTICE, "changes": changes})
    [message] = webhook.delivered
    line = "Round 2: shortened the intro; added a timeout example as asked; "
    assert line + "&lt;!channel&gt; [x](https://evil.example)." in message["text"]
    runs = [e["text"] for e in card_elements(message["attachments"][0]["content"]) if e["type"] == "TextRun"]
    assert line + "<!channel> [x](https://evil.example)." in runs
    monkeypatch.delenv("HITL_NOTIFY_WEBHOOK_URL")
    caplog.set_level(logging.INFO, logger="activities.notify_reviewer")
    notify_reviewer({**NOTICE, "changes": changes[:1]})
    assert "Round 2: shortened the intro." in caplog.records[-1].getMessage()


def test_a_first_drafts_notice_lists_no_changes(webhook):
    notify_reviewer(NOTICE)
    assert "Round 2:" not in webhook.delivered[0]["text"]


@pytest.mark.parametrize("name, value", [
    ("HITL_NOTIFY_WEBHOOK_URL", "https://hooks.example.com/x"), ("HITL_ESCALATION_WEBHOOK_URL", "https://hooks.example.com/y"),
    ("HITL_SLACK_BOT_TOKEN", "xoxb-1"), ("HITL_EMAIL_FROM", "reviews@contoso.com"),
    ("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID", "00000000-0000-4000-8000-00000000b07e"),
])
def test_a_notice_waits_on_peers_whenever_a_webhook_or_a_seat_channel_is_configured(monkeypatch, name, value):
    """notify_reviewer runs on the worker's loop and sends from there only a notice that
    waits on no peer (the log is its channel): every channel must count as a peer."""
    assert not notify_module.waits_on_peers(load_settings())
    monkeypatch.setenv(name, value)
    if name == "HITL_SLACK_BOT_TOKEN":
        monkeypatch.setenv("HITL_SLACK_SIGNING_SECRET", "s" * 32)
    if name == "HITL_EMAIL_FROM":
        monkeypatch.setenv("HITL_SMTP_HOST", "smtp.example.com")
    assert notify_module.waits_on_peers(load_settings())
