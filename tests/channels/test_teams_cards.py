"""The paths of a Teams review card, each taken through the bot's messaging endpoint with
the Bot Framework's signed tokens: a rejection with its feedback, an empty one, a second
click by the same person, a click on an earlier round's card or on a cancelled review, and
a card of an earlier round refreshed once the next round's draft is under review."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from channels.seat_view import from_status, record_line
from channels.slack import message_blocks
from channels.teams_cards import seat_card
from devhost.testing import wait_until
from shared_code.review_links import ReviewGrant
from shared_code.review_status import ReviewStatus
from tests.support.http import call

from .conftest import card_action, install_teams_app
from .test_two_way_decisions import start, status

ALICE = {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com"]}]}
FEEDBACK = "Cite the source for the figures"


def cards_to(framework, conversation):
    return [c["card"] for c in framework.cards() if c["conversation"] == conversation]


def action_data(card, verb):
    return next(a for a in card["actions"] if a.get("verb") == verb)["data"]


def card_text(reply):
    """The words of the card an invoke answered with."""
    assert reply.status == 200, reply.text
    return json.dumps(reply.json["value"])


def title_of(card):
    """The draft's title: the first TextRun of the card, in bold."""
    return next(b["inlines"][0]["text"] for b in card["body"] if b["type"] == "RichTextBlock")


@pytest.fixture
def alices_card(served_host, bot_framework):
    """A one-seat review of two rounds whose round-1 card is in Alice's chat."""
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    instance_id = start(base, ALICE, max_review_attempts=2)
    card = wait_until(lambda: next(iter(cards_to(bot_framework, "a:alice-chat")), None))
    return base, instance_id, card


@pytest.fixture
def round_2(alices_card, bot_framework):
    """Alice rejected round 1 from its card; round 2's draft is under review and its card
    is in her chat."""
    base, instance_id, card = alices_card
    answered = card_action(base, bot_framework, "29:alice", "a:alice-chat", "reject",
                           {**action_data(card, "reject"), "feedback": FEEDBACK})
    assert "Not taken" not in card_text(answered)
    wait_until(lambda: status(base, instance_id)["customStatus"]["stage"] == "awaiting_review"
               and status(base, instance_id)["customStatus"]["round"] == 2)
    second = wait_until(lambda: (cards := cards_to(bot_framework, "a:alice-chat"))[1:] and cards[-1])
    return base, instance_id, card, second


def test_a_rejection_from_a_card_is_recorded_with_its_feedback_channel_and_person(round_2):
    base, instance_id, _, _ = round_2
    [decision] = status(base, instance_id)["customStatus"]["decisions"]
    assert (decision["round"], decision["approved"], decision["feedback"], decision["channel"], decision["by"]) == (
        1, False, FEEDBACK, "teams", "alice@contoso.com")
    assert decision["person"] == {"name": "alice@contoso.com", "id": "aad-29:alice"}


def test_a_round_1_card_refreshed_during_round_2_shows_round_1s_draft_and_outcome(round_2, bot_framework):
    base, _, first, second = round_2
    assert title_of(first) != title_of(second)
    refreshed = card_text(card_action(base, bot_framework, "29:alice", "a:alice-chat", "refresh",
                                      action_data(first, "approve")))
    assert title_of(second) not in refreshed
    assert title_of(first) in refreshed and "Round 1 of 2" in refreshed
    assert "Rejected by Alice" in refreshed and '"verb": "approve"' not in refreshed


def test_a_click_on_an_earlier_rounds_card_is_refused_and_changes_nothing(round_2, bot_framework):
    base, instance_id, first, _ = round_2
    before = status(base, instance_id)["customStatus"]
    refused = card_text(card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve",
                                    action_data(first, "approve")))
    assert "Not taken: round 1 was already decided: rejected by alice@contoso.com" in refused
    after = status(base, instance_id)["customStatus"]
    assert (after["round"], after["stage"], after["decisions"]) == (2, "awaiting_review", before["decisions"])


def test_a_rejection_with_empty_feedback_is_refused_with_the_reason(alices_card, bot_framework):
    base, instance_id, card = alices_card
    refused = card_text(card_action(base, bot_framework, "29:alice", "a:alice-chat", "reject",
                                    {**action_data(card, "reject"), "feedback": "  \n "}))
    assert "Write feedback for the writer to reject." in refused
    assert '"verb": "reject"' in refused  # the card stays open for the feedback
    assert status(base, instance_id)["customStatus"]["decisions"] == []


