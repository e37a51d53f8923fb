"""The app's own Durable client calls, answered in process.

On Azure the worker's ``DurableOrchestrationClient`` sends every call over HTTP to the
Durable extension's private endpoint in the same host (the binding's ``rpcBaseUrl``,
``http://127.0.0.1:17071/durabletask/``). The devhost's binding points ``rpcBaseUrl`` at
itself, and calls the SDK makes to a URL registered here are handed straight to the
``DurableApi`` handlers: the SDK still builds every URL and body and reads every status
code and payload exactly as over HTTP; only the socket, the request parsing and the reply
encoding are skipped. A URL that is not registered goes to the SDK's own aiohttp
functions, so a host started with ``client_over_http`` (or any other endpoint) is called
over real HTTP.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from . import sdk_seams
from .durable_api import WEBHOOK_PREFIX, DurableApi

_endpoints: dict[str, DurableApi] = {}  # "host:port" -> the API that answers there
_install_lock = threading.Lock()
_installed = False
_METHODS = {"post_async_request": "POST", "get_async_request": "GET", "delete_async_request": "DELETE"}


def serve_in_process(netloc: str, api: DurableApi) -> None:
    """Answer client calls to ``http://<netloc>/runtime/webhooks/durabletask/...`` with ``api``."""
    _install()
    with _install_lock:  # hosts register from their server's thread and their worker's
        _endpoints[netloc] = api


def stop_serving(api: DurableApi) -> None:
    with _install_lock:
        for netloc in [n for n, a in _endpoints.items() if a is api]:
            del _endpoints[netloc]


def _install() -> None:
    # The client copies these module functions onto each instance it builds, so replacing
    # them once covers every client the app creates from now on.
    global _installed
    with _install_lock:
        if not _installed:
            sdk_seams.replace_client_requests(_routed)
            _installed = True


def _routed(name: str, over_http: Callable) -> Callable:
    method = _METHODS[name]

    async def request(url: str, *args, **kwargs):
        answered = await _answer(method, url, args[0] if method == "POST" and args else kwargs.get("data"))
        if answered is None:
            return await over_http(url, *args, **kwargs)
        if method == "GET" and answered[1] is None:
            answered[1] = ""  # what the SDK's get_async_request makes of an empty body
        return answered
    request.__name__ = name
    return request


async def _answer(method: str, url: str, data: Any) -> Optional[list]:
    parts = urlsplit(url)
    api = _endpoints.get(parts.netloc)
    if api is None or parts.scheme != "http" or not parts.path.startswith(WEBHOOK_PREFIX + "/"):
        return None
    # aiohttp's json= serializes the value and sets the JSON content type; no value, no body.
    body = b"" if data is None else json.dumps(data).encode("utf-8")
    headers = {"content-type": "application/json"} if data is not None else {}
    reply = await api.handle(method, parts.path[len(WEBHOOK_PREFIX):], f"http://{parts.netloc}",
                             parts.query, headers, body)
    return [reply.status, None if reply.empty else reply.value()]
