"""A local webhook receiver for notification tests: scripted answers, recorded requests.

Each request gets the next scripted answer, then ``default_status``. An answer is a status,
a status with headers (``(302, {"Location": other.url})``), or bytes sent as they are
(a peer that does not speak HTTP). With ``byte_every`` set, the
answer is written a byte at a time from its status line on, as a peer that stalls without
ever going quiet long enough to trip a per-read timeout.
"""
from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# How often serve_forever checks for shutdown: stopping waits for the next check.
POLL_SECONDS = 0.02


class WebhookReceiver:
    def __init__(self, default_status: int = 200):
        self.default_status = default_status
        self.script: list[int | tuple[int, dict] | bytes] = []
        self.byte_every = 0.0
        self.received: list[dict] = []  # every request: method, status answered, JSON body
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    answer = receiver.script.pop(0) if receiver.script else receiver.default_status
                    status, headers = answer if isinstance(answer, tuple) else (answer, {})
                    receiver.received.append({"method": self.command, "status": status,
                                              "body": json.loads(body) if body else None})
                if isinstance(answer, bytes):
                    self.close_connection = True
                    self.wfile.write(answer)
                else:
                    receiver._answer(self, status, headers)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client that gave up on a slow answer closed its end: expected here.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,), daemon=True)

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, headers: dict) -> None:
        head = f"HTTP/1.1 {status} {handler.responses.get(status, ('',))[0]}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in {**headers, "Content-Length": "0"}.items())
        handler.close_connection = True
        data = (head + "\r\n").encode("latin-1")
        if not self.byte_every:
            handler.wfile.write(data)
            return
        for index in range(len(data)):
            if index and self._stopping.wait(self.byte_every):
                return
            handler.wfile.write(data[index:index + 1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/review?sig=s3cr3t"

    @property
    def delivered(self) -> list[dict]:
        return [r["body"] for r in self.received if r["method"] == "POST" and 200 <= r["status"] < 300]

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
