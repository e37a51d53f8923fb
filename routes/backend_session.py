"""The HTTP session for the app's own reads of the Durable backend: the status query's
pages (the pending list) and the entity query's (the inbox's cards), which the SDK's
client cannot page.

One session for the worker's life, as the SDK keeps one for its own calls to the
extension's local endpoint (``azure.durable_functions.models.utils.http_utils``) and as
Azure's guidance on managing connections asks of a function app: its connections are
kept alive and reused, where a session per call opened and closed a loopback connection
for every page.

A session belongs to the event loop that made it. The Python worker runs one loop for
its life; a process that runs several (tests, each with its own loop or its own host, on
one thread or several) gets one session per loop. A session whose loop has closed is
marked closed on the next read. Its connections are not closed then (a closed loop cannot
run that): the backend closes them when it stops, so a host that stops its server before
its worker's loop, as the devhost does, leaves none open.
"""
from __future__ import annotations

import asyncio
import threading

import aiohttp

from shared_code import fast_json

# The budget of each backend read, connection to last byte (the session's default).
READ_TIMEOUT = aiohttp.ClientTimeout(total=30)

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
# Loops on other threads read and change the table too.
_sessions_lock = threading.Lock()


async def backend_session() -> aiohttp.ClientSession:
    """The running loop's session, made on first use."""
    loop = asyncio.get_running_loop()
    with _sessions_lock:
        ended = [_sessions.pop(other) for other in list(_sessions) if other.is_closed()]
        session = _sessions.get(loop)
        if session is None or session.closed:
            session = _sessions[loop] = aiohttp.ClientSession(timeout=READ_TIMEOUT)
    for stale in ended:
        # With its loop closed, closing cannot wait on anything: it marks the session
        # closed, so that it is not reported as left open.
        await stale.close()
    return session


async def reply_json(reply: aiohttp.ClientResponse):
    """A backend reply's JSON, read as ``reply.json(content_type=None)`` reads it (an
    empty body is None; the text decoded by the reply's charset, UTF-8 unless it names
    another; ValueError when it is not JSON), through shared_code.fast_json: a page of
    statuses is the largest document the app parses."""
    body = (await reply.read()).strip()
    return fast_json.parse(body.decode(reply.get_encoding())) if body else None
