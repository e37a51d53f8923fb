"""The review orchestration's tests run with the orchestrator check on: every episode is
also invoked through the Python worker, as the Functions host invokes it, and one whose
state differs from the replay's fails the test (devhost/orchestrator_check.py,
docs/DEVHOST-CONFORMANCE.md W11). The setting reaches the plugin's hosts and the tests'
own ``DevHost``s alike."""
from __future__ import annotations

import pytest

from devhost.orchestrator_check import CHECK_SETTING, WORKER


@pytest.fixture(autouse=True)
def orchestrators_checked_through_the_worker(monkeypatch):
    monkeypatch.setenv(CHECK_SETTING, WORKER)
