"""azure.yaml, the azd parameters file, main.bicep's azd conventions and the workflows."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from tests.support.infra import INFRA, ROOT, load_yaml, parse_bicep

MAIN = INFRA / "main.bicep"
PARAMETERS = INFRA / "main.parameters.json"
FUNCTION_APP_MODULE = INFRA / "app" / "functionapp.bicep"
WORKFLOWS = ROOT / ".github" / "workflows"


@functools.lru_cache(maxsize=None)
def declarations(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """{'param': {name: (decorators, declaration)}, 'output': {...}} at the top level."""
    root = parse_bicep(path)
    found: dict[str, dict[str, tuple[str, str]]] = {"param": {}, "output": {}}
    kinds = {"parameter_declaration": "param", "output_declaration": "output"}
    for decl in root.named_children:
        kind = kinds.get(decl.type)
        if kind:
            name = next(c for c in decl.named_children if c.type == "identifier")
            # Decorators are a sibling node in front of the declaration.
            before = decl.prev_named_sibling
            decorators = before.text.decode() if before is not None and before.type == "decorators" else ""
            found[kind][name.text.decode()] = (decorators, decl.text.decode())
    return found


def workflow_triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    return {triggers: None} if isinstance(triggers, str) else dict(triggers or {})


def all_steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


# --- azure.yaml -------------------------------------------------------------------

def test_azure_yaml_declares_the_function_service():
    project = load_yaml(ROOT / "azure.yaml")
    assert project["name"]
    service = project["services"]["api"]
    assert {key: service.get(key) for key in ("project", "language", "host")} == {
        "project": ".", "language": "python", "host": "function"}
    assert set(service) <= {"project", "language", "host", "hooks"}
    infra = project.get("infra", {})
    assert infra.get("provider", "bicep") == "bicep"
    assert infra.get("path", "infra") == "infra"
    assert infra.get("module", "main") == "main"


# --- infra/main.parameters.json ---------------------------------------------------

def test_parameters_file_uses_azd_substitutions():
    params = json.loads(PARAMETERS.read_text())["parameters"]
    assert params["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert params["location"]["value"] == "${AZURE_LOCATION}"
    assert params["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    # One azd value picks the Durable backend; unset means Azure Storage.
    assert params["durableBackend"]["value"] == "${DURABLE_BACKEND=storage}"
    assert params["durableTaskSchedulerSku"]["value"] == "${DURABLE_TASK_SCHEDULER_SKU=Consumption}"
    # Reads the signing key already in Key Vault, so re-provisioning does not rotate it.
    assert params["reviewSigningKey"]["value"] == (
        "$(secretOrRandomPassword ${AZURE_KEY_VAULT_NAME} hitl-review-signing-key)")


def test_parameters_file_matches_main_bicep():
    declared = declarations(MAIN)["param"]
    params = json.loads(PARAMETERS.read_text())["parameters"]
    unknown = sorted(set(params) - set(declared))
    assert not unknown, f"main.parameters.json sets parameters main.bicep lacks: {unknown}"
    required = sorted(name for name, (_, src) in declared.items() if "=" not in src)
    unset = sorted(set(required) - set(params))
    assert not unset, f"main.bicep parameters without default that azd would prompt for: {unset}"


def test_values_read_back_by_azd_are_outputs_of_main_bicep():
    outputs = declarations(MAIN)["output"]
    text = PARAMETERS.read_text()
    # secretOrRandomPassword needs the vault name from the previous provision.
    assert "${AZURE_KEY_VAULT_NAME}" in text and "AZURE_KEY_VAULT_NAME" in outputs
    # The "use an existing endpoint" switch must not read the endpoint this template
    # outputs, or the second provision would stop managing the account it created.
    assert "${AZURE_OPENAI_ENDPOINT}" not in text


def test_azd_reads_back_the_secret_the_template_writes():
    keyvault = (INFRA / "core" / "keyvault.bicep").read_text()
    written = re.search(r"^param reviewSigningKeySecretName string = '([^']+)'$", keyvault, re.M)
    assert written, "keyvault.bicep must name the signing-key secret"
    value = json.loads(PARAMETERS.read_text())["parameters"]["reviewSigningKey"]["value"]
    assert value.endswith(f" {written.group(1)})"), "parameters file reads a different secret"


def test_the_signing_key_default_is_generated_and_secure():
    decorators, source = declarations(MAIN)["param"]["reviewSigningKey"]
    assert "@secure()" in decorators
    assert source.endswith("= newGuid()")


# --- main.bicep azd conventions ------------------------------------------------------

def test_main_bicep_has_the_azd_parameters():
    declared = declarations(MAIN)["param"]
    for name in ("environmentName", "location", "principalId"):
        assert name in declared
    assert "openAiEndpoint" in declared, "an existing Azure OpenAI endpoint must be accepted"
    assert re.search(r"^targetScope = '(subscription|resourceGroup)'", MAIN.read_text(), re.M)


@pytest.mark.parametrize("name", [
    "AZURE_LOCATION", "AZURE_TENANT_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME",
    "AZURE_FUNCTION_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT", "AZURE_KEY_VAULT_NAME",
    "AZURE_DURABLE_BACKEND", "AZURE_DURABLE_TASK_SCHEDULER_NAME", "AZURE_DURABLE_TASK_SCHEDULER_ENDPOINT",
])
def test_main_bicep_outputs(name):
    assert name in declarations(MAIN)["output"]


def test_resources_carry_the_azd_tags():
    assert "'azd-env-name': environmentName" in MAIN.read_text()
    app = FUNCTION_APP_MODULE.read_text()
    assert "'azd-service-name': serviceName" in app
    assert re.search(r"^param serviceName string = 'api'$", app, re.M)


def test_the_function_app_is_flex_consumption_with_a_user_assigned_identity():
    app = FUNCTION_APP_MODULE.read_text()
    for fragment in ("name: 'FC1'", "tier: 'FlexConsumption'", "kind: 'functionapp,linux'",
                     "functionAppConfig:", "type: 'blobContainer'", "type: 'UserAssignedIdentity'",
                     "userAssignedIdentityResourceId: identityId", "name: 'python'",
                     "scaleAndConcurrency:", "type: 'UserAssigned'",
                     "keyVaultReferenceIdentity: identityId", "httpsOnly: true"):
        assert fragment in app, fragment
    assert re.search(r"^param pythonVersion string = '3\.13'$", app, re.M)


@pytest.mark.parametrize("module, fragment", [
    ("core/storage.bicep", "allowSharedKeyAccess: false"),
    ("core/monitoring.bicep", "DisableLocalAuth: true"),
    ("core/openai.bicep", "disableLocalAuth: true"),
    ("core/openai.bicep", "kind: 'OpenAI'"),
    ("core/keyvault.bicep", "enableRbacAuthorization: true"),
])
def test_local_auth_is_off_everywhere(module, fragment):
    assert fragment in (INFRA / module).read_text()


def test_openai_is_only_created_without_an_existing_endpoint():
    assert "var createOpenAi = empty(openAiEndpoint)" in MAIN.read_text()
    assert re.search(r"^module openAi 'core/openai\.bicep' = if \(createOpenAi\)", MAIN.read_text(), re.M)


# --- workflows ------------------------------------------------------------------------

def test_ci_runs_make_test_on_every_push():
    ci = load_yaml(WORKFLOWS / "ci.yml")
    triggers = workflow_triggers(ci)
    assert "push" in triggers
    assert not (triggers["push"] or {}).get("branches"), "CI must run on every branch"
    jobs = list(ci["jobs"].values())
    assert any(job["runs-on"] == "ubuntu-latest" for job in jobs)
    steps = all_steps(ci)
    assert any(str(s.get("with", {}).get("python-version")) == "3.13" for s in steps)
    assert any("make test" in s.get("run", "") for s in steps)


def test_deploy_uses_azd_with_oidc_and_repository_variables():
    raw = (WORKFLOWS / "deploy.yml").read_text()
    deploy = load_yaml(WORKFLOWS / "deploy.yml")
    assert deploy["permissions"]["id-token"] == "write"
    runs = " ".join(" ".join(s.get("run", "").split()) for s in all_steps(deploy))
    assert "azd auth login" in runs
    assert "--federated-credential-provider github" in runs
    assert "--client-id" in runs and "--tenant-id" in runs
    assert ("azd provision" in runs and "azd deploy" in runs) or "azd up --no-prompt" in runs
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"):
        assert f"${{{{ vars.{name} }}}}" in raw, f"{name} must come from a repository variable"
    assert "secrets." not in raw, "the deployment must not depend on repository secrets"
    # The Durable backend follows a repository variable into the azd environment.
    assert deploy["jobs"]["deploy"]["env"]["DURABLE_BACKEND"] == "${{ vars.DURABLE_BACKEND }}"
    assert 'azd env set DURABLE_BACKEND "$DURABLE_BACKEND"' in runs


def test_one_python_version_everywhere():
    """Azure runs the app on the Python the Bicep names; CI and the local venvs use the same."""
    bicep = (INFRA / "app" / "functionapp.bicep").read_text()
    azure = re.search(r"^param pythonVersion string = '([0-9.]+)'", bicep, re.M).group(1)
    finder = (ROOT / "scripts" / "find-python").read_text()
    local = ".".join(re.search(r"WANT_MAJOR=(\d+) WANT_MINOR=(\d+)", finder).groups())
    workflows = {str(s["with"]["python-version"]) for name in ("ci.yml", "deploy.yml")
                 for s in all_steps(load_yaml(WORKFLOWS / name)) if "python-version" in s.get("with", {})}
    assert azure == local == "3.13"
    assert workflows == {azure}
