"""Who is calling: a person, and how we know it.

Three ways establish a person (docs/SECURITY.md):
- App Service Authentication signs the user in and sends ``X-MS-CLIENT-PRINCIPAL``
  (base64 JSON with the token's claims); only when ``WEBSITE_AUTH_ENABLED`` is true is that
  header the platform's rather than the caller's;
- a signed review link made for one seat: its holder is that seat's person;
- the function key (the owner's credential), which may name the person it acts for; the
  record then says the key asserted it.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

MAX_NAME_CHARS = 200
# A display name goes into every decision record the status shows, so it is kept short.
MAX_DISPLAY_NAME_CHARS = 100
# Claims App Service passes on, by the last segment of their (possibly mapped) type; the
# sign-in names in the order they are preferred.
_SIGN_IN_NAME_CLAIMS = ("preferred_username", "upn", "emailaddress", "email", "unique_name")
_ROLE_CLAIMS = ("roles", "role")
_GROUP_CLAIMS = ("groups",)
_OBJECT_ID_CLAIMS = ("oid", "objectidentifier")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Person:
    """A reviewer. ``name`` is who they are to seats and records (a UPN or an e-mail
    address); ``object_id`` is the Entra object id when the sign-in carried one;
    ``display_name`` is what the channel calls them ("Alice Smith"), shown on cards and
    messages only, never compared: two people may share one."""
    name: str
    object_id: str = ""
    roles: frozenset = field(default_factory=frozenset)
    groups: frozenset = field(default_factory=frozenset)
    display_name: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """What makes two decisions the same person's: names compare without case."""
        return self.name.casefold()

    def answers_to(self, name: str) -> bool:
        wanted = name.casefold()
        return wanted == self.key or (bool(self.object_id) and wanted == self.object_id.casefold())

    def to_event(self, relevant: Optional[set] = None) -> dict:
        """The person as an event carries it: only the roles and groups that a seat of the
        review names (a token can carry hundreds of groups)."""
        roles = sorted(r for r in self.roles if relevant is None or f"role:{r}".casefold() in relevant)
        groups = sorted(g for g in self.groups if relevant is None or f"group:{g}".casefold() in relevant)
        person: dict[str, Any] = {"name": self.name}
        if self.object_id:
            person["id"] = self.object_id
        if roles:
            person["roles"] = roles
        if groups:
            person["groups"] = groups
        return person

    @classmethod
    def from_event(cls, value: Any) -> Optional["Person"]:
        if not isinstance(value, dict) or not valid_name(value.get("name")):
            return None
        object_id = value.get("id") if valid_name(value.get("id")) else ""
        return cls(value["name"], object_id, _names(value.get("roles")), _names(value.get("groups")))


def valid_name(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value.strip()) == len(value) <= MAX_NAME_CHARS
            and not _CONTROL_CHARS.search(value))


def display_name(value: Any) -> str:
    """A display name as a channel gave it, made one line of text at most
    MAX_DISPLAY_NAME_CHARS long; "" when there is none."""
    if not isinstance(value, str):
        return ""
    return _WHITESPACE.sub(" ", _CONTROL_CHARS.sub(" ", value)).strip()[:MAX_DISPLAY_NAME_CHARS].rstrip()


def _names(value: Any) -> frozenset:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value[:200] if valid_name(v))


def signed_in_person(header: Optional[str]) -> Optional[Person]:
    """The person App Service Authentication signed in, from ``X-MS-CLIENT-PRINCIPAL``;
    None when the header is absent or not what the platform sends.

    The platform maps claim types (a role arrives as ``…/claims/role``, the name under the
    type ``name_typ`` names), so types are compared by their last path segment. The name
    kept is the sign-in name, which is what ``user:`` seats name: ``preferred_username``,
    else the UPN, else the e-mail address, whatever order the claims come in (App Service
    sends Entra ID's e-mail claim, which can differ for an alias or a guest, ahead of
    ``preferred_username``), before any display name. The display name is the ``name``
    claim as Entra ID sends it (type ``name`` itself, not the mapped name type)."""
    if not header or len(header) > 64 * 1024:
        return None
    try:
        principal = json.loads(base64.b64decode(header, validate=False))
        claims = [(str(c.get("typ", "")), c["val"]) for c in principal.get("claims") or []
                  if isinstance(c, dict) and isinstance(c.get("val"), str)]
        name_type, role_type = str(principal.get("name_typ") or ""), str(principal.get("role_typ") or "")
    except (ValueError, TypeError, AttributeError):
        return None

    def values(*types: str) -> list[str]:
        wanted = {t.rsplit("/", 1)[-1].casefold() for t in types if t}
        return [val for typ, val in claims if typ.rsplit("/", 1)[-1].casefold() in wanted and valid_name(val)]

    names = [*(name for claim in _SIGN_IN_NAME_CLAIMS for name in values(claim)),
             *(val for typ, val in claims if typ == name_type and valid_name(val)),
             *values("name")]
    if not names:
        return None
    object_id = next(iter(values(*_OBJECT_ID_CLAIMS)), "")
    shown = next((val for typ, val in claims if typ == "name"), "")
    return Person(names[0], object_id, frozenset(values(*_ROLE_CLAIMS, role_type)),
                  frozenset(values(*_GROUP_CLAIMS)), display_name(shown))
