"""The settings the code reads, the local sample and the Azure app settings agree.

Three sources are compared:

* code: the names in ``shared_code.settings.SETTINGS``;
* local: the ``Values`` of ``local.settings.sample.json``;
* infra: the keys of the app settings that infra/app/functionapp.bicep applies,
  read from the Bicep syntax tree (tree-sitter), not with a regex. Some settings
  depend on the Durable backend (DURABLE_BACKEND=storage|dts); infra_settings()
  without a backend is the union of both, infra_settings("dts") what that
  variant deploys.

Every exception to "all three list the same names" is written down below with a
reason, so a new setting cannot silently go missing in Azure and a setting that
nothing reads cannot linger in the templates.
"""
from __future__ import annotations

import functools
import json

import pytest

from tests.support.infra import INFRA, ROOT, BicepScope, deployment, parse_bicep

from shared_code.settings import SETTINGS

FUNCTION_APP_MODULE = INFRA / "app" / "functionapp.bicep"
LOCAL_SAMPLE = ROOT / "local.settings.sample.json"
HOST_JSON = ROOT / "host.json"
DTS_HOST_JSON = INFRA / "host.dts.json"
MAIN = INFRA / "main.bicep"
BACKENDS = ("storage", "dts")

# Settings the Functions platform reads in Azure; the code never does.
PLATFORM_SETTINGS_IN_AZURE = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

# Platform settings that only one Durable backend needs. The Functions host reads
# them (host.json names them); the code never does.
PLATFORM_SETTINGS_FOR_BACKEND = {
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING": (
        "dts",
        "read by the Durable extension in the Functions host, because the DTS variant of "
        "host.json (infra/host.dts.json) names it in storageProvider.connectionStringName; "
        "with Azure Storage the task hub uses AzureWebJobsStorage, and local runs use "
        "Azurite (func start) or the devhost, so local.settings.sample.json leaves it out",
    ),
}

# Settings the local Functions host (func start) needs; the code never reads them.
PLATFORM_SETTINGS_LOCAL = {
    "AzureWebJobsStorage",
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsFeatureFlags",
}

# Settings the code reads that infra deliberately leaves unset (and that have no
# default in SettingSpec). Each needs a reason.
NOT_SET_BY_INFRA = {
    "AZURE_OPENAI_API_KEY": "keyless by design: Azure uses the managed identity and the "
                            "OpenAI account has local auth disabled",
    "OPENAI_BASE_URL": "alternative OpenAI-compatible server for local runs (Ollama, vLLM); "
                       "Azure uses Azure OpenAI",
    "OPENAI_API_KEY": "secret of that alternative server; never deployed",
    "OPENAI_MODEL": "model name of that alternative server",
    "HITL_DEV_INSECURE_LINKS": "devhost-only; unsigned review links must never be enabled in Azure",
    "HITL_SMTP_PASSWORD": "SMTP is the e-mail route outside Azure; Azure sends through Communication Services "
                          "with the managed identity",
    "HITL_HOUSE_RULES": "a team's own rules; unset, drafts are not checked (the local sample sets three, so that "
                        "make run shows the check)",
}

# Names that must never appear in the Azure app settings.
FORBIDDEN_IN_INFRA = {
    "AZURE_OPENAI_API_KEY": "a key in app settings is the secret this deployment avoids",
    "OPENAI_API_KEY": "same: no API keys in app settings",
    "HITL_DEV_INSECURE_LINKS": "devhost-only",
    "HITL_TEAMS_ALLOW_ANONYMOUS": "local only: anonymous bot activities are refused in Azure",
    "HITL_SMTP_PASSWORD": "no SMTP password in app settings: Azure sends e-mail with the managed identity",
    "AzureWebJobsStorage": "a connection string needs shared keys, which are disabled",
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig",
    "FUNCTIONS_EXTENSION_VERSION": "Flex Consumption manages the host version",
    "WEBSITE_RUN_FROM_PACKAGE": "Flex Consumption deploys from its blob container",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING": "no content share on Flex Consumption",
    "WEBSITE_CONTENTSHARE": "no content share on Flex Consumption",
}

CODE = {spec.name: spec for spec in SETTINGS}


# --- reading app settings out of the Bicep tree ---------------------------------

