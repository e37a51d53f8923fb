"""A two-stage review decided from the channels themselves: a Teams card (stage one) and
Slack buttons or the Slack reject dialog (stage two), each through the same decision path
as the approve route, the other reviewers' messages of the stage updated."""
from __future__ import annotations

import json
import re
import threading

from devhost.testing import wait_until
from tests.support.http import call
from tests.support.slack_api import signed_interaction

from .conftest import SLACK_SECRET, card_action, install_teams_app

POLICY = {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com"]},
                     {"name": "legal", "reviewers": ["user:bob@contoso.com"]}]}


def status(base, instance_id):
    return call("GET", f"{base}/api/hitl/status/{instance_id}").json


def start(base, policy=POLICY, **fields):
    reply = call("POST", f"{base}/api/hitl/run", {"topic": "Quarterly report", "review": policy, **fields})
    assert reply.status == 202, reply.text
    return reply.json["instanceId"]


def notice_recorded(base, instance_id, round_, stage_index):
    """Wait until the review has recorded its notice of the stage (the Slack messages it
    posted among it). A decision taken before that does not reach those messages: the
    review signals the messages it knows of when it takes the decision."""
    def recorded():
        custom = status(base, instance_id).get("customStatus") or {}
        notice = custom.get("notification") or {}
        return (custom.get("round") == round_ and custom.get("stageIndex") == stage_index
                and notice.get("status") not in (None, "sending"))
    wait_until(recorded)


def slack_message_to(api, channel):
    def posted():
        return next((c for c in api.calls_of("chat.postMessage") if c["channel"] == channel), None)
    return wait_until(posted)


def button(message, action_id):
    blocks = message["blocks"] if isinstance(message["blocks"], list) else json.loads(message["blocks"])
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    return next(a for a in actions if a["action_id"] == action_id)


def click(base, user, action_id, value, channel="DU0BOB", ts="1700000000.000001", secret=SLACK_SECRET, **extra):
    body, headers = signed_interaction({"type": "block_actions", "user": {"id": user}, "trigger_id": "trigger-1",
                                        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
                                        "actions": [{"action_id": action_id, "value": value}],
                                        "message": {"text": "Review needed"}, **extra}, secret)
    return call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers)


def test_a_two_stage_review_is_decided_from_a_teams_card_then_slack_buttons(served_host, bot_framework, slack_api):
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat", name="Alice Smith")
    slack_api.users["U0BOB"] = {"email": "bob@contoso.com"}
    instance_id = start(base)

    # Stage one: Alice's card arrives in her chat with the bot, posted with the bot's token.
    card = wait_until(lambda: next((c for c in bot_framework.cards() if c["conversation"] == "a:alice-chat"), None))
    assert card["card"]["version"] == "1.5"
    assert all(auth.startswith("Bearer ") for auth in bot_framework.connector_auth)
    approve = next(a for a in card["card"]["actions"] if a.get("verb") == "approve")
    answered = card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve", approve["data"])
    assert answered.status == 200, answered.text
    refreshed = json.dumps(answered.json["value"])
    # The card names her as Teams does; the records keep her address as who decided.
    assert re.search(r"Approved by Alice Smith, \d\d:\d\d UTC", refreshed) and '"verb": "approve"' not in refreshed

    # Stage two: Bob's Slack message, found by his e-mail address, decides the review.
    message = slack_message_to(slack_api, "U0BOB")
    clicked = click(base, "U0BOB", "hitl_approve", button(message, "hitl_approve")["value"])
    assert clicked.status == 200, clicked.text
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    trail = [(d["stage"], d["by"], d["channel"]) for d in done["output"]["decisions"]]
    assert trail == [("editor", "alice@contoso.com", "teams"), ("legal", "bob@contoso.com", "slack")]
    assert done["output"]["decisions"][0]["person"] == {"name": "alice@contoso.com", "id": "aad-29:alice"}
    assert [d.get("byName") for d in done["output"]["decisions"]] == ["Alice Smith", None]
    # The clicked message now says who decided: Slack gave no name for Bob, so his address.
    update = slack_api.calls_of("chat.update")[-1]
    assert "Approved by bob@contoso.com" in json.dumps(update["blocks"])


TWO_CHANNELS = {"stages": [
    {"name": "editor", "reviewers": ["user:alice@contoso.com", "user:dan@contoso.com"], "require": "any"},
    {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "any"}]}


def slack_round_message(api, channel, round_):
    """The message of ``round_`` posted to ``channel``."""
    return wait_until(lambda: next((c for c in api.calls_of("chat.postMessage") if c["channel"] == channel
                                    and f"Round {round_} of" in json.dumps(c["blocks"])), None))


