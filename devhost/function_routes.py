"""HTTP-triggered functions: route matching, the host's half of the HTTP binding (the
request as the Functions host sends it to the worker, the worker's answer as the host
writes it out) and the durable client binding."""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timezone
from html import escape
from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qsl, quote, unquote

from aiohttp import web
from multidict import CIMultiDict

from . import client_transport
from .dashboard import DASHBOARD_PATH
from .durable_api import WEBHOOK_PREFIX, DurableApi
from .python_worker import new_invocation_id, succeeded
from .registry import HttpFunction
from .storage import StoreError
from .worker_protocol import InvocationResponse, ParameterBinding, RpcHttp, RpcHttpCookie, TypedData

log = logging.getLogger("devhost")
MAX_CACHED_BINDINGS = 64

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([^}?]*))?(\??)\}")
# ASP.NET route constraints that decide whether a route matches at all; a request that
# breaks one gets a 404, as on Azure, instead of reaching the function.
_CONSTRAINTS = {
    "int": r"-?\d+", "long": r"-?\d+", "alpha": r"[A-Za-z]+", "bool": r"(?i:true|false)",
    "decimal": r"-?\d+(?:\.\d+)?", "double": r"-?\d+(?:\.\d+)?", "float": r"-?\d+(?:\.\d+)?",
    "guid": r"\{?[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}\}?",
}


def route_pattern(template: str) -> re.Pattern:
    """Compile a Functions route template (``a/{id}``, ``{id?}``, ``{id:int}``, ``{*rest}``)."""
    pattern, position = "", 0
    for match in _PARAM.finditer(template):
        literal = re.escape(template[position:match.start()])
        catch_all, name, constraint, optional = match.groups()
        body = ".*" if catch_all else _CONSTRAINTS.get((constraint or "").lower(), "[^/]+")
        if optional or catch_all:
            if literal.endswith("/"):
                literal = literal[:-1]
                pattern += f"{literal}(?:/(?P<{name}>{body}))?"
            else:
                pattern += f"{literal}(?P<{name}>{body})?"
        else:
            pattern += f"{literal}(?P<{name}>{body})"
        position = match.end()
    pattern += re.escape(template[position:])
    return re.compile(f"^{pattern}/?$", re.IGNORECASE)


@dataclass
class _Route:
    function: HttpFunction
    pattern: re.Pattern


