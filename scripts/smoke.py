#!/usr/bin/env python3
"""Check a deployment end to end: python3 scripts/smoke.py BASE_URL [FUNCTION_KEY]

Runs the README's walk-through against the app at BASE_URL (for example the URL `azd up`
printed, or http://localhost:7071): start a review, wait for the draft, reject it with
feedback, wait for round 2, check that a stale decision gets 409, open the review page
with its signed link, approve round 2 and wait for the publication; an unknown id must
get 404. Each step prints PASS or FAIL with what it saw; the exit code is the number of
failed steps (0: the deployment works). Only the standard library is used.

FUNCTION_KEY (or the HITL_FUNCTION_KEY environment variable) is sent as x-functions-key;
a local host needs none. SMOKE_TIMEOUT_SECONDS (default 300) bounds each wait, long
enough for a real model to write a draft.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

TOPIC = "Smoke test: durable timers in Azure Functions"


class StepFailed(Exception):
    pass


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict


class Api:
    def __init__(self, base_url: str, key: str = ""):
        self.base = base_url.rstrip("/")
        self.key = key
        # Calls go straight to the app, never through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None, keyed: bool = True) -> Reply:
        url = path if path.startswith("http") else f"{self.base}{path}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if keyed and self.key:
            headers["x-functions-key"] = self.key
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=60) as response:
                return Reply(response.status, _decoded(response.read()), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, _decoded(error.read()), dict(error.headers))
        except (urllib.error.URLError, OSError) as error:
            raise StepFailed(f"{method} {url} did not answer: {getattr(error, 'reason', error)}") from None


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


class Smoke:
    def __init__(self, api: Api, timeout: float, out=sys.stdout):
        self.api, self.timeout, self.out = api, timeout, out
        self.failures = 0
        self.instance_id = ""

    def step(self, name: str, check: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = check()
            print(f"PASS  {name} ({time.monotonic() - started:.1f} s){': ' + detail if detail else ''}",
                  file=self.out, flush=True)
            return True
        except StepFailed as exc:
            self.failures += 1
            print(f"FAIL  {name}: {exc}", file=self.out, flush=True)
            return False

    def wait_for(self, what: str, check: Callable[[dict], bool]) -> dict:
        deadline, last = time.monotonic() + self.timeout, None
        while time.monotonic() < deadline:
            last = self.status()
            if check(last):
                return last
            if last.get("runtimeStatus") in ("Failed", "Terminated"):
                raise StepFailed(f"the review ended {last['runtimeStatus']}: {last.get('error')}")
            time.sleep(1)
        raise StepFailed(f"no {what} within {self.timeout:g} s; last status: {_brief(last)}")

    def status(self) -> dict:
        reply = self.api.call("GET", f"/api/hitl/status/{self.instance_id}")
        if reply.status != 200:
            raise StepFailed(f"status answered {reply.status}: {_brief(reply.body)}")
        return reply.body

    def awaiting(self, round_: int) -> Callable[[dict], bool]:
        return lambda s: (s["customStatus"].get("stage") in ("awaiting_review", "escalated")
                          and s["customStatus"].get("round") == round_)

    # -- the steps ---------------------------------------------------------------------

    def health(self) -> str:
        reply = self.api.call("GET", "/api/health", keyed=False)
        if reply.status != 200:
            raise StepFailed(f"answered {reply.status}: {_brief(reply.body)}")
        return ""

    def start(self) -> str:
        reply = self.api.call("POST", "/api/hitl/run", {"topic": TOPIC, "max_review_attempts": 3})
        if reply.status != 202 or not isinstance(reply.body, dict) or "instanceId" not in reply.body:
            raise StepFailed(f"answered {reply.status}: {_brief(reply.body)}")
        self.instance_id = reply.body["instanceId"]
        return self.instance_id

    def first_draft(self) -> str:
        status = self.wait_for("draft for round 1", self.awaiting(1))
        return repr(status["customStatus"]["draft"]["title"])

    def decide(self, body: dict) -> Reply:
        return self.api.call("POST", f"/api/hitl/approve/{self.instance_id}", body)

    def reject_round_one(self) -> str:
        reply = self.decide({"approved": False, "round": 1, "feedback": "Add one worked example."})
        if reply.status == 202:  # delivered, not applied yet: the status will show it
            self.wait_for("recorded rejection", lambda s: any(d.get("round") == 1 for d in
                                                               s["customStatus"].get("decisions", [])))
        elif reply.status != 200:
            raise StepFailed(f"answered {reply.status}: {_brief(reply.body)}")
        return ""

    def second_draft(self) -> str:
        status = self.wait_for("draft for round 2", self.awaiting(2))
        return repr(status["customStatus"]["draft"]["title"])

    def stale_decision(self) -> str:
        reply = self.decide({"approved": True, "round": 1})
        if reply.status != 409:
            raise StepFailed(f"a decision for round 1 while round 2 waits answered {reply.status}, "
                             f"not 409: {_brief(reply.body)}")
        return reply.body.get("error", "") if isinstance(reply.body, dict) else ""

    def review_page(self) -> str:
        link = self._review_link()
        if link is None:
            return "skipped: review links are disabled (HITL_REVIEW_SIGNING_KEY is not set)"
        page = self.api.call("GET", link, keyed=False)
        content_type = page.headers.get("Content-Type", "")
        if page.status != 200 or not content_type.startswith("text/html"):
            raise StepFailed(f"the signed link answered {page.status} ({content_type})")
        state = self.api.call("GET", link.replace("?token=", "/state?token=", 1), keyed=False)
        if state.status != 200 or state.body.get("round") != 2 or not state.body.get("canDecide"):
            raise StepFailed(f"the page's state answered {state.status}: {_brief(state.body)}")
        return ""

    def _review_link(self) -> Optional[str]:
        token = ""
        for _ in range(50):  # pages of the reviews waiting for a decision
            query = f"?top=100&continuation={token}" if token else "?top=100"
            reply = self.api.call("GET", f"/api/hitl/pending{query}")
            if reply.status != 200:
                raise StepFailed(f"/api/hitl/pending answered {reply.status}: {_brief(reply.body)}")
            for item in reply.body["items"]:
                if item["instanceId"] == self.instance_id:
                    return item.get("reviewUrl")
            token = reply.body.get("continuation")
            if not token:
                break
        raise StepFailed("the review is not in /api/hitl/pending")

    def approve_round_two(self) -> str:
        reply = self.decide({"approved": True, "round": 2})
        if reply.status not in (200, 202):
            raise StepFailed(f"answered {reply.status}: {_brief(reply.body)}")
        return ""

    def published(self) -> str:
        status = self.wait_for("publication", lambda s: s["runtimeStatus"] == "Completed")
        output = status.get("output") or {}
        if output.get("rounds") != 2:
            raise StepFailed(f"completed with {_brief(output)}")
        return f"published after {output['rounds']} rounds"

    def unknown_id(self) -> str:
        reply = self.api.call("GET", "/api/hitl/status/review-smoke-test-no-such-id")
        if reply.status != 404:
            raise StepFailed(f"answered {reply.status}, not 404")
        return ""

    def run(self) -> int:
        steps = [("health", self.health), ("start a review", self.start),
                 ("draft of round 1", self.first_draft), ("reject round 1 with feedback", self.reject_round_one),
                 ("draft of round 2", self.second_draft), ("stale decision gets 409", self.stale_decision),
                 ("review page with its signed link", self.review_page),
                 ("approve round 2", self.approve_round_two), ("published", self.published),
                 ("unknown id gets 404", self.unknown_id)]
        dependent = {"start a review", "draft of round 1", "reject round 1 with feedback", "draft of round 2"}
        for name, check in steps:
            if not self.step(name, check) and name in dependent:
                print("stopping: the later steps need this one", file=self.out)
                break
        print(f"{'OK' if not self.failures else 'FAILED'}: {self.failures} step(s) failed"
              + (f"; review {self.instance_id}" if self.instance_id else ""), file=self.out)
        return self.failures


def _brief(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:297] + "..."


def main(argv: Optional[list[str]] = None, out=sys.stdout) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or len(args) > 2:
        print(__doc__.strip(), file=out)
        return 0 if args and args[0] in ("-h", "--help") else 2
    key = args[1] if len(args) > 1 else os.environ.get("HITL_FUNCTION_KEY", "")
    timeout = float(os.environ.get("SMOKE_TIMEOUT_SECONDS", "300"))
    return Smoke(Api(args[0], key), timeout, out).run()


if __name__ == "__main__":
    sys.exit(min(main(), 100))
