"""``python -m devhost`` as a user runs it: banner, settings, host.json, shutdown."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from devhost import DevHost
from devhost.testing import wait_until
from tests.support.http import call

from .conftest import APPS
from .helpers import REPO, free_port
from .test_storage import overwrite_pages, pages_of


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


def run_cli(app_dir, data_dir, *args, env=None) -> subprocess.CompletedProcess:
    """``python -m devhost`` to its end, for the ways it refuses to start."""
    return subprocess.run([sys.executable, "-m", "devhost", str(app_dir), "--port", str(free_port()),
                           "--data", str(data_dir), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("damage", ["middle pages", "header", "schema too new"])
def test_cli_refuses_a_damaged_state_in_one_line_saying_so(tmp_path, damage):
    """Before: garbage in the middle pages let the host start and then die with an
    uncaught sqlite3.DatabaseError (exit 1); a damaged header, or a state from a newer
    devhost, was refused as "cannot load the app", the header with a traceback."""
    with DevHost(APPS / "features", data_dir=tmp_path / "data", local_settings=False) as host:
        for n in range(30):
            host.start("custom_status", {"n": n})
        host.run_until_idle()
        path = host.store.path
    if damage == "middle pages":
        overwrite_pages(path, [pages_of(path) // 2, pages_of(path) // 2 + 1])
    elif damage == "header":
        overwrite_pages(path, [0])
    else:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE schema_version SET version = 99")
    result = run_cli(APPS / "features", tmp_path / "data")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"devhost: {'the state file ' if damage != 'schema too new' else ''}{path}")
    assert ("is damaged" in line) == (damage != "schema too new")
    assert "cannot load the app" not in line and "Traceback" not in result.stderr


APP_FILES = ("function_app.py", "host.json", "local.settings.sample.json", "activities",
             "orchestrations", "routes", "shared_code")


@pytest.fixture
def fresh_clone(tmp_path):
    """The app's own files, as a fresh clone has them: no local.settings.json."""
    app_dir = tmp_path / "clone"
    app_dir.mkdir()
    for name in APP_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, app_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, app_dir / name)
    return app_dir


def without_settings() -> dict:
    """The environment with none of the app's settings, as on a new machine."""
    from shared_code.settings import SETTINGS
    names = {spec.name for spec in SETTINGS} | {"PORT", "WEBSITE_HOSTNAME", "WEBSITE_SITE_NAME"}
    return {name: value for name, value in os.environ.items() if name not in names}


def serve_cli(app_dir, data_dir, env, log_path):
    """``python -m devhost APP_DIR`` with no --port; returns the process and its banner."""
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "devhost", str(app_dir), "--data", str(data_dir)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    banner = []
    for line in proc.stdout:
        banner.append(line)
        if "/runtime/webhooks/durabletask/instances" in line:
            return proc, "".join(banner)
    proc.wait(timeout=10)
    raise AssertionError(f"devhost did not start:\n{''.join(banner)}\n{log_path.read_text()}")


def test_a_fresh_clone_runs_as_make_run_runs_it(fresh_clone, tmp_path):
    """`make run` is `python -m devhost .` once local.settings.json exists (it copies the
    sample when there is none). Before, `python -m devhost .` quietly used another task hub
    (TestHubName), had no writer and no review links, and ignored PORT: only the Makefile
    set TASKHUB_NAME, HITL_WRITER=offline and HITL_DEV_INSECURE_LINKS=1."""
    env = without_settings()
    refused = subprocess.run([sys.executable, "-m", "devhost", str(fresh_clone), "--data",
                              str(tmp_path / "data")], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert "names the app setting TASKHUB_NAME, which is not set" in line
    assert "set TASKHUB_NAME in local.settings.json" in line

    shutil.copy(fresh_clone / "local.settings.sample.json", fresh_clone / "local.settings.json")
    port = free_port()
    proc, banner = serve_cli(fresh_clone, tmp_path / "data", {**env, "PORT": str(port)},
                             tmp_path / "devhost.log")
    try:
        assert f"Start page: http://127.0.0.1:{port}/" in banner
        assert "Task hub:  HitlReviewHub" in banner
        def log_once(text):
            return wait_until(lambda: text in (tmp_path / "devhost.log").read_text(), what=text)

        log_once("HITL writer: the offline demo writer, as no model is configured on this local host")
        log_once("Review links: INSECURE development key")
        started = call("POST", f"http://127.0.0.1:{port}/api/hitl/run", {"topic": "Fresh clone"}).json
        status = wait_until(lambda: (s := call("GET", started["statusQueryGetUri"]).json)["customStatus"]
                            .get("stage") == "awaiting_review" and s["customStatus"]["notification"]
                            ["status"] != "sending" and s, what="the first draft and its notice")
        assert status["customStatus"]["draft"]["title"] == "Draft 1: Fresh clone"  # the offline writer's
        assert status["customStatus"]["notification"] == {"status": "sent", "channel": "log"}
        log_once(f"review http://localhost:{port}/api/hitl/review/{started['instanceId']}?token=")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_make_run_is_the_devhost_on_the_app_folder():
    """What `make run` runs, from `make -n`: the sample copied to local.settings.json when
    there is none, then the command the README gives, with nothing set around it."""
    dry_run = subprocess.run(["make", "--no-print-directory", "-n", "run"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry_run.returncode == 0, dry_run.stderr
    commands = dry_run.stdout.strip().splitlines()
    assert commands[-2:] == ["test -f local.settings.json || cp local.settings.sample.json local.settings.json",
                             "exec .venv/bin/python -m devhost ."]


def test_the_worker_count_follows_the_functions_host_setting(tmp_path):
    from devhost.__main__ import default_worker_count

    assert default_worker_count(tmp_path, env={}) == 1  # the host's default for Python
    assert default_worker_count(tmp_path, env={"FUNCTIONS_WORKER_PROCESS_COUNT": "3"}) == 3
    assert default_worker_count(tmp_path, env={"FUNCTIONS_WORKER_PROCESS_COUNT": "0"}) == 1
    assert default_worker_count(tmp_path, env={"FUNCTIONS_WORKER_PROCESS_COUNT": " "}) == 1
    (tmp_path / "local.settings.json").write_text(
        '{"Values": {"FUNCTIONS_WORKER_PROCESS_COUNT": "2"}}', encoding="utf-8")
    assert default_worker_count(tmp_path, env={}) == 2
    assert default_worker_count(tmp_path, env={"FUNCTIONS_WORKER_PROCESS_COUNT": "4"}) == 4  # the environment wins
    for wrong in ("11", "two"):
        with pytest.raises(ValueError, match="FUNCTIONS_WORKER_PROCESS_COUNT in the environment"):
            default_worker_count(tmp_path, env={"FUNCTIONS_WORKER_PROCESS_COUNT": wrong})


def test_workers_given_on_the_command_line_win_over_the_setting(tmp_path, monkeypatch):
    from devhost.__main__ import parse_args

    monkeypatch.setenv("FUNCTIONS_WORKER_PROCESS_COUNT", "2")
    assert parse_args([str(tmp_path)]).workers == 2
    assert parse_args([str(tmp_path), "--workers", "1"]).workers == 1
