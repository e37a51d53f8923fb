"""Load a v1-model function app: one folder per function, each with a ``function.json``.

The Functions host reads each folder's ``function.json`` (its bindings, ``scriptFile`` and
``entryPoint``) and sends the Python worker a FunctionLoadRequest for each function; the
worker runtime for v1 apps (``azure-functions-runtime-v1``) imports the script as
``__app__.<folder>.<module>``, ``__app__`` being a namespace package rooted at the app
folder, so a function may import its siblings relatively (``from ..shared_code import x``),
and checks its parameters against the bindings. The devhost reads the folders as the host
does, has that runtime load each function, and sorts them into the same ``Registry`` a
v2 app gets.

A function with a binding the devhost cannot provide (Twilio, blobs, queues, a durable
client outside an HTTP function) is not registered: it is listed as not run, so calling it
is a call to a function the host does not have, instead of running without its binding.
"""
from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

from . import sdk_seams
from .python_worker import V1_RUNTIME, AppLoadError, PythonWorker, WorkerFunction
from .registry import DURABLE_CLIENT_TYPES, Registry, build_registry, isolate_app_modules

APP_NAMESPACE = "__app__"
DEFAULT_ENTRY_POINT = "main"
# What the host picks when function.json names no scriptFile (the single file, else these).
DEFAULT_SCRIPT_FILES = ("__init__.py", "run.py")
TRIGGERS = ("orchestrationTrigger", "activityTrigger", "entityTrigger", "httpTrigger")
# The Functions host's rule for function names (a folder that breaks it is not a function).
FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.IGNORECASE)


def is_v1_app(app_dir: Path) -> bool:
    return any(app_dir.glob("*/function.json"))


def load_registry(app_dir: Path) -> Registry:
    app_dir = Path(app_dir).resolve()
    worker = PythonWorker(V1_RUNTIME)
    _forget_other_apps(app_dir, worker)
    functions, unsupported = [], []
    try:
        worker.start(app_dir)
        for metadata_path in sorted(app_dir.glob("*/function.json")):
            function = _function(metadata_path.parent.name, _read_metadata(metadata_path), app_dir,
                                 worker, unsupported)
            if function is not None:
                functions.append(function)
    except BaseException:
        worker.close()
        raise
    registry = build_registry(functions, worker)
    registry.unsupported[:0] = unsupported
    return registry


def _read_metadata(path: Path) -> dict:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise AppLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("bindings"), list):
        raise AppLoadError(f"{path} must be a JSON object with a \"bindings\" list")
    return metadata


def _function(name: str, metadata: dict, app_dir: Path, worker: PythonWorker,
              unsupported: list[str]):
    """The function of one folder, loaded by the worker; None when the host would not load
    it (disabled, an invalid name, or bindings the devhost cannot provide)."""
    if metadata.get("disabled") is True:
        return None
    if not FUNCTION_NAME.match(name):
        unsupported.append(f"{name} (not a valid function name)")
        return None
    bindings = [b for b in metadata["bindings"] if isinstance(b, dict)]
    triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(triggers) != 1:
        raise AppLoadError(f"cannot load the {name} function: function.json must have exactly "
                           f"one trigger binding, found {len(triggers)}")
    kind = triggers[0]["type"]
    others = [str(b.get("type")) for b in bindings if b is not triggers[0] and not _provided(kind, b)]
    if kind not in TRIGGERS or others:
        unsupported.append(f"{name} ({', '.join([kind, *others])})")
        return None
    folder = app_dir / name
    # The host gives each function a new id (a GUID) every time it loads the app.
    function = WorkerFunction(name, str(uuid.uuid4()), bindings, worker)
    worker.load(function, folder, _script_file(name, folder, metadata.get("scriptFile")),
                metadata.get("entryPoint") or DEFAULT_ENTRY_POINT)
    return function


def _provided(trigger_kind: str, binding: dict) -> bool:
    """Bindings the devhost gives a function besides its trigger: an HTTP function's
    durable client and HTTP output."""
    kind = binding.get("type")
    return trigger_kind == "httpTrigger" and (
        kind in DURABLE_CLIENT_TYPES or (kind == "http" and binding.get("direction") == "out"))


def _forget_other_apps(app_dir: Path, worker: PythonWorker) -> None:
    """A fresh ``__app__`` for this app: the modules of an app loaded earlier are dropped,
    and so are the folders the runtime's namespace package searched for it. One v1 app is
    loaded per process at a time: ``__app__`` names one folder."""
    for module_name in [m for m in sys.modules if m == APP_NAMESPACE or m.startswith(APP_NAMESPACE + ".")]:
        del sys.modules[module_name]
    sdk_seams.forget_v1_app_folders(worker.runtime)
    # The host starts the worker in the app folder, so top-level imports of its modules work too.
    isolate_app_modules(app_dir)


def _script_file(name: str, folder: Path, script_file) -> Path:
    if script_file:
        script = (folder / str(script_file)).resolve()
        if not script.is_relative_to(folder.parent) or not script.is_file():
            raise AppLoadError(f"cannot load the {name} function: script file {script_file} not found")
        return script
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "function.json")
    if len(files) == 1:
        return files[0]
    for default in DEFAULT_SCRIPT_FILES:
        if (folder / default).is_file():
            return folder / default
    raise AppLoadError(f"cannot load the {name} function: function.json names no scriptFile "
                       f"and the folder has no {' or '.join(DEFAULT_SCRIPT_FILES)}")
