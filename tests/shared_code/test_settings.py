"""The app's settings on a local host, in Azure and elsewhere: the same defaults under any
local host (func start or the devhost, which both set WEBSITE_HOSTNAME to localhost:PORT)."""
from __future__ import annotations

import json
import logging
import os

import pytest

from activities.writer_backends import draft_content
from shared_code.models import RunRequest
from shared_code.settings import DEV_INSECURE_KEY, ConfigurationError, configuration_report, load_settings

LOCAL = {"WEBSITE_HOSTNAME": "localhost:7071"}
AZURE = {"WEBSITE_HOSTNAME": "hitl-review.azurewebsites.net"}
FIRST_ROUND = {"topic": "Tide pools", "round": 1, "previous_draft": None, "feedback": []}


def report(env: dict) -> dict[str, tuple[int, str]]:
    """The start-up report's lines by what they are about."""
    return {line.split(":")[0]: (level, line) for level, line in configuration_report(load_settings(env))}


def test_a_local_host_with_no_model_drafts_offline_and_says_so():
    """Before, only `make run` chose the offline writer (by setting HITL_WRITER itself);
    `python -m devhost .` or func start with the same settings had no writer at all."""
    settings = load_settings(LOCAL)
    assert settings.writer_backend == "offline"
    assert draft_content(FIRST_ROUND, settings)["writer"] == "offline"
    level, line = report(LOCAL)["HITL writer"]
    assert level == logging.INFO
    assert "offline demo writer, as no model is configured on this local host" in line
    assert "AZURE_OPENAI_ENDPOINT" in line


def test_a_local_host_without_a_signing_key_signs_links_with_the_development_key_and_warns():
    """Before, only `make run` set HITL_DEV_INSECURE_LINKS=1; otherwise local links were off."""
    assert load_settings(LOCAL).link_signing_key == DEV_INSECURE_KEY
    level, line = report(LOCAL)["Review links"]
    assert level == logging.WARNING and "INSECURE development key" in line
    assert "HITL_DEV_INSECURE_LINKS=0 turns them off" in line


@pytest.mark.parametrize("env", [AZURE, {}], ids=["azure", "no-hostname"])
def test_neither_default_applies_in_azure_or_on_a_host_that_names_nothing(env):
    settings = load_settings(env)
    assert settings.writer_backend == "unconfigured"
    assert settings.link_signing_key is None
    assert report(env)["HITL writer"][0] == logging.ERROR
    assert "DISABLED" in report(env)["Review links"][1]


def test_an_explicit_choice_wins_over_the_local_defaults():
    settings = load_settings({**LOCAL, "HITL_WRITER": "openai", "HITL_DEV_INSECURE_LINKS": "0"})
    assert settings.writer_backend == "unconfigured"
    assert settings.link_signing_key is None
    model = load_settings({**LOCAL, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_MODEL": "m"})
    assert model.writer_backend == "openai"
    signed = load_settings({**LOCAL, "HITL_REVIEW_SIGNING_KEY": "s" * 40})
    assert signed.link_signing_key == b"s" * 40


def test_the_development_key_is_refused_in_azure_even_when_asked_for():
    assert load_settings({**AZURE, "HITL_DEV_INSECURE_LINKS": "1"}).link_signing_key is None


@pytest.mark.parametrize("name, value", [("HITL_DEV_INSECURE_LINKS", "maybe"), ("HITL_WRITER", "gpt")])
def test_a_value_that_means_nothing_is_refused_with_the_reason(name, value):
    with pytest.raises(ConfigurationError, match=rf"^{name} must be .*got '{value}'"):
        load_settings({**LOCAL, name: value})


def test_the_kept_settings_follow_every_value_they_are_read_from(monkeypatch):
    """load_settings keeps its result for as long as the values it reads stay the same:
    every name it reads must be among those it watches, or a change would go unseen."""
    from collections import UserDict

    from shared_code import settings as module

    class Recording(UserDict):
        def __init__(self):
            super().__init__()
            self.asked = set()

        def get(self, key, default=None):
            self.asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            self.asked.add(key)
            return super().__getitem__(key)

    env = Recording()
    module.load_settings(env)
    assert env.asked and env.asked <= set(module.SETTINGS_READ), env.asked - set(module.SETTINGS_READ)
    monkeypatch.setenv("HITL_PUBLISH_DIR", "first")
    assert module.load_settings().publish_dir == "first"
    monkeypatch.setenv("HITL_PUBLISH_DIR", "second")
    assert module.load_settings().publish_dir == "second"


def test_the_process_environment_gives_the_settings_its_values_give(monkeypatch):
    """load_settings() reads the process environment through the values os.environ stores
    (encoded names and values): what it returns is what those values, read one by one,
    give, for text beyond ASCII too, and a change or a removal through os.environ is seen
    by the next call."""
    # The module as it is now: a host loading the app again imports it afresh.
    from shared_code import settings as module

    def read_by_name():
        return module.load_settings({name: os.environ[name] for name in module.SETTINGS_READ if name in os.environ})

    def stored_reads():
        info = module._settings_of_stored.cache_info()
        return info.hits + info.misses

    assert module._STORED is not None, "this Python's os.environ keeps its values in a dict"
    monkeypatch.setenv("HITL_PUBLIC_BASE_URL", "https://reviews.contoso.com")
    monkeypatch.setenv("HITL_SLACK_CHANNEL", "#rédaction–relecture")
    monkeypatch.setenv("HITL_PUBLISH_DIR", "/srv/publiés")
    before = stored_reads()
    assert module.load_settings() == read_by_name()
    assert module.load_settings().publish_dir == "/srv/publiés"
    monkeypatch.delenv("HITL_PUBLISH_DIR")
    assert module.load_settings() == read_by_name()
    assert module.load_settings().publish_dir != "/srv/publiés"
    assert stored_reads() == before + 4, "load_settings() read the stored values"


def test_a_store_put_in_place_of_os_environs_own_is_read_name_by_name(monkeypatch):
    """What answers os.environ.get is what load_settings reads: a store put in place of the
    one os.environ had at start-up is read name by name, and so is its content."""
    # The module as it is now: a host loading the app again imports it afresh.
    from shared_code import settings as module

    replaced = {**os.environ._data, os.environ.encodekey("HITL_PUBLISH_DIR"): os.environ.encodevalue("swapped")}
    monkeypatch.setattr(os.environ, "_data", replaced)
    assert os.environ.get("HITL_PUBLISH_DIR") == "swapped"
    assert module.load_settings().publish_dir == "swapped"
    monkeypatch.undo()
    assert module._PROCESS_ENVIRON._data is module._STORED


def test_an_environment_standing_in_for_os_environ_is_read_name_by_name(monkeypatch):
    """A mapping put in place of os.environ (as a test or an embedding host may) is read
    like any other: its values, not the process's."""
    from shared_code import settings as module

    monkeypatch.setattr(os, "environ", {**os.environ, "HITL_PUBLISH_DIR": "stand-in"})
    assert module.load_settings().publish_dir == "stand-in"


EDITORS = {"stages": [{"name": "editor", "reviewers": ["role:editors"], "require": "any"}]}
LEGAL = {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"],
                     "require": "all"}]}


