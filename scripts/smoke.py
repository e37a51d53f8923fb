#!/usr/bin/env python3
"""Check a deployment end to end: python3 scripts/smoke.py BASE_URL [FUNCTION_KEY]

Runs the README's walk-through against the app at BASE_URL (the URL `azd up` printed, or
http://localhost:7071): start a review, wait for the draft, reject it with feedback, wait
for round 2 and check it was written for that feedback, check that a stale decision gets
409, open the review page with the signed link from /api/hitl/pending, approve round 2 and
wait for the publication; an unknown id must get 404. Each step prints PASS, FAIL or SKIP
with what it saw. Only the standard library is used.

The function key: the HITL_FUNCTION_KEY environment variable (which keeps it out of shell
history and process lists), or the second argument. It is sent as x-functions-key and never printed. Use the
app's default host key: a key of one function would be refused by the others. A local host
needs none.

SMOKE_TIMEOUT_SECONDS (default 600) bounds the whole check, calls and waits together: long
enough for a real model to write two drafts. Each call gets at most 60 s of it.

Exit code: 0 when every step passed (a review page skipped on a local host without review
links counts as passed), 1 when a step failed, 2 for a usage error. The check creates one
review with a one-hour deadline, sends the reviewer its notifications like any review, and
cancels it if a step fails before the approval.
"""
from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

TOPIC = "Smoke test: durable timers in Azure Functions"
FEEDBACK = "Add one worked example."
DEFAULT_TIMEOUT_SECONDS = 600.0
CALL_SECONDS = 60.0
MAX_REPLY_BYTES = 4 * 1024 * 1024
POLL_SECONDS = 1.0
KEY_HINT = ("the function key was refused or not given: set HITL_FUNCTION_KEY to the app's "
            "default host key (see --help)")


class StepFailed(Exception):
    pass


class StepSkipped(Exception):
    pass


class UsageError(Exception):
    pass


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()


