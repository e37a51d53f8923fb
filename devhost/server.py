"""The aiohttp application: the Durable HTTP API plus the app's HTTP functions."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Optional

from aiohttp import web

from . import sdk_seams
from .durable_api import WEBHOOK_PREFIX, ApiReply, DurableApi
from .function_routes import FunctionRoutes

MAX_REQUEST_BYTES = 1024 * 1024


def build_web_app(api: DurableApi, functions: FunctionRoutes) -> web.Application:
    async def serve_api(request: web.Request) -> web.Response:
        raw_path, _, raw_query = request.raw_path.partition("?")
        body = await request.read()
        reply = await api.handle(request.method, raw_path[len(WEBHOOK_PREFIX):],
                                 f"{request.scheme}://{request.host}", raw_query, request.headers, body)
        return _to_response(reply)

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_route("*", WEBHOOK_PREFIX + "/{tail:.*}", serve_api)
    app.router.add_route("*", "/{tail:.*}", functions.handle)
    return app


def _to_response(reply: ApiReply) -> web.Response:
    if reply.empty:
        return web.Response(status=reply.status, headers=reply.headers)
    return web.json_response(reply.payload, status=reply.status, headers=reply.headers,
                             dumps=_compact_json)


def _compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class ServerThread:
    """Serves an aiohttp application from a background thread with its own event loop."""

    def __init__(self, app: web.Application, host: str, port: int, reuse_port: bool = False):
        self.app, self.host, self.port, self.reuse_port = app, host, port, reuse_port
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="host loop", daemon=True)

    def start(self) -> int:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error:
            raise self._error
        return self.port

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._open())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        await self._runner.cleanup()
        await sdk_seams.reset_client_session()

    def stop(self) -> None:
        if self.loop is None or not self.loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