def literal(node) -> str | None:
    """Text of a plain string literal; None for interpolated strings and other nodes."""
    if node is None or node.type != "string":
        return None
    parts = [c for c in node.named_children]
    if any(c.type != "string_content" for c in parts):
        return None
    return "".join(c.text.decode() for c in parts)


def property_name(prop) -> str:
    key = prop.named_children[0]
    return key.text.decode() if key.type == "identifier" else literal(key)


def property_value(prop):
    return prop.named_children[-1]


def object_properties(obj) -> dict:
    return {property_name(p): property_value(p)
            for p in obj.named_children if p.type == "object_property"}


def variables(root) -> dict:
    out = {}
    for decl in root.named_children:
        if decl.type == "variable_declaration":
            name = next(c for c in decl.named_children if c.type == "identifier")
            out[name.text.decode()] = decl.named_children[-1]
    return out


def settings_from_expression(node, variables_by_name: dict, seen=(), scope: BicepScope | None = None) -> dict:
    """Keys (and value nodes) an app-settings expression can produce.

    Understands object literals, variables, union(...), parentheses and
    ternaries, which is what the module uses. A ternary contributes both branches,
    unless a scope is given and decides its condition (the Durable backend does);
    then only the branch taken counts. Anything else fails loudly so the test is
    updated together with the template.
    """
    kind = node.type
    if kind == "object":
        return object_properties(node)
    if kind == "identifier":
        name = node.text.decode()
        assert name in variables_by_name, f"app settings use unknown symbol {name!r}"
        assert name not in seen, f"cyclic variable {name!r}"
        return settings_from_expression(variables_by_name[name], variables_by_name, seen + (name,), scope)
    if kind == "parenthesized_expression":
        return settings_from_expression(node.named_children[0], variables_by_name, seen, scope)
    if kind == "ternary_expression":
        decided = scope.evaluate(node.child_by_field_name("condition")) if scope else None
        fields = ("consequence", "alternative")
        if isinstance(decided, bool):
            fields = ("consequence",) if decided else ("alternative",)
        merged = {}
        for field in fields:
            merged.update(settings_from_expression(node.child_by_field_name(field),
                                                   variables_by_name, seen, scope))
        return merged
    if kind == "call_expression" and node.child_by_field_name("function").text == b"union":
        merged = {}
        for arg in node.child_by_field_name("arguments").named_children:
            merged.update(settings_from_expression(arg, variables_by_name, seen, scope))
        return merged
    raise AssertionError(f"cannot read app settings from a {kind} expression: "
                         f"{node.text.decode()[:80]!r}")


def app_settings_resources(root):
    for decl in root.named_children:
        if decl.type != "resource_declaration":
            continue
        type_string = literal(next(c for c in decl.named_children if c.type == "string"))
        body = decl.named_children[-1]
        if not (type_string or "").startswith("Microsoft.Web/sites/config@") or body.type != "object":
            continue
        props = object_properties(body)
        if literal(props.get("name")) == "appsettings":
            yield props["properties"]


def function_app_scope(backend: str) -> BicepScope:
    """functionapp.bicep's parameters as main.bicep passes them for one backend."""
    for item in deployment(MAIN, {"durableBackend": backend}):
        if item.file == FUNCTION_APP_MODULE.relative_to(ROOT).as_posix():
            return item.scope
    raise AssertionError(f"main.bicep deploys no {FUNCTION_APP_MODULE.name} for {backend}")


@functools.lru_cache(maxsize=None)
def infra_settings(backend: str | None = None) -> dict:
    """App setting name -> Bicep source text of its value (all backends when None)."""
    root = parse_bicep(FUNCTION_APP_MODULE)
    resources = list(app_settings_resources(root))
    assert len(resources) == 1, "expected exactly one 'appsettings' config resource"
    scope = function_app_scope(backend) if backend else None
    found = settings_from_expression(resources[0], variables(root), scope=scope)
    return {name: value.text.decode() for name, value in found.items()}


def local_values() -> dict:
    return json.loads(LOCAL_SAMPLE.read_text())["Values"]


# --- the consistency rules ------------------------------------------------------

def test_the_allow_lists_only_name_known_settings():
    known = set(CODE)
    stale = sorted((set(NOT_SET_BY_INFRA)) - known)
    assert not stale, f"NOT_SET_BY_INFRA names settings nothing declares: {stale}"


