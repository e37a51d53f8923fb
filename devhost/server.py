"""The aiohttp application: the Durable HTTP API plus the app's HTTP functions.

Which requests it answers at all (``HostPolicy``)
--------------------------------------------------
A page on any web site can make the browser send requests to ``http://127.0.0.1:7071``,
and with DNS rebinding (a name of the attacker's that resolves to 127.0.0.1 a moment
later) it can read the replies too: ``/api/hitl/pending`` carries review links. As the
Vite and webpack dev servers do, a devhost that listens on a loopback address therefore
answers only requests whose ``Host`` is a loopback name: ``localhost`` (and names under
``.localhost``), ``127.0.0.1`` (any 127.x.y.z) or ``[::1]``, with any port, plus the names
given with ``--allowed-host`` or ``DEVHOST_ALLOWED_HOSTS``. Any other gets 403. A rebound
name never reaches a handler, so no unchecked ``Host`` ends up in ``statusQueryGetUri``,
``Location`` or the app's links. Listening on another address (``--host 0.0.0.0``) is a
choice to be reached by other names, and then any ``Host`` is answered.

A cross-site form or ``fetch`` can still POST without reading the reply. Every request
that can change state (anything but GET, HEAD and OPTIONS) that carries an ``Origin``
header must come from this origin or from an allowed host, or it gets 403. Requests
without ``Origin`` (curl, the SDK, the devhost's own client) are not browser requests
from another site and pass. The app's JSON routes also require ``application/json``,
which a cross-site form cannot send without a preflight the devhost never grants.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import threading
from typing import Iterable, Optional
from urllib.parse import urlsplit

from aiohttp import web

from .dashboard import Dashboard
from .durable_api import WEBHOOK_PREFIX, ApiReply, DurableApi
from .function_routes import FunctionRoutes

MAX_REQUEST_BYTES = 1024 * 1024
ALLOWED_HOSTS_ENV = "DEVHOST_ALLOWED_HOSTS"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SHOWN_HOST_CHARS = 100
_HOST_NAME = re.compile(r"^\.?(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                        r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")

def env_allowed_hosts(env=os.environ) -> tuple[str, ...]:
    return tuple(normalized_allowed_host(part) for part in env.get(ALLOWED_HOSTS_ENV, "").split(",")
                 if part.strip())


def normalized_allowed_host(name: str) -> str:
    """An allowed-host entry in the form ``HostPolicy`` compares: lower case, no port, no
    brackets, no trailing dot. ``.example.com`` allows that name and every name under it;
    ``*`` allows every name. ValueError for anything that is not a host name or address."""
    text = name.strip().lower()
    if text == "*":
        return text
    host, _ = split_host(text)
    if host is None or not (_HOST_NAME.match(host) or _ip(host)):
        raise ValueError(f"not a host name or address: {name!r}")
    return host


def split_host(value: str) -> tuple[Optional[str], Optional[str]]:
    """(host, port) of a Host header value, the host lower-cased without brackets or a
    trailing dot; (None, None) when it is not of the form host[:port]."""
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not re.fullmatch(r":\d{1,5}", rest)):
            return None, None
        return host, rest[1:] or None
    if value.count(":") > 1:  # an IPv6 address without brackets, or nothing valid
        return (value, None) if _ip(value) else (None, None)
    host, colon, port = value.rpartition(":") if ":" in value else (value, "", "")
    if colon and not re.fullmatch(r"\d{1,5}", port):
        return None, None
    host = host[:-1] if host.endswith(".") else host
    return (host, port or None) if host else (None, None)


def _ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_address(address: str) -> bool:
    ip = _ip(address.split("%", 1)[0])
    return ip is not None and (ip.is_loopback or getattr(ip, "ipv4_mapped", None) is not None
                               and ip.ipv4_mapped.is_loopback)


class HostPolicy:
    """Which ``Host`` and ``Origin`` values a devhost answers (see the module docstring).

    ``loopback_only`` says whether the server listens only on loopback addresses; the
    server thread sets it once it has bound its sockets. Until then the policy is strict.
    """

    def __init__(self, allowed_hosts: Iterable[str] = ()):
        self.allowed = tuple(dict.fromkeys(normalized_allowed_host(n) for n in allowed_hosts))
        self.loopback_only = True

    def host_allowed(self, host: Optional[str]) -> bool:
        """A host name (as ``split_host`` gives it) is a loopback name or an allowed one."""
        if not host:
            return False
        if host == "localhost" or host.endswith(".localhost") or is_loopback_address(host):
            return True
        for allowed in self.allowed:
            if allowed == "*" or host == allowed or (allowed.startswith(".") and
                                                    (host == allowed[1:] or host.endswith(allowed))):
                return True
        return False

    def refuse_host(self, request: web.Request) -> Optional[str]:
        """Why this request's Host is refused, or None when it is answered."""
        if not self.loopback_only:
            return None
        value = request.host  # the Host header, or the address the request arrived on
        host, _ = split_host(value)
        if self.host_allowed(host):
            return None
        return (f"Blocked request: this devhost does not answer for the host {_shown(value)}. "
                "It listens on a loopback address and answers only requests for localhost, "
                "127.0.0.1 or [::1] (DNS rebinding protection). To use another name, start it "
                f"with --allowed-host NAME or set {ALLOWED_HOSTS_ENV}=NAME.\n")

    def refuse_origin(self, request: web.Request) -> Optional[str]:
        """Why this cross-site browser request is refused, or None when it is answered."""
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if _same_origin(origin, request) or self.host_allowed(_origin_host(origin)):
            return None
        return (f"Blocked request: a {request.method} from another site (Origin {_shown(origin)}) "
                "is not accepted. Requests from this host's own pages, or without an Origin "
                "header (curl, scripts, the Durable SDK), are.\n")


