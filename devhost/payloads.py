"""How the Durable extension reads, stores and hands back payloads, in Python.

The extension parses every payload exactly once and stores the parsed token re-printed
as compact JSON. It never unwraps the double encoding of the Python SDK's client, which
posts ``json.dumps(value)`` as a JSON body: that body is a JSON *string* whose text is the
value's JSON, and it is stored, delivered and shown as that string. The functions here
are the one place the devhost turns payload text into values and back; each names the
extension code it stands for (docs/DEVHOST-CONFORMANCE.md has the full citations).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

# A JSON value whose text could not be read: what ``ParseToJToken`` falls back to.
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"\s*")


class PayloadError(ValueError):
    """A payload that is not JSON."""


def to_text(value: Any) -> Optional[str]:
    """``MessagePayloadDataConverter.Serialize`` of a token: compact JSON, None stays None."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# Newtonsoft.Json's readers refuse JSON nested deeper than this (JsonReader.MaxDepth,
# 64 by default since 13.0.1), so the extension answers such a body "Invalid JSON content".
MAX_DEPTH = 64


def read_token(text: Optional[str], max_depth: Optional[int] = None) -> Any:
    """``MessagePayloadDataConverter.ConvertToJToken``: ``JToken.Load`` reads one value and
    ignores what follows it; empty text has no token and is an error. ``max_depth`` is
    the reader's limit, checked for what arrives over HTTP."""
    if text is None:
        return None
    start = _WHITESPACE.match(text).end()
    if start == len(text):
        raise PayloadError("Error reading JToken from JsonReader.")
    if max_depth is not None and _nesting(text) > max_depth:
        raise PayloadError(f"The reader's MaxDepth of {max_depth} has been exceeded.")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(str(exc)) from None
    return value


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """How deeply brackets nest outside strings, without parsing (so without recursion):
    an upper bound of the JSON's depth, exact for valid JSON."""
    deepest = depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def read_object(text: str, max_depth: Optional[int] = None) -> Any:
    """``JsonConvert.DeserializeObject`` (start bodies): empty text is null, and unlike
    ``JToken.Load`` anything after the value is an error. The serializer's check for more
    content calls ``JsonTextReader.Read``, which meets the text first and throws a
    JsonReaderException (not the serializer's own JsonSerializationException)."""
    if not text.strip():
        return None
    value = read_token(text, max_depth)
    end = _DECODER.raw_decode(text, _WHITESPACE.match(text).end())[1]
    extra = _WHITESPACE.match(text, end).end()
    if extra < len(text):
        line = text.count("\n", 0, extra) + 1
        position = extra - (text.rfind("\n", 0, extra) + 1)
        raise PayloadError(f"Additional text encountered after finished reading JSON content: "
                           f"{text[extra]}. Path '', line {line}, position {position}.")
    return value


def shown(stored: Optional[str]) -> Any:
    """``DurableClient.ParseToJToken``: how a stored input, output or custom status appears
    in a status reply. JSON comes back as its value; other text (a failure reason, a
    terminate reason) as a string."""
    if stored is None:
        return None
    if not stored.strip():
        return ""
    try:
        return read_token(stored)
    except PayloadError:
        return stored


def utf16_kilobytes(text: str) -> int:
    """The size check of ``MessagePayloadDataConverter.Serialize(value, maxSizeInKB)``."""
    return int(len(text.encode("utf-16-le")) / 1024.0)


# -- dates in a failed orchestration's state ------------------------------------------
#
# When an orchestrator fails, the extension recovers its state from the exception text and
# parses it with ``JObject.Parse``, whose reader turns ISO date strings into DateTime
# values (``DateParseHandling.DateTime``); they are written back in Newtonsoft's round-trip
# form. A successful episode's state arrives as a JObject already, parsed by the Functions
# host with ``DateParseHandling.None``, so its strings are kept as they are.

_ISO_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?$")


def with_newtonsoft_dates(value: Any) -> Any:
    """Date-like strings as ``JObject.Parse`` then ``ToString`` print them on a UTC host."""
    if isinstance(value, str):
        return _newtonsoft_date(value) or value
    if isinstance(value, list):
        return [with_newtonsoft_dates(item) for item in value]
    if isinstance(value, dict):
        return {key: with_newtonsoft_dates(item) for key, item in value.items()}
    return value


def _newtonsoft_date(text: str) -> Optional[str]:
    match = _ISO_DATE.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    ticks = int((fraction or "0").ljust(7, "0"))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        # RoundtripKind turns an offset into the host's local time, UTC on Azure.
        moment = (moment - sign * offset).replace(tzinfo=timezone.utc)
    digits = f"{ticks:07d}".rstrip("0")
    suffix = {None: "", "Z": "Z"}.get(zone, "+00:00")
    return f"{moment:%Y-%m-%dT%H:%M:%S}{'.' + digits if digits else ''}{suffix}"
