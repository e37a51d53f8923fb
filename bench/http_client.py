"""A minimal HTTP/1.1 client over asyncio streams, with keep-alive connections, that times
every request under a route name.

The client shares the machine's cores with the host it measures, so it should cost as
little as possible: this one spends a small fraction of a general-purpose client's CPU per
request (docs/PERFORMANCE.md). It speaks only what the devhost answers: JSON bodies, a
Content-Length or chunked reply, keep-alive unless the server says ``Connection: close``.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from bench.stats import Recorder

# A request that gets no answer in this long counts as an error, so no loop waits forever.
REQUEST_TIMEOUT_S = 30.0

NO_REPLY = 0    # Reply.status when a request was sent and no reply came
NOT_SENT = -1   # Reply.status when no connection could be made


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict = field(default_factory=dict)


class Client:
    """Times each request under a route name; a failed exchange comes back with status
    NO_REPLY or NOT_SENT instead of raising, so callers decide what a failure means."""

    def __init__(self, base_url: str, recorder: Recorder, connections: int):
        self.base_url, self.recorder = base_url, recorder
        address = base_url.split("://", 1)[1].rstrip("/")
        self._host, port = address.rsplit(":", 1)
        self._port = int(port)
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def request(self, route: str, method: str, path: str, body: Any = None,
                      record: bool = True, headers: Optional[dict] = None) -> Reply:
        """Send one request; a JSON ``body`` goes with ``Content-Type: application/json``."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}",
                f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        started = time.perf_counter()
        async with self._slots:
            try:
                connection = self._idle_connection() or await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError) as exc:
                # Refused or unreachable: the request never left, so it cannot have taken effect.
                return Reply(NOT_SENT, f"{type(exc).__name__}: {exc}")
            try:
                status, reply_headers, raw, keep = await asyncio.wait_for(
                    self._exchange(connection, message), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, ValueError) as exc:
                # Sent, and no answer came back: it may or may not have taken effect.
                connection[1].close()
                return Reply(NO_REPLY, f"{type(exc).__name__}: {exc}")
            if keep:
                self._idle.append(connection)
            else:
                connection[1].close()
        if record:
            self.recorder.record(route, (time.perf_counter() - started) * 1000)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return Reply(status, parsed, reply_headers)

    def _idle_connection(self):
        """A kept-alive connection the server has not closed meanwhile (it may have restarted)."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    @staticmethod
    async def _exchange(connection, message: bytes):
        reader, writer = connection
        writer.write(message)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                raw += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, raw, headers.get("connection", "").lower() != "close"
