"""Signed review links: a signed token whose fields are out of range is refused, not a 500."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared_code.review_links import InvalidLink, ReviewGrant, sign, verify

KEY = b"k" * 40
NOW = datetime(2026, 11, 27, 8, tzinfo=timezone.utc)


def token_with(fields: dict) -> str:
    """A correctly signed token carrying exactly these fields."""
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    signature = base64.urlsafe_b64encode(hmac.new(KEY, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature.rstrip(b'=').decode()}"


@pytest.mark.parametrize("expiry", [1e20, 10 ** 20, -1e20, -(10 ** 20), float("inf"), float("-inf")],
                         ids=["1e20", "10**20", "-1e20", "-10**20", "infinity", "-infinity"])
def test_an_expiry_no_clock_holds_is_an_invalid_link(expiry):
    """At 8b53147 datetime.fromtimestamp(1e20) raised OverflowError out of verify, and the
    review page, its state and its decision route answered 500."""
    with pytest.raises(InvalidLink, match="expiry is out of range"):
        verify(token_with({"i": "review-1", "r": 1, "e": expiry}), "review-1", NOW, KEY)


@pytest.mark.parametrize("fields", [{"i": "review-1", "r": 1, "e": float("nan")},
                                    {"i": "review-1", "r": "one", "e": 1},
                                    {"i": "review-1", "r": 1},
                                    {"i": "review-1", "r": 1, "e": [1]}])
def test_other_malformed_fields_are_invalid_links(fields):
    with pytest.raises(InvalidLink, match="malformed"):
        verify(token_with(fields), "review-1", NOW, KEY)


def test_a_good_link_still_verifies():
    grant = ReviewGrant("review-1", 2, NOW + timedelta(hours=1))
    assert verify(sign(grant, KEY), "review-1", NOW, KEY) == grant


def reference_token(grant: ReviewGrant, key: bytes) -> str:
    """A token as the standard library writes it: the grant's fields through a compact
    ``json.dumps``, base64url without padding, HMAC-SHA256 with the key."""
    fields = {"i": grant.instance_id, "r": grant.round, "e": int(grant.expires_at.timestamp())}
    fields.update({"f": 1} if grant.follows else {})
    fields.update({"s": grant.stage} if grant.stage is not None else {})
    fields.update({"t": grant.seat} if grant.seat is not None else {})
    payload = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).rstrip(b"=").decode()
    signature = base64.urlsafe_b64encode(hmac.digest(key, payload.encode(), "sha256"))
    return f"{payload}.{signature.rstrip(b'=').decode()}"


@pytest.mark.parametrize("instance_id", ["review-20260101T000000-0a1b", "revue-été-\u00e9\u4e2d", 'quote"back\\slash',
                                         "tab\tnew\nline\x00", "\ud83d\ude00 surrogates \ud800 alone", ""])
@pytest.mark.parametrize("round_, stage, seat, follows", [(1, None, None, False), (3, 0, 19, True),
                                                          (10 ** 30, 4, 0, False), (True, None, None, False),
                                                          (2.0, 1, None, False), ("2", None, 7, True)])
def test_a_token_is_byte_for_byte_the_standard_librarys(instance_id, round_, stage, seat, follows):
    """Links already sent must keep verifying, and a page of links is signed on a faster path:
    whatever a grant holds (a str or an int, or what only the encoder writes: a bool, a
    float, a str round, an integer beyond 64 bits), the token is the standard library's."""
    grant = ReviewGrant(instance_id, round_, NOW + timedelta(hours=72), follows, stage, seat)
    for key in (KEY, b"another key", b"k" * 200, bytearray(b"a bytearray key"), memoryview(b"a viewed key")):
        assert sign(grant, key) == reference_token(grant, key)


def test_a_new_key_signs_with_itself():
    """The key's HMAC state is kept for the next signature: a process that reloads its
    settings with another key must sign with the new one, and with the old one if it
    comes back, as many keys as it goes through."""
    grant = ReviewGrant("review-1", 1, NOW + timedelta(hours=1))
    keys = [f"key number {n}".encode() for n in range(12)]
    for key in keys + keys[::-1]:
        token = sign(grant, key)
        assert token == reference_token(grant, key)
        assert verify(token, "review-1", NOW, key) == grant
