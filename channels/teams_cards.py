"""Adaptive Cards (schema 1.5) for Teams: one per seat, with Approve, Reject (feedback
required) and Open, as Universal Actions (``Action.Execute``) so that the bot answers a
click with the card as it now stands and ``refresh`` shows the current state whenever
the card is viewed.

Text from a user or the model (topic, title, excerpt) goes only into TextRuns, which
render no Markdown; TextBlocks hold only the app's own words (docs/SECURITY.md).
"""
from __future__ import annotations

from typing import Optional

from .seat_view import SeatView

CARD_VERSION = "1.5"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
APPROVE, REJECT, REFRESH = "approve", "reject", "refresh"
VERBS = (APPROVE, REJECT, REFRESH)
FEEDBACK_INPUT = "feedback"
FEEDBACK_MAX_CHARS = 4000


def _text_run(text: str, *, weight: str = "Default", subtle: bool = False) -> dict:
    run = {"type": "TextRun", "text": text, "weight": weight}
    if subtle:
        run["isSubtle"] = True
    return {"type": "RichTextBlock", "inlines": [run]}


def seat_card(view: SeatView, user_ids: Optional[list] = None) -> dict:
    """The card for one seat: open (buttons) or closed (the line saying why)."""
    body = [{"type": "TextBlock", "text": view.heading if view.open else "Review", "weight": "Bolder",
             "size": "Medium", "wrap": True},
            *([_text_run(view.title, weight="Bolder")] if view.title else []),
            _text_run(f"Topic: {view.topic}", subtle=True),
            _text_run(view.round_line, subtle=True)]
    if view.excerpt:
        body.append(_text_run(view.excerpt))
    actions = []
    if view.open:
        body.append(_text_run(f"Decide before {view.deadline}", subtle=True))
        body.append({"type": "Input.Text", "id": FEEDBACK_INPUT, "isMultiline": True, "maxLength": FEEDBACK_MAX_CHARS,
                     "label": "Feedback for the writer (required to reject)",
                     "placeholder": "What should change?"})
        data = {"token": view.token, "review": view.instance_id}
        actions += [{"type": "Action.Execute", "title": "Approve", "verb": APPROVE, "data": data,
                     "associatedInputs": "none", "style": "positive"},
                    {"type": "Action.Execute", "title": "Reject", "verb": REJECT, "data": data,
                     "associatedInputs": "auto"}]
    else:
        body.append({"type": "TextBlock", "text": "This card is closed:", "weight": "Bolder", "wrap": True})
        body.append(_text_run(view.state or ""))
    if view.url:
        actions.append({"type": "Action.OpenUrl", "title": "Open", "url": view.url})
    card = {"type": "AdaptiveCard", "version": CARD_VERSION,
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body, "actions": actions}
    if view.open and view.token:
        card["refresh"] = {"action": {"type": "Action.Execute", "verb": REFRESH,
                                      "data": {"token": view.token, "review": view.instance_id}},
                           **({"userIds": user_ids} if user_ids else {})}
    return card


def notice_card(text: str) -> dict:
    """A card with one line of the app's own words (a refusal of a malformed click)."""
    return {"type": "AdaptiveCard", "version": CARD_VERSION,
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "body": [_text_run(text)]}


def invoke_reply(card: dict) -> dict:
    """The body of an ``adaptiveCard/action`` invoke response that replaces the card."""
    return {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": card}