def slack_round_update(api, channel, round_, line):
    """The update of ``channel``'s message of ``round_`` that shows ``line``."""
    return wait_until(lambda: next((u for u in api.calls_of("chat.update") if u["channel"] == channel
                                    and f"Round {round_} of" in (text := json.dumps(u["blocks"]))
                                    and line in text), None))


def submit_rejection(base, user, view, feedback):
    body, headers = signed_interaction({"type": "view_submission", "user": {"id": user}, "view": {
        "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
        "state": {"values": {"feedback": {"feedback": {"type": "plain_text_input", "value": feedback}}}}}},
        SLACK_SECRET)
    return call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers)


def test_two_rounds_of_two_stages_are_decided_from_a_teams_card_slack_buttons_and_the_reject_dialog(
        served_host, bot_framework, slack_api):
    """Round 1: the editor stage approved on Alice's Teams card, the legal stage rejected
    in Bob's Slack dialog; round 2: both approved, on the card and with Carol's Slack
    button. Each decision closes the other reviewers' messages of its stage, naming the
    person as their channel does (Carol's Slack profile has no name: her address)."""
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat", name="Alice Smith")
    slack_api.users.update({"U0DAN": {"email": "dan@contoso.com"},
                            "U0BOB": {"email": "bob@contoso.com", "name": "Bob Jones"},
                            "U0CAROL": {"email": "carol@contoso.com"}})
    instance_id = start(base, TWO_CHANNELS, max_review_attempts=2)

    def alices_card(round_):
        card = wait_until(lambda: next((c["card"] for c in bot_framework.cards() if c["conversation"] == "a:alice-chat"
                                        and f"Round {round_} of" in json.dumps(c["card"])), None))
        return next(a for a in card["actions"] if a.get("verb") == "approve")["data"]

    for round_ in (1, 2):
        slack_round_message(slack_api, "U0DAN", round_)
        notice_recorded(base, instance_id, round_, 0)
        answered = card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve", alices_card(round_))
        assert "Approved by Alice Smith" in json.dumps(answered.json["value"]), answered.text
        # Dan's Slack message of the editor stage is closed with Alice's Teams name.
        slack_round_update(slack_api, "DU0DAN", round_, "The stage was decided: Approved by Alice Smith")

        bobs = slack_round_message(slack_api, "U0BOB", round_)
        carols = slack_round_message(slack_api, "U0CAROL", round_)
        notice_recorded(base, instance_id, round_, 1)
        if round_ == 1:
            assert click(base, "U0BOB", "hitl_reject", button(bobs, "hitl_reject")["value"],
                         ts="1700000000.000101").status == 200
            dialog = wait_until(lambda: slack_api.calls_of("views.open"))[-1]
            view = dialog["view"] if isinstance(dialog["view"], dict) else json.loads(dialog["view"])
            submitted = submit_rejection(base, "U0BOB", view, "Cite the source for the figures")
            assert submitted.status == 200, submitted.text
            # Bob's own message shows his rejection; Carol's, that the stage was decided.
            slack_round_update(slack_api, "DU0BOB", 1, "Rejected by Bob Jones")
            slack_round_update(slack_api, "DU0CAROL", 1, "The stage was decided: Rejected by Bob Jones")
        else:
            clicked = click(base, "U0CAROL", "hitl_approve", button(carols, "hitl_approve")["value"],
                            channel="DU0CAROL", ts="1700000000.000201")
            assert clicked.status == 200, clicked.text
            slack_round_update(slack_api, "DU0BOB", 2, "The stage was decided: Approved by carol@contoso.com")

    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    trail = [(d["round"], d["stage"], d["approved"], d["by"], d.get("byName"), d["channel"], d["feedback"])
             for d in done["output"]["decisions"]]
    assert trail == [(1, "editor", True, "alice@contoso.com", "Alice Smith", "teams", ""),
                     (1, "legal", False, "bob@contoso.com", "Bob Jones", "slack", "Cite the source for the figures"),
                     (2, "editor", True, "alice@contoso.com", "Alice Smith", "teams", ""),
                     (2, "legal", True, "carol@contoso.com", None, "slack", "")]