def shown(url: str) -> str:
    """A URL fit to print: without its query, which may carry a review token."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(query="(hidden)" if parts.query else "", fragment=""))


class Api:
    def __init__(self, base_url: str, key: str, deadline: Deadline):
        self.base, self.key, self.deadline = base_url, key, deadline
        # Calls go straight to the app, never through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None, keyed: bool = True) -> Reply:
        url = path if path.startswith(("http://", "https://")) else f"{self.base}{path}"
        limit = min(CALL_SECONDS, self.deadline.left())
        if limit <= 0:
            raise StepFailed(f"out of time: SMOKE_TIMEOUT_SECONDS={self.deadline.seconds:g} has passed")
        outcome: dict = {}

        def send() -> None:
            try:
                outcome["reply"] = self._send(method, url, body, keyed, limit)
            except BaseException as exc:  # handed to the calling thread, which reports it
                outcome["error"] = exc

        # A thread bounds the whole call: a socket timeout bounds each read only, and a
        # host that drips its reply a byte at a time would never time out.
        worker = threading.Thread(target=send, daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            raise StepFailed(f"{method} {shown(url)} did not answer within {limit:.0f} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["reply"]

    def _send(self, method: str, url: str, body: Any, keyed: bool, limit: float) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if keyed and self.key:
            headers["x-functions-key"] = self.key
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=limit) as response:
                return Reply(response.status, _decoded(_bounded_read(response)), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, _decoded(_bounded_read(error)), dict(error.headers))
        except (urllib.error.URLError, OSError) as error:
            raise StepFailed(f"{method} {shown(url)} did not answer: "
                             f"{getattr(error, 'reason', error)}") from None


def _bounded_read(response) -> bytes:
    raw = response.read(MAX_REPLY_BYTES + 1)
    if len(raw) > MAX_REPLY_BYTES:
        raise StepFailed(f"the reply is larger than {MAX_REPLY_BYTES // (1024 * 1024)} MB")
    return raw


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise StepFailed(f"{what} is not a JSON object: {_brief(value)}")
    return value


def _refused(reply: Reply) -> StepFailed:
    if reply.status in (401, 403):
        return StepFailed(f"answered {reply.status}: {KEY_HINT}")
    return StepFailed(f"answered {reply.status}: {_brief(reply.body)}")


class Smoke:
    def __init__(self, api: Api, loopback: bool, out=sys.stdout):
        self.api, self.loopback, self.out = api, loopback, out
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self.instance_id = ""
        self.decided = False

    def step(self, name: str, check: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = check()
        except StepSkipped as skip:
            self.skipped.append(name)
            print(f"SKIP  {name}: {skip}", file=self.out, flush=True)
            return True
        except StepFailed as exc:
            return self._fail(name, str(exc))
        except Exception as exc:  # a reply of a shape the check did not expect
            return self._fail(name, f"unexpected reply ({type(exc).__name__}: {exc})")
        took = f" ({time.monotonic() - started:.1f} s)"
        print(f"PASS  {name}{took}{': ' + detail if detail else ''}", file=self.out, flush=True)
        return True

    def _fail(self, name: str, reason: str) -> bool:
        self.failed.append(name)
        print(f"FAIL  {name}: {reason}", file=self.out, flush=True)
        return False

    def wait_for(self, what: str, check: Callable[[dict], bool]) -> dict:
        last = None
        while self.api.deadline.left() > 0:
            last = self.status()
            if check(last):
                return last
            if last.get("runtimeStatus") in ("Failed", "Terminated"):
                raise StepFailed(f"the review ended {last['runtimeStatus']}: {_brief(last.get('error'))}")
            time.sleep(min(POLL_SECONDS, max(self.api.deadline.left(), 0)))
        raise StepFailed(f"no {what} within SMOKE_TIMEOUT_SECONDS={self.api.deadline.seconds:g}; "
                         f"last status: {_brief(last)}")

    def status(self) -> dict:
        reply = self.api.call("GET", f"/api/hitl/status/{self.instance_id}")
        if reply.status != 200:
            raise _refused(reply)
        status = _object(reply.body, "the status")
        _object(status.get("customStatus") or {}, "the status's customStatus")
        return status

    @staticmethod
    def awaiting(round_: int) -> Callable[[dict], bool]:
        def check(status: dict) -> bool:
            custom = status.get("customStatus") or {}
            return custom.get("stage") in ("awaiting_review", "escalated") and custom.get("round") == round_
        return check

    # -- the steps ---------------------------------------------------------------------

    def health(self) -> str:
        reply = self.api.call("GET", "/api/health", keyed=False)
        if reply.status != 200:
            raise _refused(reply)
        if not isinstance(reply.body, dict) or reply.body.get("status") != "ok":
            raise StepFailed(f"answered 200 but not with this app's health reply, "
                             f"{{\"status\": \"ok\"}}: {_brief(reply.body)}. Is BASE_URL the function app?")
        return ""

    def start(self) -> str:
        reply = self.api.call("POST", "/api/hitl/run", {"topic": TOPIC, "max_review_attempts": 3,
                                                         "approval_timeout_hours": 1})
        if reply.status != 202:
            raise _refused(reply)
        instance_id = _object(reply.body, "the reply").get("instanceId")
        if not isinstance(instance_id, str) or not instance_id:
            raise StepFailed(f"the reply has no instanceId: {_brief(reply.body)}")
        self.instance_id = instance_id
        return instance_id

    def first_draft(self) -> str:
        return self._draft_title(self.wait_for("draft for round 1", self.awaiting(1)))

    def decide(self, body: dict) -> Reply:
        return self.api.call("POST", f"/api/hitl/approve/{self.instance_id}", body)

    def reject_round_one(self) -> str:
        reply = self.decide({"approved": False, "round": 1, "feedback": FEEDBACK})
        if reply.status not in (200, 202):  # 202: delivered, the status will show it
            raise _refused(reply)
        return ""

    def second_draft(self) -> str:
        status = self.wait_for("draft for round 2", self.awaiting(2))
        decisions = status["customStatus"].get("decisions") or []
        rejection = next((d for d in decisions if isinstance(d, dict) and d.get("round") == 1), None)
        if not rejection or rejection.get("approved") is not False or rejection.get("feedback") != FEEDBACK:
            raise StepFailed(f"round 2 is not recorded as written for the feedback sent; "
                             f"decisions: {_brief(decisions)}")
        return self._draft_title(status)

    @staticmethod
    def _draft_title(status: dict) -> str:
        draft = _object(status["customStatus"].get("draft"), "the draft")
        return repr(draft.get("title"))

    def stale_decision(self) -> str:
        reply = self.decide({"approved": True, "round": 1})
        if reply.status != 409:
            raise StepFailed(f"a decision for round 1 while round 2 waits answered {reply.status}, "
                             f"not 409: {_brief(reply.body)}")
        return str(reply.body.get("error", "")) if isinstance(reply.body, dict) else ""

    def review_page(self) -> str:
        link = self._review_link()
        if not link:
            if self.loopback:
                raise StepSkipped("review links are disabled on this local host "
                                  "(no HITL_REVIEW_SIGNING_KEY); `make run` enables them")
            raise StepFailed("review links are disabled: the app has no HITL_REVIEW_SIGNING_KEY "
                             "(on Azure, check that its Key Vault reference resolves)")
        page = self.api.call("GET", link, keyed=False)
        content_type = page.headers.get("Content-Type", "")
        if page.status != 200 or not content_type.startswith("text/html"):
            raise StepFailed(f"the signed link answered {page.status} ({content_type or 'no type'})")
        state_url = urllib.parse.urlsplit(link)
        state_url = urllib.parse.urlunsplit(state_url._replace(path=state_url.path.rstrip("/") + "/state"))
        state = self.api.call("GET", state_url, keyed=False)
        body = state.body if isinstance(state.body, dict) else {}
        if state.status != 200 or body.get("round") != 2 or not body.get("canDecide"):
            raise StepFailed(f"the page's state answered {state.status}: {_brief(state.body)}")
        return ""

    def _review_link(self) -> Optional[str]:
        token = ""
        for _ in range(50):  # pages of the reviews waiting for a decision
            query = "?" + urllib.parse.urlencode({"top": 100, **({"continuation": token} if token else {})})
            reply = self.api.call("GET", f"/api/hitl/pending{query}")
            if reply.status != 200:
                raise _refused(reply)
            page = _object(reply.body, "/api/hitl/pending's reply")
            items = page.get("items")
            if not isinstance(items, list):
                raise StepFailed(f"/api/hitl/pending's reply has no items list: {_brief(page)}")
            for item in items:
                if isinstance(item, dict) and item.get("instanceId") == self.instance_id:
                    return item.get("reviewUrl")
            token = page.get("continuation")
            if not token:
                break
        raise StepFailed("the review is not in /api/hitl/pending")

    def approve_round_two(self) -> str:
        reply = self.decide({"approved": True, "round": 2})
        if reply.status not in (200, 202):
            raise _refused(reply)
        self.decided = True
        return ""

    def published(self) -> str:
        status = self.wait_for("publication", lambda s: s.get("runtimeStatus") == "Completed")
        output = _object(status.get("output"), "the review's output")
        if output.get("rounds") != 2:
            raise StepFailed(f"completed, but not after 2 rounds: {_brief(output)}")
        return "published after 2 rounds"

    def unknown_id(self) -> str:
        reply = self.api.call("GET", "/api/hitl/status/review-smoke-test-no-such-id")
        if reply.status in (401, 403):
            raise _refused(reply)
        if reply.status != 404:
            raise StepFailed(f"answered {reply.status}, not 404: {_brief(reply.body)}")
        return ""

    def cancel_leftover(self) -> None:
        """A review left waiting by a failed step is cancelled rather than left in the inbox."""
        if not self.instance_id or self.decided:
            return
        try:
            reply = self.api.call("POST", f"/api/hitl/cancel/{self.instance_id}",
                                  {"reason": "smoke test stopped"})
            print(f"note: review {self.instance_id} cancelled ({reply.status})", file=self.out)
        except StepFailed as exc:
            print(f"note: could not cancel review {self.instance_id}: {exc}", file=self.out)

    def run(self) -> int:
        steps = [("health", self.health), ("start a review", self.start),
                 ("draft of round 1", self.first_draft), ("reject round 1 with feedback", self.reject_round_one),
                 ("draft of round 2 for that feedback", self.second_draft),
                 ("stale decision gets 409", self.stale_decision),
                 ("review page with its signed link", self.review_page),
                 ("approve round 2", self.approve_round_two), ("published", self.published),
                 ("unknown id gets 404", self.unknown_id)]
        needed_later = {"health", "start a review", "draft of round 1", "reject round 1 with feedback",
                        "draft of round 2 for that feedback"}
        for name, check in steps:
            if not self.step(name, check) and name in needed_later:
                print(f"stopping: the steps after '{name}' need it", file=self.out)
                break
        if self.failed:
            self.cancel_leftover()
            summary = f"FAILED: {', '.join(self.failed)}"
        else:
            summary = f"OK: {len(steps) - len(self.skipped)} passed"
            summary += f", {len(self.skipped)} skipped" if self.skipped else ""
        print(summary + (f"; review {self.instance_id}" if self.instance_id else ""), file=self.out)
        return 1 if self.failed else 0


def _brief(value: Any) -> str:
    if value is None or value == "":
        return "(empty body)"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:297] + "..."


def base_url_of(text: str) -> tuple[str, bool]:
    """The app's base URL without a trailing slash or /api, and whether it is this machine."""
    try:
        parts = urllib.parse.urlsplit(text.strip())
        host, _ = parts.hostname or "", parts.port
    except ValueError as exc:
        raise UsageError(f"BASE_URL is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"BASE_URL must start with http:// or https://, got {text!r}")
    if parts.query or parts.fragment:
        raise UsageError("BASE_URL must not carry a query: give the function key in HITL_FUNCTION_KEY")
    path = parts.path.rstrip("/")
    if path.lower().endswith("/api"):
        path = path[:-4]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", "")), _is_loopback(host)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def timeout_of(env) -> float:
    text = env.get("SMOKE_TIMEOUT_SECONDS", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 86_400:
        raise UsageError(f"SMOKE_TIMEOUT_SECONDS must be a number of seconds above 0, got {text!r}")
    return seconds


def main(argv: Optional[list[str]] = None, out=sys.stdout, env=os.environ) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=out)
        return 0
    try:
        if not 1 <= len(args) <= 2:
            raise UsageError("usage: python3 scripts/smoke.py BASE_URL [FUNCTION_KEY] (see --help)")
        base, loopback = base_url_of(args[0])
        key = args[1] if len(args) > 1 else env.get("HITL_FUNCTION_KEY", "")
        timeout = timeout_of(env)
    except UsageError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 2
    return Smoke(Api(base, key, Deadline(timeout)), loopback, out).run()


if __name__ == "__main__":
    sys.exit(main())
