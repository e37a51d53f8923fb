"""Load a v2-model function app and sort its functions by trigger (v1: function_json.py).

The app's ``function_app.py`` is imported from its folder, as the Python worker does,
and ``get_functions()`` is called exactly once: the SDK re-runs its duplicate-name
check on every call and raises the second time.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .invocation import passing_context


_LOADED_APP_DIRS: set[Path] = set()
# An HTTP trigger that names no methods serves all of them.
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class AppLoadError(Exception):
    pass


@dataclass
class HttpFunction:
    name: str
    route: str
    methods: tuple[str, ...]
    request_param: str
    client_param: Optional[str]
    callable: Callable
    is_async: bool
    # v1 apps: an ``http`` output binding other than ``$return`` carries the response, and
    # without a ``$return`` one the return value is dropped (the host answers 200).
    output_param: Optional[str] = None
    answers_with_return: bool = True


@dataclass
class Registry:
    orchestrators: dict[str, Callable] = field(default_factory=dict)
    activities: dict[str, tuple[str, Callable]] = field(default_factory=dict)
    # Keyed by the registered name, found ignoring case: EntityId lowercases the names.
    entities: dict[str, tuple[str, Callable]] = field(default_factory=dict)
    http: list[HttpFunction] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    # The extension keys its function registry by FunctionName, which compares names
    # ignoring case (FunctionName.Equals, StringComparison.OrdinalIgnoreCase).

    def orchestrator_name(self, name: str) -> Optional[str]:
        return _find(self.orchestrators, name)

    def activity_name(self, name: str) -> Optional[str]:
        return _find(self.activities, name)

    def entity(self, name: str) -> Optional[tuple[str, Callable]]:
        """(parameter name, function) of an entity, by any spelling of its name."""
        registered = _find(self.entities, name)
        return self.entities[registered] if registered is not None else None


def _find(functions: dict, name: str) -> Optional[str]:
    if name in functions:
        return name
    wanted = (name or "").lower()
    return next((known for known in functions if known.lower() == wanted), None)


def load_app(app_dir: Path, module: str = "function_app") -> Any:
    """Import ``APP_DIR/function_app.py`` and return its ``FunctionApp`` object."""
    app_dir = Path(app_dir).resolve()
    path = app_dir / f"{module}.py"
    if not path.is_file():
        raise AppLoadError(f"{path} not found: the folder is not a v2-model function app")
    isolate_app_modules(app_dir)
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    apps = [v for v in vars(mod).values() if hasattr(v, "get_functions")
            and callable(v.get_functions) and not inspect.isclass(v)]
    if len(apps) != 1:
        raise AppLoadError(f"{path} must define exactly one FunctionApp/DFApp, found {len(apps)}")
    return apps[0]


def isolate_app_modules(app_dir: Path) -> None:
    """Put the app's folder first on the path, so its own modules win over those of an
    app loaded earlier in this process, whose cached modules it would shadow are dropped."""
    _forget_other_apps_modules(app_dir)
    if str(app_dir) in sys.path:
        sys.path.remove(str(app_dir))
    sys.path.insert(0, str(app_dir))
    _LOADED_APP_DIRS.add(app_dir)


def _forget_other_apps_modules(app_dir: Path) -> None:
    """Drop cached modules of apps loaded earlier that this app's names would shadow.

    Two apps in one process (a test session) may both have a sibling ``blueprints.py``;
    without this, the second app's ``import blueprints`` returns the first app's module.
    Only modules loaded from another app's folder go, never the stdlib or packages.
    """
    own_names = {p.stem if p.suffix == ".py" else p.name for p in app_dir.iterdir()
                 if p.suffix == ".py" or (p.is_dir() and p.name.isidentifier())}
    for name, mod in list(sys.modules.items()):
        if name.split(".", 1)[0] not in own_names or name not in sys.modules:
            continue
        origins = _origins(mod)
        if any(o.is_relative_to(app_dir) for o in origins):
            continue
        if any(o.is_relative_to(loaded) for o in origins for loaded in _LOADED_APP_DIRS):
            # A package goes with its submodules: a namespace package left without its
            # parent cannot even tell its own path any more.
            for child in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
                del sys.modules[child]


def _origins(module: Any) -> list[Path]:
    spec = getattr(module, "__spec__", None)
    try:
        files = [getattr(spec, "origin", None), *(getattr(spec, "submodule_search_locations", None) or [])]
    except (KeyError, ImportError):  # a namespace package whose parent is gone
        files = []
    return [Path(f).resolve() for f in files if f and f not in ("built-in", "frozen")]


def build_registry(app: Any, app_dir: Path = Path(".")) -> Registry:
    registry = Registry()
    for fn in app.get_functions():
        bound = {b.name for b in fn.get_bindings()}
        _check_binding_parameters(fn, bound)
        trigger = fn.get_trigger()
        kind = trigger.type
        if kind == "orchestrationTrigger":
            name = getattr(trigger, "orchestration", None) or fn.get_function_name()
            registry.orchestrators[name] = fn.get_user_function()
        elif kind == "activityTrigger":
            name = getattr(trigger, "activity", None) or fn.get_function_name()
            registry.activities[name] = (trigger.name, passing_context(
                fn.get_user_function(), fn.get_function_name(), str(app_dir), bound))
        elif kind == "entityTrigger":
            name = getattr(trigger, "entity_name", None) or fn.get_function_name()
            registry.entities[name] = (trigger.name, fn.get_user_function())
        elif kind == "httpTrigger":
            registry.http.append(_http_function(fn, trigger, str(app_dir), bound))
        else:
            registry.unsupported.append(f"{fn.get_function_name()} ({kind})")
    return registry


def parameter_names(function: Callable) -> Optional[set[str]]:
    """The function's parameter names; None where any binding fits it (no readable
    signature, or ``**kwargs``), so there is nothing to check."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def _check_binding_parameters(fn: Any, bound: set[str]) -> None:
    """Refuse, at load, a binding whose name is not a parameter of the function, as the
    Python worker refuses it when it indexes the app (instead of failing every call)."""
    names = parameter_names(fn.get_user_function())
    if names is None:
        return
    missing = sorted(bound - names - {"$return"})
    if missing:
        raise AppLoadError(
            f"cannot load the {fn.get_function_name()} function: the following parameters are "
            f"declared as bindings but not in Python: {', '.join(missing)}")


def _http_function(fn: Any, trigger: Any, directory: str, bound: set[str]) -> HttpFunction:
    user_fn = passing_context(fn.get_user_function(), fn.get_function_name(), directory, bound)
    clients = [b.name for b in fn.get_bindings() if b.type == "durableClient"]
    methods = tuple(str(getattr(m, "value", m)).upper() for m in (trigger.methods or ()))
    return HttpFunction(
        name=fn.get_function_name(),
        route=(trigger.route or fn.get_function_name()).strip("/"),
        methods=methods or ALL_METHODS,
        request_param=trigger.name,
        client_param=clients[0] if clients else None,
        callable=user_fn,
        is_async=inspect.iscoroutinefunction(user_fn),
    )
