"""Microsoft's own Durable Functions samples for Python, run unchanged on the devhost.

The samples are not part of this repository: ``make samples`` (a step of ``make test``)
takes them from the source release of the pinned SDK on PyPI, which ships ``samples/``
(the v1 model, a folder per function with its function.json) and ``samples-v2/``
(``function_app.py``). Each test copies one sample, serves it and drives it over HTTP
as its README does.

Not run: samples that need a service the devhost does not provide (Azure Blob Storage in
both fan_in_fan_out samples, GitHub and Twilio in monitor, Azure ML in aml_monitoring) and
openai_agents, which needs the OpenAI Agents SDK.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from devhost import DevHost
from devhost.history import EventType
from devhost.testing import wait_until
from tests.support.http import call

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get(
    "DEVHOST_SAMPLES_DIR",
    REPOSITORY / ".samples" / f"azure_functions_durable-{metadata.version('azure-functions-durable')}"))
pytestmark = pytest.mark.skipif(not (SAMPLES / "samples-v2").is_dir(),
                                reason=f"no SDK samples at {SAMPLES}: run `make samples`")
FINISHED = ("Completed", "Failed", "Terminated")


def sample(kind: str, name: str, into: Path) -> Path:
    folder = into / name
    shutil.copytree(SAMPLES / kind / name, folder)
    return folder


def served(folder: Path, tmp_path: Path) -> tuple[DevHost, str]:
    """The sample served, every orchestrator episode checked through the Python worker
    (devhost/orchestrator_check.py, DEVHOST-CONFORMANCE.md W11)."""
    host = DevHost(folder, data_dir=tmp_path / "state", local_settings=False, check_orchestrators="worker")
    return host, host.serve(port=0)


def finished(started) -> dict:
    assert started.status == 202, started.text
    status_url = started.json["statusQueryGetUri"]
    return wait_until(lambda: (s := call("GET", status_url).json)["runtimeStatus"] in FINISHED and s,
                      what="the sample's orchestration")


def completes(start_url: str) -> dict:
    done = finished(call("POST", start_url))
    assert done["runtimeStatus"] == "Completed", done
    return done


# -- samples-v2 (function_app.py) and samples (function.json) ---------------------------

@pytest.mark.parametrize("kind, name, route", [
    ("samples-v2", "function_chaining", "orchestrators/my_orchestrator"),
    ("samples-v2", "blueprint", "startOrchestrator"),
    ("samples", "function_chaining", "orchestrators/E1_HelloSequence"),
])
def test_the_chaining_samples_run_unchanged(tmp_path, kind, name, route):
    host, base = served(sample(kind, name, tmp_path), tmp_path)
    with host:
        done = completes(f"{base}/api/{route}")
    assert done["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_the_v2_versioning_sample_gives_each_instance_its_version(tmp_path):
    """host.json's defaultVersion is 1.0: an instance started without a version takes the
    1.0 branch, its children get 0.9 when asked and 1.0 otherwise; ?version=0.5 on the
    sample's starter reaches the Durable API and takes the other branch."""
    host, base = served(sample("samples-v2", "orchestration_versioning", tmp_path), tmp_path)
    with host:
        outputs = {}
        for query in ("", "?version=0.5"):
            started = call("POST", f"{base}/api/orchestrators/my_orchestrator{query}")
            assert started.status == 202, started.text
            urls = started.json
            wait_until(lambda: call("GET", urls["statusQueryGetUri"]).json["customStatus"]
                       == "Waiting for Continue event...", what="the sample's wait")
            raised = call("POST", urls["sendEventPostUri"].replace("{eventName}", "Continue"), body={})
            assert raised.status == 202
            outputs[query] = wait_until(lambda: (s := call("GET", urls["statusQueryGetUri"]).json)
                                        ["runtimeStatus"] == "Completed" and s["output"],
                                        what="the sample's orchestration")
    assert outputs[""] == ["Orchestration version: 1.0", "Suborchestration version (explicit): 0.9",
                           "Suborchestration version (default): 1.0", "Hello from A!"]
    assert outputs["?version=0.5"] == ["Orchestration version: 0.5", "Suborchestration version (explicit): 0.9",
                                       "Suborchestration version (default): 1.0", "Hello from B!"]


def test_the_v1_custom_status_sample_answers_through_its_named_http_output(tmp_path):
    """Its starter has no return value: it sets the response on its ``message`` binding."""
    host, base = served(sample("samples", "function_chaining_custom_status", tmp_path), tmp_path)
    with host:
        done = completes(f"{base}/api/orchestrators/DurableOrchestration")
    assert (done["output"], done["customStatus"]) == (3, "1 -> 2 -> 3")


def test_the_v1_sub_orchestration_sample_runs_unchanged(tmp_path):
    host, base = served(sample("samples", "simple_sub_orchestration", tmp_path), tmp_path)
    with host:
        done = completes(f"{base}/api/orchestrators/DurableOrchestrator")
    assert done["output"] == "Hello Seattle!"


def test_the_v1_serialization_sample_round_trips_its_class_through_the_app_namespace(tmp_path):
    """The SDK records a custom class with its module, ``__app__.shared_code.MyClasses``,
    and imports it by that name to rebuild it: the worker's ``__app__`` package must exist."""
    host, base = served(sample("samples", "serialize_arguments", tmp_path), tmp_path)
    with host:
        done = completes(f"{base}/api/orchestrators/DurableOrchestration")
        started = [e for e in host.history(done["instanceId"]) if e["EventType"] == EventType.EXECUTION_STARTED]
    assert done["output"] == 5
    recorded = json.loads(json.loads(started[0]["Input"]))  # the SDK client's text, as a JSON string
    assert recorded["__module__"] == "__app__.shared_code.MyClasses"


def test_the_v1_counter_entity_sample_signals_calls_and_reads_its_entity(tmp_path):
    host, base = served(sample("samples", "counter_entity", tmp_path), tmp_path)
    with host:
        done = completes(f"{base}/api/orchestrators/DurableOrchestration")
        read = call("GET", f"{base}/api/entity/Counter/myCounter")
        missing = call("GET", f"{base}/api/entity/Counter/nobody")
    assert done["output"] == 3  # the signal (add 3) is applied before the call (get)
    assert read.status == 200 and read.json == {"entity": "Counter", "key": "myCounter", "state": 3}
    assert (missing.status, missing.text) == (404, "Entity not found")


def test_the_v1_human_interaction_sample_waits_where_its_twilio_binding_is_missing(tmp_path, caplog):
    """Its SMS activity has a Twilio output binding the devhost cannot provide, so the
    activity is not registered: the call is treated as a call to a function the host does
    not have (the instance stays Running and the log says why), instead of the activity
    running without sending its message."""
    host, base = served(sample("samples", "human_interaction", tmp_path), tmp_path)
    with host, caplog.at_level(logging.INFO, logger="devhost"):
        assert host.registry.unsupported == ["SendSMSChallenge (activityTrigger, twilioSms)"]
        started = call("POST", f"{base}/api/orchestrators/E4_SMSPhoneVerification", body="+14255550100")
        assert started.status == 202, started.text
        instance_id = started.json["id"]
        wait_until(lambda: "is stuck" in caplog.text, what="the log line")
        assert host.status(instance_id)["runtimeStatus"] == "Running"
    assert f"Instance {instance_id} is stuck: The function 'SendSMSChallenge' doesn't exist" in caplog.text
