"""The HTTP session for the app's own reads of the Durable backend: the status query's
pages (the pending list) and the entity query's (the inbox's cards), which the SDK's
client cannot page.

One session for the worker's life, as the SDK keeps one for its own calls to the
extension's local endpoint (``azure.durable_functions.models.utils.http_utils``) and as
Azure's guidance on managing connections asks of a function app: its connections are
kept alive and reused, where a session per call opened and closed a loopback connection
for every page.

A session belongs to the event loop that made it. The Python worker runs one loop for
its life; a process that runs several (tests, each with its own loop or its own host)
gets one session per loop, and a session whose loop has closed is closed on the next read.
"""
from __future__ import annotations

import asyncio

import aiohttp

# The budget of one backend read, connection to last byte.
READ_TIMEOUT = aiohttp.ClientTimeout(total=30)

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


async def backend_session() -> aiohttp.ClientSession:
    """The running loop's session, made on first use."""
    loop = asyncio.get_running_loop()
    for ended in [other for other in _sessions if other.is_closed()]:
        # Closing marks it closed (its loop can no longer run the connections' close;
        # the backend has closed them by now), so it is not reported as left open.
        await _sessions.pop(ended).close()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = _sessions[loop] = aiohttp.ClientSession(timeout=READ_TIMEOUT)
    return session
