"""The tests' HTTP client: real requests to the servers the tests start, with no
third-party library and no proxy."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any, Optional

# Every server a test calls runs on this machine; a proxy from the environment must not
# get in the way.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int
    body: bytes
    headers: Message  # names match ignoring case; get_all() gives every value of a repeated one

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(method: str, url: str, body: Any = None, headers: Optional[dict] = None,
         raw: Optional[bytes] = None, timeout: float = 30) -> Reply:
    """Send ``body`` as JSON, or ``raw`` bytes as they are; either goes as
    ``application/json`` unless ``headers`` name another Content-Type."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and not request.has_header("Content-type"):  # urllib's spelling
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Reply(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), error.headers)
