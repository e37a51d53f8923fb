"""Microsoft Teams through the Microsoft 365 Agents SDK: its token validation, its
adapter (``CloudAdapter``) and its connector client. The app writes no part of the Bot
Framework protocol itself.

- Inbound (``POST /api/messages``): the route checks the bearer token with the SDK's
  ``JwtTokenValidator`` (against the Bot Framework's signing keys), then hands the
  activity to ``CloudAdapter.process_request`` through ``FunctionRequest``, an adapter
  from the Functions ``HttpRequest`` to the SDK's request protocol.
- Outbound: proactive cards go through ``CloudAdapter.continue_conversation`` with the
  conversation reference captured when the user installed the app or wrote to the bot.
- Tokens the bot needs (connector calls) come from the SDK's MSAL connection: in Azure
  the app's user-assigned managed identity, which is also the bot's app id.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from typing import Any, Optional

from microsoft_agents.activity import Activity, Attachment, ConversationReference, load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import AgentAuthConfiguration, ClaimsIdentity
from microsoft_agents.hosting.core.authorization import JwtTokenValidator

from shared_code.settings import Settings

from .teams_cards import CARD_CONTENT_TYPE

log = logging.getLogger(__name__)

# A whole proactive send (token, connector call, retries) gets this long at most.
SEND_SECONDS = 10.0


class Unauthorized(Exception):
    """The caller is not the Bot Framework (or no Teams bot is configured)."""


@dataclass(frozen=True)
class TeamsContact:
    """Where a person's Teams chat with the bot is: enough to continue it later."""
    service_url: str
    conversation_id: str
    user_id: str
    bot_id: str
    tenant_id: str = ""
    channel_id: str = "msteams"

    def to_json(self) -> dict:
        return {"serviceUrl": self.service_url, "conversation": self.conversation_id, "user": self.user_id,
                "bot": self.bot_id, "tenant": self.tenant_id, "channel": self.channel_id}

    @classmethod
    def from_json(cls, value: Any) -> Optional["TeamsContact"]:
        if not isinstance(value, dict):
            return None
        fields = [value.get(k) for k in ("serviceUrl", "conversation", "user", "bot")]
        if not all(isinstance(f, str) and f and len(f) <= 512 for f in fields):
            return None
        tenant, channel = value.get("tenant") or "", value.get("channel") or "msteams"
        return cls(*fields, tenant if isinstance(tenant, str) else "", channel if isinstance(channel, str) else "msteams")

    @classmethod
    def of(cls, activity: Activity) -> "TeamsContact":
        reference = activity.get_conversation_reference()
        tenant = activity.conversation.tenant_id or ""
        return cls(reference.service_url, reference.conversation.id, activity.from_property.id,
                   activity.recipient.id, tenant or "", str(activity.channel_id or "msteams"))

    def reference(self) -> ConversationReference:
        return ConversationReference.model_validate({
            "serviceUrl": self.service_url, "channelId": self.channel_id,
            "conversation": {"id": self.conversation_id, **({"tenantId": self.tenant_id} if self.tenant_id else {})},
            "bot": {"id": self.bot_id}, "user": {"id": self.user_id}})


@functools.lru_cache(maxsize=4)
def _connections(configuration: tuple) -> MsalConnectionManager:
    # One per configuration, so that MSAL's token cache lives across requests.
    return MsalConnectionManager(**load_configuration_from_env(dict(configuration)))


def connections(settings: Settings) -> MsalConnectionManager:
    return _connections(tuple(sorted(settings.teams_sdk_configuration().items())))


def adapter(settings: Settings) -> CloudAdapter:
    return CloudAdapter(connection_manager=connections(settings))


def auth_configuration(settings: Settings) -> AgentAuthConfiguration:
    return connections(settings).get_default_connection_configuration()


async def verified_identity(authorization: Optional[str], settings: Settings, anonymous_ok: bool) -> ClaimsIdentity:
    """The caller's claims from its bearer token, checked by the SDK's validator; a
    token-less call only where the local host allows anonymous activities. Anything else,
    a token that is no JWT included, is ``Unauthorized``."""
    if not authorization:
        if anonymous_ok:
            return ClaimsIdentity()
        raise Unauthorized("no bearer token")
    if not settings.teams_app_id:
        raise Unauthorized("no Teams bot is configured")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        raise Unauthorized("the Authorization header is not a bearer token")
    try:
        return await JwtTokenValidator(auth_configuration(settings)).validate_token(token)
    except Exception as exc:  # the validator lets PyJWT's and its own errors escape as they are
        log.warning("Teams: a bearer token was refused (%s)", type(exc).__name__)
        raise Unauthorized("the bearer token is not valid") from None


class FunctionRequest:
    """The Functions HttpRequest as the SDK's ``HttpRequestProtocol``, with the claims the
    route verified."""

    def __init__(self, body: dict, headers: dict, identity: ClaimsIdentity):
        self._body, self._headers, self._identity = body, headers, identity

    @property
    def method(self) -> str:
        return "POST"

    @property
    def headers(self) -> dict:
        return self._headers

    async def json(self) -> dict:
        return self._body

    def get_claims_identity(self) -> ClaimsIdentity:
        return self._identity

    def get_path_param(self, name: str) -> str:
        return ""


def card_activity(card: dict) -> Activity:
    return Activity(type="message", attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card)])


async def send_card(settings: Settings, contact: TeamsContact, card: dict) -> str:
    """Post a card into a person's chat with the bot; the id of the message, or an
    exception. Bounded as a whole by SEND_SECONDS."""
    sent: dict = {}

    async def post(context) -> None:
        response = await context.send_activity(card_activity(card))
        sent["id"] = getattr(response, "id", "") or ""

    continuation = contact.reference().get_continuation_activity()
    if settings.teams_app_id:
        sending = adapter(settings).continue_conversation(settings.teams_app_id, continuation, post)
    else:  # a local host that takes anonymous activities (Agents Playground) is sent to without a token
        sending = adapter(settings).continue_conversation_with_claims(ClaimsIdentity(), continuation, post)
    await asyncio.wait_for(sending, SEND_SECONDS)
    return sent.get("id", "")


def member_of(value: Any) -> dict:
    """The person fields of a connector member lookup."""
    extra = getattr(value, "model_extra", None) or {}
    return {"upn": extra.get("userPrincipalName") or extra.get("email") or "",
            "email": extra.get("email") or "", "objectId": getattr(value, "aad_object_id", "") or "",
            "name": getattr(value, "name", "") or ""}


def parsed_body(raw: bytes) -> dict:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("an activity is a JSON object")
    return value
