"""The app's functions sorted by trigger, from the bindings the host reads for each one (a
v2 app's raw bindings, as the worker indexed them; a v1 app's function.json).

Orchestrators are replayed by the devhost (``replay``), which needs the registered handle
(and, to check a replay against the worker, ``orchestrator_check``, the function as the
worker registered it); every other function is invoked through the Python worker
(``python_worker``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .python_worker import PythonWorker, WorkerFunction, v2_worker

_LOADED_APP_DIRS: set[Path] = set()
# An HTTP trigger that names no methods serves all of them.
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# The durable client binding's type, and its v1 name.
DURABLE_CLIENT_TYPES = ("durableClient", "orchestrationClient")


@dataclass
class HttpFunction:
    name: str
    route: str
    methods: tuple[str, ...]
    request_param: str
    client_param: Optional[str]
    function: WorkerFunction
    # v1 apps: an ``http`` output binding other than ``$return`` carries the response.
    response_param: Optional[str] = None


@dataclass
class Registry:
    orchestrators: dict[str, Callable] = field(default_factory=dict)
    # The same orchestrators as the worker registered them, for invocations through it.
    orchestrator_functions: dict[str, WorkerFunction] = field(default_factory=dict)
    activities: dict[str, WorkerFunction] = field(default_factory=dict)
    # Keyed by the registered name, found ignoring case: EntityId lowercases the names.
    entities: dict[str, WorkerFunction] = field(default_factory=dict)
    http: list[HttpFunction] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    worker: Optional[PythonWorker] = None

    # The extension keys its function registry by FunctionName, which compares names
    # ignoring case (FunctionName.Equals, StringComparison.OrdinalIgnoreCase).

    def orchestrator_name(self, name: str) -> Optional[str]:
        return _find(self.orchestrators, name)

    def activity_name(self, name: str) -> Optional[str]:
        return _find(self.activities, name)

    def entity(self, name: str) -> Optional[WorkerFunction]:
        """An entity function, by any spelling of its name."""
        registered = _find(self.entities, name)
        return self.entities[registered] if registered is not None else None

    def orchestrator(self, name: str) -> Callable:
        """The handle of an orchestrator, by any spelling of its name."""
        return self.orchestrators[self.orchestrator_name(name) or name]

    def orchestrator_function(self, name: str) -> WorkerFunction:
        """An orchestrator as the worker registered it, by any spelling of its name."""
        return self.orchestrator_functions[self.orchestrator_name(name) or name]

    def unknown_function_message(self, name: str, kind: str) -> str:
        # DurableTaskExtension.GetInvalid{Activity,Orchestrator,Entity}FunctionMessage. The
        # entity one decides between its two texts by the number of *orchestrators*, so an
        # app with orchestrators and no entities lists none ('') and one without
        # orchestrators says none are registered, whatever entities it has.
        known = {"orchestrator": self.orchestrators, "activity": self.activities,
                 "entity": self.entities}[kind]
        any_known = self.orchestrators if kind == "entity" else known
        listed = (f"The following are the known {kind} functions: '" + "', '".join(known) + "'."
                  if any_known else f"No {kind} functions are currently registered!")
        return (f"The function '{name}' doesn't exist, is disabled, or is not an {kind} "
                f"function. Additional info: {listed}")


def _find(functions: dict, name: str) -> Optional[str]:
    if name in functions:
        return name
    wanted = (name or "").lower()
    return next((known for known in functions if known.lower() == wanted), None)


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
    Only modules loaded from another app's folder go, never the stdlib or packages. When
    one module of an earlier app goes, all of that app's go: a module kept would still hold
    the classes of those dropped, and the app loaded again would mix old classes and new
    (a route's ``except ValidationError`` missing the ``ValidationError`` its new policy
    module raises). The host's own package and the test suite stay, though they may sit in
    an app's folder: they are what loads the apps, not part of one.
    """
    own_names = _top_level_names(app_dir)
    shadowed = set()  # earlier apps, one of whose modules a name of this app shadows
    for name, mod in list(sys.modules.items()):
        if name.split(".", 1)[0] not in own_names:
            continue
        owner = _loaded_app_of(mod)
        if owner is not None and owner != app_dir and not _in_folder(mod, app_dir):
            shadowed.add(owner)
    for earlier in shadowed:
        names = _top_level_names(earlier) - _NOT_AN_APPS_MODULE
        for name, mod in list(sys.modules.items()):
            if name.split(".", 1)[0] in names and _loaded_app_of(mod) == earlier and not _in_folder(mod, app_dir):
                del sys.modules[name]