def test_the_status_and_inbox_say_how_each_seat_was_told(served_host, bot_framework, slack_api):
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    instance_id = start(base, {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com",
                                                                           "user:nobody@contoso.com"],
                                           "require": "all"}]})
    told = wait_until(lambda: (n := status(base, instance_id)["customStatus"].get("notification") or {})
                    .get("seats") and n)
    assert told["seats"] == [{"index": 0, "teams": "sent", "slack": "not found"},
                             {"index": 1, "teams": "no chat", "slack": "not found"}]
    pending = call("GET", f"{base}/api/hitl/pending").json["items"]
    assert next(i for i in pending if i["instanceId"] == instance_id)["seatNotices"] == told["seats"]

    def inbox_seats():
        items = call("GET", f"{base}/api/hitl/inbox/items?tab=all").json["items"]
        return next((i["seats"] for i in items if i["instanceId"] == instance_id), None)
    assert [seat.get("notices") for seat in wait_until(inbox_seats)] == [
        {"teams": "sent", "slack": "not found"}, {"teams": "no chat", "slack": "not found"}]


def test_a_slack_rejection_asks_for_feedback_in_a_dialog(served_host, slack_api):
    base = served_host.base_url
    slack_api.users["U0BOB"] = {"email": "bob@contoso.com"}
    instance_id = start(base, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]},
                        max_review_attempts=2)
    message = slack_message_to(slack_api, "U0BOB")
    value = button(message, "hitl_reject")["value"]
    assert click(base, "U0BOB", "hitl_reject", value).status == 200
    dialog = slack_api.calls_of("views.open")[-1]
    view = dialog["view"] if isinstance(dialog["view"], dict) else json.loads(dialog["view"])
    feedback = next(b for b in view["blocks"] if b["type"] == "input")
    assert feedback["block_id"] == "feedback" and feedback.get("optional") is not True
    body, headers = signed_interaction({"type": "view_submission", "user": {"id": "U0BOB"}, "view": {
        "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
        "state": {"values": {"feedback": {"feedback": {"type": "plain_text_input",
                                                        "value": "Cite the source for the figures"}}}}}},
        SLACK_SECRET)
    submitted = call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers)
    assert submitted.status == 200, submitted.text
    body = wait_until(lambda: (s := status(base, instance_id))["customStatus"]["round"] == 2 and s)
    decision = body["customStatus"]["decisions"][0]
    assert (decision["approved"], decision["feedback"], decision["channel"]) == (
        False, "Cite the source for the figures", "slack")


def test_every_reviewers_slack_message_shows_who_decided_the_stage(served_host, slack_api):
    base = served_host.base_url
    slack_api.users.update({"U0BOB": {"email": "bob@contoso.com"}, "U0CAROL": {"email": "carol@contoso.com"}})
    instance_id = start(base, {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "any"},
        {"name": "brand", "reviewers": ["user:dan@contoso.com"]}]})
    bobs = slack_message_to(slack_api, "U0BOB")
    slack_message_to(slack_api, "U0CAROL")
    assert click(base, "U0BOB", "hitl_approve", button(bobs, "hitl_approve")["value"]).status == 200
    carols = wait_until(lambda: next((u for u in slack_api.calls_of("chat.update") if u["channel"] == "DU0CAROL"), None))
    assert "The stage was decided: Approved by bob@contoso.com" in json.dumps(carols["blocks"])
    assert "hitl_approve" not in json.dumps(carols["blocks"])
    # A click on Carol's stale message is answered with the reason, to her only.
    late = click(base, "U0CAROL", "hitl_approve", button(slack_message_to(slack_api, "U0CAROL"), "hitl_approve")["value"],
                 channel="DU0CAROL", ts="1700000000.000002")
    assert late.status == 200
    told = wait_until(lambda: slack_api.calls_of("chat.postEphemeral"))
    assert told[-1]["user"] == "U0CAROL" and "Not taken" in told[-1]["text"]
    assert [d["by"] for d in status(base, instance_id)["customStatus"]["decisions"]] == ["bob@contoso.com"]


def test_a_decision_on_a_teams_card_updates_the_slack_messages_of_the_stage(served_host, bot_framework, slack_api):
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    slack_api.users["U0BOB"] = {"email": "bob@contoso.com"}
    instance_id = start(base, {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com",
                                                                           "user:bob@contoso.com"]}]})
    slack_message_to(slack_api, "U0BOB")
    notice_recorded(base, instance_id, 1, 0)
    card = wait_until(lambda: next(iter(bot_framework.cards()), None))
    data = next(a for a in card["card"]["actions"] if a.get("verb") == "approve")["data"]
    assert card_action(base, bot_framework, "29:alice", "a:alice-chat", "approve", data).status == 200
    bobs = wait_until(lambda: next((u for u in slack_api.calls_of("chat.update") if u["channel"] == "DU0BOB"), None))
    assert "The stage was decided: Approved by Alice" in json.dumps(bobs["blocks"])
    wait_until(lambda: status(base, instance_id)["runtimeStatus"] == "Completed")
    # Refreshing a card (Teams asks when the card is viewed) shows it closed too.
    refreshed = card_action(base, bot_framework, "29:alice", "a:alice-chat", "refresh", data)
    assert "Approved by Alice" in json.dumps(refreshed.json["value"])


