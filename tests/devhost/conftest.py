"""Fixtures for the devhost's own tests: testing hosts on the fixture apps."""
from __future__ import annotations

from pathlib import Path

import pytest

from devhost import ManualClock, SystemClock
from devhost.testing import TestingHost


APPS = Path(__file__).parent / "apps"


@pytest.fixture
def make_host(tmp_path):
    """Build in-process testing hosts on fixture apps (by name) or any app folder (by path),
    on a manual clock unless given a clock (None: the real one); all are closed after the
    test."""
    hosts: list[TestingHost] = []

    def make(app: "str | Path", clock="manual", **options) -> TestingHost:
        options.setdefault("data_dir", tmp_path / f"state-{len(hosts)}")
        host = TestingHost(APPS / app, clock=ManualClock() if clock == "manual" else clock or SystemClock(),
                           **options)
        hosts.append(host)
        return host

    yield make
    # A host whose close raises (a failed orchestrator check) does not keep the rest open.
    failures = []
    for host in hosts:
        try:
            host.close()
        except Exception as exc:  # noqa: BLE001 - raised below, after every host is closed
            failures.append(exc)
    if failures:
        raise failures[0]


@pytest.fixture
def features(make_host) -> TestingHost:
    return make_host("features")


@pytest.fixture
def conformance(make_host) -> TestingHost:
    """The conformance fixture app, in process on a manual clock."""
    return make_host("conformance")


@pytest.fixture
def conformance_api(make_host) -> TestingHost:
    """The conformance fixture app served over HTTP; ``.webhooks`` is its Durable HTTP API."""
    host = make_host("conformance")
    host.serve(port=0)
    host.webhooks = host.base_url + "/runtime/webhooks/durabletask"
    return host
