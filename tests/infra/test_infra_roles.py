"""Role assignments use the right built-in role ids and cover what the app needs.

The ids were checked against Microsoft's "Azure built-in roles" reference
(learn.microsoft.com/azure/role-based-access-control/built-in-roles). They are
identical in every tenant, so a typo would silently grant nothing (or the
wrong thing) and only show up as 403s after deployment.
"""
from __future__ import annotations

import re

import pytest

from tests.support.infra import INFRA, ROOT, deployment, parse_bicep

ROLES_MODULE = INFRA / "core" / "roles.bicep"
MAIN = INFRA / "main.bicep"

BUILT_IN_ROLES = {
    # key in roles.bicep: (role name, role definition id)
    "storageBlobDataOwner": ("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"),
    "storageQueueDataContributor": ("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88"),
    "storageTableDataContributor": ("Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"),
    "monitoringMetricsPublisher": ("Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb"),
    "cognitiveServicesOpenAiUser": ("Cognitive Services OpenAI User", "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"),
    "keyVaultSecretsUser": ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
    # Durable Task Scheduler data plane (the DTS backend only). Checked against the
    # same reference (built-in-roles/integration) and the Azure-Samples
    # Durable-Task-Scheduler azd templates, which assign it to the app identity.
    "durableTaskDataContributor": ("Durable Task Data Contributor", "0ad04412-c4d5-4796-b79c-f76d14c8d402"),
    # Sending e-mail through Communication Services with the managed identity.
    "communicationEmailServiceOwner": ("Communication and Email Service Owner", "09976791-48a7-449e-bb21-39d1a415f350"),
}
STORAGE_ROLE_KEYS = {"storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"}

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def string_literals(root) -> list[str]:
    """Contents of string literals only, so GUIDs in comments do not count."""
    return [n.text.decode() for n in walk(root) if n.type == "string_content"]


def guid_literals() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(INFRA.rglob("*.bicep")):
        for text in string_literals(parse_bicep(path)):
            if GUID.fullmatch(text):
                found.setdefault(text.lower(), []).append(path.relative_to(ROOT).as_posix())
    return found


def role_assignments(root):
    for decl in root.named_children:
        if decl.type != "resource_declaration":
            continue
        type_node = next(c for c in decl.named_children if c.type == "string")
        if type_node.text.decode().strip("'").startswith("Microsoft.Authorization/roleAssignments@"):
            yield decl


def roles_table(root) -> dict[str, str]:
    for decl in root.named_children:
        if decl.type != "variable_declaration":
            continue
        name = next(c for c in decl.named_children if c.type == "identifier")
        if name.text == b"roleIds":
            value = decl.named_children[-1]
            assert value.type == "object", "roleIds must be an object literal"
            table = {}
            for prop in value.named_children:
                if prop.type == "object_property":
                    key, val = prop.named_children[0], prop.named_children[-1]
                    table[key.text.decode()] = val.text.decode().strip("'")
            return table
    raise AssertionError("roles.bicep has no `var roleIds = {...}`")


@pytest.mark.parametrize("key", sorted(BUILT_IN_ROLES), ids=lambda k: BUILT_IN_ROLES[k][0])
def test_each_built_in_role_id_appears_in_the_templates(key):
    name, role_id = BUILT_IN_ROLES[key]
    assert role_id in guid_literals(), f"{name} ({role_id}) is not used in infra/"


def test_no_unknown_guid_appears_in_the_templates():
    known = {role_id for _, role_id in BUILT_IN_ROLES.values()}
    unknown = {g: where for g, where in guid_literals().items() if g not in known}
    assert not unknown, f"GUIDs that are not a known built-in role id: {unknown}"


def test_the_role_table_maps_each_name_to_its_id():
    table = roles_table(parse_bicep(ROLES_MODULE))
    expected = {key: role_id for key, (_, role_id) in BUILT_IN_ROLES.items()}
    assert table == expected


def test_role_assignments_reference_built_in_definitions_with_stable_names():
    assignments = list(role_assignments(parse_bicep(ROLES_MODULE)))
    assert assignments, "roles.bicep assigns no roles"
    for decl in assignments:
        text = decl.text.decode()
        assert "subscriptionResourceId('Microsoft.Authorization/roleDefinitions'" in text
        # guid(...) names make re-provisioning idempotent instead of failing
        # with RoleAssignmentExists.
        assert re.search(r"\bname: guid\(", text), text.splitlines()[0]