def test_the_app_settings_are_found_in_the_bicep_tree():
    settings = infra_settings()
    assert "AZURE_OPENAI_ENDPOINT" in settings
    assert "AzureWebJobsStorage__credential" in settings


def test_no_other_bicep_file_sets_app_settings():
    for path in sorted(INFRA.rglob("*.bicep")):
        if path == FUNCTION_APP_MODULE:
            continue
        assert not list(app_settings_resources(parse_bicep(path))), (
            f"{path.relative_to(ROOT)} applies app settings; keep them in {FUNCTION_APP_MODULE.name}")
        assert b"appSettings:" not in path.read_bytes(), f"siteConfig.appSettings in {path}"
    assert b"appSettings:" not in FUNCTION_APP_MODULE.read_bytes(), (
        "use the appsettings config resource, not siteConfig.appSettings")


def test_every_setting_the_code_reads_is_set_in_azure_or_defaulted():
    infra = infra_settings()
    missing = sorted(name for name, spec in CODE.items()
                     if name not in infra and spec.default is None and name not in NOT_SET_BY_INFRA)
    assert not missing, (
        f"read by the code but neither set in {FUNCTION_APP_MODULE.relative_to(ROOT)}, nor "
        f"defaulted in SETTINGS, nor listed in NOT_SET_BY_INFRA: {missing}")


def test_every_app_setting_in_azure_is_read_by_someone():
    readers = set(CODE) | PLATFORM_SETTINGS_IN_AZURE
    readers |= set(PLATFORM_SETTINGS_FOR_BACKEND)
    unread = sorted(set(infra_settings()) - readers)
    assert not unread, f"set in Azure but read by nobody: {unread}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_sets_exactly_its_own_platform_settings(backend):
    settings = infra_settings(backend)
    for name, (owner, _reason) in PLATFORM_SETTINGS_FOR_BACKEND.items():
        if owner == backend:
            assert name in settings, f"{name} is missing from the {backend} variant"
        else:
            assert name not in settings, f"{name} is set for {backend}, but only {owner} reads it"
    # What both need stays in both.
    for name in PLATFORM_SETTINGS_IN_AZURE | {"TASKHUB_NAME", "AZURE_CLIENT_ID"}:
        assert name in settings, f"{name} is missing from the {backend} variant"


def test_the_backend_specific_settings_are_not_code_settings():
    # If the code started reading one, it would belong in SETTINGS instead.
    assert not set(PLATFORM_SETTINGS_FOR_BACKEND) & set(CODE)
    assert all(reason for _owner, reason in PLATFORM_SETTINGS_FOR_BACKEND.values())
    assert {owner for owner, _reason in PLATFORM_SETTINGS_FOR_BACKEND.values()} <= set(BACKENDS)


def test_the_dts_connection_string_uses_the_identity_and_no_key():
    value = infra_settings("dts")["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"]
    assert value == ("'Endpoint=${durableTaskSchedulerEndpoint};"
                     "Authentication=ManagedIdentity;ClientID=${identityClientId}'")
    for secret_part in ("AccountKey", "SharedAccessKey", "Key=", "Secret", "Password"):
        assert secret_part not in value
    # The endpoint is the scheduler main.bicep creates, not something typed in.
    main = MAIN.read_text()
    assert "durableTaskSchedulerEndpoint: useDts ? durableTask!.outputs.endpoint : ''" in main
    assert "durableBackend: durableBackend" in main


def test_the_connection_setting_is_the_one_the_dts_host_json_names():
    dts = json.loads(DTS_HOST_JSON.read_text())
    named = dts["extensions"]["durableTask"]["storageProvider"]["connectionStringName"]
    assert named == "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    assert named in infra_settings("dts")
    assert named in PLATFORM_SETTINGS_FOR_BACKEND
    assert named not in HOST_JSON.read_text(), "the default host.json must not need the scheduler"


def test_forbidden_settings_are_not_set_in_azure():
    present = sorted(set(infra_settings()) & set(FORBIDDEN_IN_INFRA))
    assert not present, {name: FORBIDDEN_IN_INFRA[name] for name in present}


