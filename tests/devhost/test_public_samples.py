"""Microsoft's own Python v2 samples (azure-functions-durable-python/samples-v2), unchanged.

The samples are not part of this repository. The test takes them from a local mirror of
that repository when one is present (DEVHOST_SAMPLES_MIRROR, a bare git directory) and is
skipped otherwise: CI machines here reach PyPI, npm and Debian, not GitHub.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devhost import DevHost
from devhost.host import HostConfigError

from .helpers import call, wait_until

MIRROR = Path(os.environ.get("DEVHOST_SAMPLES_MIRROR",
                             "/work/.mirror/Azure+azure-functions-durable-python/repo"))
pytestmark = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no samples mirror at {MIRROR}")


def sample(name: str, into: Path) -> Path:
    folder = into / name
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "--git-dir", str(MIRROR), "archive", "HEAD", f"samples-v2/{name}"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "--strip-components=2", "-C", str(folder)], input=archive, check=True)
    return folder


def completes(host: DevHost, start_url: str) -> dict:
    started = call(start_url, "POST")
    assert started.status == 202, started.text
    status_url = started.json()["statusQueryGetUri"]
    return wait_until(lambda: (s := call(status_url).json())["runtimeStatus"] == "Completed" and s,
                      what="the sample's orchestration")


def test_the_chaining_sample_with_two_objects_in_host_json_is_refused_as_the_host_refuses_it(tmp_path):
    folder = sample("function_chaining", tmp_path)
    with pytest.raises(HostConfigError, match=r"host\.json.*line 15, column 2"):
        DevHost(folder, data_dir=tmp_path / "state", local_settings=False)
    # With the first object only, as its author meant it, the sample runs unchanged.
    text = (folder / "host.json").read_text()
    (folder / "host.json").write_text(json.dumps(json.JSONDecoder().raw_decode(text)[0]))
    with DevHost(folder, data_dir=tmp_path / "state", local_settings=False) as host:
        base = host.serve(port=0)
        done = completes(host, f"{base}/api/orchestrators/my_orchestrator")
    assert done["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_the_blueprint_sample_runs_unchanged(tmp_path):
    folder = sample("blueprint", tmp_path)
    with DevHost(folder, data_dir=tmp_path / "state", local_settings=False) as host:
        base = host.serve(port=0)
        done = completes(host, f"{base}/api/startOrchestrator")
    assert done["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
