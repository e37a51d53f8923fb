"""check_draft against a local OpenAI-compatible server, with the real openai client: the
house rules rated pass, fail or unsure, and every way the model can fail shown as "not
checked" with a one-line reason, within the time allowed, never as an exception."""
from __future__ import annotations

import json
import time

import pytest

import activities.check_draft as check_draft_module
from activities import writer_backends
from activities.checker_backends import CHECK_RESPONSE_FORMAT, CHECKER_PROMPT
from shared_code.house_rules import NOT_CHECKED
from shared_code.settings import SETTINGS
from tests.support.fake_openai import FakeOpenAI

DEPLOYMENT = "gpt-test"
KEY = "azure-key-for-the-checker-1234"
check_draft = check_draft_module.check_draft._function.get_user_function()

DRAFT = {"title": "Tide pools", "content": "Tide pools hold 40% of the coast's life. Visit one this weekend!"}
RULES = ["no claims without a source", "under 600 words", "ends with a call to action", 'no "synergy"']


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in [spec.name for spec in SETTINGS] + ["WEBSITE_HOSTNAME", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                                    "http_proxy", "https_proxy", "all_proxy"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(writer_backends, "_clients", {})
    monkeypatch.setenv("HITL_WRITER_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("HITL_WRITER_MAX_RETRIES", "1")


@pytest.fixture
def model(monkeypatch):
    with FakeOpenAI(deployments={DEPLOYMENT}) as fake:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.url)
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", DEPLOYMENT)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
        yield fake


def check(rules=RULES, draft=DRAFT):
    return check_draft({"rules": rules, "draft": draft})


def by_rule(result):
    return {r["rule"]: (r["verdict"], r["by"]) for r in result["results"]}


def test_the_model_rates_only_the_rules_code_cannot_check(model):
    model.enqueue_verdicts([
        {"rule": 1, "verdict": "fail", "reason": "the 40% has no source", "passage": "Tide pools hold 40% of the coast's life."},
        {"rule": 2, "verdict": "pass", "reason": "ends by inviting a visit", "passage": "Visit one this weekend!"}])
    result = check()
    assert "error" not in result and result["checker"] == "azure"
    assert by_rule(result) == {"no claims without a source": ("fail", "model"), "under 600 words": ("pass", "code"),
                               "ends with a call to action": ("pass", "model"), 'no "synergy"': ("pass", "code")}
    assert result["results"][0]["passage"] == "Tide pools hold 40% of the coast's life."
    [request] = model.requests
    assert request.body["response_format"] == CHECK_RESPONSE_FORMAT and request.texts("system") == [CHECKER_PROMPT]
    users = "\n".join(request.texts("user"))
    assert "1. no claims without a source\n2. ends with a call to action" in users and DRAFT["content"] in users
    assert "under 600 words" not in users


def test_rules_code_can_check_need_no_model_at_all(model):
    result = check(rules=["under 600 words", 'no "synergy"'])
    assert by_rule(result) == {"under 600 words": ("pass", "code"), 'no "synergy"': ("pass", "code")}
    assert model.requests == []


def test_a_rule_the_model_left_out_is_not_checked(model):
    model.enqueue_verdicts([{"rule": 2, "verdict": "unsure", "reason": "hard to tell", "passage": ""},
                            {"rule": 9, "verdict": "pass", "reason": "no such rule", "passage": ""},
                            {"rule": 1, "verdict": "maybe", "reason": "not a verdict", "passage": ""}])
    result = check()
    assert by_rule(result)["no claims without a source"] == (NOT_CHECKED, "model")
    assert by_rule(result)["ends with a call to action"] == ("unsure", "model")
    assert "error" not in result


@pytest.mark.parametrize("script, reason", [
    (lambda m: [m.enqueue_json_content("not json"), m.enqueue_json_content("{\"results\": 3}")],
     "the model's reply was not usable: no \"results\" list"),
    (lambda m: m.enqueue_refusal(), "the model declined to check this draft"),
    (lambda m: m.enqueue_filtered_completion(), "the model declined to check this draft"),
    (lambda m: m.enqueue_content_filter(), "the model declined (content filter)"),
    (lambda m: [m.enqueue_status(500) for _ in range(2)], "the model answered 500"),
    (lambda m: [m.enqueue_status(401)], "the model answered 401"),
    (lambda m: [m.enqueue_reset() for _ in range(2)], "the model could not be reached"),
], ids=["malformed", "refused", "filtered-output", "filtered-prompt", "server-error", "unauthorized", "reset"])
def test_every_failure_of_the_model_shows_not_checked_with_the_reason(model, script, reason):
    script(model)
    result = check()
    assert result["error"] == reason
    assert by_rule(result)["no claims without a source"] == (NOT_CHECKED, "model")
    assert by_rule(result)["under 600 words"] == ("pass", "code")  # the rules code checks still show
    assert KEY not in json.dumps(result)


def test_a_model_that_hangs_is_cut_off_as_a_whole(model, monkeypatch):
    monkeypatch.setenv("HITL_CHECKER_TIMEOUT_SECONDS", "1")
    model.enqueue_hang(30)
    model.enqueue_hang(30)
    started = time.monotonic()
    result = check()
    assert time.monotonic() - started < 3
    assert result["error"] == "the model did not answer within 1 s (HITL_CHECKER_TIMEOUT_SECONDS)"


def test_a_model_that_trickles_its_reply_is_cut_off_as_a_whole(model, monkeypatch):
    monkeypatch.setenv("HITL_CHECKER_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("HITL_WRITER_TIMEOUT_SECONDS", "30")
    model.enqueue_trickle(0.05, head=True)
    started = time.monotonic()
    result = check()
    assert time.monotonic() - started < 3 and result["error"].startswith("the model did not answer within 1 s")


def test_the_offline_checker_is_deterministic(monkeypatch):
    monkeypatch.setenv("HITL_WRITER", "offline")
    result = check(rules=[*RULES, "friendly tone"])
    assert result == check(rules=[*RULES, "friendly tone"]) and result["checker"] == "offline"
    assert by_rule(result) == {"no claims without a source": ("fail", "offline"), "under 600 words": ("pass", "code"),
                               "ends with a call to action": ("pass", "offline"), 'no "synergy"': ("pass", "code"),
                               "friendly tone": ("unsure", "offline")}


def test_a_bad_request_or_a_bug_is_reported_not_raised(monkeypatch):
    monkeypatch.setenv("HITL_WRITER", "offline")
    assert check_draft({"rules": "not a list"}) == {"results": [], "error": check_draft_module.UNEXPECTED}