def netloc(address: str, port: int) -> str:
    """``host:port`` for a URL, an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class FunctionRoutes:
    def __init__(self, functions: list[HttpFunction], route_prefix: str, api: DurableApi,
                 client_over_http: bool = False):
        self.prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
        self.api = api
        self.hub_name = api.task_hub
        self.client_over_http = client_over_http
        self._bindings: dict[tuple[str, str, str], str] = {}
        # Literal routes win over parameterised ones, as in ASP.NET routing.
        ordered = sorted(functions, key=lambda f: (f.route.count("{"), -len(f.route)))
        self.routes = [_Route(f, route_pattern(f.route)) for f in ordered]

    def _a_function_serves_the_root(self) -> bool:
        return not self.prefix and any(route.pattern.match("") for route in self.routes)

    def start_page(self, request: web.Request) -> web.Response:
        """What ``GET /`` shows when no function serves it: the way to the dashboard, the
        app's routes (those a browser can open as links), the Durable HTTP API, and how
        many instances of each orchestration there are in each runtime status."""
        base = f"{request.scheme}://{request.host}"
        rows = []
        for route in self.routes:
            function = route.function
            url = f"{self.prefix}/{function.route}"
            openable = "GET" in function.methods and "{" not in function.route
            shown = f'<a href="{escape(base + url)}">{escape(url)}</a>' if openable else escape(url)
            rows.append(f"<tr><td>{escape(', '.join(function.methods))}</td><td>{shown}</td>"
                        f"<td>{escape(function.name)}</td></tr>")
        try:
            counts = "".join(f"<li>{escape(name)}: {count} {escape(status)}</li>"
                             for name, status, count in self.api.engine.instance_counts()) or "<li>none yet</li>"
        except StoreError as exc:
            log.error("start page: %s", exc)
            counts = "<li>the state cannot be read just now; see the host log</li>"
        instances = f"{base}{WEBHOOK_PREFIX}/instances"
        body = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>devhost</title>"
                f"<style>{_START_PAGE_STYLE}</style></head><body><main><h1>devhost</h1>"
                f"<p>Azure Functions (Python, Durable) on a local host. Function keys are not "
                f"required here, as with <code>func start</code>.</p>"
                f"<p><a href=\"{DASHBOARD_PATH}\">Open the dashboard</a>: the instances, each one's "
                f"timeline and history, and the entities.</p><h2>Functions</h2><table>"
                f"<tr><th>Methods</th><th>Route</th><th>Function</th></tr>{''.join(rows)}</table>"
                f"<h2>Instances</h2><ul>{counts}</ul><p>Durable HTTP API: "
                f"<a href=\"{escape(instances)}\">{escape(instances)}</a></p></main></body></html>")
        return web.Response(text=body, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                                     "Cache-Control": "no-store"})

    def describe(self, base_url: str) -> list[str]:
        return [f"{f.function.name}: [{','.join(f.function.methods)}] {base_url}{self.prefix}/{f.function.route}"
                for f in self.routes]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Match on the raw path and decode each value after, as ASP.NET routing does: an
        # encoded '/' stays inside its segment instead of creating a new one.
        path = request.raw_path.split("?", 1)[0]
        if path == "/" and request.method in ("GET", "HEAD") and not self._a_function_serves_the_root():
            return self.start_page(request)
        if self.prefix and not path.lower().startswith(self.prefix.lower() + "/"):
            return web.json_response({"error": "not found"}, status=404)
        relative = path[len(self.prefix) + 1:] if self.prefix else path.lstrip("/")
        matches = [(r, m) for r in self.routes if (m := r.pattern.match(relative))]
        if not matches:
            return web.json_response({"error": f"no function serves {path}"}, status=404)
        allowed = [(r, m) for r, m in matches if request.method in r.function.methods]
        if not allowed:
            methods = sorted({m for r, _ in matches for m in r.function.methods})
            return web.json_response({"error": f"method {request.method} is not allowed here"},
                                     status=405, headers={"Allow": ", ".join(methods)})
        route, match = allowed[0]
        params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        # The host passes a body only when the request says how long it is (ToRpcHttp:
        # ContentLength > 0): a chunked body reaches the function as no body.
        body = b""
        if request.content_length:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return web.json_response(
                    {"error": f"request body too large: the limit is {request.client_max_size} bytes"},
                    status=413)
        return await self._invoke(route.function, request, params, body)

    async def _invoke(self, function: HttpFunction, request: web.Request, params: dict,
                      body: bytes) -> web.Response:
        started, invocation_id = time.perf_counter(), new_invocation_id()
        inputs = [ParameterBinding(name=function.request_param,
                                   data=TypedData(http=rpc_http(request, params, body)))]
        if function.client_param:
            inputs.append(ParameterBinding(name=function.client_param,
                                           data=TypedData(string=self._client_binding_json(request))))
        response = await function.function.invoke(inputs, invocation_id)
        if succeeded(response):
            reply, outcome = http_reply(response, function.response_param), "Succeeded"
        else:
            # The function failed: the host answers 500 with no body (ExceptionMiddleware).
            exception = response.result.exception
            log.error("Function '%s' failed (Id=%s): %s\n%s", function.name, invocation_id,
                      exception.message, exception.stack_trace.rstrip())
            reply, outcome = web.Response(status=500), "Failed"
        log.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%.0fms)", function.name, outcome,
                 invocation_id, (time.perf_counter() - started) * 1000)
        return reply

    def _client_binding_json(self, request: web.Request) -> str:
        # The binding depends only on how the request reached the host; the cache is
        # bounded because the Host header is the caller's to choose.
        return self.client_binding_text(request.scheme, request.host, self._rpc_netloc(request))

    def client_binding_text(self, scheme: str, host: str, rpc_netloc: str) -> str:
        """``client_binding`` as the compact JSON text a function is given; the app's calls
        to ``rpc_netloc`` are answered in process unless the host was told otherwise."""
        key = (scheme, host, rpc_netloc)
        text = self._bindings.get(key)
        if text is None:
            if len(self._bindings) >= MAX_CACHED_BINDINGS:
                self._bindings.clear()
            if not self.client_over_http:
                client_transport.serve_in_process(key[2], self.api)
            # BindingHelper.DurableOrchestrationClientToString: JsonConvert.SerializeObject, compact.
            text = self._bindings[key] = json.dumps(self.client_binding(*key), separators=(",", ":"))
        return text

    def client_binding(self, scheme: str, host: str, rpc_netloc: str) -> dict:
        """The JSON the Durable extension passes to a ``durableClient`` binding
        (BindingHelper.DurableOrchestrationClientToString; nulls included). The devhost
        has no system key, so every ``code=`` is empty, as with Core Tools."""
        base = f"{scheme}://{host}"
        webhooks = f"{base}{WEBHOOK_PREFIX}"
        create = webhooks + "/orchestrators/{functionName}[/{instanceId}]"
        return {
            "taskHubName": self.hub_name,
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": create + "?",
                "createAndWaitOnNewInstancePostUri":
                    create + "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&",
            },
            "managementUrls": self.api.management_urls(base, "INSTANCEID", with_rewind=True),
            "baseUrl": webhooks,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": f"http://{rpc_netloc}{WEBHOOK_PREFIX}/",
            "httpBaseUrl": None,
        }

    @staticmethod
    def _rpc_netloc(request: web.Request) -> str:
        """This host as the connection reached it: private and always reachable from here,
        whatever Host header or proxy the caller went through (the extension's rpcBaseUrl
        is a loopback address too)."""
        address, port = request.transport.get_extra_info("sockname")[:2]
        return netloc(address, port)

    def close(self) -> None:
        client_transport.stop_serving(self.api)


_START_PAGE_STYLE = ("body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1f}"
                     "table{border-collapse:collapse}td,th{padding:.3rem .8rem;text-align:left;"
                     "border-bottom:1px solid #ddd}code{background:#eee;padding:0 .2rem}")


def rpc_http(request: web.Request, route_params: dict, body: bytes) -> RpcHttp:
    """The request as the Functions host hands it to the Python worker
    (GrpcMessageConversionExtensions.ToRpcHttp, with the capabilities the worker
    announces): header names lowercased, and a name sent several times has its values
    joined with commas (StringValues.ToString), query values likewise, and a query key
    whose value is empty is left out; the body as bytes (RawHttpBodyBytes), when there is one.
    ASP.NET Core's query collection (KeyValueAccumulator) matches keys ignoring case and
    keeps the spelling it met first."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    spellings: dict[str, str] = {}
    for name, value in parse_qsl(request.query_string, keep_blank_values=True):
        name = spellings.setdefault(name.lower(), name)
        query[name] = f"{query[name]},{value}" if name in query else value
    return RpcHttp(method=request.method, url=str(request.url), headers=headers,
                   query={k: v for k, v in query.items() if v}, params=route_params,
                   body=TypedData(bytes=body) if body else None)


