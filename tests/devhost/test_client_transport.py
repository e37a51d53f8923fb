"""The app's Durable client calls answered in process, and everything else left to HTTP."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from azure.durable_functions import DurableOrchestrationClient

from devhost import client_transport

# Nothing listens on the discard port: a call that reached the network would fail.
UNREACHABLE = "127.0.0.1:9"


def client_for(netloc: str) -> DurableOrchestrationClient:
    webhooks = f"http://{netloc}/runtime/webhooks/durabletask"
    return DurableOrchestrationClient(json.dumps({
        "taskHubName": "hub", "creationUrls": {}, "managementUrls": {}, "baseUrl": webhooks,
        "requiredQueryStringParameters": "", "rpcBaseUrl": webhooks + "/", "httpBaseUrl": ""}))


@pytest.fixture
def registered(features):
    client_transport.serve_in_process(UNREACHABLE, features.api)
    yield features
    client_transport.stop_serving(features.api)


def test_registered_endpoint_is_answered_without_a_socket(registered):
    client = client_for(UNREACHABLE)
    instance_id = asyncio.run(client.start_new("counter", "local-1", {"n": 2, "stop": 2}))
    assert instance_id == "local-1"
    registered.run_until_idle()

    status = asyncio.run(client.get_status("local-1", show_history=True))
    assert status.runtime_status.value == "Completed" and status.output == {"final": 2}
    assert [e["EventType"] for e in status.historyEvents][0] == "ExecutionStarted"
    missing = asyncio.run(client.get_status("nobody"))
    assert missing.runtime_status is None
    with pytest.raises(Exception, match="doesn't exist"):
        asyncio.run(client.start_new("no_such_orchestrator"))
    purged = asyncio.run(client.purge_instance_history("local-1"))
    assert purged.instances_deleted == 1


def test_events_and_terminate_reach_the_engine(registered):
    client = client_for(UNREACHABLE)
    asyncio.run(client.start_new("custom_status", "local-2"))
    registered.run_until_idle()
    asyncio.run(client.raise_event("local-2", "Answer", {"v": 3}))
    registered.run_until_idle()
    # The SDK client double-encodes the event, and the extension keeps it as a JSON
    # string (HttpApiHandler raise event, ConvertToJToken): the orchestrator gets a str.
    assert registered.status("local-2")["output"] == json.dumps({"v": 3})
    with pytest.raises(Exception, match="not found|gone"):
        asyncio.run(client.raise_event("local-2", "Answer", 4))


def test_unregistered_endpoint_goes_over_http(features):
    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(client_for(UNREACHABLE).get_status("anything"))
    client_transport.serve_in_process(UNREACHABLE, features.api)
    client_transport.stop_serving(features.api)
    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(client_for(UNREACHABLE).get_status("anything"))
