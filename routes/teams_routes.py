"""Microsoft Teams: ``POST /api/messages``, the bot's messaging endpoint.

The Functions host lets every caller in (anonymous at the host); the Bot Framework's
signed token is the credential, checked by the Agents SDK before anything else runs. The
SDK's adapter then runs ``ReviewBot`` for the activity:

- an installation, a conversation update or a message: the person's chat with the bot is
  remembered (``teams_contact``), so review cards can be sent to it;
- ``adaptiveCard/action`` (Approve, Reject, refresh): the card's seat token and the person
  the connector names go to ``decisions.decide``; the answer is the card as it now stands.
"""
from __future__ import annotations

import json
import logging
from typing import Optional
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func
from microsoft_agents.activity import AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core import ActivityHandler, TurnContext
from microsoft_agents.hosting.core.connector import ConnectorClientBase
from pydantic import ValidationError as ActivityError

from channels import teams
from channels.teams_cards import APPROVE, FEEDBACK_INPUT, REFRESH, REJECT, invoke_reply, notice_card, seat_card
from channels.teams_contacts import entity_id
from shared_code.identity import Person, display_name, valid_name
from shared_code.settings import Settings, load_settings

from .channel_decisions import decide_from_channel, seat_grant, view_of
from .http_helpers import HttpError, error_response, refusal_of
from .review_client import BackendUnavailable, NoSuchReview, ReviewClient

bp = df.Blueprint()
log = logging.getLogger(__name__)

CHANNEL = "teams"
# Teams waits a few seconds for an invoke's answer; a decision not applied by then is
# answered "sent" and the card shows it on its next refresh.
INVOKE_PATIENCE_SECONDS = 4.0
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@bp.route(route="messages", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def teams_messages(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    settings = load_settings()
    anonymous_ok = settings.teams_allow_anonymous and urlsplit(req.url).hostname in LOOPBACK
    if not settings.teams_app_id and not anonymous_ok:
        return error_response(401, "Teams is not configured on this app")
    try:
        identity = await teams.verified_identity(req.headers.get("authorization"), settings, anonymous_ok)
    except teams.Unauthorized as exc:
        return error_response(401, f"unauthorized: {exc}")
    try:
        body = teams.parsed_body(req.get_body())
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "the body is not a JSON activity")
    bot = ReviewBot(ReviewClient(client), client, settings)
    try:
        reply = await teams.adapter(settings).process_request(teams.FunctionRequest(body, dict(req.headers), identity),
                                                              bot)
    except ActivityError:
        return error_response(400, "the body is not an activity the Bot Framework sends")
    except Exception:
        log.exception("Teams: the activity could not be handled")
        return error_response(500, "internal error; the function log has the details")
    return func.HttpResponse(json.dumps(reply.body) if reply.body is not None else None,
                             status_code=int(reply.status_code), mimetype="application/json")


class ReviewBot(ActivityHandler):
    def __init__(self, reviews: ReviewClient, client: df.DurableOrchestrationClient, settings: Settings):
        self.reviews, self.client, self.settings = reviews, client, settings

    # -- remembering where each person's chat is -----------------------------------------

    async def on_conversation_update_activity(self, turn_context: TurnContext):
        await self.remember(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext):
        await self.remember(turn_context)

    async def on_message_activity(self, turn_context: TurnContext):
        person = await self.remember(turn_context)
        if person is not None:
            await turn_context.send_activity(f"Review cards for {person.name} will come to this chat.")
        else:
            await turn_context.send_activity("Review cards come to this chat once Teams says who you are; "
                                             "write to me in a personal chat.")

    async def remember(self, turn_context: TurnContext) -> Optional[Person]:
        activity = turn_context.activity
        if (activity.conversation.conversation_type or "personal") != "personal" or not activity.from_property:
            return None
        person = await self.person(turn_context)
        if person is not None:
            await self.client.signal_entity(entity_id(person.key), "set", teams.TeamsContact.of(activity).to_json())
        return person

    async def person(self, turn_context: TurnContext) -> Optional[Person]:
        """The person behind the Teams user, as the connector's member lookup names them
        (sign-in name, Entra object id and display name), never as the client's own text
        says."""
        activity = turn_context.activity
        connector = turn_context.services.get(ConnectorClientBase)
        if connector is None or not activity.from_property or not activity.from_property.id:
            return None
        try:
            member = teams.member_of(await connector.conversations.get_conversation_member(
                activity.conversation.id, activity.from_property.id))
        except Exception as exc:  # the connector is down or refuses: nobody is named
            log.warning("Teams: the member lookup failed (%s)", type(exc).__name__)
            return None
        name = member["upn"]
        if not valid_name(name):
            return None
        return Person(name, member["objectId"] if valid_name(member["objectId"]) else "",
                      display_name=display_name(member["name"]))

    # -- cards --------------------------------------------------------------------------

    async def on_adaptive_card_invoke(self, turn_context: TurnContext, invoke_value) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action
        data = action.data if isinstance(action.data, dict) else {}
        token, instance_id = data.get("token"), data.get("review")
        if action.verb not in (APPROVE, REJECT, REFRESH) or not isinstance(token, str) \
                or not isinstance(instance_id, str):
            return _card_response(notice_card("This button is not one of this app's."))
        user_ids = [turn_context.activity.from_property.id] if turn_context.activity.from_property else None
        if action.verb == REFRESH:
            return _card_response(await self.current_card(instance_id, token, user_ids))
        feedback = data.get(FEEDBACK_INPUT) if action.verb == REJECT else ""
        if action.verb == REJECT and not (isinstance(feedback, str) and feedback.strip()):
            card = await self.current_card(instance_id, token, user_ids)
            return _card_response(_with_line(card, "Write feedback for the writer to reject."))
        answer = await decide_from_channel(self.reviews, instance_id, token, action.verb == APPROVE,
                                           feedback if isinstance(feedback, str) else "",
                                           await self.person(turn_context), CHANNEL, self.settings,
                                           INVOKE_PATIENCE_SECONDS)
        if answer.view is None:
            return _card_response(notice_card(answer.line))
        card = seat_card(answer.view, user_ids)
        return _card_response(card if answer.view.state == answer.line else _with_line(card, answer.line))

    async def current_card(self, instance_id: str, token: str, user_ids: Optional[list]) -> dict:
        """The card of the seat a token was made for, as the review stands now."""
        try:
            grant = seat_grant(token, instance_id, self.settings)
            return seat_card(view_of(await self.reviews.get(instance_id), grant, self.settings), user_ids)
        except (HttpError, NoSuchReview, BackendUnavailable) as exc:
            return notice_card(refusal_of(exc)[1])


def _card_response(card: dict) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse.model_validate(invoke_reply(card))


def _with_line(card: dict, line: str) -> dict:
    return {**card, "body": [*card["body"], {"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": line, "weight": "Bolder"}]}]}
