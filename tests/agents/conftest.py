"""Agent Framework apps on the devhost: each runs in a devhost child process started with
the Python of .venv-agents (built by `make test` from requirements-agents.txt), its agents
talking to a local OpenAI-compatible server."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).parent / "apps"
AGENTS_PYTHON = REPO / ".venv-agents" / "bin" / "python"


@pytest.fixture(scope="module")
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def agent_host(launch, tmp_path, fake_openai):
    """Start an app of tests/agents/apps on the devhost, with .venv-agents' Python."""
    if not AGENTS_PYTHON.exists():
        pytest.fail(f"{AGENTS_PYTHON} is missing: `make test` builds it (make agents-env)")
    env = {"OPENAI_BASE_URL": f"{fake_openai.url}/v1", "OPENAI_API_KEY": "test-key",
           "PYTHONPATH": str(REPO), "HITL_WRITER": ""}
    return lambda app: launch(APPS / app, tmp_path / f"state-{app}", env=env, startup_timeout=60,
                              python=str(AGENTS_PYTHON))
