"""A local stand-in for the Bot Framework, speaking its real protocols over HTTP:

- an OpenID issuer: metadata and signing keys (JWKS) at the Bot Framework's paths, and
  real RS256 tokens as the Bot Framework signs them for a bot;
- App Service's managed-identity endpoint (IDENTITY_ENDPOINT, api-version 2019-08-01),
  which MSAL calls for the bot's own tokens;
- the connector at a ``serviceUrl``: member look-ups, and the activities a bot posts.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .loopback import JsonHandler, LoopbackService

BOT_ISSUER = "https://api.botframework.com"
KEY_ID = "local-key-1"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class BotFramework(LoopbackService):
    def __init__(self, app_id: str):
        self.app_id = app_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.members: dict[str, dict] = {}          # user id -> member JSON
        self.sent: list[dict] = []                  # activities the bot posted
        self.token_requests: list[dict] = []        # managed-identity requests
        self.connector_auth: list[str] = []         # Authorization headers on connector calls
        self.slow_seconds = 0.0                     # how long the connector takes to take a post
        self.refused: set[str] = set()              # conversations whose posts get 503
        self._lock = threading.Lock()
        framework = self

        class Handler(JsonHandler):
            def do_GET(self):
                path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
                if path == "/v1/.well-known/openidconfiguration":
                    return self._json({"issuer": BOT_ISSUER, "jwks_uri": f"{framework.url}/v1/.well-known/keys",
                                       "id_token_signing_alg_values_supported": ["RS256"]})
                if path == "/v1/.well-known/keys":
                    return self._json({"keys": [framework.jwk()]})
                if path == "/msi/token":
                    with framework._lock:
                        framework.token_requests.append({k: v[0] for k, v in query.items()})
                    token = framework.token(audience=query.get("resource", [""])[0], expires_in=3600)
                    return self._json({"access_token": token, "expires_on": str(int(time.time()) + 3600),
                                       "resource": query.get("resource", [""])[0], "token_type": "Bearer"})
                member = re.fullmatch(r"/v3/conversations/([^/]+)/members/([^/]+)", path)
                if member:
                    framework._record_auth(self)
                    found = framework.members.get(member.group(2))
                    return self._json(found) if found else self._json({"error": {"code": "NotFound"}}, 404)
                self._json({"error": "unknown path"}, 404)

            def do_POST(self):
                path = urlsplit(self.path).path
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                post = re.fullmatch(r"/v3/conversations/([^/]+)/activities(/[^/]+)?", path)
                if post:
                    time.sleep(framework.slow_seconds)
                    framework._record_auth(self)
                    if post.group(1) in framework.refused:
                        return self._json({"error": {"code": "ServiceError", "message": "unavailable"}}, 503)
                    with framework._lock:
                        framework.sent.append({"path": path, "activity": body})
                    return self._json({"id": f"activity-{uuid.uuid4().hex[:8]}"})
                self._json({"error": "unknown path"}, 404)

        self._serve(Handler)

    @property
    def url(self) -> str:
        return self.origin

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    def jwk(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": KEY_ID, "alg": "RS256", "n": _b64(numbers.n), "e": _b64(numbers.e),
                "endorsements": ["msteams"]}

    def token(self, audience: str | None = None, issuer: str = BOT_ISSUER, expires_in: int = 600,
              key=None, kid: str = KEY_ID, tenant: str | None = None) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": self.app_id if audience is None else audience, "iat": now - 5,
                  "nbf": now - 5, "exp": now + expires_in, "serviceurl": self.service_url,
                  **({"tid": tenant} if tenant else {})}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def cards(self) -> list[dict]:
        """The Adaptive Cards the bot posted, newest last, with the conversation they went to."""
        found = []
        for item in self.sent:
            for attachment in item["activity"].get("attachments") or []:
                if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                    found.append({"conversation": item["path"].split("/")[3], "card": attachment["content"]})
        return found

    def _record_auth(self, handler) -> None:
        with self._lock:
            self.connector_auth.append(handler.headers.get("Authorization") or "")