def run_request(settings, request: dict) -> RunRequest:
    """A run request as POST /api/hitl/run reads it, with the deployment's defaults."""
    return RunRequest.from_json(request, default_reminders=settings.default_reminders,
                                default_review=settings.default_review)


def test_the_deployments_default_policy_applies_to_a_run_request_that_names_none():
    env = {**LOCAL, "HITL_REVIEW_POLICY": json.dumps(EDITORS)}
    assert run_request(load_settings(env), {"topic": "Quarterly report"}).review == EDITORS
    level, line = report(env)["Default review policy (HITL_REVIEW_POLICY)"]
    assert level == logging.INFO and line.endswith("stages editor")


def test_a_run_requests_own_policy_overrides_the_deployments_default():
    settings = load_settings({**LOCAL, "HITL_REVIEW_POLICY": json.dumps(EDITORS)})
    assert run_request(settings, {"topic": "Quarterly report", "review": LEGAL}).review == LEGAL


@pytest.mark.parametrize("env", [LOCAL, {**LOCAL, "HITL_REVIEW_POLICY": json.dumps(
    {"stages": [{"name": "review", "reviewers": ["anyone"]}]})}], ids=["unset", "the default written out"])
def test_without_a_default_policy_a_review_has_one_stage_anyone_decides(env):
    """The policy a review without one has is recorded as none, as before policies."""
    settings = load_settings(env)
    assert settings.default_review is None
    assert run_request(settings, {"topic": "Quarterly report"}).review is None
    assert "Default review policy (HITL_REVIEW_POLICY)" not in report(env)


@pytest.mark.parametrize("value, reason", [
    ("{stages: []}", "HITL_REVIEW_POLICY is not JSON: "),
    ('["editor"]', "HITL_REVIEW_POLICY is not a valid review policy: the policy must be a JSON object"),
    ('{"stages": []}', 'HITL_REVIEW_POLICY is not a valid review policy: the policy needs "stages"'),
    ('{"stages": [{"name": "editor", "reviewers": ["team:editors"]}]}',
     "HITL_REVIEW_POLICY is not a valid review policy: unknown seat kind 'team'"),
    ('{"stages": [{"name": "editor", "reviewers": ["role:editors"], "require": 2}]}',
     "HITL_REVIEW_POLICY is not a valid review policy: stage 'editor''s \"require\" is 2"),
], ids=["not JSON", "not an object", "no stages", "unknown seat kind", "require past its seats"])
def test_a_bad_default_policy_is_refused_at_start_up_naming_the_setting(value, reason):
    """function_app.py loads the settings as the app starts: a bad value stops it there,
    with the reason, rather than failing each review."""
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**LOCAL, "HITL_REVIEW_POLICY": value})
    assert str(refused.value).startswith(reason)
