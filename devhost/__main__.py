"""``python -m devhost [APP_DIR] [--host 127.0.0.1] [--port PORT] [--data DIR] [--workers N]
[--client-over-http] [--allowed-host NAME ...]``"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

REQUIRED_MODULES = ("azure.functions", "azure.durable_functions", "aiohttp")
# The Functions host's setting for the number of language worker processes, and its limit
# (WorkerProcessCountOptions.MaxProcessCount).
WORKER_COUNT_SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"
MAX_WORKER_PROCESSES = 10


def missing_packages() -> list[str]:
    missing = []
    for name in REQUIRED_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except ModuleNotFoundError:
            missing.append(name)
    return missing


if __name__ == "__main__" and missing_packages():
    print(f"devhost: this Python ({sys.executable}) lacks {', '.join(missing_packages())}.\n"
          "Run 'make run' (it installs everything into .venv), or start the devhost with the\n"
          "project's environment: .venv/bin/python -m devhost .", file=sys.stderr)
    sys.exit(2)

from .dashboard import DASHBOARD_PATH  # noqa: E402
from .host import DevHost, HostConfigError, listening_port  # noqa: E402
from .instances import ACTIVE_STATUSES  # noqa: E402
from .logs import BatchingStreamHandler, RepeatLimiter  # noqa: E402
from .orchestrator_check import OrchestratorCheckFailed  # noqa: E402
from .python_worker import AppLoadError, WorkerFailure  # noqa: E402
from .sdk_seams import UnsupportedSdk  # noqa: E402
from .server import ALLOWED_HOSTS_ENV, env_allowed_hosts, normalized_allowed_host  # noqa: E402
from .storage import Shard, StoreError  # noqa: E402
from .worker_processes import WorkerProcesses, die_with_parent  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost",
                                     description="Run a Python Durable Functions app locally.")
    parser.add_argument("app_dir", nargs="?", default=".", help="the app folder: function_app.py, or v1 folders with function.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: the PORT variable, else local.settings.json's "
                             "Host.LocalHttpPort, as func start reads it, else 7071)")
    parser.add_argument("--data", default=None, help="state folder (default APP_DIR/.devhost)")
    parser.add_argument("--workers", type=int, default=None,
                        help="host processes sharing the port and the state, each running its "
                             f"share of the instances (default: {WORKER_COUNT_SETTING} from the "
                             "environment or local.settings.json, else 1, as the Functions host "
                             "decides for a Python app; Linux only above 1)")
    parser.add_argument("--client-over-http", action="store_true",
                        help="send the app's Durable client calls to this host over loopback "
                             "HTTP instead of answering them in process (slower; for checking "
                             "the SDK's HTTP path)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a host name to answer besides localhost, 127.0.0.1 and [::1] while "
                             "listening on a loopback address (repeatable; '.example.com' allows "
                             "the names under it, '*' any name; also "
                             f"{ALLOWED_HOSTS_ENV}=a,b). Other names get 403: DNS rebinding "
                             "protection")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # set for workers 1..N-1
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers is None and not args.shard:
        try:
            args.workers = default_worker_count(Path(args.app_dir))
        except ValueError as exc:
            parser.error(str(exc))
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    for name in args.allowed_host:
        try:
            normalized_allowed_host(name)
        except ValueError as exc:
            parser.error(f"--allowed-host: {exc}")
    return args


def default_worker_count(app_dir: Path, env=os.environ) -> int:
    """How many worker processes the Functions host starts for a Python app: the
    ``FUNCTIONS_WORKER_PROCESS_COUNT`` app setting (here the environment, then
    local.settings.json's Values, as ``func start`` applies them), else 1.

    The host's WorkerProcessCountOptions.ProcessCount defaults to 1 and follows the cores
    only for a language worker whose worker.config.json sets
    ``setProcessCountToNumberOfCpuCores``; the Python worker's does not. A value below 1
    counts as 1 and one above MaxProcessCount (10) is refused, as RpcWorkerConfigFactory
    .GetWorkerProcessCount does."""
    raw = env.get(WORKER_COUNT_SETTING)
    source = "the environment"
    if raw is None:
        raw, source = _local_setting(app_dir, WORKER_COUNT_SETTING), "local.settings.json"
    if raw is None or not str(raw).strip():
        return 1
    try:
        count = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{WORKER_COUNT_SETTING} in {source} must be a whole number, got {raw!r}") from None
    if count > MAX_WORKER_PROCESSES:
        raise ValueError(f"{WORKER_COUNT_SETTING} in {source} must not be greater than "
                         f"{MAX_WORKER_PROCESSES}, got {count}")
    return max(count, 1)


def _local_setting(app_dir: Path, name: str):
    """One Value of local.settings.json, or None; a file that cannot be read is left for
    the host to refuse with its reason when it loads the app."""
    try:
        settings = json.loads((app_dir / "local.settings.json").read_text(encoding="utf-8-sig"))
        return settings.get("Values", {}).get(name)
    except (OSError, ValueError, AttributeError):
        return None


def shard_of_args(args: argparse.Namespace) -> Shard:
    if args.shard:
        index, count = (int(part) for part in args.shard.split("/"))
        return Shard(index, count)
    return Shard(0, args.workers)


def worker_args(args: argparse.Namespace, port: int) -> list[str]:
    """The command line of workers 1..N-1: same app, state and the port process 0 bound."""
    forwarded = [args.app_dir, "--host", args.host, "--port", str(port)]
    if args.data:
        forwarded += ["--data", args.data]
    forwarded += ["--client-over-http"] if args.client_over_http else []
    for name in args.allowed_host:
        forwarded += ["--allowed-host", name]
    return forwarded + (["--verbose"] if args.verbose else [])


def banner(host: DevHost) -> str:
    counts = host.engine.instance_counts()
    in_flight = [f"{name} {count} {status}" for name, status, count in counts
                 if status in ACTIVE_STATUSES]
    lines = ["", "devhost: Azure Functions (Python, Durable) local host", "",
             f"  Start page: {host.base_url}/",
             f"  Dashboard:  {host.base_url}{DASHBOARD_PATH}", "",
             f"  App:       {host.app_dir}",
             f"  Workers:   {host.shard.count} process(es)",
             f"  Task hub:  {host.config.hub_name}",
             f"  Worker:    {host.registry.worker.distribution} {host.registry.worker.version} "
             "(Microsoft's Python worker runtime, in process)",
             f"  State:     {host.store.path}",
             f"  Activities run {host.config.max_activities} at a time "
             "(host.json maxConcurrentActivityFunctions)"]
    if host.config.storage_provider != "AzureStorage":
        lines.append(f"  host.json storageProvider '{host.config.storage_provider}': the devhost "
                     "stores state locally in SQLite instead")
    versioning = host.config.versioning
    if versioning.default_version is not None:
        lines.append(f"  Versioning: new instances get version {versioning.default_version!r}; "
                     f"{versioning.match} decides which ones run ({versioning.failure} the others)")
    if host.applied_settings:
        lines.append(f"  Loaded {len(host.applied_settings)} value(s) from local.settings.json")
    lines.append(f"  In flight: {', '.join(in_flight)}" if in_flight else "  In flight: nothing")
    lines += ["", "Functions:", ""]
    lines += [f"  {line}" for line in host.functions.describe(host.base_url)]
    lines += [f"  {name}: orchestrationTrigger" for name in host.registry.orchestrators]
    lines += [f"  {name}: activityTrigger" for name in host.registry.activities]
    lines += [f"  {name}: entityTrigger" for name in host.registry.entities]
    lines += [f"  {name}: not run by the devhost" for name in host.registry.unsupported]
    lines += ["", "  Authorization levels are not enforced locally, as with 'func start':",
              "  function keys are not required here. Durable HTTP API:",
              f"  {host.base_url}/runtime/webhooks/durabletask/instances", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    # A fault that repeats (asyncio's accept errors with descriptors used up, about 10,000
    # tracebacks a second) is written a few times per interval and then summarised.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(asctime)s] %(message)s", datefmt="%Y-%m-%dT%H:%M:%S",
                        handlers=[BatchingStreamHandler(repeats=RepeatLimiter())])
    logging.getLogger("azure").setLevel(logging.WARNING)
    # The lines name no thread, process or task; each record would look them up (about
    # 0.2 ms of host CPU per review lifecycle, docs/PERFORMANCE.md).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.logAsyncioTasks = False
    shard = shard_of_args(args)
    try:
        port = listening_port(args.port, Path(args.app_dir))
    except HostConfigError as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 2
    # As func start does, so the app knows where it is served while it loads.
    os.environ.setdefault("WEBSITE_HOSTNAME", f"localhost:{port}")
    try:
        env_allowed_hosts()
    except ValueError as exc:
        print(f"devhost: {ALLOWED_HOSTS_ENV}: {exc}", file=sys.stderr)
        return 2
    try:
        host = DevHost(args.app_dir, args.data, shard=shard, client_over_http=args.client_over_http)
    except StoreError as exc:  # its message names the state file and what to do
        print(f"devhost: {exc}", file=sys.stderr)
        return 2
    except WorkerFailure as exc:  # the app has no functions: say why at start, not with 404s
        print(f"devhost: cannot load the app: {exc}\n{exc.stack_trace.rstrip()}", file=sys.stderr)
        return 2
    except (AppLoadError, HostConfigError, UnsupportedSdk) as exc:
        print(f"devhost: cannot load the app: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the app's own import failed: show why, as 'func start' does
        logging.getLogger("devhost").exception("the app failed to load")
        print(f"devhost: cannot load the app: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    # What is loaded by now (the app, the SDK, openai and the rest) lives as long as the
    # host. Frozen, it is out of the collector's reach: a full collection stops walking
    # those objects, which took about 140 ms each time and stalled requests and episodes.
    gc.freeze()
    try:
        host.serve(args.host, port, tuple(args.allowed_host))
    except OSError as exc:
        print(f"devhost: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        host.close()
        return 2
    workers = None
    if shard.index == 0 and shard.count > 1:
        workers = WorkerProcesses(worker_args(args, int(host.base_url.rsplit(":", 1)[1])), shard.count)
        workers.start()
    if shard.index == 0:
        print(banner(host), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    if shard.index == 0:
        print("devhost: stopping", flush=True)
    if workers:
        workers.stop()
    try:
        host.close()
    except OrchestratorCheckFailed as exc:  # DEVHOST_CHECK_ORCHESTRATORS=worker found a difference
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
