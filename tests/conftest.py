"""Fixtures shared by the whole suite. ``manual_host`` and ``served_host`` come from
devhost's pytest plugin, on the app at the repository's root with the offline writer."""
from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import aiohttp
import pytest

from tests.devhost.helpers import DevHostProcess

pytest_plugins = ("devhost.pytest_plugin",)

TESTS = Path(__file__).parent
APP_DIR = TESTS.parent
# Whole modules that start processes, kill them or drive a browser: marked slow, so that
# `make test-fast` (pytest -m "not slow") leaves them out for everyday work.
SLOW_MODULES = ("bench/test_soak_short.py", "devhost/test_crash_recovery.py",
                "devhost/test_worker_processes.py", "devhost/test_main.py", "browser/", "agents/",
                "channels/test_agents_playground.py")


def pytest_collection_modifyitems(items):
    for item in items:
        relative = Path(item.fspath).relative_to(TESTS).as_posix()
        if relative.startswith(SLOW_MODULES):
            item.add_marker(pytest.mark.slow)


SIGNING_KEY = "test-signing-key-0123456789abcdef-0123"
TASK_HUB = "HitlReviewHub"


@pytest.fixture(autouse=True, scope="session")
def sessions_of_ended_loops_closed():
    """The app keeps one backend session per event loop, for the worker's life, as a worker
    process does (routes/backend_session.py), and closes a session whose loop has ended at
    its next read. Each test's host ends its loop, so the last of those sessions outlives
    the suite: it is closed here, not reported as left open when the interpreter exits."""
    yield
    for session in [o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession)]:
        loop = getattr(session, "_loop", None)
        if not session.closed and loop is not None and loop.is_closed():
            try:
                asyncio.run(session.close())
            except Exception:  # noqa: BLE001 - left to be reported at exit, as before, never failing the suite
                pass


@pytest.fixture(autouse=True, scope="session")
def task_hub():
    """The app's host.json names its task hub %TASKHUB_NAME%, which local.settings.json sets
    for make run and the devhost refuses to leave unresolved; the tests load no
    local.settings.json, so they set it (hosts started as processes inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("TASKHUB_NAME"):
            patch.setenv("TASKHUB_NAME", TASK_HUB)
        yield


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """The app's settings for the offline writer, publishing into a temporary folder."""
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HITL_NOTIFY_WEBHOOK_URL", "HITL_DEV_INSECURE_LINKS", "WEBSITE_HOSTNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HITL_WRITER", "offline")
    monkeypatch.setenv("HITL_PUBLISH_DIR", str(tmp_path / "published"))
    monkeypatch.setenv("HITL_REVIEW_SIGNING_KEY", SIGNING_KEY)
    return tmp_path


@pytest.fixture
def devhost_app_dir(offline_env) -> Path:
    """The HITL app, its settings those of the offline writer."""
    return APP_DIR


@pytest.fixture
def launch(tmp_path):
    """Start ``python -m devhost`` processes; any still alive after the test is killed."""
    started: list[DevHostProcess] = []

    def start(app_dir: Path, data_dir: Path, **options) -> DevHostProcess:
        process = DevHostProcess(app_dir, data_dir, tmp_path / f"devhost-{len(started) + 1}.log",
                                 **options)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.kill()
