"""Who may call the channels' endpoints: the Bot Framework's signed tokens (checked by the
Agents SDK) and Slack's signed requests (checked by slack_sdk). Everything else is 401 and
changes nothing."""
from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from microsoft_agents.hosting.core.authorization import _entra_issuers

from devhost.testing import wait_until
from tests.support.http import call
from tests.support.slack_api import signed_interaction

from .conftest import APP_ID, SLACK_SECRET, install_teams_app
from .test_two_way_decisions import button, click, slack_message_to, start, status

INSTALL = {"type": "conversationUpdate", "id": "x", "channelId": "msteams",
           "from": {"id": "29:mallory"}, "recipient": {"id": f"28:{APP_ID}"},
           "conversation": {"id": "a:mallory", "conversationType": "personal"}, "membersAdded": [{"id": "29:mallory"}]}


def bad_tokens(framework):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"no token": None, "not a JWT": "Bearer not-a-jwt", "not bearer": f"Basic {framework.token()}",
            "another audience": f"Bearer {framework.token(audience='another-bot')}",
            "signed by another key": f"Bearer {framework.token(key=other_key)}",
            "an unknown key id": f"Bearer {framework.token(kid='someone-elses-key')}",
            "expired": f"Bearer {framework.token(expires_in=-900)}",
            "two words": f"Bearer {framework.token()} extra"}


def test_bad_bot_tokens_get_401_and_change_nothing(served_host, bot_framework):
    base = served_host.base_url
    for case, header in bad_tokens(bot_framework).items():
        reply = call("POST", f"{base}/api/messages", {**INSTALL, "serviceUrl": bot_framework.service_url},
                     headers={"Authorization": header} if header else {})
        assert reply.status == 401, (case, reply.status, reply.text)
        assert "Traceback" not in reply.text
    assert call("GET", f"{base}/runtime/webhooks/durabletask/entities/teams_contact/mallory@contoso.com").status == 404
    assert bot_framework.sent == []


TENANT = "0c0ffee0-0000-4000-8000-00000000000a"
OTHER_TENANT = "0badc0de-0000-4000-8000-00000000000b"