def _origin_host(origin: str) -> Optional[str]:
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return split_host(parts.netloc)[0]


def _same_origin(origin: str, request: web.Request) -> bool:
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme != request.scheme or not parts.netloc:
        return False
    default = {"http": "80", "https": "443"}[request.scheme] if request.scheme in ("http", "https") else None
    theirs, ours = split_host(parts.netloc), split_host(request.host)
    return (theirs[0] is not None and theirs[0] == ours[0]
            and (theirs[1] or default) == (ours[1] or default))


def _shown(value: str) -> str:
    """A caller's header value in a refusal: printable, quoted, never very long."""
    text = "".join(c if c.isprintable() else "?" for c in value)
    if len(text) > SHOWN_HOST_CHARS:
        text = text[:SHOWN_HOST_CHARS - 1] + "…"
    return f'"{text}"'


def _refusal(message: str) -> web.Response:
    return web.Response(status=403, text=message, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


# aiohttp 3.9 added typed application keys; a plain string key works before it.
POLICY_KEY = web.AppKey("devhost_host_policy", HostPolicy) if hasattr(web, "AppKey") else "devhost_host_policy"


def build_web_app(api: DurableApi, functions: FunctionRoutes,
                  allowed_hosts: Iterable[str] = ()) -> web.Application:
    """The devhost's application. ``allowed_hosts``: names answered besides the loopback
    ones when listening on loopback (``--allowed-host``), added to DEVHOST_ALLOWED_HOSTS."""
    policy = HostPolicy([*allowed_hosts, *env_allowed_hosts()])

    @web.middleware
    async def check_host_and_origin(request: web.Request, handler):
        refusal = policy.refuse_host(request) or policy.refuse_origin(request)
        if refusal:
            return _refusal(refusal)
        return await handler(request)

    async def serve_api(request: web.Request) -> web.Response:
        raw_path, _, raw_query = request.raw_path.partition("?")
        body = await request.read()
        reply = await api.handle(request.method, raw_path[len(WEBHOOK_PREFIX):],
                                 f"{request.scheme}://{request.host}", raw_query, request.headers, body)
        return _to_response(reply)

    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[check_host_and_origin])
    app[POLICY_KEY] = policy
    app.router.add_route("*", WEBHOOK_PREFIX + "/{tail:.*}", serve_api)
    Dashboard(api).add_routes(app)
    app.router.add_route("*", "/{tail:.*}", functions.handle)
    return app


def _to_response(reply: ApiReply) -> web.Response:
    if reply.empty:
        return web.Response(status=reply.status, headers=reply.headers)
    return web.Response(text=reply.json_text(), status=reply.status, headers=reply.headers,
                        content_type="application/json")


# How long a stopping server lets the requests in flight finish (a long poll of the Durable
# API, a route waiting for its decision to be applied) before it cancels them: aiohttp
# waits up to this long for a handler, then as long again for the cancelled handler to end
# (its default is 60 s). ServerThread.stop waits STOP_SECONDS for the whole shutdown.
SHUTDOWN_GRACE_SECONDS = 3.0
STOP_SECONDS = 10.0


class ServerThread:
    """Serves an aiohttp application from a background thread with its own event loop."""

    def __init__(self, app: web.Application, host: str, port: int, reuse_port: bool = False,
                 shutdown_grace: float = SHUTDOWN_GRACE_SECONDS):
        self.app, self.host, self.port, self.reuse_port = app, host, port, reuse_port
        self.shutdown_grace = shutdown_grace
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
            try:
                self.loop.run_until_complete(self._open())
            except BaseException as exc:
                self._error = exc
                if self._runner is not None:
                    with contextlib.suppress(Exception):
                        self.loop.run_until_complete(self._runner.cleanup())
                return
            finally:
                self._ready.set()
            self.loop.run_forever()
        finally:
            # Closed here, once nothing runs on it: a loop left open is closed by the
            # collector, which may have finalized its wake-up socket first and then reports
            # "Invalid file descriptor: -1" from the loop's __del__.
            self.loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.shutdown_grace)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        addresses = self._runner.addresses
        self.port = addresses[0][1]
        policy = self.app.get(POLICY_KEY)
        if policy is not None:
            # Host checks only while every socket listens on a loopback address.
            policy.loopback_only = all(is_loopback_address(address[0]) for address in addresses)

    async def _close(self) -> None:
        await self._runner.cleanup()

    def stop(self) -> None:
        if self.loop is None or not self.loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=STOP_SECONDS)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=STOP_SECONDS)
