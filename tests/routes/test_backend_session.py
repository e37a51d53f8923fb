"""The app's own reads of the Durable backend share one kept-alive session per event loop
(routes/backend_session.py)."""
from __future__ import annotations

import asyncio
import sys
import threading

from aiohttp import web

from routes import backend_session as sessions
from routes.inbox_index import changed_entities
from routes.review_client import REVIEW_ORCHESTRATOR, ReviewClient


class Backend:
    """A local stand-in for the extension's status and entity queries that records which
    connection each request came on."""

    def __init__(self):
        self.peers: list = []
        self.runner = None
        self.base_url = ""

    async def start(self) -> "Backend":
        async def instances(request):
            self.peers.append(request.transport.get_extra_info("peername"))
            row = {"name": REVIEW_ORCHESTRATOR, "instanceId": "review-1", "runtimeStatus": "Running",
                   "customStatus": None, "output": None, "createdTime": None, "lastUpdatedTime": None}
            return web.json_response([row], headers={"x-ms-continuation-token": "next"})

        async def entities(request):
            self.peers.append(request.transport.get_extra_info("peername"))
            return web.json_response([{"entityId": {"name": "review_card", "key": "review-1"}, "state": {}}])

        app = web.Application()
        app.router.add_get("/instances/", instances)
        app.router.add_get("/entities/{name}", entities)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/"
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()


class Client:
    """What ReviewClient needs of the SDK's client: the backend's base URL."""

    def __init__(self, base_url: str):
        self._orchestration_bindings = type("Bindings", (), {"rpc_base_url": base_url})()


def test_pages_and_entity_reads_reuse_one_connection():
    async def scenario():
        backend = await Backend().start()
        try:
            client = ReviewClient(Client(backend.base_url))
            for _ in range(3):
                reviews, token = await client.running_reviews(100, "")
                assert [r.instance_id for r in reviews] == ["review-1"] and token == "next"
            for _ in range(2):
                pages = [page async for page in changed_entities(backend.base_url, "review_card", None)]
                assert pages == [[("review-1", {})]]
            return backend.peers
        finally:
            await backend.stop()

    peers = asyncio.run(scenario())
    assert len(peers) == 5
    assert len(set(peers)) == 1, f"each read opened a connection of its own: {peers}"


def test_each_loop_has_its_session_and_one_whose_loop_closed_is_closed_at_the_next_read():
    async def read_once():
        backend = await Backend().start()
        try:
            await ReviewClient(Client(backend.base_url)).running_reviews(10, "")
            return await sessions.backend_session()
        finally:
            await backend.stop()

    first = asyncio.run(read_once())
    assert not first.closed  # kept for its loop's life
    second = asyncio.run(read_once())
    assert second is not first
    assert first.closed
    kept = list(sessions._sessions.values())
    assert second in kept and first not in kept


def test_loops_on_several_threads_get_their_sessions_at_once():
    """Two hosts in one process each run their worker's loop on a thread of its own."""
    failures = []

    async def reads():
        for _ in range(20):
            await sessions.backend_session()

    def loops():
        try:
            for _ in range(150):
                asyncio.run(reads())
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            failures.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often, as under load
    try:
        threads = [threading.Thread(target=loops) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


def test_a_reply_is_decoded_by_the_charset_it_names():
    """reply_json reads a body as aiohttp's reply.json(content_type=None) did: decoded by
    the reply's charset (UTF-8 unless it names another), an empty body as None."""
    async def scenario():
        async def latin(request):
            return web.Response(body='["café"]'.encode("iso-8859-1"), content_type="application/json",
                                charset="iso-8859-1")

        async def empty(request):
            return web.Response(body=b"  ", content_type="application/json")

        app = web.Application()
        app.router.add_get("/latin", latin)
        app.router.add_get("/empty", empty)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            session = await sessions.backend_session()
            async with session.get(f"{base}/latin") as reply:
                latin_rows = await sessions.reply_json(reply)
            async with session.get(f"{base}/empty") as reply:
                nothing = await sessions.reply_json(reply)
            await session.close()
        finally:
            await runner.cleanup()
        return latin_rows, nothing

    assert asyncio.run(scenario()) == (["café"], None)