def test_required_azure_settings_have_the_expected_values():
    infra = infra_settings()
    assert infra["HITL_WRITER"] == "'openai'"
    assert infra["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert infra["HITL_PUBLIC_BASE_URL"].startswith("'https://${")
    assert "defaultHostName" in infra["HITL_PUBLIC_BASE_URL"]
    assert infra["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${identityClientId};Authorization=AAD'")
    for name in ("AZURE_CLIENT_ID", "AzureWebJobsStorage__clientId"):
        assert infra[name] == "identityClientId", f"{name} must be the identity's client id"
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT", "TASKHUB_NAME"):
        assert name in infra


def test_secrets_in_azure_are_key_vault_references():
    infra = infra_settings()
    secret_names = {name for name, spec in CODE.items() if spec.secret}
    secret_names |= {"HITL_REVIEW_SIGNING_KEY", "HITL_NOTIFY_WEBHOOK_URL"}
    assert "HITL_REVIEW_SIGNING_KEY" in infra
    for name in sorted(secret_names & set(infra)):
        assert infra[name].startswith("'@Microsoft.KeyVault(SecretUri=${"), (
            f"{name} must be a Key Vault reference, not a value")


def test_the_local_sample_lists_every_setting_the_code_reads():
    values = local_values()
    missing = sorted(set(CODE) - set(values))
    assert not missing, f"local.settings.sample.json lacks: {missing}"


def test_the_local_sample_lists_nothing_unknown():
    known = set(CODE) | PLATFORM_SETTINGS_LOCAL
    unknown = sorted(set(local_values()) - known)
    assert not unknown, f"local.settings.sample.json has settings nothing reads: {unknown}"


def test_the_local_sample_keeps_secrets_empty_and_shows_defaults():
    values = local_values()
    assert all(isinstance(v, str) for v in values.values()), "Values must all be strings"
    secrets = {name for name, spec in CODE.items() if spec.secret}
    secrets |= {"HITL_REVIEW_SIGNING_KEY", "HITL_NOTIFY_WEBHOOK_URL"}
    for name in sorted(secrets & set(values)):
        assert values[name] == "", f"{name} is a secret; the sample must leave it empty"
    for name, spec in CODE.items():
        if spec.default is None or name not in values:
            continue
        assert values[name] == spec.default, (
            f"{name}: sample shows {values[name]!r}, SETTINGS default is {spec.default!r}")


def test_the_local_sample_is_a_local_settings_file():
    data = json.loads(LOCAL_SAMPLE.read_text())
    assert data["IsEncrypted"] is False
    values = data["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsFeatureFlags"] == "EnableWorkerIndexing"
    assert values["TASKHUB_NAME"]


def test_host_json_tunes_the_azure_storage_provider():
    # Azure Storage polls its queues and backs off to maxQueuePollingInterval
    # (default 30 s) when they are idle. The approve route waits for the
    # orchestrator to take the decision, so a long idle back-off makes approvals
    # slow; the price is more queue transactions (docs/DEPLOYMENT.md).
    provider = json.loads(HOST_JSON.read_text())["extensions"]["durableTask"]["storageProvider"]
    assert provider == {"maxQueuePollingInterval": "00:00:02"}
    assert "type" not in provider, "the default host.json is the Azure Storage variant"


def test_host_json_wires_the_task_hub_and_bundle():
    host = json.loads(HOST_JSON.read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    assert host["extensions"]["http"]["routePrefix"] == "api"
    durable = host["extensions"]["durableTask"]
    assert durable["hubName"] == "%TASKHUB_NAME%"
    # %TASKHUB_NAME% must resolve everywhere the host runs.
    assert "TASKHUB_NAME" in CODE
    assert "TASKHUB_NAME" in infra_settings()
    assert local_values().get("TASKHUB_NAME")


def test_host_json_sizes_durable_concurrency_for_a_python_worker():
    host = json.loads(HOST_JSON.read_text())
    durable = host["extensions"]["durableTask"]
    activities = durable["maxConcurrentActivityFunctions"]
    orchestrators = durable["maxConcurrentOrchestratorFunctions"]
    assert isinstance(activities, int) and isinstance(orchestrators, int)
    # Small on purpose (docs/DEPLOYMENT.md): the defaults assume a multi-threaded .NET host.
    assert 1 <= orchestrators <= activities <= 20
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert "Request" in sampling["excludedTypes"].split(";")
