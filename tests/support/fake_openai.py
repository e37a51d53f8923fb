"""A local OpenAI-compatible Chat Completions server for tests.

It speaks real HTTP on 127.0.0.1, so tests exercise the real openai client:
its auth headers, URL building, retries and timeouts. Script the next
responses with the ``enqueue_*`` helpers; once the script runs out, every
request gets a valid reply for what it asks: a draft that echoes the last user message
(with a list of changes, and an answer for every comment on a passage it was given), or,
for a house-rules check (``response_format`` named ``house_rules_check``), a "pass" for
every numbered rule.

``enqueue_trickle`` sends a reply a byte at a time (its body, or all of it from the status
line), as a server or proxy that stalls without ever going quiet long enough to trip a
per-read timeout.

``forever()`` makes the reply scripted last the answer to every request from then on, as a
fault that never clears; ``enqueue_raw`` sends bytes as they are (a proxy's HTML page, a
body cut off in the middle).

A request with ``"stream": true`` gets the same completion as server-sent events
(``chat.completion.chunk`` deltas, then ``data: [DONE]``), as the real service streams.

The openai client waits 0.5-8 s between retries unless an error response
carries a positive ``retry-after-ms`` or ``Retry-After`` header (it ignores
``Retry-After: 0``), so scripted errors send ``retry-after-ms: 1`` unless the
test gives its own headers.

Usage::

    with FakeOpenAI() as server:
        server.enqueue_status(429)
        ...  # point the client at server.url
        assert len(server.requests) == 2
"""
from __future__ import annotations

import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import parse_qsl, urlsplit

FAST_RETRY = {"retry-after-ms": "1"}
ECHO_CHARS = 1_000

_COMMENT_ID = re.compile(r"^\[(c\d+)\] On the passage:", re.M)
_RULE_NUMBER = re.compile(r"^(\d+)\. ", re.M)
CHECK_FORMAT = "house_rules_check"

