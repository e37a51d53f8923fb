"""The seat_messages entity's state, one operation at a time, against the Slack stand-in:
the messages a notice posted and the review's decisions meet in whichever order they
come, and each message is updated once for what it must say."""
from __future__ import annotations

import json

import pytest

from entities.seat_messages import POSTED, STAGES_KEPT, UPDATE, posted_messages, with_news
from shared_code.settings import load_settings

from .conftest import SLACK_SECRET, SLACK_TOKEN

KEY = "test-signing-key-0123456789abcdef-0123"
BOB, CAROL = "DU0BOB/1700000000.000001", "DU0CAROL/1700000000.000002"


@pytest.fixture
def settings(monkeypatch, slack_api):
    monkeypatch.setenv("HITL_SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("HITL_SLACK_SIGNING_SECRET", SLACK_SECRET)
    monkeypatch.setenv("HITL_REVIEW_SIGNING_KEY", KEY)
    return load_settings()


def update(round_=1, stage=0, decisions=(), decided=False, messages=()):
    """What the review signals (ReviewState.seat_messages_update)."""
    return {"instance_id": "review-1", "topic": "Quarterly report", "round": round_, "max_rounds": 3,
            "title": "Q3", "excerpt": "The quarter in numbers.", "deadline": "2026-12-10T00:00:00+00:00",
            "stage": "legal", "stage_index": stage, "messages": list(messages), "decisions": list(decisions),
            "decided": decided}


def posted(round_=1, stage=0, *messages):
    return {"instance_id": "review-1", "round": round_, "stage_index": stage, "messages": list(messages)}


def message(seat, slack, spec="user:someone@contoso.com"):
    return {"seat": seat, "spec": spec, "slack": slack}


BOBS_APPROVAL = {"seatIndex": 0, "approved": True, "by": "bob@contoso.com", "at": "2026-12-07T10:00:00+00:00"}


def updates_to(slack_api, channel):
    return [u for u in slack_api.calls_of("chat.update") if u["channel"] == channel]


def test_messages_posted_after_the_decision_are_closed_when_they_are_reported(settings, slack_api):
    state = with_news({}, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True), settings)
    assert slack_api.calls_of("chat.update") == []  # no message known yet
    state = with_news(state, POSTED, posted(1, 0, message(0, BOB), message(1, CAROL)), settings)
    assert "The stage was decided: Approved by bob@contoso.com" in json.dumps(updates_to(slack_api, "DU0CAROL")[0])
    assert "Approved by bob@contoso.com" in json.dumps(updates_to(slack_api, "DU0BOB")[0]["blocks"])
    # The next news of the stage changes nothing either message says: no call.
    with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True, messages=[message(0, BOB)]), settings)
    assert len(slack_api.calls_of("chat.update")) == 2


def test_a_message_reported_before_any_decision_waits_for_one(settings, slack_api):
    state = with_news({}, POSTED, posted(1, 0, message(0, BOB), message(1, CAROL)), settings)
    state = with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL]), settings)  # "all": Carol is still open
    assert [u["channel"] for u in slack_api.calls_of("chat.update")] == ["DU0BOB"]
    with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL, {**BOBS_APPROVAL, "seatIndex": 1,
                                                               "by": "carol@contoso.com"}], decided=True), settings)
    assert [u["channel"] for u in slack_api.calls_of("chat.update")] == ["DU0BOB", "DU0CAROL"]


def test_an_update_slack_refused_is_tried_again_with_the_next_news(settings, slack_api):
    slack_api.fail.add("chat.update")
    state = with_news({}, POSTED, posted(1, 0, message(0, BOB)), settings)
    state = with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True), settings)
    refused = len(updates_to(slack_api, "DU0BOB"))
    assert refused >= 1
    slack_api.fail.discard("chat.update")
    state = with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True), settings)
    assert len(updates_to(slack_api, "DU0BOB")) == refused + 1  # tried again, and taken
    with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True), settings)
    assert len(updates_to(slack_api, "DU0BOB")) == refused + 1  # then left alone


def test_a_message_slack_cannot_update_is_left_after_one_try(settings, slack_api):
    slack_api.errors["chat.update"] = "message_not_found"  # the reviewer deleted it
    state = with_news({}, POSTED, posted(1, 0, message(0, BOB)), settings)
    state = with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True), settings)
    assert len(updates_to(slack_api, "DU0BOB")) == 1
    with_news(state, UPDATE, update(decisions=[BOBS_APPROVAL], decided=True), settings)
    assert len(updates_to(slack_api, "DU0BOB")) == 1


def test_news_of_another_stage_or_round_keeps_to_its_own_messages(settings, slack_api):
    state = with_news({}, POSTED, posted(1, 0, message(0, BOB)), settings)
    state = with_news(state, UPDATE, update(round_=2, decisions=[BOBS_APPROVAL], decided=True), settings)
    assert slack_api.calls_of("chat.update") == []
    for stage in range(1, STAGES_KEPT + 2):
        state = with_news(state, POSTED, posted(1, stage, message(0, f"DU0X/{stage}")), settings)
    assert len(state["stages"]) == STAGES_KEPT and "1/0" not in state["stages"]


def test_a_notice_reports_the_slack_messages_it_posted_with_their_seats():
    request = {"instance_id": "review-1", "round": 2, "stage_index": 1,
               "seats": [{"index": 0, "seat": "user:bob@contoso.com"}, {"index": 1, "seat": "role:legal"}]}
    outcome = {"seat_channels": {"seats": [{"index": 0, "slack": "sent", "slackMessage": BOB},
                                           {"index": 1, "slack": "failed"}]}}
    assert posted_messages(request, outcome) == {"instance_id": "review-1", "round": 2, "stage_index": 1,
                                                 "messages": [{"seat": 0, "spec": "user:bob@contoso.com",
                                                               "slack": BOB}]}
    assert posted_messages(request, {"seat_channels": {}}) is None
    assert posted_messages(request, {}) is None