def http_reply(response: InvocationResponse, response_param: Optional[str]) -> web.Response:
    """The worker's answer as the host writes it out: the ``$return`` value, or a v1
    app's named ``http`` output; a plain 200 when the function gave none."""
    if response_param is None:
        data = response.return_value
    else:
        data = next((b.data for b in response.output_data if b.name == response_param), None)
    kind = data.WhichOneof("data") if data is not None else None
    if kind is None:
        return web.Response(status=200)
    if kind != "http":  # the worker's converter returns a plain string as it is
        return web.Response(status=200, text=str(getattr(data, kind)), content_type="text/plain",
                            charset="utf-8")
    return _written_response(data.http)


def _written_response(http: RpcHttp) -> web.Response:
    """RawScriptResult.ExecuteResultAsync: each header as named, except content-type,
    which sets the response's ContentType (written ``Content-Type``), and each cookie as a
    Set-Cookie header (GrpcMessageExtensionUtilities.RpcHttpCookieConverter, then ASP.NET
    Core's ResponseCookies.Append)."""
    headers = CIMultiDict()
    for name, value in http.headers.items():
        if name.lower() == "content-type":
            headers["Content-Type"] = value
        elif name.lower() != "content-length":
            headers[name] = value
    for cookie in http.cookies:
        headers.add("Set-Cookie", set_cookie_header(cookie))
    body = getattr(http.body, http.body.WhichOneof("data") or "bytes", None) or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return web.Response(status=int(http.status_code or 200), body=body, headers=headers)


# RpcHttpCookie.SameSite as ASP.NET Core writes it (SameSiteMode; None is Unspecified: left out).
_SAME_SITE = {RpcHttpCookie.SameSite.Lax: "lax", RpcHttpCookie.SameSite.Strict: "strict",
              RpcHttpCookie.SameSite.ExplicitNone: "none"}


def set_cookie_header(cookie: RpcHttpCookie) -> str:
    """ResponseCookies.Append: the value URL-escaped (Uri.EscapeDataString), the path "/"
    unless one is given (CookieOptions' default), then SetCookieHeaderValue's order."""
    parts = [f"{cookie.name}={quote(cookie.value, safe='-_.~')}"]
    if cookie.expires is not None:
        expires = datetime.fromtimestamp(cookie.expires.value.seconds, timezone.utc)
        parts.append("expires=" + expires.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    if cookie.max_age is not None:
        parts.append(f"max-age={int(cookie.max_age.value)}")
    if cookie.domain is not None:
        parts.append(f"domain={cookie.domain.value}")
    parts.append(f"path={cookie.path.value if cookie.path is not None else '/'}")
    if cookie.secure is not None and cookie.secure.value:
        parts.append("secure")
    if cookie.same_site in _SAME_SITE:
        parts.append(f"samesite={_SAME_SITE[cookie.same_site]}")
    if cookie.http_only is not None and cookie.http_only.value:
        parts.append("httponly")
    return "; ".join(parts)
