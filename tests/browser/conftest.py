"""One Chromium for the browser tests: Debian's, driven by Playwright (never a downloaded
one). Every test in this folder is skipped, saying why, where it is not installed."""
from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason="Debian's chromium is not installed (scripts/ensure-chromium)")
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(skip)


# Per module, not per session: Playwright's sync API keeps an event loop running in the
# main thread while it is open, and tests after these call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield instance
        instance.close()
