"""The app with its reviewer channels on, pointed at local stand-ins: the Bot Framework
(token issuer, managed-identity endpoint, connector) and Slack's Web API."""
from __future__ import annotations

import pytest
from microsoft_agents.hosting.core.authorization import _entra_issuers

from devhost.testing import wait_until
from tests.support.bot_framework import BOT_ISSUER, BotFramework
from tests.support.http import call
from tests.support.slack_api import SlackApi

APP_ID = "00000000-0000-4000-8000-00000000b07e"
SLACK_SECRET = "slack-signing-secret-for-tests-0123"
SLACK_TOKEN = "xoxb-test-token-0123456789"


@pytest.fixture
def bot_framework(monkeypatch):
    with BotFramework(APP_ID) as framework:
        # The SDK fetches the Bot Framework's signing keys from a fixed address; the test
        # serves them from its own issuer instead.
        monkeypatch.setitem(_entra_issuers.BOTFRAMEWORK_JWKS_URIS, BOT_ISSUER, f"{framework.url}/v1/.well-known/keys")
        monkeypatch.setenv("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID", APP_ID)
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{framework.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "local-identity-header")
        yield framework


@pytest.fixture
def slack_api(monkeypatch):
    with SlackApi() as api:
        monkeypatch.setenv("HITL_SLACK_BOT_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("HITL_SLACK_SIGNING_SECRET", SLACK_SECRET)
        monkeypatch.setenv("HITL_SLACK_API_URL", api.url)
        yield api


def install_teams_app(base, framework, user_id, upn, conversation, name=""):
    """Alice installs the app: Teams sends the bot a conversation update; the connector
    names her when the bot asks (``name``, her display name: by default her address's
    first part, titled)."""
    framework.members[user_id] = {"id": user_id, "name": name or upn.split("@")[0].title(),
                                  "aadObjectId": f"aad-{user_id}", "userPrincipalName": upn, "email": upn}
    reply = call("POST", f"{base}/api/messages", {
        "type": "conversationUpdate", "id": "install-1", "channelId": "msteams", "serviceUrl": framework.service_url,
        "from": {"id": user_id}, "recipient": {"id": f"28:{APP_ID}"},
        "conversation": {"id": conversation, "conversationType": "personal", "tenantId": "tenant-1"},
        "membersAdded": [{"id": f"28:{APP_ID}"}]}, headers={"Authorization": f"Bearer {framework.token()}"})
    assert reply.status in (200, 202), reply.text
    wait_until(lambda: call("GET", f"{base}/runtime/webhooks/durabletask/entities/teams_contact/{upn}").status == 200)


def card_action(base, framework, user_id, conversation, verb, data, token=None):
    """Teams' invoke for a card's Action.Execute, as the Bot Framework posts it."""
    return call("POST", f"{base}/api/messages", {
        "type": "invoke", "name": "adaptiveCard/action", "id": f"invoke-{verb}", "channelId": "msteams",
        "serviceUrl": framework.service_url, "from": {"id": user_id}, "recipient": {"id": f"28:{APP_ID}"},
        "conversation": {"id": conversation, "conversationType": "personal"},
        "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}},
        headers={"Authorization": f"Bearer {token or framework.token()}"})