def _granted(principal: str) -> tuple[set[str], list[str]]:
    granted: set[str] = set()
    texts = []
    for decl in role_assignments(parse_bicep(ROLES_MODULE)):
        text = decl.text.decode()
        if f"principalId: {principal}" not in text:
            continue
        texts.append(text)
        granted |= set(re.findall(r"roleIds\.(\w+)", text))
        if "in storageRoles" in text:
            granted |= STORAGE_ROLE_KEYS
    return granted, texts


def test_the_app_identity_gets_every_role():
    granted, texts = _granted("identityPrincipalId")
    assert granted == set(BUILT_IN_ROLES)
    for text in texts:
        assert "principalType: 'ServicePrincipal'" in text


def test_the_storage_role_list_holds_the_three_storage_roles():
    text = ROLES_MODULE.read_text()
    block = re.search(r"var storageRoles = \[(.*?)\]", text, re.DOTALL)
    assert block, "roles.bicep has no storageRoles list"
    assert set(re.findall(r"roleIds\.(\w+)", block.group(1))) == STORAGE_ROLE_KEYS


def test_the_deploying_user_is_optional_and_gets_data_access():
    granted, texts = _granted("userPrincipalId")
    assert texts, "no role assignments for the deploying principal"
    assert STORAGE_ROLE_KEYS | {"cognitiveServicesOpenAiUser", "keyVaultSecretsUser"} <= granted
    for text in texts:
        assert "if (withUser" in text, "assignments for principalId must be skipped when it is empty"


# --- the Durable Task Scheduler role, per backend ------------------------------------

def _assignments(backend: str, **params):
    """Role assignments main.bicep deploys for a backend: (symbol, role key, principal)."""
    found = []
    for item in deployment(MAIN, {"durableBackend": backend, **params}):
        if item.type != "Microsoft.Authorization/roleAssignments":
            continue
        text = item.node.text.decode()
        roles = set(re.findall(r"roleIds\.(\w+)", text))
        if "in storageRoles" in text:
            roles |= STORAGE_ROLE_KEYS
        principal = re.search(r"principalId: (\w+)", text).group(1)
        found.append((item.symbol, roles, principal, item.deploys, text))
    return found


def _granted_for(backend: str, principal: str, **params) -> set[str]:
    return set().union(*(roles for _s, roles, who, deploys, _t in _assignments(backend, **params)
                         if who == principal and deploys is True))


def test_the_dts_backend_grants_the_app_identity_durable_task_data_contributor():
    granted = _granted_for("dts", "identityPrincipalId")
    assert "durableTaskDataContributor" in granted
    assert granted == set(BUILT_IN_ROLES)


def test_the_storage_backend_grants_no_durable_task_role():
    for symbol, roles, _who, _deploys, _text in _assignments("storage", principalId="someone"):
        assert "durableTaskDataContributor" not in roles, f"{symbol} is deployed for storage"
    assert _granted_for("storage", "identityPrincipalId") == set(BUILT_IN_ROLES) - {"durableTaskDataContributor"}


def test_the_durable_task_role_is_scoped_to_the_task_hub():
    texts = [text for _s, roles, _w, _d, text in _assignments("dts", principalId="someone")
             if "durableTaskDataContributor" in roles]
    assert len(texts) == 2, "one for the app identity, one for the deploying user"
    for text in texts:
        assert "scope: scheduler::taskHub" in text
        assert "name: guid(scheduler::taskHub.id," in text
    roles = ROLES_MODULE.read_text()
    assert "var withDts = useDurableTask && !empty(durableTaskSchedulerName) && !empty(durableTaskHubName)" in roles
    assert re.search(r"resource scheduler 'Microsoft\.DurableTask/schedulers@[\w-]+' existing = if \(withDts\)", roles)
    main = MAIN.read_text()
    assert "useDurableTask: useDts" in main
    assert "durableTaskHubName: taskHubName" in main


def test_the_deploying_user_gets_the_dashboard_role_only_when_given():
    assert "durableTaskDataContributor" in _granted_for("dts", "userPrincipalId", principalId="someone")
    assert not _granted_for("dts", "userPrincipalId")