def test_a_decision_by_the_approve_route_updates_the_slack_messages_too(served_host, slack_api):
    base = served_host.base_url
    slack_api.users.update({"U0BOB": {"email": "bob@contoso.com"}, "U0CAROL": {"email": "carol@contoso.com"}})
    instance_id = start(base, {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all"}]})
    slack_message_to(slack_api, "U0BOB")
    slack_message_to(slack_api, "U0CAROL")
    notice_recorded(base, instance_id, 1, 0)
    approved = call("POST", f"{base}/api/hitl/approve/{instance_id}",
                    {"approved": True, "round": 1, "reviewer": "carol@contoso.com"})
    assert approved.status == 200, approved.text
    carols = wait_until(lambda: next((u for u in slack_api.calls_of("chat.update") if u["channel"] == "DU0CAROL"), None))
    assert "Approved by carol@contoso.com" in json.dumps(carols["blocks"])
    # Bob's seat is still open ("all"): his message keeps its buttons until the stage is decided.
    assert not any(u["channel"] == "DU0BOB" for u in slack_api.calls_of("chat.update"))
    assert status(base, instance_id)["runtimeStatus"] == "Running"


def test_a_decision_taken_while_the_notice_is_still_posting_closes_the_messages_it_posts_later(
        served_host, slack_api):
    """Bob decides the stage from his message while the notice is still posting Carol's
    (Slack holds her message until the decision is in): the review has not recorded her message, so the notice
    reports it to the messages' entity, which closes it with the stage's decision."""
    base = served_host.base_url
    slack_api.users.update({"U0BOB": {"email": "bob@contoso.com"}, "U0CAROL": {"email": "carol@contoso.com"}})
    carols_post = slack_api.held_posts["U0CAROL"] = threading.Event()
    instance_id = start(base, {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "any"}]})
    bobs = slack_message_to(slack_api, "U0BOB")
    assert click(base, "U0BOB", "hitl_approve", button(bobs, "hitl_approve")["value"]).status == 200
    custom = status(base, instance_id)["customStatus"]
    assert custom["decisions"][0]["by"] == "bob@contoso.com"
    assert (custom.get("notification") or {}).get("status") in (None, "sending")  # the notice is still out
    carols_post.set()
    carols = wait_until(lambda: next((u for u in slack_api.calls_of("chat.update") if u["channel"] == "DU0CAROL"), None),
                        timeout=15)
    assert "The stage was decided: Approved by bob@contoso.com" in json.dumps(carols["blocks"])
    assert "hitl_approve" not in json.dumps(carols["blocks"])
    wait_until(lambda: status(base, instance_id)["runtimeStatus"] == "Completed")


def test_a_seat_decided_elsewhere_while_its_message_is_still_posting_has_that_message_closed(
        served_host, slack_api):
    """Both seats must approve. Bob approves by the approve route while his Slack message
    is still being posted: the review has not recorded that message, so the notice
    reports it to the messages' entity, which closes it with his decision. Carol's seat is
    still open: her message keeps its buttons."""
    base = served_host.base_url
    slack_api.users.update({"U0BOB": {"email": "bob@contoso.com"}, "U0CAROL": {"email": "carol@contoso.com"}})
    bobs_post = slack_api.held_posts["U0BOB"] = threading.Event()
    instance_id = start(base, {"stages": [
        {"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"], "require": "all"}]})
    slack_message_to(slack_api, "U0CAROL")
    approved = call("POST", f"{base}/api/hitl/approve/{instance_id}",
                    {"approved": True, "round": 1, "reviewer": "bob@contoso.com"})
    assert approved.status == 200, approved.text
    assert (status(base, instance_id)["customStatus"].get("notification") or {}).get("status") in (None, "sending")
    bobs_post.set()
    bobs = wait_until(lambda: next((u for u in slack_api.calls_of("chat.update") if u["channel"] == "DU0BOB"), None),
                      timeout=15)
    assert "Approved by bob@contoso.com" in json.dumps(bobs["blocks"])
    notice_recorded(base, instance_id, 1, 0)
    assert not any(u["channel"] == "DU0CAROL" for u in slack_api.calls_of("chat.update"))
    assert status(base, instance_id)["runtimeStatus"] == "Running"
