"""Signed review links: who holds the link for a round may decide that round.

A token is ``<payload>.<signature>``, both base64url: the payload names the instance, the
round and the expiry (the round's deadline), on a team review's link the stage and the seat
it was made for, and on a follow token that it follows (``sign``); the signature is
HMAC-SHA256 over the payload with HITL_REVIEW_SIGNING_KEY. Nothing secret is inside, and
nothing in it can be changed without the key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Optional
from urllib.parse import quote

MAX_TOKEN_CHARS = 512


class InvalidLink(Exception):
    """The link cannot be used; the message is safe to show to whoever holds it."""


@dataclass(frozen=True)
class ReviewGrant:
    instance_id: str
    round: int
    expires_at: datetime
    # A follow grant is what a page gets when it rejects a round: it may watch the next
    # round and exchange itself for that round's link once the draft is ready, never decide.
    follows: bool = False
    # The stage and seat a link was made for (each seat of a stage gets its own link);
    # None on a link for the default policy's one seat, and on links made before stages.
    stage: Optional[int] = None
    seat: Optional[int] = None


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    # base64.urlsafe_b64encode's own steps, without its two Python wrappers: a page of the
    # pending list or the inbox signs a link per review, two encodings each.
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Each key's HMAC state with its padded key already hashed, copied for every signature
# instead of hashing that key again. Kept per key, and only a few: a process whose settings
# change signs with the new key, never with the one before.
_KEYED: dict[bytes, "hmac.HMAC"] = {}
_KEYED_LOCK = threading.Lock()
_KEYS_KEPT = 4


def _signature(payload: str, key: bytes) -> str:
    if type(key) is not bytes:  # a bytearray or a view: signed as hmac.digest signs it
        return _b64(hmac.digest(key, payload.encode(), "sha256"))
    keyed = _KEYED.get(key)
    if keyed is None:
        keyed = hmac.new(key, digestmod=hashlib.sha256)
        with _KEYED_LOCK:
            if len(_KEYED) >= _KEYS_KEPT:
                _KEYED.clear()
            _KEYED[key] = keyed
    mac = keyed.copy()
    mac.update(payload.encode())
    return _b64(mac.digest())


# The payload's fields, written as a compact JSON object in this order.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _payload_json(fields: dict) -> str:
    """``_COMPACT_JSON.encode(fields)``, written directly when every value is a str or an
    int (what a grant holds), in a fifth of the encoder's time: the same escaping
    (``encode_basestring_ascii`` is the encoder's own), the same digits."""
    parts = []
    for name, value in fields.items():
        if type(value) is str:
            parts.append(f'"{name}":{encode_basestring_ascii(value)}')
        elif type(value) is int:
            parts.append(f'"{name}":{value}')
        else:
            return _COMPACT_JSON.encode(fields)
    return "{" + ",".join(parts) + "}"


def sign(grant: ReviewGrant, key: bytes) -> str:
    fields = {"i": grant.instance_id, "r": grant.round, "e": int(grant.expires_at.timestamp())}
    if grant.follows:
        fields["f"] = 1
    if grant.stage is not None:
        fields["s"] = grant.stage
    if grant.seat is not None:
        fields["t"] = grant.seat
    payload = _b64(_payload_json(fields).encode())
    return f"{payload}.{_signature(payload, key)}"


def verify(token: str, instance_id: str, now: datetime, key: bytes) -> ReviewGrant:
    """The grant a token carries, or ``InvalidLink`` with the reason."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidLink("this review link is incomplete or malformed")
    payload, signature = token.split(".")
    if not token.isascii() or not hmac.compare_digest(signature, _signature(payload, key)):
        raise InvalidLink("this review link is not valid (its signature does not match)")
    try:
        data = json.loads(_unb64(payload))
        grant = ReviewGrant(str(data["i"]), int(data["r"]),
                            datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo), data.get("f") == 1,
                            _slot(data.get("s")), _slot(data.get("t")))
    except (ValueError, KeyError, TypeError):
        raise InvalidLink("this review link is malformed") from None
    except (OverflowError, OSError):
        # An expiry no clock can hold (1e20, Infinity, far before 1970): fromtimestamp and
        # int() raise these rather than ValueError. Only a signed token gets here, so this
        # is a key holder's mistake, but it must still be a refusal, never a 500.
        raise InvalidLink("this review link is malformed (its expiry is out of range)") from None
    if grant.instance_id != instance_id:
        raise InvalidLink("this review link belongs to another review")
    if now >= grant.expires_at:
        raise InvalidLink("this review link has expired")
    return grant


def _slot(value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 100:
        raise ValueError("stage and seat are small integers")
    return value


def review_url(base_url: str, grant: ReviewGrant, key: bytes) -> str:
    # A token is base64url and one dot, characters a query never escapes.
    return f"{base_url}/api/hitl/review/{quote(grant.instance_id, safe='')}?token={sign(grant, key)}"
