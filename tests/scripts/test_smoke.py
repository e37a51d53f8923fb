"""scripts/smoke.py, the check a user runs after `azd up`, run against the devhost.

A working app must pass every step. To prove each step can fail, the script also runs
through ``Proxy``, which forwards to the served app and breaks one reply at a time (or
demands a function key, as Azure does); every broken reply must fail its own step, with a
non-zero exit and no traceback.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"
KEY = "smoke-key-7f3a9c"

# (method, path, status, body) -> a replacement (status, body, content type), or None
Rewrite = Callable[[str, str, int, bytes], Optional[tuple]]


def run_smoke(*args, timeout="20", **env):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120, env={"SMOKE_TIMEOUT_SECONDS": timeout, "PATH": "/usr/bin:/bin", **env})


def smoke_module():
    spec = importlib.util.spec_from_file_location("smoke_script", SCRIPT)
    module = sys.modules["smoke_script"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Proxy:
    """Forwards to ``upstream``; ``rewrite`` may replace a reply, ``key`` is then required."""

    def __init__(self, upstream: str, rewrite: Optional[Rewrite] = None, key: str = "",
                 drip_path: str = ""):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.handle(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.upstream, self.rewrite, self.key, self.drip_path = upstream, rewrite, key, drip_path
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        keyed = path != "/api/health" and not path.startswith("/api/hitl/review/")
        if self.key and keyed and handler.headers.get("x-functions-key") != self.key:
            return self._answer(handler, 401, b"", "text/plain")
        if self.drip_path and path.startswith(self.drip_path):
            return self._drip(handler)
        length = int(handler.headers.get("Content-Length") or 0)
        data = handler.rfile.read(length) if length else None
        request = urllib.request.Request(self.upstream + handler.path, data=data, method=handler.command,
                                         headers={"Content-Type": handler.headers.get("Content-Type", "")})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, body, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        replaced = self.rewrite(handler.command, path, status, body) if self.rewrite else None
        self._answer(handler, *(replaced or (status, body, kind)))

    @staticmethod
    def _answer(handler, status: int, body: bytes, kind: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _drip(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(served_host):
    started = []

    def start(**options) -> Proxy:
        started.append(Proxy(served_host.base_url, **options))
        return started[-1]

    yield start
    for each in started:
        each.close()


def json_reply(status: int, value) -> tuple:
    return status, json.dumps(value).encode(), "application/json"


def status_rewrite(change: Callable[[dict], None]) -> Rewrite:
    """Change the status of the smoke test's review (not the unknown-id probe)."""
    def rewrite(method, path, status, body):
        if path.startswith("/api/hitl/status/review-2") and status == 200:
            value = json.loads(body)
            change(value)
            return json_reply(200, value)
        return None
    return rewrite


def outcome(result) -> tuple[list[str], list[str]]:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    return [line for line in lines if line.startswith("FAIL  ")], lines


# -- a working app -------------------------------------------------------------------------

