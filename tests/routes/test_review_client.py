"""The one SDK internal the app reads: the binding's rpcBaseUrl, to page through reviews."""
from __future__ import annotations

import json

import azure.durable_functions as df

from routes.review_client import _rpc_base_url, new_review_id


def test_the_sdk_client_keeps_the_bindings_rpc_base_url():
    binding = {"taskHubName": "hub", "creationUrls": {}, "managementUrls": {},
               "baseUrl": "http://x/runtime/webhooks/durabletask",
               "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/", "requiredQueryStringParameters": ""}
    assert _rpc_base_url(df.DurableOrchestrationClient(json.dumps(binding))) == binding["rpcBaseUrl"]


def test_review_ids_sort_by_start_time():
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=timezone.utc)
    ids = [new_review_id(start + timedelta(microseconds=n)) for n in range(3)]
    assert ids == sorted(ids) and all(i.startswith("review-20260301T") for i in ids)
