"""``python -m devhost`` as a user runs it: banner, settings, host.json, shutdown."""
from __future__ import annotations

import json
import shutil

import pytest

from devhost.testing import wait_until
from tests.support.http import call

from .conftest import APPS


@pytest.fixture
def settings_app(tmp_path):
    """The settings fixture app with a local.settings.json (kept out of git on purpose)."""
    app_dir = tmp_path / "app"
    shutil.copytree(APPS / "settings", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (app_dir / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "FIXTURE_HUB": "SettingsHub",
        "FIXTURE_GREETING": "from local.settings.json",
        "FIXTURE_PRESET": "from local.settings.json",
    }}))
    return app_dir


def test_cli_serves_an_app_configured_by_host_json_and_local_settings(settings_app, tmp_path,
                                                                     launch):
    host = launch(settings_app, tmp_path / "data", env={"FIXTURE_PRESET": "from the environment"})
    banner = host.banner
    assert f"show_settings: [GET] {host.base_url}/v1/settings/{{name}}" in banner
    assert "settings_probe: orchestrationTrigger" in banner
    assert "read_setting: activityTrigger" in banner
    assert "Authorization levels are not enforced" in banner
    assert "Task hub:  SettingsHub" in banner
    assert str(tmp_path / "data" / "SettingsHub.sqlite") in banner
    assert "Activities run 3 at a time" in banner

    reply = call("GET", f"{host.base_url}/v1/settings/ada")
    assert reply.status == 200
    assert reply.json == {"name": "ada", "hub": "SettingsHub",
                          "greeting": "from local.settings.json",
                          "preset": "from the environment"}  # the environment wins
    assert call("GET", f"{host.base_url}/api/settings/ada").status == 404

    started = call("POST",
                   f"{host.base_url}/runtime/webhooks/durabletask/orchestrators/settings_probe").json

    def probe_output():
        status = call("GET", started["statusQueryGetUri"]).json
        return status["runtimeStatus"] == "Completed" and status["output"]
    assert wait_until(probe_output, what="settings_probe") == "from local.settings.json"
    code, rest = host.stop()
    assert code == 0
    assert "devhost: stopping" in rest
    assert (tmp_path / "data" / "SettingsHub.sqlite").is_file()


def test_cli_refuses_a_folder_without_function_app(tmp_path, launch):
    with pytest.raises(AssertionError, match="cannot load the app"):
        launch(tmp_path, tmp_path / "data", startup_timeout=10)


def test_after_a_restart_the_banner_says_what_is_in_flight_and_where_to_start(tmp_path, launch):
    """Before: a restart showed nothing of the instances still waiting."""
    data = tmp_path / "data"
    first = launch(APPS / "features", data)
    assert "In flight: nothing" in first.banner and f"Start page: {first.base_url}/" in first.banner
    for n in range(2):
        call("POST", f"{first.base_url}/runtime/webhooks/durabletask/orchestrators/custom_status/wait-{n}")
    wait_until(lambda: all(call("GET", f"{first.base_url}/runtime/webhooks/durabletask/instances/wait-{n}").json
                           ["customStatus"] for n in range(2)), what="two waits")
    first.stop()
    again = launch(APPS / "features", data)
    assert "In flight: custom_status 2 Running" in again.banner
    start = call("GET", f"{again.base_url}/")
    assert start.status == 200 and "text/html" in start.headers["Content-Type"]
    assert f'<a href="{again.base_url}/api/client/by-status">' in start.text
    assert "custom_status: 2 Running" in start.text
    assert "/runtime/webhooks/durabletask/instances" in start.text
