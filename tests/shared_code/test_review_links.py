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
