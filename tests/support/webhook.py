"""A local webhook receiver for notification tests: scripted statuses, recorded bodies."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# How often serve_forever checks for shutdown: stopping waits for the next check.
POLL_SECONDS = 0.02


class WebhookReceiver:
    """Answers each POST with the next scripted status (then ``default_status``)."""

    def __init__(self, default_status: int = 200):
        self.default_status = default_status
        self.script: list[int] = []
        self.received: list[dict] = []  # every request, with its status
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else receiver.default_status
                    receiver.received.append({"status": status, "body": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/review?sig=s3cr3t"

    @property
    def delivered(self) -> list[dict]:
        return [r["body"] for r in self.received if 200 <= r["status"] < 300]

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