def test_a_second_click_by_the_same_person_is_answered_and_recorded_once(served_host, bot_framework):
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    # Two seats, both needed: Alice's approval leaves the stage open for her second click.
    instance_id = start(base, {"stages": [{"name": "editor", "reviewers": [
        "user:alice@contoso.com", "user:bob@contoso.com"], "require": "all"}]})
    data = action_data(wait_until(lambda: next(iter(cards_to(bot_framework, "a:alice-chat")), None)), "approve")
    assert "Not taken" not in card_text(card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve", data))
    wait_until(lambda: status(base, instance_id)["customStatus"]["decisions"])
    again = card_text(card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve", data))
    assert "You already decided this stage: approved by alice@contoso.com; it stands." in again
    custom = status(base, instance_id)["customStatus"]
    assert [d["by"] for d in custom["decisions"]] == ["alice@contoso.com"]
    assert custom["stage"] == "awaiting_review"


def test_a_click_on_a_cancelled_reviews_card_is_refused_with_the_reason(alices_card, bot_framework):
    base, instance_id, card = alices_card
    cancelled = call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "withdrawn"})
    assert cancelled.status == 200, cancelled.text
    refused = card_text(card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve",
                                    action_data(card, "approve")))
    assert "Not taken: the review was cancelled" in refused and "withdrawn" in refused
    assert status(base, instance_id)["customStatus"]["decisions"] == []


def test_a_round_whose_text_the_status_no_longer_keeps_shows_no_other_rounds_text():
    """Round 5 under review, the status keeping rounds 2 to 4's texts: round 1's card
    shows its round, never round 5's draft or another round's excerpt."""
    key = b"k" * 32
    status_now = ReviewStatus(stage="awaiting_review", round=5, max_rounds=5,
                              draft={"title": "Draft 5", "content": "Fifth text"},
                              earlier_drafts=tuple({"round": r, "title": f"Draft {r}", "content": f"Text {r}"}
                                                   for r in (2, 3, 4)))
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    first = from_status("review-1", status_now, ReviewGrant("review-1", 1, expires, stage=0, seat=0), key,
                        "http://localhost", "Rejected by alice@contoso.com")
    assert (first.title, first.excerpt, first.round) == ("", "", 1)
    third = from_status("review-1", status_now, ReviewGrant("review-1", 3, expires, stage=0, seat=0), key,
                        "http://localhost", "Rejected by alice@contoso.com")
    assert (third.title, third.excerpt) == ("Draft 3", "Text 3")
    # Published, the status shows no draft: the output is round 5's, and only round 5's.
    finished = replace(status_now, stage="completed", draft=None)
    output = {"title": "Draft 5", "content": "Fifth text", "rounds": 5}
    fifth = from_status("review-1", finished, ReviewGrant("review-1", 5, expires, stage=0, seat=0), key,
                        "http://localhost", "Approved by alice@contoso.com", output)
    assert (fifth.title, fifth.excerpt) == ("Draft 5", "Fifth text")
    fourth = from_status("review-1", finished, ReviewGrant("review-1", 4, expires, stage=0, seat=0), key,
                         "http://localhost", "Rejected by alice@contoso.com", output)
    assert (fourth.title, fourth.excerpt) == ("Draft 4", "Text 4")


def test_a_name_with_markup_is_shown_as_text_on_a_card_and_a_slack_message():
    """A display name is the person's own text: the closed card shows it in a TextRun and
    the Slack message in plain_text, which render no Markdown, links or mentions."""
    key = b"k" * 32
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    status_now = ReviewStatus(stage="awaiting_review", round=1, max_rounds=1,
                              draft={"title": "Draft 1", "content": "Text"})
    line = record_line({"approved": True, "by": "eve@contoso.com", "byName": "**Eve** [CEO](https://evil) <!here>",
                        "at": "2026-01-05T10:42:00+00:00"})
    assert line == "Approved by **Eve** [CEO](https://evil) <!here>, 10:42 UTC"
    view = from_status("review-1", status_now, ReviewGrant("review-1", 1, expires, stage=0, seat=0), key,
                       "http://localhost", line)
    card = seat_card(view)
    assert not any(line in json.dumps(b) for b in card["body"] if b["type"] != "RichTextBlock")
    runs = [run for block in card["body"] if block["type"] == "RichTextBlock" for run in block["inlines"]]
    assert {"type": "TextRun", "text": line, "weight": "Default"} in runs
    shown = [block for block in message_blocks(view) if line in json.dumps(block)]
    assert shown == [{"type": "section", "text": {"type": "plain_text", "text": line, "emoji": False}}]
