"""``X-MS-CLIENT-PRINCIPAL`` as App Service Authentication sends it, for tests."""
from __future__ import annotations

import base64
import json


def principal_header(name: str, roles: tuple = (), groups: tuple = (), object_id: str = "") -> str:
    """The header App Service sends for an Entra ID sign-in, with these claims."""
    claims = [{"typ": "preferred_username", "val": name}, {"typ": "name", "val": name}]
    if object_id:
        claims.append({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id})
    claims += [{"typ": "roles", "val": role} for role in roles]
    claims += [{"typ": "groups", "val": group} for group in groups]
    principal = {"auth_typ": "aad", "claims": claims, "name_typ": "preferred_username", "role_typ": "roles"}
    return base64.b64encode(json.dumps(principal).encode()).decode()
