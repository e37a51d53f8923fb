"""The profile summary sorts the host loop's samples into episodes and requests."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LOOP = "thread (11): host loop;_run (devhost/server.py:60);_run_once (asyncio/base_events.py:1)"
RAW = "\n".join([
    f"{LOOP};BackgroundRunner._pass (devhost/runner.py:90);Engine.run_episodes (devhost/engine.py:240);"
    "Orchestrator.handle (azure/durable_functions/orchestrator.py:32) 6",
    f"{LOOP};BackgroundRunner._pass (devhost/runner.py:90);Engine.run_episodes (devhost/engine.py:240);"
    "Store._query (devhost/storage.py:200) 2",
    f"{LOOP};BackgroundRunner._pass (devhost/runner.py:90);"
    "BackgroundRunner._save_activity_results (devhost/runner.py:120) 1",
    f"{LOOP};RequestHandler._handle_request (aiohttp/web_protocol.py:1);"
    "FunctionRoutes._invoke (devhost/function_routes.py:100) 3",
    f"{LOOP};RequestHandler._handle_request (aiohttp/web_protocol.py:1) 2",
    "thread (12): activity_0;_worker (concurrent/futures/thread.py:81);"
    "Engine.execute_activity (devhost/engine.py:338) 6",
]) + "\n"


def test_samples_are_split_into_episodes_and_requests(tmp_path):
    raw = tmp_path / "devhost.raw"
    raw.write_text(RAW)
    report = subprocess.run([sys.executable, "-m", "bench.profile_report", str(raw)], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "  70.0%  host loop" in report and "  30.0%  activity pool" in report
    shares = {line.split(" of all ", 1)[1].strip(): line.split("%")[0].strip()
              for line in report.splitlines() if "% of thread," in line}
    assert shares["episodes: SDK replay of the orchestrator code"] == "42.9"
    assert shares["episodes: SQLite reads and writes (Python side)"] == "14.3"
    assert shares["activity results saved"] == "7.1"
    assert shares["requests: app route code and its request/response mapping"] == "21.4"
    assert shares["requests: aiohttp server, event loop (parse, dispatch, write, wait)"] == "14.3"