# The host's package and the usual test packages: they import apps' modules, but a test
# session keeps them whichever app it loads.
_NOT_AN_APPS_MODULE = {__name__.split(".", 1)[0], "tests", "conftest"}


def _top_level_names(app_dir: Path) -> set[str]:
    return {p.stem if p.suffix == ".py" else p.name for p in app_dir.iterdir()
            if p.suffix == ".py" or (p.is_dir() and p.name.isidentifier())}


def _in_folder(module: Any, folder: Path) -> bool:
    return any(o.is_relative_to(folder) for o in _origins(module))


def _loaded_app_of(module: Any) -> Optional[Path]:
    """The loaded app whose folder holds the module (the innermost, as test apps sit in
    the folders of others), or None."""
    owners = [loaded for o in _origins(module) for loaded in _LOADED_APP_DIRS if o.is_relative_to(loaded)]
    return max(owners, key=lambda folder: len(folder.parts), default=None)


def _origins(module: Any) -> list[Path]:
    spec = getattr(module, "__spec__", None)
    try:
        files = [getattr(spec, "origin", None), *(getattr(spec, "submodule_search_locations", None) or [])]
    except (KeyError, ImportError):  # a namespace package whose parent is gone
        files = []
    return [Path(f).resolve() for f in files if f and f not in ("built-in", "frozen")]


def load_v2_app(app_dir: Path, script_name: str) -> Registry:
    """A v2 app, indexed by the worker from its script (``function_app.py`` unless
    ``PYTHON_SCRIPT_FILE_NAME`` names another) in the app folder."""
    isolate_app_modules(app_dir)
    worker, functions = v2_worker(app_dir, script_name)
    return build_registry(functions, worker)


def build_registry(functions: list[WorkerFunction], worker: PythonWorker) -> Registry:
    """Sort functions by their trigger binding. The Durable triggers may register a name
    of their own (``activity``, ``orchestration``, ``entityName``), as the extension reads
    them; an orchestrator is known by the handle the worker registered for it."""
    registry = Registry(worker=worker)
    for function in functions:
        trigger = function.trigger
        kind = trigger["type"]
        if kind == "orchestrationTrigger":
            name = trigger.get("orchestration") or function.name
            registry.orchestrators[name] = function.worker.user_function(function.function_id)
            registry.orchestrator_functions[name] = function
        elif kind == "activityTrigger":
            registry.activities[trigger.get("activity") or function.name] = function
        elif kind == "entityTrigger":
            registry.entities[trigger.get("entityName") or function.name] = function
        elif kind == "httpTrigger":
            registry.http.append(_http_function(function, trigger))
        else:
            registry.unsupported.append(f"{function.name} ({kind})")
    return registry


def _http_function(function: WorkerFunction, trigger: dict) -> HttpFunction:
    clients = function.binding_names(*DURABLE_CLIENT_TYPES)
    responses = [b["name"] for b in function.bindings
                 if b.get("type") == "http" and str(b.get("direction", "")).lower() == "out"]
    methods = tuple(str(m).upper() for m in trigger.get("methods") or ())
    return HttpFunction(
        name=function.name,
        route=str(trigger.get("route") or function.name).strip("/"),
        methods=methods or ALL_METHODS,
        request_param=trigger["name"],
        client_param=clients[0] if clients else None,
        function=function,
        response_param=next((name for name in responses if name != "$return"), None),
    )
