"""JSON for the routes' large reads and replies: orjson where it can, the standard library
where it cannot.

A page of the pending list parses about 140 KB of statuses from the Durable backend and
writes about 70 KB of items; with 100,000 reviews waiting and four callers walking the
lists, those two were a third of a page's time (docs/PERFORMANCE.md). orjson does each in a
fraction of it.

orjson refuses a few inputs the standard library takes: a string with an unpaired
surrogate (``"\\ud800"`` in JSON, or such a ``str`` to write), ``NaN`` and out-of-range
numbers in a document, a byte-order mark, integers beyond 64 bits to write, and keys that
are not strings. Each refusal is answered by the standard library, exactly as before. Two
differences remain where orjson accepts: it reads an integer beyond 64 bits as a float
(nothing the app writes holds one), and it writes a float NaN as ``null`` where the
standard library writes ``NaN``, which is not JSON.
"""
from __future__ import annotations

import json
from typing import Any

import orjson


def parse(data: bytes | str) -> Any:
    """The value of a JSON document; ValueError when it is not one."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def encode(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes; TypeError when the value cannot be written."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()
