"""DURABLE_BACKEND=storage|dts: what each variant provisions, packages and checks.

The Bicep side is read with the small evaluator in tests/support/infra.py, for
each value of the durableBackend parameter, so "the storage variant deploys no
scheduler" is a statement about what ARM would be asked to create, not about
the presence of an `if`. The host.json side runs scripts/select-durable-backend.py
(the azd hooks) against a copy of the files in a temporary folder; the real
host.json is never touched.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support.infra import INFRA, ROOT, BicepScope, deployment, load_yaml, parse_bicep

MAIN = INFRA / "main.bicep"
SCHEDULER_MODULE = INFRA / "core" / "durabletask.bicep"
HOST_JSON = ROOT / "host.json"
DTS_HOST_JSON = INFRA / "host.dts.json"
SCRIPT = ROOT / "scripts" / "select-durable-backend.py"

BACKENDS = ("storage", "dts")
DTS_TYPES = ("Microsoft.DurableTask/schedulers", "Microsoft.DurableTask/schedulers/taskHubs")
# The API version of the Azure-Samples Durable-Task-Scheduler azd templates
# (samples/durable-functions/python/pdf-summarizer/infra/app/dts.bicep), GA.
API_VERSION = "2025-11-01"
# Resource name pattern of schedulers and task hubs (ARM template reference).
DTS_NAME = re.compile(r"^[a-zA-Z0-9-]{3,64}$")


def load_script():
    spec = importlib.util.spec_from_file_location("select_durable_backend", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = load_script()


def deployed(backend: str, **params):
    return list(deployment(MAIN, {"durableBackend": backend, **params}))


def main_declarations(kind: str) -> dict:
    root = parse_bicep(MAIN)
    found = {}
    for decl in root.named_children:
        if decl.type == kind:
            name = next(c for c in decl.named_children if c.type == "identifier").text.decode()
            found[name] = decl
    return found


def output_value(name: str, backend: str):
    decl = main_declarations("output_declaration")[name]
    scope = BicepScope(parse_bicep(MAIN), {"durableBackend": backend})
    return scope.evaluate(decl.named_children[-1])


# --- the parameter ------------------------------------------------------------------

def test_one_parameter_selects_the_backend_and_storage_is_the_default():
    decl = main_declarations("parameter_declaration")["durableBackend"]
    decorators = decl.prev_named_sibling.text.decode()
    assert re.search(r"@allowed\(\[\s*'storage'\s*'dts'\s*\]\)", decorators)
    assert decl.text.decode().endswith("= 'storage'")
    assert "var useDts = durableBackend == 'dts'" in MAIN.read_text()


# --- the storage variant --------------------------------------------------------------

def test_the_storage_variant_deploys_nothing_of_the_scheduler():
    for item in deployed("storage", principalId="someone"):
        assert not item.type.startswith("Microsoft.DurableTask/"), f"{item.file}: {item.symbol}"
        assert item.type != f"module:{SCHEDULER_MODULE.relative_to(ROOT).as_posix()}"


@pytest.mark.parametrize("name", ["AZURE_DURABLE_TASK_SCHEDULER_NAME", "AZURE_DURABLE_TASK_SCHEDULER_ENDPOINT"])
def test_the_storage_variant_outputs_no_scheduler(name):
    assert output_value(name, "storage") == ""


def test_the_provisioned_backend_is_an_output_for_the_hooks():
    for backend in BACKENDS:
        assert output_value("AZURE_DURABLE_BACKEND", backend) == backend


def test_both_variants_keep_the_storage_account_the_host_needs():
    for backend in BACKENDS:
        types = {item.type for item in deployed(backend)}
        assert "Microsoft.Storage/storageAccounts" in types
        assert "Microsoft.Web/sites" in types


# --- the dts variant ------------------------------------------------------------------

def test_the_dts_variant_deploys_a_scheduler_and_its_task_hub():
    items = {item.type: item for item in deployed("dts")}
    for kind in DTS_TYPES:
        assert kind in items, f"{kind} is not deployed for dts"
        assert items[kind].deploys is True
        assert items[kind].file == SCHEDULER_MODULE.relative_to(ROOT).as_posix()


def test_the_scheduler_module_is_only_used_for_dts():
    module = main_declarations("module_declaration")["durableTask"]
    text = module.text.decode()
    assert text.startswith("module durableTask 'core/durabletask.bicep' = if (useDts) {")


def test_the_scheduler_uses_a_ga_api_version_and_a_valid_sku():
    text = SCHEDULER_MODULE.read_text()
    versions = set(re.findall(r"'Microsoft\.DurableTask/schedulers@([\w-]+)'", text))
    assert versions == {API_VERSION}
    assert "resource taskHub 'taskHubs' = {" in text, "the task hub is a child of the scheduler"
    assert re.search(r"@allowed\(\[\s*'Consumption'\s*'Dedicated'\s*\]\)\s*@description\([^)]*\)\s*"
                     r"param skuName string = 'Consumption'", text)
    # Capacity units belong to Dedicated only; Consumption takes none.
    assert "sku: skuName == 'Dedicated' ? {" in text
    assert re.search(r"@minValue\(1\)\s*@maxValue\(3\)", text)


def test_the_scheduler_accepts_callers_only_by_identity():
    text = SCHEDULER_MODULE.read_text()
    # An empty allow list rejects everyone; access control is the role on the task hub.
    allow = re.search(r"ipAllowlist: \[(.*?)\]", text, re.DOTALL)
    assert allow and "'0.0.0.0/0'" in allow.group(1)
    assert "listKeys" not in text and "accessKey" not in text.lower()


def test_the_task_hub_is_the_one_host_json_names():
    items = {item.type: item for item in deployed("dts")}
    hub = items["Microsoft.DurableTask/schedulers/taskHubs"]
    name_node = next(p.named_children[-1] for p in hub.node.named_children[-1].named_children
                     if p.type == "object_property" and p.named_children[0].text == b"name")
    value = hub.scope.evaluate(name_node)
    # main.bicep passes taskHubName, the same value the app gets as TASKHUB_NAME,
    # which both host.json variants read as %TASKHUB_NAME%.
    assert value == "HitlReviewHub"
    assert DTS_NAME.match(value)
    assert "taskHubName: taskHubName" in MAIN.read_text()
    assert "var durableTaskSchedulerName = 'dts-${resourceToken}'" in MAIN.read_text()


def test_the_scheduler_sku_is_an_azd_value():
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["durableTaskSchedulerSku"]["value"].startswith("${DURABLE_TASK_SCHEDULER_SKU=")


# --- host.json: one file per variant -----------------------------------------------------

def devhost_view(config: dict) -> dict:
    """The settings the local hosts read (devhost/host.py, func start)."""
    durable = config["extensions"]["durableTask"]
    return {
        "routePrefix": config["extensions"]["http"]["routePrefix"],
        "hubName": durable["hubName"],
        "maxConcurrentActivityFunctions": durable["maxConcurrentActivityFunctions"],
        "maxConcurrentOrchestratorFunctions": durable["maxConcurrentOrchestratorFunctions"],
    }


def test_the_dts_host_json_is_host_json_with_the_dts_provider():
    storage = json.loads(HOST_JSON.read_text())
    dts = json.loads(DTS_HOST_JSON.read_text())
    assert dts == hooks.dts_variant(storage)
    # The file is what `render dts` prints, so regenerating it gives no diff.
    assert DTS_HOST_JSON.read_text() == hooks.render(ROOT, "dts")


def test_the_dts_host_json_selects_the_scheduler():
    dts = json.loads(DTS_HOST_JSON.read_text())
    assert dts["extensions"]["durableTask"]["storageProvider"] == {
        "type": "azureManaged",
        "connectionStringName": "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
    }
    assert hooks.backend_of(dts) == "dts"
    assert hooks.backend_of(json.loads(HOST_JSON.read_text())) == "storage"


def test_the_dts_host_json_uses_a_bundle_that_has_the_provider():
    dts = json.loads(DTS_HOST_JSON.read_text())["extensionBundle"]
    assert dts["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    low, high = re.fullmatch(r"\[([\d.]+), ([\d.]+)\)", dts["version"]).groups()
    # 4.32.0 is the first v4 bundle with the azureManaged provider (Microsoft's
    # Durable Task Scheduler quickstart for Durable Functions).
    assert tuple(map(int, low.split("."))) >= (4, 32, 0)
    assert high == "5.0.0"


@pytest.mark.parametrize("path", [HOST_JSON, DTS_HOST_JSON], ids=["storage", "dts"])
def test_both_host_json_variants_keep_what_the_local_hosts_read(path):
    config = json.loads(path.read_text())
    assert config["version"] == "2.0"
    assert devhost_view(config) == devhost_view(json.loads(HOST_JSON.read_text()))
    assert devhost_view(config)["hubName"] == "%TASKHUB_NAME%"


def test_the_dts_host_json_is_not_packaged_but_the_default_is():
    ignore = (ROOT / ".funcignore").read_text().splitlines()
    assert "infra" in ignore, "infra/host.dts.json must not ship as a stray file"
    assert ".azure" in ignore, "the hook's saved copy of host.json must not ship"


# --- the hooks in azure.yaml ---------------------------------------------------------------

def hook_commands(hook: dict) -> dict:
    return {os_name: hook[os_name]["run"] for os_name in ("posix", "windows")}


@pytest.mark.parametrize("where, name", [
    ("service", "prepackage"), ("service", "postpackage"), ("service", "predeploy"),
    ("project", "preprovision"),
])
def test_azure_yaml_runs_the_backend_hooks(where, name):
    project = load_yaml(ROOT / "azure.yaml")
    hooks_section = project["services"]["api"]["hooks"] if where == "service" else project["hooks"]
    commands = hook_commands(hooks_section[name])
    assert commands["posix"] == f"python3 scripts/select-durable-backend.py {name}"
    assert commands["windows"] == f"python scripts/select-durable-backend.py {name}"
    assert hooks_section[name]["posix"]["shell"] == "sh"
    assert hooks_section[name]["windows"]["shell"] == "pwsh"
    assert name in hooks.HOOKS


# --- the hook script, on a copy of the files ----------------------------------------------

@pytest.fixture
def app(tmp_path):
    (tmp_path / "infra").mkdir()
    shutil.copyfile(HOST_JSON, tmp_path / "host.json")
    shutil.copyfile(DTS_HOST_JSON, tmp_path / "infra" / "host.dts.json")
    return tmp_path


def run(app_root: Path, command: str, **env) -> int:
    return hooks.main([command], env=env, root=app_root)


def test_prepackage_for_dts_packages_the_dts_host_json_and_postpackage_restores(app, capsys):
    original = (app / "host.json").read_bytes()
    assert run(app, "prepackage", DURABLE_BACKEND="dts") == 0
    assert (app / "host.json").read_bytes() == DTS_HOST_JSON.read_bytes()
    assert (app / ".azure" / "durable-backend" / "host.json").read_bytes() == original
    assert run(app, "postpackage", DURABLE_BACKEND="dts") == 0
    assert (app / "host.json").read_bytes() == original
    assert not (app / ".azure" / "durable-backend" / "host.json").exists()
    assert "Durable Task Scheduler" in capsys.readouterr().out


@pytest.mark.parametrize("env", [{}, {"DURABLE_BACKEND": "storage"}, {"DURABLE_BACKEND": " Storage "}])
def test_prepackage_for_storage_changes_nothing(app, env):
    original = (app / "host.json").read_bytes()
    assert run(app, "prepackage", **env) == 0
    assert (app / "host.json").read_bytes() == original
    assert not (app / ".azure").exists()
    assert run(app, "postpackage", **env) == 0
    assert (app / "host.json").read_bytes() == original


def test_an_interrupted_package_is_repaired_by_the_next_hook(app):
    original = (app / "host.json").read_bytes()
    assert run(app, "prepackage", DURABLE_BACKEND="dts") == 0
    # azd stopped before postpackage; the next command starts with a restore.
    assert run(app, "predeploy", DURABLE_BACKEND="storage", AZURE_DURABLE_BACKEND="storage") == 0
    assert (app / "host.json").read_bytes() == original


def test_restore_keeps_both_files_when_host_json_was_edited_meanwhile(app, capsys):
    assert run(app, "prepackage", DURABLE_BACKEND="dts") == 0
    (app / "host.json").write_text("{}\n")
    assert run(app, "restore") == 1
    assert (app / ".azure" / "durable-backend" / "host.json").exists()
    assert "changed while the DTS variant was in place" in capsys.readouterr().err


def test_an_unknown_backend_is_refused(app, capsys):
    assert run(app, "prepackage", DURABLE_BACKEND="sql") == 1
    assert "use one of storage, dts" in capsys.readouterr().err


def test_an_unset_backend_does_not_silently_leave_the_scheduler(app, capsys):
    for command in ("prepackage", "preprovision", "predeploy"):
        assert run(app, command, AZURE_DURABLE_BACKEND="dts") == 1
        assert "DURABLE_BACKEND is not set" in capsys.readouterr().err


def test_predeploy_refuses_a_package_for_the_other_backend(app, capsys):
    assert run(app, "predeploy", DURABLE_BACKEND="dts", AZURE_DURABLE_BACKEND="storage") == 1
    assert "Run azd provision" in capsys.readouterr().err
    assert run(app, "predeploy", DURABLE_BACKEND="storage", AZURE_DURABLE_BACKEND="dts") == 1
    assert run(app, "predeploy", DURABLE_BACKEND="dts") == 1, "dts was never provisioned"
    assert run(app, "predeploy", DURABLE_BACKEND="dts", AZURE_DURABLE_BACKEND="dts") == 0
    assert run(app, "predeploy") == 0, "environments from before the choice are storage"


def test_preprovision_warns_when_the_backend_changes(app, capsys):
    assert run(app, "preprovision", DURABLE_BACKEND="storage", AZURE_DURABLE_BACKEND="dts") == 0
    err = capsys.readouterr().err
    assert "Orchestrations do not move between backends" in err
    assert "does not delete the scheduler" in err
    assert run(app, "preprovision", DURABLE_BACKEND="dts", AZURE_DURABLE_BACKEND="dts") == 0
    assert capsys.readouterr().err == ""


def test_a_drifted_dts_host_json_stops_the_dts_package(app, capsys):
    config = json.loads((app / "host.json").read_text())
    config["extensions"]["http"]["routePrefix"] = "v2"
    (app / "host.json").write_text(json.dumps(config, indent=2) + "\n")
    original = (app / "host.json").read_bytes()
    assert run(app, "prepackage", DURABLE_BACKEND="dts") == 1
    assert "render dts" in capsys.readouterr().err
    assert (app / "host.json").read_bytes() == original, "nothing is swapped on failure"


def test_a_dts_host_json_in_the_root_is_refused(app, capsys):
    shutil.copyfile(DTS_HOST_JSON, app / "host.json")
    assert run(app, "prepackage", DURABLE_BACKEND="storage") == 1
    assert "must be the Azure Storage variant" in capsys.readouterr().err


def test_the_repository_files_pass_the_check(capsys):
    assert hooks.main(["check"], env={}) == 0
    assert "matches" in capsys.readouterr().out