def test_the_walk_through_passes_against_a_working_app(served_host):
    result = run_smoke(served_host.base_url)
    failures, lines = outcome(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert failures == []
    assert [line.split("  ", 1)[0] for line in lines[:-1]] == ["PASS"] * 10
    for step in ("draft of round 2 for that feedback", "stale decision gets 409",
                 "review page with its signed link", "published", "unknown id gets 404"):
        assert any(line.startswith(f"PASS  {step}") for line in lines), step
    assert lines[-1].startswith("OK: 10 passed; review ")


def test_a_deployment_that_demands_a_key_passes_with_it_and_never_prints_it(proxy):
    guarded = proxy(key=KEY)
    with_key = run_smoke(guarded.url + "/api/", HITL_FUNCTION_KEY=KEY)
    assert with_key.returncode == 0, with_key.stdout
    without = run_smoke(guarded.url)
    wrong = run_smoke(guarded.url, "not-the-key")
    for result in (without, wrong):
        failures, _ = outcome(result)
        assert result.returncode == 1
        assert failures == ["FAIL  start a review: answered 401: the function key was refused or not "
                            "given: set HITL_FUNCTION_KEY to the app's default host key (see --help)"]
    for result in (with_key, without, wrong):
        assert KEY not in result.stdout + result.stderr


# -- each step fails when its reply is wrong --------------------------------------------

def stale_decision_accepted(method, path, status, body):
    if method == "POST" and path.startswith("/api/hitl/approve/") and status == 409:
        return json_reply(200, {"message": "applied"})
    return None


def unknown_id_found(method, path, status, body):
    if path == "/api/hitl/status/review-smoke-test-no-such-id":
        return json_reply(200, {"runtimeStatus": "Running"})
    return None


def health_is_a_web_page(method, path, status, body):
    if path == "/api/health":
        return 200, b"<html>Your app is up</html>", "text/html"
    return None


def status_is_a_web_page(method, path, status, body):
    if path.startswith("/api/hitl/status/review-2"):
        return 200, b"<html>Sign in</html>", "text/html"
    return None


def pending_without_items(method, path, status, body):
    if path == "/api/hitl/pending":
        return json_reply(200, {"value": []})
    return None


def forget_feedback(value: dict) -> None:
    for decision in value["customStatus"].get("decisions") or []:
        decision["feedback"] = "something else"


def published_after_one_round(value: dict) -> None:
    if value.get("runtimeStatus") == "Completed":
        value["output"]["rounds"] = 1


@pytest.mark.parametrize("rewrite, failed_step, reason", [
    (health_is_a_web_page, "health", "not with this app's health reply"),
    (status_is_a_web_page, "draft of round 1", "the status is not a JSON object"),
    (status_rewrite(forget_feedback), "draft of round 2 for that feedback",
     "round 2 is not recorded as written for the feedback sent"),
    (stale_decision_accepted, "stale decision gets 409", "answered 200, not 409"),
    (pending_without_items, "review page with its signed link", "has no items list"),
    (status_rewrite(published_after_one_round), "published", "completed, but not after 2 rounds"),
    (unknown_id_found, "unknown id gets 404", "answered 200, not 404"),
], ids=lambda value: value if isinstance(value, str) and " " not in value else None)
def test_each_wrong_reply_fails_its_step(proxy, rewrite, failed_step, reason):
    result = run_smoke(proxy(rewrite=rewrite).url, timeout="30")
    failures, lines = outcome(result)
    assert result.returncode == 1, result.stdout
    assert len(failures) == 1 and failures[0].startswith(f"FAIL  {failed_step}: "), result.stdout
    assert reason in failures[0]
    assert lines[-1].startswith(f"FAILED: {failed_step}")


def test_a_review_left_waiting_by_a_failed_step_is_cancelled(proxy, served_host):
    result = run_smoke(proxy(rewrite=status_rewrite(forget_feedback)).url)
    _, lines = outcome(result)
    assert "stopping: the steps after 'draft of round 2 for that feedback' need it" in lines
    instance_id = lines[-1].rsplit(" ", 1)[1]
    assert f"note: review {instance_id} cancelled (200)" in lines
    status = json.loads(urllib.request.urlopen(f"{served_host.base_url}/api/hitl/status/{instance_id}").read())
    assert status["customStatus"]["cancel"]["reason"] == "smoke test stopped"


def test_a_broken_writer_fails_with_the_reason(served_host, monkeypatch):
    monkeypatch.setenv("HITL_WRITER", "openai")  # and no model configured: the writer fails
    result = run_smoke(served_host.base_url)
    failures, lines = outcome(result)
    assert result.returncode == 1
    assert failures[0].startswith("FAIL  draft of round 1: the review ended Failed")
    assert "no writer configured" in failures[0]
    assert "stopping: the steps after 'draft of round 1' need it" in lines


def test_a_link_that_cannot_be_opened_fails_without_printing_its_token(served_host, monkeypatch):
    monkeypatch.setenv("HITL_PUBLIC_BASE_URL", "http://127.0.0.1:9")
    result = run_smoke(served_host.base_url)
    failures, _ = outcome(result)
    assert [f.split(":", 1)[0] for f in failures] == ["FAIL  review page with its signed link"]
    assert "?(hidden)" in failures[0] and "token" not in result.stdout


def test_review_links_switched_off_are_skipped_locally_and_fail_elsewhere(proxy, served_host, monkeypatch):
    monkeypatch.delenv("HITL_REVIEW_SIGNING_KEY")
    monkeypatch.setenv("HITL_DEV_INSECURE_LINKS", "0")  # else a local host uses the development key
    local = run_smoke(served_host.base_url)
    _, lines = outcome(local)
    assert local.returncode == 0
    assert any(line.startswith("SKIP  review page with its signed link: review links are disabled")
               for line in lines)
    assert lines[-1].startswith("OK: 9 passed, 1 skipped")
    # The same answer from a deployment (a host that is not this machine) is a failure.
    smoke = smoke_module()
    check = smoke.Smoke(smoke.Api(served_host.base_url, "", smoke.Deadline(30)), loopback=False,
                        out=open("/dev/null", "w"))
    assert check.step("start a review", check.start)
    assert check.step("draft", check.first_draft)
    assert not check.step("review page", check.review_page)
    assert check.failed == ["review page"]


def test_nothing_listening_stops_after_health():
    result = run_smoke("http://127.0.0.1:9", timeout="1")
    failures, lines = outcome(result)
    assert result.returncode == 1
    assert failures[0].startswith("FAIL  health: GET http://127.0.0.1:9/api/health did not answer")
    assert "stopping: the steps after 'health' need it" in lines


def test_a_host_that_drips_its_reply_is_given_up_on_in_time(proxy):
    dripping = proxy(drip_path="/api/hitl/status/")
    started = time.monotonic()
    result = run_smoke(dripping.url, timeout="3")
    failures, _ = outcome(result)
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert failures[0].startswith("FAIL  draft of round 1: GET ") and "did not answer within" in failures[0]


@pytest.mark.parametrize("args, env, message", [
    ((), {}, "usage: python3 scripts/smoke.py BASE_URL [FUNCTION_KEY]"),
    (("127.0.0.1:7071",), {}, "BASE_URL must start with http:// or https://"),
    (("http://[::1",), {}, "BASE_URL is not a valid URL"),
    (("http://localhost:7071/api?code=abc",), {}, "must not carry a query"),
    (("http://localhost:7071",), {"SMOKE_TIMEOUT_SECONDS": "5m"}, "SMOKE_TIMEOUT_SECONDS must be a number"),
])
def test_usage_errors_exit_2_with_the_reason(args, env, message):
    result = run_smoke(*args, **env)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
