"""What the app's ReviewClient asks of the SDK's Durable client, answered by an in-process
devhost (``devhost.testing.TestingHost``), so a test can run a route's delivery and reading
against a review it steps one episode at a time."""
from __future__ import annotations

from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus


class HostDurableClient:
    def __init__(self, host):
        self.host = host

    async def get_status(self, instance_id, **_):
        return DurableOrchestrationStatus.from_json(self.host.status(instance_id))

    async def raise_event(self, instance_id, name, data):
        self.host.raise_event(instance_id, name, data)