_CHAT_PATH = re.compile(
    r"^(?:/openai/deployments/(?P<deployment>[^/]+))?(?:/v1)?/chat/completions$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def deployment(self) -> Optional[str]:
        match = _CHAT_PATH.match(self.path)
        return match and match.group("deployment")

    def texts(self, role: str) -> list[str]:
        """The contents of the request's messages with this role, in order."""
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        return [_text_of(m.get("content")) for m in messages
                if isinstance(m, dict) and m.get("role") == role]


def _text_of(content: Any) -> str:
    """A message's content: a string, or a list of parts whose text parts are joined."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    byte_every: float = 0.0      # > 0: the reply is written one byte at a time, this far apart
    trickle_head: bool = False   # the status line and headers trickle too, not only the body
    raw: Optional[bytes] = None  # sent as it is, instead of ``body`` as JSON
    content_type: str = "application/json"


def error_body(message: str, code: Optional[str] = None, **extra: Any) -> dict:
    return {"error": {"message": message, "type": None, "param": None, "code": code, **extra}}


class FakeOpenAI:
    """An OpenAI and Azure OpenAI Chat Completions endpoint in a background thread.

    ``required_key`` makes requests without that ``api-key`` or bearer value
    fail with 401; ``deployments`` makes Azure-style requests for any other
    deployment fail with 404, as the real services do.
    """

    def __init__(self, *, required_key: Optional[str] = None,
                 deployments: Optional[Iterable[str]] = None) -> None:
        self.required_key = required_key
        self.deployments = None if deployments is None else frozenset(deployments)
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._standing: Optional[Reply] = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "FakeOpenAI":
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # Wake handlers that are hanging on purpose so shutdown is immediate.
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    @property
    def url(self) -> str:
        """Base URL: use it as AZURE_OPENAI_ENDPOINT, or with '/v1' as OPENAI_BASE_URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, reply: Reply) -> None:
        with self._lock:
            self._script.append(reply)

    def forever(self) -> None:
        """The reply scripted last answers every request from now on, once the replies
        scripted before it are used up: a test that means "the writer always fails" need
        not guess how many requests the client, the activity and the orchestrator make."""
        with self._lock:
            self._standing = self._script.pop()

    def enqueue_raw(self, data: bytes, *, status: int = 200, content_type: str = "application/json") -> None:
        """A reply whose body is ``data`` verbatim, with this status and Content-Type."""
        self.enqueue(Reply(status, raw=data, content_type=content_type))

    def enqueue_status(self, status: int, *, body: Any = None,
                       headers: Optional[Mapping[str, str]] = None) -> None:
        self.enqueue(Reply(status, body if body is not None else error_body(f"scripted {status}"),
                           FAST_RETRY if headers is None else headers))

    def enqueue_completion(self, content: Optional[str], *, finish_reason: str = "stop",
                           refusal: Optional[str] = None) -> None:
        message = {"role": "assistant", "content": content, "refusal": refusal}
        self.enqueue(Reply(body=self._completion(message, finish_reason)))

    def enqueue_json_content(self, text: str) -> None:
        """A successful reply whose message content is ``text`` verbatim (e.g. broken JSON)."""
        self.enqueue_completion(text)

    def enqueue_draft(self, title: str, content: str, changes: Optional[list] = None,
                      answers: Optional[list] = None) -> None:
        reply = {"title": title, "content": content}
        if changes is not None or answers is not None:
            reply.update(changes=changes or [], answers=answers or [])
        self.enqueue_completion(json.dumps(reply))

    def enqueue_verdicts(self, results: list) -> None:
        """A house-rules check's reply: ``results`` as the checker's schema has them."""
        self.enqueue_completion(json.dumps({"results": results}))

    def enqueue_missing_content(self) -> None:
        self.enqueue(Reply(body=self._completion({"role": "assistant"}, "stop")))

    def enqueue_content_filter(self) -> None:
        """Azure's 400 for a prompt its content filter blocked."""
        body = error_body("The response was filtered due to the prompt triggering "
                          "Azure OpenAI's content management policy.", "content_filter",
                          status=400, innererror={"code": "ResponsibleAIPolicyViolation"})
        self.enqueue(Reply(400, body))

    def enqueue_filtered_completion(self) -> None:
        """A 200 whose output the content filter removed."""
        self.enqueue_completion(None, finish_reason="content_filter")

    def enqueue_refusal(self, text: str = "I can't help with that.") -> None:
        self.enqueue_completion(None, refusal=text)

    def enqueue_reset(self) -> None:
        """Close the connection without sending any response."""
        self.enqueue(Reply(reset=True))

    def enqueue_hang(self, seconds: float) -> None:
        """Wait before answering with the default reply, to trip client timeouts."""
        self.enqueue(Reply(delay=seconds, body=None))

    def enqueue_trickle(self, byte_every: float, *, head: bool = False) -> None:
        """The default reply, written one byte every ``byte_every`` seconds: its body, or
        (``head``) everything from the status line on."""
        self.enqueue(Reply(byte_every=byte_every, trickle_head=head))

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        request = _record(handler)
        with self._lock:
            self.requests.append(request)
        reply = self._refusal_for(request) or self._next_scripted() or Reply()
        if reply.delay:
            self._stopping.wait(reply.delay)
        if reply.reset:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.body is None and reply.raw is None:
            reply = replace(reply, body=self._default_completion(request))
        if reply.byte_every:
            self._trickle(handler, reply)
            return
        wants_stream = isinstance(request.body, dict) and request.body.get("stream") is True
        if (wants_stream and reply.status == 200 and isinstance(reply.body, dict)
                and reply.body.get("object") == "chat.completion"):
            _send_stream(handler, reply)
        else:
            _send(handler, reply)

    def _trickle(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        body = json.dumps(reply.body).encode("utf-8")
        head = (f"HTTP/1.1 {reply.status} {handler.responses[reply.status][0]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
                + "\r\n").encode("latin-1")
        if not reply.trickle_head:
            handler.wfile.write(head)
            head = b""
        handler.close_connection = True
        for index, byte in enumerate(head + body):
            if index and self._stopping.wait(reply.byte_every):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    def _next_scripted(self) -> Optional[Reply]:
        with self._lock:
            return self._script.popleft() if self._script else self._standing

    def _refusal_for(self, request: RecordedRequest) -> Optional[Reply]:
        """Failures the real service gives before any scripted behaviour applies."""
        match = _CHAT_PATH.match(request.path)
        if request.method != "POST" or not match:
            return Reply(404, error_body(f"no route for {request.method} {request.path}"))
        if self.required_key is not None and not _has_credential(request, self.required_key):
            return Reply(401, error_body("Access denied due to invalid subscription key "
                                         "or wrong API endpoint.", "401"))
        deployment = match.group("deployment")
        if self.deployments is not None and deployment and deployment not in self.deployments:
            return Reply(404, error_body("The API deployment for this resource does not exist.",
                                         "DeploymentNotFound"))
        return None

    def _default_completion(self, request: RecordedRequest) -> dict:
        users = request.texts("user")
        if _format_name(request) == CHECK_FORMAT:
            rules = _RULE_NUMBER.findall(users[0] if users else "")
            reply = {"results": [{"rule": int(n), "verdict": "pass", "reason": "fake check", "passage": ""}
                                 for n in rules]}
        else:
            echo = (users[-1] if users else "")[:ECHO_CHARS]
            first_line = echo.strip().splitlines()[0][:80] if echo.strip() else "untitled"
            ids = _COMMENT_ID.findall("\n".join(users))
            reply = {"title": f"Draft: {first_line}", "content": f"Echo: {echo}", "changes": ["echoed the request"],
                     "answers": [{"id": i, "answer": f"Fake answer to {i}", "changed": False} for i in ids]}
        message = {"role": "assistant", "content": json.dumps(reply), "refusal": None}
        model = request.body.get("model") if isinstance(request.body, dict) else None
        return self._completion(message, "stop", model or request.deployment)

    def _completion(self, message: dict, finish_reason: str, model: Optional[str] = None) -> dict:
        completion_tokens = len(message.get("content") or "") // 4
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model or "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 0, "completion_tokens": completion_tokens,
                      "total_tokens": completion_tokens},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or give up close their end; that is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; the server records requests instead."""


def _record(handler: BaseHTTPRequestHandler) -> RecordedRequest:
    raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    url = urlsplit(handler.path)
    headers = {name.lower(): value for name, value in handler.headers.items()}
    return RecordedRequest(handler.command, url.path, dict(parse_qsl(url.query)), headers, body)


def _format_name(request: RecordedRequest) -> Optional[str]:
    body = request.body if isinstance(request.body, dict) else {}
    schema = (body.get("response_format") or {}).get("json_schema") or {}
    return schema.get("name")


def _has_credential(request: RecordedRequest, key: str) -> bool:
    return key in (request.headers.get("api-key"),
                   request.headers.get("authorization", "").removeprefix("Bearer "))


def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode("utf-8")
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _chunks(completion: dict) -> Iterable[dict]:
    """A completion as the service streams it: the role, the content in two deltas, then
    the finish reason, then (as with ``stream_options.include_usage``) the usage."""
    choice = completion["choices"][0]
    message = choice["message"]
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict, finish_reason: Optional[str] = None) -> dict:
        return base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    yield chunk({"role": "assistant", "content": ""})
    content = message.get("content") or ""
    middle = len(content) // 2
    for part in (content[:middle], content[middle:]):
        if part:
            yield chunk({"content": part})
    if message.get("refusal"):
        yield chunk({"refusal": message["refusal"]})
    yield chunk({}, choice["finish_reason"])
    yield base | {"choices": [], "usage": completion["usage"]}


def _send_stream(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    events = [f"data: {json.dumps(c)}\n\n" for c in _chunks(reply.body)] + ["data: [DONE]\n\n"]
    handler.wfile.write("".join(events).encode("utf-8"))
    handler.close_connection = True