def test_a_token_from_an_issuer_the_bot_does_not_trust_gets_401_and_changes_nothing(served_host, bot_framework,
                                                                                     monkeypatch):
    base = served_host.base_url
    monkeypatch.setenv("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID", TENANT)
    untrusted = {"US Government's Bot Framework": ("https://api.botframework.us", None),
                 "another tenant, v1": (f"https://sts.windows.net/{OTHER_TENANT}/", OTHER_TENANT),
                 "another tenant, v2": (f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", OTHER_TENANT),
                 "no Microsoft issuer": ("https://issuer.example/", None)}
    trusted = {"the tenant, v1": (f"https://sts.windows.net/{TENANT}/", TENANT),
               "the tenant, v2": (f"https://login.microsoftonline.com/{TENANT}/v2.0", TENANT)}
    for issuer, _ in [*untrusted.values(), *trusted.values()]:
        # The SDK fetches signing keys by issuer; here every issuer's are the stand-in's,
        # so each token below is validly signed for this bot and only its issuer differs.
        monkeypatch.setitem(_entra_issuers.BOTFRAMEWORK_JWKS_URIS, issuer, f"{bot_framework.url}/v1/.well-known/keys")
    for case, (issuer, tenant) in untrusted.items():
        reply = call("POST", f"{base}/api/messages", {**INSTALL, "serviceUrl": bot_framework.service_url},
                     headers={"Authorization": f"Bearer {bot_framework.token(issuer=issuer, tenant=tenant)}"})
        assert reply.status == 401, (case, reply.status, reply.text)
    assert call("GET", f"{base}/runtime/webhooks/durabletask/entities/teams_contact/mallory@contoso.com").status == 404
    assert bot_framework.sent == [] and bot_framework.connector_auth == []
    bot_framework.members["29:mallory"] = {"id": "29:mallory", "userPrincipalName": "mallory@contoso.com"}
    for case, (issuer, tenant) in trusted.items():
        reply = call("POST", f"{base}/api/messages", {**INSTALL, "serviceUrl": bot_framework.service_url},
                     headers={"Authorization": f"Bearer {bot_framework.token(issuer=issuer, tenant=tenant)}"})
        assert reply.status in (200, 202), (case, reply.status, reply.text)


def test_without_a_bot_app_id_teams_is_off_and_nobody_gets_in(served_host, bot_framework, monkeypatch):
    monkeypatch.delenv("CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID")
    reply = call("POST", f"{served_host.base_url}/api/messages", {**INSTALL, "serviceUrl": bot_framework.service_url},
                 headers={"Authorization": f"Bearer {bot_framework.token()}"})
    assert reply.status == 401 and "not configured" in reply.json["error"]


def test_a_good_token_with_a_body_that_is_no_activity_gets_400(served_host, bot_framework):
    for body in ({"type": 5}, {"text": "no type, no conversation"}):
        reply = call("POST", f"{served_host.base_url}/api/messages", body,
                     headers={"Authorization": f"Bearer {bot_framework.token()}"})
        assert 400 <= reply.status < 500, (body, reply.status, reply.text)


def test_anonymous_activities_only_where_the_local_host_allows_them(served_host, bot_framework, monkeypatch):
    base = served_host.base_url
    monkeypatch.setenv("HITL_TEAMS_ALLOW_ANONYMOUS", "true")
    bot_framework.members["29:pat"] = {"id": "29:pat", "userPrincipalName": "pat@contoso.com", "aadObjectId": "p"}
    reply = call("POST", f"{base}/api/messages", {**INSTALL, "from": {"id": "29:pat"},
                                                  "serviceUrl": bot_framework.service_url})
    assert reply.status in (200, 202), reply.text
    wait_until(lambda: call("GET", f"{base}/runtime/webhooks/durabletask/entities/teams_contact/pat@contoso.com")
             .status == 200)
    monkeypatch.setenv("WEBSITE_HOSTNAME", "my-app.azurewebsites.net")
    from shared_code.settings import ConfigurationError, load_settings
    with pytest.raises(ConfigurationError, match="local host only"):
        load_settings()


def test_a_teams_click_by_someone_who_fills_no_seat_is_refused_on_the_card(served_host, bot_framework):
    base = served_host.base_url
    install_teams_app(base, bot_framework, "29:alice", "alice@contoso.com", "a:alice-chat")
    bot_framework.members["29:mallory"] = {"id": "29:mallory", "userPrincipalName": "mallory@contoso.com"}
    instance_id = start(base, {"stages": [{"name": "editor", "reviewers": ["user:alice@contoso.com"]}]})
    card = wait_until(lambda: next(iter(bot_framework.cards()), None))
    data = next(a for a in card["card"]["actions"] if a.get("verb") == "approve")["data"]
    from .conftest import card_action
    refused = card_action(base, bot_framework, "29:mallory", "a:mallory-chat", "approve", data)
    assert refused.status == 200
    assert "Not taken" in str(refused.json["value"]) and "mallory@contoso.com" in str(refused.json["value"])
    rejected = card_action(base, bot_framework, "29:alice", "a:alice-chat", "reject", data)
    assert "Write feedback" in str(rejected.json["value"])
    assert status(base, instance_id)["customStatus"]["decisions"] == []


@pytest.fixture
def waiting_for_bob(served_host, slack_api):
    slack_api.users["U0BOB"] = {"email": "bob@contoso.com"}
    instance_id = start(served_host.base_url, {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com"]}]})
    value = button(slack_message_to(slack_api, "U0BOB"), "hitl_approve")["value"]
    return served_host.base_url, instance_id, value


def test_forged_expired_and_replayed_slack_requests_get_401_and_change_nothing(waiting_for_bob, slack_api):
    base, instance_id, value = waiting_for_bob
    payload = {"type": "block_actions", "user": {"id": "U0BOB"},
               "container": {"channel_id": "DU0BOB", "message_ts": "1"},
               "actions": [{"action_id": "hitl_approve", "value": value}]}
    forged = click(base, "U0BOB", "hitl_approve", value, secret="not-the-signing-secret")
    assert forged.status == 401
    body, headers = signed_interaction(payload, SLACK_SECRET, timestamp=int(time.time()) - 6 * 60)
    assert call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers).status == 401
    body, headers = signed_interaction(payload, SLACK_SECRET)
    unsigned = {k: v for k, v in headers.items() if k != "X-Slack-Signature"}
    assert call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=unsigned).status == 401
    bad_stamp = {**headers, "X-Slack-Request-Timestamp": "soon"}
    assert call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=bad_stamp).status == 401
    tampered = body.replace(b"U0BOB", b"U0EVE")
    assert call("POST", f"{base}/api/hitl/slack/interactions", raw=tampered, headers=headers).status == 401
    assert status(base, instance_id)["customStatus"]["decisions"] == []
    assert call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers).status == 200
    replayed = call("POST", f"{base}/api/hitl/slack/interactions", raw=body, headers=headers)
    assert replayed.status == 401 and "already received" in replayed.json["error"]
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert len(done["output"]["decisions"]) == 1


def test_slack_is_off_without_its_token(served_host):
    reply = call("POST", f"{served_host.base_url}/api/hitl/slack/interactions", raw=b"payload=%7B%7D",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 401
