"""pytest fixtures that put the app under test on a devhost (``devhost.testing``).

Turn them on in the project's top ``conftest.py``::

    pytest_plugins = ["devhost.pytest_plugin"]

- ``manual_host``: the app in process on a manual clock (``TestingHost``);
- ``served_host``: the app served over HTTP on a free port, on the real clock
  (``TestingHost.served``; ``served_host.base_url``).

Both keep their state in the test's ``tmp_path`` and close when the test ends. The app is
the folder ``devhost_app_dir`` returns: pytest's rootdir, unless a conftest overrides the
fixture. An override may ask for fixtures that prepare the app's environment (settings
set with ``monkeypatch``); pytest runs them before the host loads the app.

``devhost_check_orchestrators`` is the hosts' ``check_orchestrators`` option: None (the
default) leaves it to the ``DEVHOST_CHECK_ORCHESTRATORS`` setting; a conftest that returns
``"worker"`` has every orchestrator episode of its tests invoked through the Python worker
as well, and an episode whose state differs from the replay's fails the test
(``devhost.orchestrator_check``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import pytest

from .testing import TestingHost

STATE_FOLDER = "devhost-state"


@pytest.fixture
def devhost_app_dir(request) -> Path:
    """The folder of the function app under test."""
    return Path(request.config.rootpath)


@pytest.fixture
def devhost_check_orchestrators() -> Optional[str]:
    """The hosts' orchestrator check: None leaves it to DEVHOST_CHECK_ORCHESTRATORS."""
    return None


@pytest.fixture
def manual_host(devhost_app_dir, tmp_path, devhost_check_orchestrators) -> Iterator[TestingHost]:
    """The app in process, on a manual clock: nothing runs until the test says so."""
    with TestingHost(devhost_app_dir, data_dir=tmp_path / STATE_FOLDER,
                     check_orchestrators=devhost_check_orchestrators) as host:
        yield host


@pytest.fixture
def served_host(devhost_app_dir, tmp_path, devhost_check_orchestrators) -> Iterator[TestingHost]:
    """The app served over HTTP on a free port, on the real clock."""
    with TestingHost.served(devhost_app_dir, data_dir=tmp_path / STATE_FOLDER,
                            check_orchestrators=devhost_check_orchestrators) as host:
        yield host
