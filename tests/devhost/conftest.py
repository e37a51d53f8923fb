"""Fixtures for the devhost's own tests: in-process hosts on the fixture apps."""
from __future__ import annotations

from pathlib import Path

import pytest

from devhost import DevHost, ManualClock


APPS = Path(__file__).parent / "apps"


@pytest.fixture
def make_host(tmp_path):
    """Build in-process hosts on fixture apps (by name) or any app folder (by path), on a
    manual clock unless told otherwise; all are closed after the test."""
    hosts: list[DevHost] = []

    def make(app: "str | Path", clock="manual", **options) -> DevHost:
        options.setdefault("data_dir", tmp_path / f"state-{len(hosts)}")
        host = DevHost(APPS / app, clock=ManualClock() if clock == "manual" else clock,
                       local_settings=False, **options)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


@pytest.fixture
def features(make_host) -> DevHost:
    return make_host("features")


@pytest.fixture
def conformance(make_host) -> DevHost:
    """The conformance fixture app, in process on a manual clock."""
    return make_host("conformance")


@pytest.fixture
def conformance_api(make_host) -> DevHost:
    """The conformance fixture app served over HTTP; ``.webhooks`` is its Durable HTTP API."""
    host = make_host("conformance")
    host.serve(port=0)
    host.webhooks = host.base_url + "/runtime/webhooks/durabletask"
    return host
