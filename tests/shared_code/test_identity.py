"""The person App Service Authentication signed in, from X-MS-CLIENT-PRINCIPAL as the
platform sends it: claim types mapped to the long WS-Federation URIs, in the token's order."""
from __future__ import annotations

import base64
import json

import pytest

from shared_code.identity import MAX_DISPLAY_NAME_CHARS, Person, display_name, signed_in_person

XMLSOAP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
OBJECT_ID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ADA_ID = "5f0e2b1c-3a4d-4e6f-8a9b-0c1d2e3f4a5b"
EDITORS_GROUP = "0b8c7d6e-5f4a-4b3c-9d2e-1f0a9b8c7d6e"


def header(claims: list[tuple[str, str]], name_typ: str = XMLSOAP + "name", role_typ: str = ROLE) -> str:
    principal = {"auth_typ": "aad", "claims": [{"typ": typ, "val": val} for typ, val in claims],
                 "name_typ": name_typ, "role_typ": role_typ}
    return base64.b64encode(json.dumps(principal).encode()).decode()


# An Entra ID (v2.0) sign-in as App Service passes it on: the e-mail claim mapped to its
# long type and ahead of preferred_username, the display name under "name", the object id
# and the tenant under their long types, app roles under "roles".
ENTRA_V2 = [
    ("aud", "api://hitl"), ("iss", "https://login.microsoftonline.com/tenant/v2.0"),
    (XMLSOAP + "emailaddress", "ada.lovelace@contoso.com"), ("name", "Ada Lovelace"),
    (OBJECT_ID, ADA_ID), ("preferred_username", "ada@contoso.com"),
    (XMLSOAP + "nameidentifier", "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"),
    ("http://schemas.microsoft.com/identity/claims/tenantid", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    ("roles", "editors"), ("groups", EDITORS_GROUP), ("ver", "2.0"),
]
# An Entra ID v1.0 sign-in: every name claim mapped to its long type, roles under the role
# type the principal names.
ENTRA_V1 = [
    (XMLSOAP + "name", "ada@contoso.com"), (XMLSOAP + "givenname", "Ada"), (XMLSOAP + "surname", "Lovelace"),
    (XMLSOAP + "emailaddress", "ada.lovelace@contoso.com"), (XMLSOAP + "upn", "ada@contoso.com"),
    (OBJECT_ID, ADA_ID), (ROLE, "editors"), (ROLE, "legal"), ("groups", EDITORS_GROUP),
]
ADA = Person("ada@contoso.com", ADA_ID, frozenset({"editors"}), frozenset({EDITORS_GROUP}))

CASES = {
    "entra v2": (header(ENTRA_V2), ADA),
    "entra v1": (header(ENTRA_V1), Person("ada@contoso.com", ADA_ID, frozenset({"editors", "legal"}),
                                          frozenset({EDITORS_GROUP}))),
    # A provider that sends its name under the type name_typ names only.
    "the name under name_typ": (header([("http://example.com/claims/login", "ada@contoso.com")],
                                       name_typ="http://example.com/claims/login"), Person("ada@contoso.com")),
    # Roles under a type only role_typ names.
    "roles under role_typ": (header([("preferred_username", "ada@contoso.com"),
                                     ("http://example.com/claims/app-role", "editors")],
                                    role_typ="http://example.com/claims/app-role"),
                             Person("ada@contoso.com", roles=frozenset({"editors"}))),
    "an e-mail address only": (header([(XMLSOAP + "emailaddress", "ada@contoso.com")]), Person("ada@contoso.com")),
    "a display name only": (header([(XMLSOAP + "name", "Ada Lovelace")]), Person("Ada Lovelace")),
    # A principal that names no name type: a name claim is the last resort.
    "a name claim, no name_typ": (header([("name", "Ada Lovelace")], name_typ=""), Person("Ada Lovelace")),
    "no name": (header([(OBJECT_ID, ADA_ID), (ROLE, "editors")]), None),
}


@pytest.mark.parametrize("value, person", CASES.values(), ids=CASES.keys())
def test_the_person_app_service_signed_in(value, person):
    assert signed_in_person(value) == person


def test_the_sign_in_name_wins_over_an_e_mail_address_sent_before_it():
    """A user: seat names the person by their sign-in name; App Service sends the e-mail
    claim (which may differ, for an alias or a guest) ahead of preferred_username."""
    person = signed_in_person(header(ENTRA_V2))
    assert person.name == "ada@contoso.com"
    assert person.answers_to("ada@contoso.com") and not person.answers_to("ada.lovelace@contoso.com")


def test_the_display_name_is_entras_name_claim_when_the_sign_in_sends_one():
    """Cards say who decided by the ``name`` claim; the v1.0 sign-in maps its name claim to
    the sign-in name, so it has no display name and cards show the address."""
    assert signed_in_person(header(ENTRA_V2)).display_name == "Ada Lovelace"
    assert signed_in_person(header(ENTRA_V1)).display_name == ""


def test_a_display_name_is_one_line_and_bounded():
    spoofed = "Ada\nApproved by the CEO\t" + "x" * 200
    shown = signed_in_person(header([("preferred_username", "ada@contoso.com"), ("name", spoofed)])).display_name
    assert shown.startswith("Ada Approved by the CEO x") and len(shown) == MAX_DISPLAY_NAME_CHARS
    assert display_name("  \u0007 ") == "" and display_name(None) == ""
