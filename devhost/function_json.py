"""Load a v1-model function app: one folder per function, each with a ``function.json``.

The Functions host reads each folder's ``function.json`` (its bindings, ``scriptFile`` and
``entryPoint``) and the Python worker imports the script as ``__app__.<folder>.<module>``,
``__app__`` being a namespace package rooted at the app folder, so a function may import
its siblings relatively (``from ..shared_code import x``). The devhost does the same
(azure-functions-python-worker, ``loader.load_function``) and sorts the functions into the
same ``Registry`` a v2 app gets.

A function with a binding the devhost cannot provide (Twilio, blobs, queues, a durable
client outside an HTTP function) is not registered: it is listed as not run, so calling it
is a call to a function the host does not have, instead of running without its binding.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Callable

from .invocation import CONTEXT_PARAMETER, asks_for_context, context_annotation_problem, passing_context
from .registry import ALL_METHODS, AppLoadError, HttpFunction, Registry, isolate_app_modules, parameter_names

APP_NAMESPACE = "__app__"
DEFAULT_ENTRY_POINT = "main"
# What the host picks when function.json names no scriptFile (the single file, else these).
DEFAULT_SCRIPT_FILES = ("__init__.py", "run.py")
DURABLE_CLIENT_TYPES = ("durableClient", "orchestrationClient")
TRIGGERS = ("orchestrationTrigger", "activityTrigger", "entityTrigger", "httpTrigger")
# The Functions host's rule for function names (a folder that breaks it is not a function).
FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.IGNORECASE)


def is_v1_app(app_dir: Path) -> bool:
    return any(app_dir.glob("*/function.json"))


def load_registry(app_dir: Path) -> Registry:
    app_dir = Path(app_dir).resolve()
    _install_app_namespace(app_dir)
    registry = Registry()
    for metadata_path in sorted(app_dir.glob("*/function.json")):
        _register(registry, metadata_path.parent.name, _read_metadata(metadata_path), app_dir)
    return registry


def _read_metadata(path: Path) -> dict:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise AppLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("bindings"), list):
        raise AppLoadError(f"{path} must be a JSON object with a \"bindings\" list")
    return metadata


def _register(registry: Registry, name: str, metadata: dict, app_dir: Path) -> None:
    if metadata.get("disabled") is True:
        return
    if not FUNCTION_NAME.match(name):
        registry.unsupported.append(f"{name} (not a valid function name)")
        return
    bindings = [b for b in metadata["bindings"] if isinstance(b, dict)]
    triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(triggers) != 1:
        raise AppLoadError(f"cannot load the {name} function: function.json must have exactly "
                           f"one trigger binding, found {len(triggers)}")
    trigger = triggers[0]
    kind = trigger["type"]
    others = [str(b.get("type")) for b in bindings if b is not trigger and not _provided(kind, b)]
    if kind not in TRIGGERS or others:
        registry.unsupported.append(f"{name} ({', '.join([kind, *others])})")
        return
    function = _load_entry_point(name, metadata, app_dir)
    _check_parameters(name, function, bindings)
    bound = {str(b.get("name")) for b in bindings}
    if kind in ("activityTrigger", "httpTrigger"):
        function = passing_context(function, name, str(app_dir / name), bound)
    if kind == "orchestrationTrigger":
        registry.orchestrators[name] = function
    elif kind == "activityTrigger":
        registry.activities[name] = (trigger["name"], function)
    elif kind == "entityTrigger":
        registry.entities[name] = (trigger["name"], function)
    else:
        registry.http.append(_http_function(name, bindings, trigger, function))


def _provided(trigger_kind: str, binding: dict) -> bool:
    """Bindings the devhost gives a function besides its trigger: an HTTP function's
    durable client and HTTP output."""
    kind = binding.get("type")
    return trigger_kind == "httpTrigger" and (
        kind in DURABLE_CLIENT_TYPES or (kind == "http" and binding.get("direction") == "out"))


def _check_parameters(name: str, function: Callable, bindings: list[dict]) -> None:
    """The worker refuses a function whose bindings are not all parameters of it."""
    names = parameter_names(function)
    if names is None:
        return
    bound = {str(b.get("name")) for b in bindings if b.get("name") != "$return"}
    if asks_for_context(function, bound):
        problem = context_annotation_problem(function)
        if problem:
            raise AppLoadError(f"cannot load the {name} function: {problem}")
        names.discard(CONTEXT_PARAMETER)
    unbound, missing = sorted(names - bound), sorted(bound - names)
    if unbound:
        raise AppLoadError(f"cannot load the {name} function: the following parameters are declared "
                           f"in Python but not in function.json: {', '.join(unbound)}")
    if missing:
        raise AppLoadError(f"cannot load the {name} function: the following parameters are declared "
                           f"in function.json but not in Python: {', '.join(missing)}")


def _http_function(name: str, bindings: list[dict], trigger: dict, function: Callable) -> HttpFunction:
    clients = [b["name"] for b in bindings if b.get("type") in DURABLE_CLIENT_TYPES]
    outputs = [b["name"] for b in bindings if b.get("type") == "http" and b.get("name") != "$return"]
    returns = any(b.get("type") == "http" and b.get("name") == "$return" for b in bindings)
    methods = tuple(str(m).upper() for m in trigger.get("methods") or ())
    return HttpFunction(
        name=name,
        route=str(trigger.get("route") or name).strip("/"),
        methods=methods or ALL_METHODS,
        request_param=trigger["name"],
        client_param=clients[0] if clients else None,
        callable=function,
        is_async=inspect.iscoroutinefunction(function),
        output_param=outputs[0] if outputs else None,
        answers_with_return=returns,
    )


def _install_app_namespace(app_dir: Path) -> None:
    """A fresh ``__app__`` for this app, dropping the modules of an app loaded earlier. One
    v1 app is loaded per process at a time: ``__app__`` names one folder."""
    for module_name in [m for m in sys.modules if m == APP_NAMESPACE or m.startswith(APP_NAMESPACE + ".")]:
        del sys.modules[module_name]
    spec = importlib.machinery.ModuleSpec(APP_NAMESPACE, None, is_package=True)
    spec.submodule_search_locations = [str(app_dir)]
    sys.modules[APP_NAMESPACE] = importlib.util.module_from_spec(spec)
    # The host starts the worker in the app folder, so top-level imports of its modules work too.
    isolate_app_modules(app_dir)


def _load_entry_point(name: str, metadata: dict, app_dir: Path) -> Callable:
    folder = app_dir / name
    script = _script_file(name, folder, metadata.get("scriptFile"))
    relative = script.relative_to(app_dir)
    if script.suffix != ".py":
        raise AppLoadError(f"cannot load the {name} function: invalid Python filename {relative}")
    # "<folder>/__init__.py" is the package itself, imported once (loader.load_function).
    stem = [] if script.stem == "__init__" else [script.stem]
    module = importlib.import_module(".".join([APP_NAMESPACE, *relative.parts[:-1], *stem]))
    entry_point = metadata.get("entryPoint") or DEFAULT_ENTRY_POINT
    function = getattr(module, entry_point, None)
    if not callable(function):
        raise AppLoadError(f"cannot load the {name} function: function {entry_point}() is not "
                           f"present in {relative}")
    return function


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
