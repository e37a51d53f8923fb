"""The Functions host's half of the worker protocol, written for the differential tests
from azure-functions-host (commit 89dc438) and ASP.NET Core, on purpose without
devhost.function_routes: what the host sends the Python worker for an HTTP request, an
activity or an entity batch, and how it writes the worker's answer out.

The request is taken as it went over the wire (method, target, header lines, body), as
Kestrel hands it to ASP.NET Core; route values are given as ASP.NET routing finds them.
The Python worker announces ``RawHttpBodyBytes``, ``RpcHttpBodyOnly`` and
``RpcHttpTriggerMetadataRemoved`` and neither ``UseNullableValueDictionaryForHttp`` nor
``IgnoreEmptyValuedRpcHttpHeaders`` (azure_functions_runtime ``handle_event.worker_init_request``),
which decides the branches of ``ToRpcHttp`` taken below.
"""
from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional
from urllib.parse import quote, unquote_to_bytes

from devhost import worker_protocol as protocol

# RFC 3986 pchar and "/": what PathStringHelper.IsValidPathChar lets through unescaped.
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/")
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class WireRequest:
    method: str
    target: str                             # path and query, as sent
    headers: tuple[tuple[str, str], ...]    # every header line, in order, Host included
    body: bytes = b""
    chunked: bool = False                   # sent in chunks (Transfer-Encoding among the headers)
    scheme: str = "http"

    def header(self, name: str) -> Optional[str]:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass
class WrittenReply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)   # Set-Cookie lines included
    body: bytes = b""


def request_path(raw_path: str) -> str:
    """``HttpRequest.Path``: Kestrel decodes the percent-escapes of the path, all but the
    ones of "/" (``%2F`` stays, so a segment keeps its slash)."""
    decoded, index = bytearray(), 0
    while index < len(raw_path):
        escape = raw_path[index:index + 3]
        if len(escape) == 3 and escape[0] == "%" and set(escape[1:]) <= _HEX and escape[1:].upper() != "2F":
            decoded += unquote_to_bytes(escape)
            index += 3
        else:
            decoded += raw_path[index].encode("utf-8")
            index += 1
    return decoded.decode("utf-8", errors="replace")


def path_uri_component(path: str) -> str:
    """``PathString.ToUriComponent``: valid path characters and percent-escapes are kept,
    every other run of characters goes through ``Uri.EscapeDataString``."""
    out, index = [], 0
    while index < len(path):
        char = path[index]
        if char == "%" and set(path[index + 1:index + 3]) <= _HEX and len(path[index + 1:index + 3]) == 2:
            out.append(path[index:index + 3])
            index += 3
            continue
        out.append(char if char in _PATH_CHARS else quote(char, safe=""))
        index += 1
    return "".join(out)


def query_values(raw_query: str) -> dict[str, list[str]]:
    """``HttpRequest.Query``: ``QueryHelpers`` splits on "&" and the first "=", reads "+" as a
    space and unescapes; ``KeyValueAccumulator`` keeps a key's values under the spelling it
    first had, ignoring case (``StringComparer.OrdinalIgnoreCase``)."""
    values: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key, value = (unquote_to_bytes(part.replace("+", " ")).decode("utf-8", errors="replace")
                      for part in (key, value))
        known = spelling.setdefault(key.lower(), key)
        values.setdefault(known, []).append(value)
    return values


def to_rpc_http(request: WireRequest, route_values: dict[str, Optional[str]]) -> protocol.RpcHttp:
    """``GrpcMessageConversionExtensions.ToRpcHttp``: the URL from scheme, ``Host``, path and
    query string; each query key whose joined values (``StringValues.ToString``) are not
    empty; each header under its lowercased name, values joined; the route values that are
    not null; the body as bytes (``PopulateBody``, raw bytes requested) only when the
    request says how long it is and that is more than 0."""
    raw_path, _, raw_query = request.target.partition("?")
    url = f"{request.scheme}://{request.header('Host')}{path_uri_component(request_path(raw_path))}"
    url += f"?{raw_query}" if raw_query else ""
    query = {key: ",".join(values) for key, values in query_values(raw_query).items()}
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers.setdefault(name.lower(), []).append(value)
    length = int(request.header("Content-Length") or 0)
    body = protocol.TypedData(bytes=request.body) if length > 0 else None
    return protocol.RpcHttp(method=request.method, url=url,
                            query={k: v for k, v in query.items() if v},
                            headers={name: ",".join(values) for name, values in headers.items()},
                            params={k: v for k, v in route_values.items() if v is not None}, body=body)


