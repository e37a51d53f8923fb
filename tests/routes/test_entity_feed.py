"""How the inbox and the analytics follow an entity's change feed (``EntityFeed``): what
each read asks the Durable backend for, and a read that fails."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web

from routes import inbox_index
from routes.inbox_index import OVERLAP, EntityFeed, EntityQueryFailed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def follow_a_backend(answers, check):
    """Serve ``answers`` (status, rows) in turn at /entities/<name>, run ``check(feed,
    base_url, asked)`` and return what it returns; ``asked`` collects each request's query."""
    async def scenario():
        asked = []

        async def entities(request):
            asked.append(dict(request.query))
            status, rows = answers.pop(0)
            return web.json_response(rows, status=status)

        app = web.Application()
        app.router.add_get("/entities/{name}", entities)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await check(f"http://127.0.0.1:{port}/", asked)
        finally:
            await runner.cleanup()
    return asyncio.run(scenario())


def test_the_first_read_starts_where_the_index_says_and_later_ones_overlap_the_last(monkeypatch):
    monkeypatch.setattr(inbox_index, "FRESH_SECONDS", 0)  # every follow reads
    clock = iter([NOW, NOW + timedelta(minutes=5)])
    feed = EntityFeed("review_card", lambda: next(clock), first_since=lambda now: now - timedelta(hours=1))
    row = {"entityId": {"name": "review_card", "key": "review-1"}, "state": '{"topic": "t"}'}

    async def check(base, asked):
        seen = []
        await feed.follow(base, lambda key, state: seen.append((key, state)))
        await feed.follow(base, lambda key, state: seen.append((key, state)))
        return seen, asked

    seen, asked = follow_a_backend([(200, [row]), (200, [])], check)
    assert seen == [("review-1", {"topic": "t"})]
    assert [q["lastOperationTimeFrom"] for q in asked] == [
        (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        (NOW - OVERLAP).strftime("%Y-%m-%dT%H:%M:%S.%fZ")]


def test_a_read_that_fails_is_an_entity_query_failure_and_the_next_starts_where_it_did(monkeypatch):
    monkeypatch.setattr(inbox_index, "FRESH_SECONDS", 0)
    feed = EntityFeed("review_stats", lambda: NOW)  # no first_since: every entity

    async def check(base, asked):
        with pytest.raises(EntityQueryFailed, match="answered 500"):
            await feed.follow(base, lambda key, state: None)
        await feed.follow(base, lambda key, state: None)
        with pytest.raises(EntityQueryFailed, match="ClientConnectorError"):
            await feed.follow("http://127.0.0.1:1/", lambda key, state: None)  # nothing listens
        return asked

    asked = follow_a_backend([(500, {"error": "down"}), (200, [])], check)
    assert ["lastOperationTimeFrom" in q for q in asked] == [False, False]
