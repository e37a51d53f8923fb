"""The dashboard's list benchmark still runs (``python -m bench.dashboard_list`` from the
repository root, a real devhost over HTTP) at a small size: every scenario lists what the
store holds for it. It checks outcomes, never a speed: the figures come from full-size runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # it starts a devhost process

REPO = Path(__file__).resolve().parents[2]


def test_every_scenario_lists_its_first_page():
    process = subprocess.run([sys.executable, "-m", "bench.dashboard_list", "--instances", "400", "--calls", "3"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    summary = json.loads(process.stdout.strip().splitlines()[-1])
    assert summary["errors"] == 0 and summary["instances"] == 400
    rows = summary["rows"]
    assert rows["no filter"] == rows["id prefix: 90% of ids"] == rows["status Running,Suspended"] == 50
    assert rows["id prefix: one id"] == 1 and rows["no match"] == 0
    assert all(figures["n"] == 3 for figures in summary["latency"].values())
