"""``DevHost``: one object that loads an app and runs it, for the CLI and for tests.

Over HTTP (the CLI)::

    with DevHost(app_dir) as host:
        base_url = host.serve(port=0)   # background runner + HTTP server

A test of an app takes ``devhost.testing.TestingHost``: a DevHost on a manual clock whose work runs
when the test says (``run_until_idle``, ``advance``, ``skip_time``).
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from . import function_json, payloads, sdk_seams
from .clock import ManualClock, SystemClock
from .durable_api import DurableApi, describe
from .engine import Engine, EngineOptions
from .function_routes import FunctionRoutes, netloc
from .orchestrator_check import CheckModeError, check_mode
from .python_worker import AppLoadError
from .registry import Registry, load_v2_app
from .runner import BackgroundRunner, drain
from .server import ServerThread, build_web_app
from .storage import Shard, Store, check_integrity
from .versioning import Versioning, VersioningConfigError
from .wakeups import CrossProcessWakeups

log = logging.getLogger("devhost")


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    hub_name: str = "TestHubName"       # DurableTaskOptions: WEBSITE_SITE_NAME ?? "TestHubName"
    max_activities: int = 10
    storage_provider: str = "AzureStorage"
    versioning: Versioning = Versioning()


class HostConfigError(Exception):
    pass


def _max_activities(value: Any, path: Path, env) -> int:
    if value is None:
        return default_max_activities(env)
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if isinstance(value, bool) or count <= 0:  # DurableTaskOptions.Validate
        raise HostConfigError(f"'{path}': MaxConcurrentActivityFunctions must be a positive integer value.")
    return count


def default_max_activities(env=os.environ) -> int:
    """``maxConcurrentActivityFunctions`` when host.json sets none, as the Durable extension
    picks it (AzureStorageDurabilityProviderFactory): 10 on the Consumption plan, else 10
    per processor, Core Tools on a laptop included. The plan is Consumption when
    ``WEBSITE_SKU`` is ``Dynamic`` (Windows), or when ``CONTAINER_NAME`` is set outside App
    Service (Linux, DefaultPlatformInformation.IsInConsumptionPlan)."""
    windows = env.get("WEBSITE_SKU", "").lower() == "dynamic"
    linux = bool(env.get("CONTAINER_NAME")) and not env.get("WEBSITE_INSTANCE_ID")
    if windows or linux:
        return 10
    try:
        processors = len(os.sched_getaffinity(0))  # what .NET's Environment.ProcessorCount counts
    except AttributeError:  # not on Linux
        processors = os.cpu_count() or 1
    return 10 * processors


def read_host_json(app_dir: Path, env=os.environ) -> HostConfig:
    path = app_dir / "host.json"
    if not path.is_file():
        return HostConfig(max_activities=default_max_activities(env))
    try:
        # utf-8-sig: a byte-order mark is dropped, as .NET's File.ReadAllText drops it.
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise HostConfigError(f"Unable to parse host configuration file '{path}': "
                              f"{_json_problem(exc)}") from None
    if not isinstance(data, dict):
        raise HostConfigError(f"Unable to parse host configuration file '{path}': "
                              "it must hold one JSON object")
    extensions = data.get("extensions", {})
    http = extensions.get("http", {})
    durable = extensions.get("durableTask", {})
    hub = hub_name(durable.get("hubName"), path, env)
    provider = (durable.get("storageProvider") or {}).get("type") or "AzureStorage"
    try:
        versioning = Versioning.from_durable_task(durable)
    except VersioningConfigError as exc:
        raise HostConfigError(f"'{path}': {exc}") from None
    return HostConfig(
        route_prefix=http.get("routePrefix", "api"),
        hub_name=hub,
        max_activities=_max_activities(durable.get("maxConcurrentActivityFunctions"), path, env),
        storage_provider=str(provider),
        versioning=versioning,
    )


def hub_name(configured: Optional[str], path: Path, env) -> str:
    """The task hub as the Durable extension names it (DurableTaskOptions): host.json's
    hubName with each %NAME% replaced by that app setting; without hubName, WEBSITE_SITE_NAME
    or TestHubName. A %NAME% whose setting is not set stays unreplaced in the extension, and
    its storage provider then refuses the name, so it is refused here too, saying why."""
    if configured is None:
        return env.get("WEBSITE_SITE_NAME") or HostConfig.hub_name
    configured = str(configured)
    for name in re.findall(r"%([^%]+)%", configured):
        if name not in env:
            raise HostConfigError(
                f"'{path}': hubName '{configured}' names the app setting {name}, which is not set "
                f"(the Durable extension refuses the name unresolved): set {name} in "
                "local.settings.json or in the environment")
    hub = re.sub(r"%([^%]+)%", lambda m: env[m.group(1)], configured)
    if not hub:
        raise HostConfigError(f"'{path}': A non-empty HubName configuration is required "
                              f"(hubName '{configured}' is empty).")
    return hub


def _json_problem(exc: ValueError) -> str:
    """What is wrong with a settings file, and where (line and column when JSON says)."""
    where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
    return f"{getattr(exc, 'msg', exc)}{where}"


def read_local_settings(app_dir: Path) -> dict:
    """``local.settings.json`` as an object; empty when there is none."""
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise HostConfigError(f"Unable to parse '{path}': {_json_problem(exc)}") from None
    return settings if isinstance(settings, dict) else {}


def load_local_settings(app_dir: Path, env=os.environ) -> list[str]:
    """Copy ``local.settings.json`` Values into the environment; variables already set win."""
    values = read_local_settings(app_dir).get("Values") or {}
    applied = []
    for name, value in values.items():
        if name not in env and value is not None:
            env[name] = str(value)
            applied.append(name)
    return applied


DEFAULT_PORT = 7071


def listening_port(requested: Optional[int], app_dir: Path, env=os.environ) -> int:
    """The port to serve: the one asked for (--port), else PORT, else local.settings.json's
    Host.LocalHttpPort (which func start reads), else 7071."""
    if requested is not None:
        return requested
    if env.get("PORT", "").strip():
        return _port_number(env["PORT"], "PORT")
    host_section = read_local_settings(app_dir).get("Host")
    configured = host_section.get("LocalHttpPort") if isinstance(host_section, dict) else None
    if configured is not None:
        return _port_number(configured, f"'{app_dir / 'local.settings.json'}': Host.LocalHttpPort")
    return DEFAULT_PORT


def _port_number(value: Any, what: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise HostConfigError(f"{what} must be a port number (0 to 65535), got {value!r}")
    return port


# The worker's setting for a v2 app's script, and its default.
SCRIPT_FILE_SETTING, DEFAULT_SCRIPT_FILE = "PYTHON_SCRIPT_FILE_NAME", "function_app.py"


def load_functions(app_dir: Path, env=os.environ) -> Registry:
    """The app's functions: a v2 app's script (``function_app.py`` unless
    ``PYTHON_SCRIPT_FILE_NAME`` names another), else v1 ``function.json`` folders; the
    proxy worker picks the runtime the same way (``reload_library_worker``)."""
    app_dir = Path(app_dir).resolve()
    script_name = env.get(SCRIPT_FILE_SETTING) or DEFAULT_SCRIPT_FILE
    if (app_dir / script_name).is_file():
        return load_v2_app(app_dir, script_name)
    if function_json.is_v1_app(app_dir):
        return function_json.load_registry(app_dir)
    raise AppLoadError(f"{app_dir} is not a function app: it has no {script_name} (Python v2 "
                       "model) and no folder with a function.json (v1 model)")


def loopback_netloc(host: str, port: int) -> str:
    """Where this process reaches a server bound to ``host``: a wildcard address through
    loopback, an IPv6 address in brackets."""
    return netloc({"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host), port)


class DevHost:
    def __init__(self, app_dir: str | Path = ".", data_dir: Optional[str | Path] = None,
                 clock=None, *, local_settings: bool = True, shard: Shard = Shard(),
                 client_over_http: bool = False, check_orchestrators: Optional[str] = None):
        """``check_orchestrators="worker"`` invokes every orchestrator episode through the
        Python worker as well and fails it when the state differs from the replay's
        (``orchestrator_check``); without the option, the ``DEVHOST_CHECK_ORCHESTRATORS``
        setting decides, and ``""`` turns the check off whatever the setting says."""
        sdk_seams.check_sdk_version()
        self.app_dir = Path(app_dir).resolve()
        self.applied_settings = load_local_settings(self.app_dir) if local_settings else []
        self.config = read_host_json(self.app_dir)
        try:
            check = check_mode(check_orchestrators, os.environ)
        except CheckModeError as exc:
            raise HostConfigError(str(exc)) from None
        self.data_dir = Path(data_dir) if data_dir else self.app_dir / ".devhost"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state_file = self.data_dir / f"{self.config.hub_name}.sqlite"
        # A damaged state file is refused before anything runs; the first process checks it
        # (the others start once it serves).
        if shard.index == 0 and state_file.exists():
            check_integrity(state_file)
        self.registry: Registry = load_functions(self.app_dir)
        self.clock = clock or SystemClock()
        self.store = Store(state_file)
        self.engine = Engine(self.registry, self.store, self.clock,
                             EngineOptions(shard=shard, versioning=self.config.versioning,
                                           check_orchestrators=check))
        self.shard = shard
        self.client_over_http = client_over_http
        self.api = DurableApi(self.engine, self.config.hub_name)
        self.engine.client_binding = self._client_binding_without_request
        self._in_process_functions: Optional[FunctionRoutes] = None
        self._public_netloc = self._loopback_netloc = ""
        self._runner: Optional[BackgroundRunner] = None
        self._server: Optional[ServerThread] = None
        self._wakeups: Optional[CrossProcessWakeups] = None
        self._previous_hostname: Optional[str] = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> "DevHost":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def serve(self, host: str = "127.0.0.1", port: int = 0, allowed_hosts: tuple = ()) -> str:
        """Start the background runner and the HTTP server; returns the base URL.
        ``allowed_hosts``: Host names answered besides the loopback ones (server.HostPolicy)."""
        if self._server is not None:
            raise RuntimeError(f"this host is already serving at {self.base_url}")
        self.functions = FunctionRoutes(self.registry.http, self.config.route_prefix, self.api,
                                        self.client_over_http)
        web_app = build_web_app(self.api, self.functions, allowed_hosts)
        self._runner = BackgroundRunner(self.engine, self.config.max_activities)
        # The server and the episodes keep the host's own loop, apart from the worker's: on
        # the worker's loop an activity's every await would wait behind all the requests.
        # Worker processes share the port; the kernel spreads connections between them.
        self._server = ServerThread(web_app, host, port, reuse_port=self.shard.count > 1)
        bound = self._server.start()
        # Before the runner starts: activities left by a crash run at once, and may build
        # links to this host or be given a durable client.
        self.base_url = f"http://{host}:{bound}"
        self._loopback_netloc = loopback_netloc(host, bound)
        self._announce_hostname(host, bound)
        if self.shard.count > 1:
            self._wakeups = CrossProcessWakeups(self.store.path, self.shard, self._runner.wake,
                                                self._server.loop)
            self.engine.on_work = self._wakeups.notify
        self._runner.start(self._server.loop)
        return self.base_url

    def _client_binding_without_request(self) -> str:
        """The durableClient binding of a function no request triggered, an activity: the
        same JSON as an HTTP function's, for the address the host announced as
        WEBSITE_HOSTNAME, with the address this process reaches the server at as
        ``rpcBaseUrl`` (on Azure the extension's configured base URL and its local
        endpoint, the same for every function). A host that is not serving answers those
        calls in process at a name of its own that no network resolves."""
        if self.base_url:
            return self.functions.client_binding_text("http", self._public_netloc, self._loopback_netloc)
        if self._in_process_functions is None:
            self._in_process_functions = FunctionRoutes([], self.config.route_prefix, self.api)
        netloc = f"devhost-{id(self):x}.invalid"
        return self._in_process_functions.client_binding_text("http", netloc, netloc)

    def _announce_hostname(self, host: str, port: int) -> None:
        """As ``func start`` does (StartHostAction sets WEBSITE_HOSTNAME to its URI's
        authority), tell the app where it is served, so links it builds without a request
        (a notification, say) point at this host and port."""
        name = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost") else host
        self._previous_hostname = os.environ.get("WEBSITE_HOSTNAME")
        self._public_netloc = os.environ["WEBSITE_HOSTNAME"] = f"{name}:{port}"

    @property
    def serving(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        if self._runner:
            self._runner.stop()
            if self._previous_hostname is None:
                os.environ.pop("WEBSITE_HOSTNAME", None)
            else:
                os.environ["WEBSITE_HOSTNAME"] = self._previous_hostname
        if self._server:
            self._server.stop()
            self.functions.close()
        if self._in_process_functions is not None:
            self._in_process_functions.close()
        if self._wakeups:
            self._wakeups.close()
        self.registry.worker.close()
        self.store.close()
        # A check that failed in the background has failed its instance; the host's owner
        # (a test) hears of it here too, however it read the instance.
        self.engine.raise_check_failure()

    # -- in-process API --------------------------------------------------------------

    # These send what the SDK's DurableOrchestrationClient sends: the value's JSON as a
    # JSON string (start_new and raise_event double-encode), which the extension stores as
    # that string. So an orchestrator gets its input as the value, but an event as the
    # JSON text (a str), exactly as on Azure. tests/devhost/test_durable_api.py covers raw HTTP.

    def start(self, orchestrator: str, input: Any = None, instance_id: Optional[str] = None,
              version: Optional[str] = None) -> str:
        input_text = None if input is None else payloads.to_text(json.dumps(input))
        return self.engine.start_instance(orchestrator, instance_id, input_text, version=version)

    def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> None:
        self.engine.raise_event(instance_id, event_name, payloads.to_text(json.dumps(data)))

    def terminate(self, instance_id: str, reason: Optional[str] = "") -> None:
        self.engine.terminate(instance_id, reason)

    def suspend(self, instance_id: str, reason: Optional[str] = "") -> None:
        self.engine.suspend(instance_id, reason)

    def resume(self, instance_id: str, reason: Optional[str] = "") -> None:
        self.engine.resume(instance_id, reason)

    def restart(self, instance_id: str, restart_with_new_instance_id: bool = True) -> str:
        """As the SDK client's restart: the same orchestrator with the same stored input."""
        return self.engine.restart(instance_id, restart_with_new_instance_id)

    def purge(self, instance_id: str) -> bool:
        """As purge_instance_history: delete the instance in any status; False if unknown."""
        return self.engine.purge(instance_id)

    def signal_entity(self, name: str, key: str, operation: str, input: Any = None) -> None:
        """As the SDK client's signal_entity: its JSON text of the input, as a JSON string."""
        input_text = None if input is None else payloads.to_text(json.dumps(input))
        self.engine.signal_entity(name, key, operation, input_text)

    def entity_state(self, name: str, key: str) -> tuple[bool, Any]:
        """What read_entity_state gives: whether the entity exists, and its state."""
        row = self.engine.entity(name, key)
        if row is None or not row.exists:
            return False, None
        return True, payloads.read_token(row.state)

    def status(self, instance_id: str) -> Optional[dict]:
        row = self.store.get_instance(instance_id)
        return describe(row) if row else None

    def history(self, instance_id: str) -> list[dict]:
        return self.store.load_history(instance_id)

    def run_until_idle(self) -> int:
        """Run everything due now, inline; only for hosts that are not serving."""
        if self._runner:
            raise RuntimeError("run_until_idle() is for in-process use; this host is serving")
        return drain(self.engine)

    def advance(self, **delta) -> int:
        """Move a manual clock forward (``hours=72``) and run what became due."""
        if not isinstance(self.clock, ManualClock):
            raise RuntimeError("advance() needs a DevHost created with clock=ManualClock()")
        self.clock.advance(timedelta(**delta))
        if self._runner:
            self._runner.wake()
            return 0
        return self.run_until_idle()
