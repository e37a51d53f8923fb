"""JSON for the routes' large reads and replies: orjson where it can, the standard library
where it cannot.

A page of the pending list parses about 140 KB of statuses from the Durable backend and
writes about 70 KB of items; with 100,000 reviews waiting and four callers walking the
lists, those two were a third of a page's time (docs/PERFORMANCE.md). orjson does each in a
fraction of it.

orjson refuses a few inputs the standard library takes: a string with an unpaired
surrogate (``"\\ud800"`` in JSON, or such a ``str`` to write), ``NaN`` and out-of-range
numbers in a document, a byte-order mark, integers beyond 64 bits to write, and keys that
are not strings. Each refusal is answered by the standard library, exactly as before, and
so are dates and dataclasses, which orjson would write and the standard library refuses
(a reply holding one is a bug, and stays a TypeError). What remains different where orjson
accepts: it reads an integer beyond 64 bits as a float (nothing the app writes holds
one); it writes a float NaN as ``null`` where the standard library writes ``NaN``, which
is not JSON; it writes a UUID or an Enum that is not a str by its value; and its replies
are compact UTF-8 (``1e-07`` as ``1e-7``), the same JSON values.
"""
from __future__ import annotations

import json
from typing import Any

import orjson


# Dates and dataclasses go to ``default``, which orjson has none of here: it raises, and
# the standard library then refuses them as it always did.
_AS_THE_STANDARD_LIBRARY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def parse(data: bytes | str) -> Any:
    """The value of a JSON document; ValueError when it is not one."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def encode(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes; TypeError when the value cannot be written."""
    try:
        return orjson.dumps(value, option=_AS_THE_STANDARD_LIBRARY)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def compact(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, for measuring a value's JSON: where orjson refuses, the
    standard library's compact JSON with non-ASCII characters kept (a lone surrogate as
    ``surrogatepass`` writes it), the same text orjson writes but for the differences
    above; TypeError when the value cannot be written."""
    try:
        return orjson.dumps(value, option=_AS_THE_STANDARD_LIBRARY)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
