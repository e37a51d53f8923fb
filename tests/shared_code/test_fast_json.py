"""shared_code/fast_json.py: orjson's speed, the standard library's answers."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from shared_code import fast_json

@dataclass
class Point:
    x: int
    y: int


# Documents orjson refuses and the standard library reads.
REFUSED_BY_ORJSON = [
    b'{"topic": "\\ud800"}',          # an unpaired surrogate escape
    b'{"hours": NaN}',                # not JSON, but what json.dumps writes for a NaN
    b'[1e400]',                       # out of a double's range
    '\ufeff[1]'.encode(),             # a UTF-8 byte-order mark
]


@pytest.mark.parametrize("document", REFUSED_BY_ORJSON, ids=["surrogate", "nan", "infinite", "bom"])
def test_what_orjson_refuses_is_read_as_the_standard_library_reads_it(document):
    # Compared as JSON text: a NaN is not equal to itself.
    assert json.dumps(fast_json.parse(document)) == json.dumps(json.loads(document))


def test_ordinary_documents_read_alike():
    document = json.dumps({"stage": "awaiting_review", "round": 1, "hours": 72.5, "topic": "Café ☕",
                           "decisions": [{"approved": True, "feedback": None}], "empty": {}}).encode()
    assert fast_json.parse(document) == json.loads(document)
    assert fast_json.parse(document.decode()) == json.loads(document)


def test_what_is_not_json_is_a_value_error():
    for bad in (b"", b"{", b"{'a': 1}", b"\xff\xfe", b"[1,]"):
        with pytest.raises(ValueError):
            fast_json.parse(bad)


@pytest.mark.parametrize("value", [{"topic": "\ud800"}, {1: "a"}, {"big": 2 ** 70}],
                         ids=["surrogate", "int key", "big int"])
def test_what_orjson_cannot_write_is_written_as_the_standard_library_writes_it(value):
    assert json.loads(fast_json.encode(value)) == json.loads(json.dumps(value))


def test_writes_compact_utf8_that_reads_back_the_same():
    value = {"items": [{"topic": "Café ☕", "round": 2, "at": None, "ok": True, "hours": 0.1}], "n": (1, 2)}
    text = fast_json.encode(value)
    assert isinstance(text, bytes) and b", " not in text and "Café".encode() in text
    assert json.loads(text) == {**value, "n": [1, 2]}


def test_a_nan_is_written_as_null_not_as_nan():
    assert json.loads(fast_json.encode({"hours": math.nan})) == {"hours": None}


@pytest.mark.parametrize("value", [object(), datetime(2026, 1, 1, tzinfo=timezone.utc), Point(1, 2)],
                         ids=["object", "datetime", "dataclass"])
def test_what_the_standard_library_cannot_write_is_a_type_error(value):
    """orjson would write a date or a dataclass; a reply holding one is a bug, as before."""
    with pytest.raises(TypeError):
        json.dumps({"value": value})
    with pytest.raises(TypeError):
        fast_json.encode({"value": value})
