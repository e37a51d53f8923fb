"""A local stand-in for Slack's Web API that records every call: the methods the app
uses answer as Slack does (``ok``, ``channel``, ``ts``, ``user``), with a directory of
users by e-mail address. Also signs interaction requests as Slack does (v0)."""
from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from slack_sdk.signature import SignatureVerifier

from .loopback import JsonHandler, LoopbackService


# A held post is answered after this long if the test never releases it.
HOLD_LIMIT_SECONDS = 20.0


class SlackApi(LoopbackService):
    def __init__(self):
        self.users: dict[str, dict] = {}   # user id -> {"email", "name"}
        self.calls: list[dict] = []        # {"method", "args", "auth"}
        self.fail: set[str] = set()        # methods that answer 500
        self.slow: dict[str, float] = {}   # methods that answer only after this many seconds
        self.held_posts: dict[str, threading.Event] = {}  # chat.postMessage to these channels waits for it
        self.errors: dict[str, str] = {}   # methods that answer ok: false with this error code
        self._lock = threading.Lock()
        self._ts = 0
        api = self

        class Handler(JsonHandler):
            def do_GET(self):
                self._answer(parse_qs(urlsplit(self.path).query))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    args = json.loads(body or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(body).items()}
                self._answer(args if isinstance(args, dict) else {})

            def _answer(self, args):
                args = {k: (v[0] if isinstance(v, list) and len(v) == 1 and isinstance(v[0], str) else v)
                        for k, v in args.items()}
                method = urlsplit(self.path).path.rsplit("/", 1)[-1]
                with api._lock:
                    api.calls.append({"method": method, "args": args, "auth": self.headers.get("Authorization")})
                time.sleep(api.slow.get(method, 0))
                held = api.held_posts.get(str(args.get("channel"))) if method == "chat.postMessage" else None
                if held is not None:
                    held.wait(HOLD_LIMIT_SECONDS)
                if method in api.fail:
                    return self._json({"ok": False, "error": "internal_error"}, 500)
                if method in api.errors:
                    return self._json({"ok": False, "error": api.errors[method]})
                self._json(api.reply(method, args))

        self._serve(Handler)

    def reply(self, method: str, args: dict) -> dict:
        if method == "users.lookupByEmail":
            found = next((uid for uid, u in self.users.items() if u["email"] == args.get("email")), None)
            return {"ok": True, "user": {"id": found}} if found else {"ok": False, "error": "users_not_found"}
        if method == "users.info":
            user = self.users.get(args.get("user"))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            profile = {"email": user["email"], **({"real_name": user["name"]} if "name" in user else {})}
            return {"ok": True, "user": {"id": args.get("user"), "profile": profile}}
        if method == "chat.postMessage":
            with self._lock:
                self._ts += 1
                ts = f"1700000000.{self._ts:06d}"
            channel = args.get("channel")
            return {"ok": True, "channel": f"D{channel}" if str(channel).startswith("U") else channel, "ts": ts}
        return {"ok": True}

    @property
    def url(self) -> str:
        return f"{self.origin}/api"

    def calls_of(self, method: str) -> list[dict]:
        return [c["args"] for c in self.calls if c["method"] == method]



def signed_interaction(payload: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, dict]:
    """A body and headers as Slack posts an interaction to the app's URL."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": signature}
