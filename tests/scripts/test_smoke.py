"""scripts/smoke.py, the check a user runs after `azd up`, run against the devhost."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"


def run_smoke(*args, timeout="20"):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120, env={"SMOKE_TIMEOUT_SECONDS": timeout, "PATH": "/usr/bin:/bin"})


def test_the_walk_through_passes_against_a_working_app(served_host):
    result = run_smoke(served_host.base_url, "any-key")
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split("  ", 1)[0] for line in lines[:-1]] == ["PASS"] * 10
    for step in ("stale decision gets 409", "review page with its signed link", "published",
                 "unknown id gets 404"):
        assert any(step in line for line in lines), step
    assert lines[-1].startswith("OK: 0 step(s) failed")


def test_a_broken_deployment_fails_with_the_reason_and_a_nonzero_exit(served_host, monkeypatch):
    monkeypatch.setenv("HITL_WRITER", "openai")  # and no model configured: the writer fails
    result = run_smoke(served_host.base_url)
    assert result.returncode != 0
    assert "FAIL  draft of round 1: the review ended Failed" in result.stdout
    assert "no writer configured" in result.stdout
    assert "stopping: the later steps need this one" in result.stdout


def test_nothing_listening_fails_every_step_it_tries():
    result = run_smoke("http://127.0.0.1:9", timeout="1")
    assert result.returncode != 0 and "FAIL  health" in result.stdout
