"""Fixtures for the devhost's own tests: in-process hosts on the fixture apps."""
from __future__ import annotations

from pathlib import Path

import pytest

from devhost import DevHost, ManualClock

from .helpers import DevHostProcess

APPS = Path(__file__).parent / "apps"


@pytest.fixture
def make_host(tmp_path):
    """Build in-process hosts on fixture apps (by name) or any app folder (by path), on a
    manual clock unless told otherwise; all are closed after the test."""
    hosts: list[DevHost] = []

    def make(app: "str | Path", clock="manual", **options) -> DevHost:
        host = DevHost(APPS / app, data_dir=tmp_path / f"state-{len(hosts)}",
                       clock=ManualClock() if clock == "manual" else clock,
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