def invocation_request(function_id: str, inputs: list[protocol.ParameterBinding]) -> protocol.StreamingMessage:
    """``ScriptInvocationContextExtensions.ToRpcInvocationRequest`` for a function without a
    retry policy (no ``RetryContext``): the invocation id is a new Guid, the trace context
    the current Activity's W3C id, no trace state. No trigger metadata: the HTTP request is
    left out (``RpcHttpTriggerMetadataRemoved``) and the Durable triggers' binding data are
    not read by the worker's converters."""
    trace_parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    return protocol.StreamingMessage(invocation_request=protocol.InvocationRequest(
        invocation_id=str(uuid.uuid4()), function_id=function_id, input_data=inputs,
        trace_context=protocol.RpcTraceContext(trace_parent=trace_parent, trace_state="")))


def entity_context(name: str, key: str, exists: bool, state: Optional[str], operations: list[dict]) -> str:
    """``EntityTriggerAttributeBindingProvider.EntityContextToString``: ``self``, ``exists``,
    ``state`` and ``batch`` (each operation's ``name``, ``input``, ``isSignal``)."""
    batch = [{"name": op["name"], "input": op.get("input"), "isSignal": op.get("isSignal", False)}
             for op in operations]
    return json.dumps({"self": {"name": name, "key": key}, "exists": exists, "state": state, "batch": batch},
                      indent=2, ensure_ascii=False)


def written_reply(response: protocol.InvocationResponse) -> WrittenReply:
    """What the caller gets. A failed invocation: 500, nothing written
    (``ExceptionMiddleware``). Otherwise the ``$return`` value through ``TypedData.ToObject``
    and ``HttpBinding.CreateResult`` into ``RawScriptResult.ExecuteResultAsync``."""
    if response.result.status != protocol.StatusResult.Success:
        return WrittenReply(500)
    data = response.return_value
    kind = data.WhichOneof("data") if data is not None else None
    if kind == "string":
        return _written_text(data.string)
    if kind != "http":
        raise NotImplementedError(f"a reply of kind {kind} is not modelled")
    http = data.http
    reply = WrittenReply(_status(http.status_code))
    for name, value in http.headers.items():
        if name.lower() == "content-type":
            reply.headers.append(("Content-Type", value))  # response.ContentType
        elif all(name.lower() != known.lower() for known, _ in reply.headers):
            reply.headers.append((name, value))
    reply.headers.extend(("Set-Cookie", set_cookie(cookie)) for cookie in http.cookies)
    body = http.body
    reply.body = body.bytes if body is not None and body.WhichOneof("data") == "bytes" else b""
    return reply


def _status(status_code: str) -> int:
    # HttpBinding.TryParseStatusCode: int.TryParse of the string, else 200.
    try:
        return int(status_code.strip())
    except ValueError:
        return 200


def _written_text(text: str) -> WrittenReply:
    """A plain string: ``CreateResult`` first tries ``JsonConvert.DeserializeObject`` on it;
    text that is not JSON stays the content, written by ``StringOutputFormatter``, which
    sets its first media type and encoding. JSON text takes other ways, not modelled here."""
    stripped = text.strip()
    if stripped and (stripped[0] in "{[\"-" or stripped[0].isdigit() or stripped in ("true", "false", "null")):
        raise NotImplementedError("a plain string that reads as JSON is not modelled")
    return WrittenReply(200, [("Content-Type", "text/plain; charset=utf-8")], text.encode("utf-8"))


# SameSiteMode as SetCookieHeaderValue writes it; Unspecified (RpcHttpCookie None) is left out.
_SAME_SITE = {protocol.RpcHttpCookie.SameSite.Lax: "lax", protocol.RpcHttpCookie.SameSite.Strict: "strict",
              protocol.RpcHttpCookie.SameSite.ExplicitNone: "none"}


def set_cookie(cookie: protocol.RpcHttpCookie) -> str:
    """``RpcHttpCookieConverter`` into ``CookieOptions`` (``Path`` "/" unless the cookie has
    one), then ``ResponseCookies.Append``: the value through ``Uri.EscapeDataString``, and
    ``SetCookieHeaderValue.ToString``'s order of attributes."""
    fields = [f"{cookie.name}={quote(cookie.value, safe='-_.~')}"]
    if cookie.expires is not None:
        moment = datetime.fromtimestamp(cookie.expires.value.seconds, timezone.utc)
        fields.append(f"expires={moment:%a, %d %b %Y %H:%M:%S} GMT")
    if cookie.max_age is not None:
        fields.append(f"max-age={int(cookie.max_age.value)}")
    if cookie.domain is not None:
        fields.append(f"domain={cookie.domain.value}")
    fields.append(f"path={'/' if cookie.path is None else cookie.path.value}")
    if cookie.secure is not None and cookie.secure.value:
        fields.append("secure")
    if cookie.same_site in _SAME_SITE:
        fields.append(f"samesite={_SAME_SITE[cookie.same_site]}")
    if cookie.http_only is not None and cookie.http_only.value:
        fields.append("httponly")
    return "; ".join(fields)
