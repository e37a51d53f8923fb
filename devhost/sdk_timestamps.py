"""A fast path for the SDK's timestamp parsing, for the devhost's own timestamps.

The SDK parses every history event's ``Timestamp`` on every replay, and the status times on
every ``get_status``, with ``dateutil.parser.parse``: a general parser, and the largest
single cost of a replay here (about a quarter of the host's CPU in bench/lifecycles.py).
The devhost writes those stamps itself in one ISO 8601 form, which
``datetime.fromisoformat`` reads about fifty times faster to the same instant. Anything
else still goes to dateutil, so what the SDK computes does not change.
"""
from __future__ import annotations

from datetime import datetime

from . import sdk_seams


def install() -> None:
    for module in sdk_seams.timestamp_parser_modules():
        parser = sdk_seams.timestamp_parser(module)
        if not getattr(parser, "devhost_fast_path", False):
            sdk_seams.replace_timestamp_parser(module, _with_fast_path(parser))


def _with_fast_path(general_parse):
    def parse(text, *args, **kwargs):
        if isinstance(text, str) and not args and not kwargs:
            try:
                return datetime.fromisoformat(text)  # Python 3.11 reads the trailing 'Z'
            except ValueError:
                pass
        return general_parse(text, *args, **kwargs)

    parse.devhost_fast_path = True
    return parse
