#!/usr/bin/env python3
"""Put the host.json of the selected Durable backend into the azd package.

The azd environment value DURABLE_BACKEND (storage, the default, or dts) picks
the Durable Functions backend. infra/main.bicep provisions for it; this script,
run by azd as hooks (azure.yaml), makes the deployed host.json match:

  prepackage    before azd zips the app. With dts, host.json is set aside and
                infra/host.dts.json takes its place; with storage nothing moves.
  postpackage   after the zip exists: the original host.json comes back.
  preprovision  stops when DURABLE_BACKEND is unset in an environment that was
                provisioned with dts (a silent fall-back to storage would strand
                every run in the scheduler), and warns when the backend changes.
  predeploy     stops when the package was built for another backend than the
                infrastructure was last provisioned for.

For people and tests:

  render storage|dts  print the host.json of that backend
  check               fail if infra/host.dts.json is not host.json with the DTS provider
  restore             put host.json back after a package step that was interrupted

The variant is a file in the package, not an app-setting override
(AzureFunctionsJobHost__extensions__durableTask__storageProvider__type), because
the Functions host reads the durableTask section for the scale controller
straight from the host.json file: an override would leave Flex Consumption
scaling the app on Azure Storage queues that no longer receive work.

Only the standard library is used, so azd can run this with any Python 3.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BACKENDS = ("storage", "dts")
DEFAULT_BACKEND = "storage"

HOST_JSON = "host.json"
DTS_HOST_JSON = "infra/host.dts.json"
# Under .azure/, which git and .funcignore both leave out, so the saved copy is
# never committed and never packaged.
SAVED_HOST_JSON = ".azure/durable-backend/host.json"

# What the DTS variant changes, and nothing else (check enforces it):
# the provider, and a bundle range that contains it. Microsoft's quickstart for
# Durable Functions on the Durable Task Scheduler names bundle 4.32.0 as the
# first that includes the azureManaged provider for non-.NET languages.
DTS_CONNECTION_SETTING = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
DTS_STORAGE_PROVIDER = {
    "type": "azureManaged",
    "connectionStringName": DTS_CONNECTION_SETTING,
}
DTS_BUNDLE_VERSION = "[4.32.0, 5.0.0)"

DOCS = "docs/DEPLOYMENT.md"


class HookError(Exception):
    """A condition that must stop azd; the message says what to do."""


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HookError(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise HookError(f"{path} is not valid JSON: {exc}") from None


def dumps(config: dict) -> str:
    return json.dumps(config, indent=2) + "\n"


def provider_type(config: dict) -> str:
    durable = config.get("extensions", {}).get("durableTask", {})
    return str(durable.get("storageProvider", {}).get("type", "AzureStorage"))


def backend_of(config: dict) -> str:
    kind = provider_type(config).lower()
    if kind == "azuremanaged":
        return "dts"
    if kind == "azurestorage":
        return "storage"
    raise HookError(f"host.json names the storage provider {provider_type(config)!r}, "
                    f"which is neither Azure Storage nor the Durable Task Scheduler")


def dts_variant(storage_config: dict) -> dict:
    """The storage host.json with the Durable Task Scheduler provider and bundle."""
    variant = copy.deepcopy(storage_config)
    try:
        durable = variant["extensions"]["durableTask"]
        bundle = variant["extensionBundle"]
    except KeyError as exc:
        raise HookError(f"host.json has no {exc.args[0]!r} section") from None
    # Replacing the value keeps the key where it is, so the two files diff cleanly.
    durable["storageProvider"] = dict(DTS_STORAGE_PROVIDER)
    bundle["version"] = DTS_BUNDLE_VERSION
    return variant


def render(root: Path, backend: str) -> str:
    host = root / HOST_JSON
    if backend == "storage":
        return host.read_text(encoding="utf-8")
    return dumps(dts_variant(load(host)))


def check(root: Path) -> None:
    host = load(root / HOST_JSON)
    if backend_of(host) != "storage":
        raise HookError(f"{HOST_JSON} must stay the Azure Storage variant (the local hosts and "
                        f"the default deployment use it); the DTS variant is {DTS_HOST_JSON}")
    if load(root / DTS_HOST_JSON) != dts_variant(host):
        raise HookError(f"{DTS_HOST_JSON} differs from {HOST_JSON} in more than the storage "
                        f"provider and bundle version. Regenerate it:\n"
                        f"  python3 scripts/select-durable-backend.py render dts > {DTS_HOST_JSON}")


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def restore(root: Path) -> bool:
    """Put the saved host.json back, if one is saved. True when something moved."""
    saved = root / SAVED_HOST_JSON
    if not saved.is_file():
        return False
    host = root / HOST_JSON
    original = saved.read_bytes()
    current = host.read_bytes() if host.is_file() else None
    variant_path = root / DTS_HOST_JSON
    variant = variant_path.read_bytes() if variant_path.is_file() else None
    if current is not None and current not in (original, variant):
        # Somebody edited host.json while the variant was in place; keep both.
        raise HookError(f"{HOST_JSON} changed while the DTS variant was in place. The original "
                        f"is kept in {SAVED_HOST_JSON}; compare the two, keep what you need in "
                        f"{HOST_JSON} and delete {SAVED_HOST_JSON}.")
    if current != original:
        write_atomically(host, original)
    saved.unlink()
    return True


def selected_backend(env) -> str:
    chosen = env.get("DURABLE_BACKEND", "").strip().lower()
    provisioned = env.get("AZURE_DURABLE_BACKEND", "").strip().lower()
    if not chosen:
        if provisioned == "dts":
            raise HookError("DURABLE_BACKEND is not set, but this environment was provisioned "
                            "with the Durable Task Scheduler. Falling back to storage would "
                            "leave every run in the scheduler behind. Say which backend you "
                            "want: azd env set DURABLE_BACKEND dts (or storage to move back, "
                            f"see {DOCS}).")
        return DEFAULT_BACKEND
    if chosen not in BACKENDS:
        raise HookError(f"DURABLE_BACKEND={chosen!r}: use one of {', '.join(BACKENDS)}")
    return chosen


def prepackage(root: Path, env) -> str:
    restore(root)
    backend = selected_backend(env)
    host = root / HOST_JSON
    if backend_of(load(host)) != "storage":
        raise HookError(f"{HOST_JSON} must be the Azure Storage variant before packaging; "
                        f"the DTS variant is {DTS_HOST_JSON}")
    if backend == "dts":
        check(root)
        write_atomically(root / SAVED_HOST_JSON, host.read_bytes())
        write_atomically(host, (root / DTS_HOST_JSON).read_bytes())
        return f"packaging host.json for the Durable Task Scheduler (from {DTS_HOST_JSON})"
    return "packaging host.json for Azure Storage"


def postpackage(root: Path, env) -> str:
    if restore(root):
        return f"restored {HOST_JSON}"
    return f"{HOST_JSON} unchanged"


def provisioned_backend(env) -> str:
    return env.get("AZURE_DURABLE_BACKEND", "").strip().lower()


def preprovision(root: Path, env) -> str:
    restore(root)
    backend = selected_backend(env)
    before = provisioned_backend(env)
    if before and before != backend:
        warning = (f"warning: switching the Durable backend from {before} to {backend}. "
                   f"Orchestrations do not move between backends: runs still waiting in the "
                   f"{before} task hub stay there and the {backend} task hub starts empty.")
        if before == "dts":
            warning += (" Provisioning does not delete the scheduler; delete it once its runs "
                        "are finished (a Dedicated scheduler is billed while it exists).")
        print(f"select-durable-backend: {warning} See {DOCS}.", file=sys.stderr)
    return f"provisioning for DURABLE_BACKEND={backend}"


def predeploy(root: Path, env) -> str:
    restore(root)
    backend = selected_backend(env)
    provisioned = provisioned_backend(env)
    if not provisioned:
        if backend == "dts":
            raise HookError("DURABLE_BACKEND is dts, but the environment has no "
                            "AZURE_DURABLE_BACKEND output, so no scheduler has been "
                            "provisioned. Run azd provision (or azd up) first.")
        # An environment provisioned before the backend became a choice: Azure Storage.
        return "deploying for DURABLE_BACKEND=storage"
    if provisioned != backend:
        raise HookError(f"the infrastructure was provisioned for DURABLE_BACKEND={provisioned}, "
                        f"but DURABLE_BACKEND is now {backend}; deploying would give the app a "
                        f"host.json for the other backend. Run azd provision (or azd up) first.")
    return f"deploying for DURABLE_BACKEND={backend}"


HOOKS = {
    "prepackage": prepackage,
    "postpackage": postpackage,
    "preprovision": preprovision,
    "predeploy": predeploy,
}


def main(argv=None, env=None, root: Path = ROOT) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="select-durable-backend",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in HOOKS:
        commands.add_parser(name, help=f"azd {name} hook")
    show = commands.add_parser("render", help="print the host.json of a backend")
    show.add_argument("backend", choices=BACKENDS)
    commands.add_parser("check", help="verify infra/host.dts.json against host.json")
    commands.add_parser("restore", help="put host.json back after an interrupted package")
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            sys.stdout.write(render(root, args.backend))
            return 0
        if args.command == "check":
            check(root)
            message = f"{DTS_HOST_JSON} matches {HOST_JSON}"
        elif args.command == "restore":
            message = f"restored {HOST_JSON}" if restore(root) else "nothing to restore"
        else:
            message = HOOKS[args.command](root, env)
    except HookError as exc:
        print(f"select-durable-backend: error: {exc}", file=sys.stderr)
        return 1
    print(f"select-durable-backend: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
