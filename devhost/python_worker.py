"""Microsoft's Python worker runtime, driven in process.

On Python 3.13 Azure runs the worker runtime the app pins in its requirements
(``azure-functions-runtime`` for v2 apps, ``azure-functions-runtime-v1`` for v1 apps): the
library indexes or loads the app's functions, checks each one's parameters and
annotations, converts every binding with the ``azure.functions`` converters and runs
each invocation, sync functions on its thread pool (``PYTHON_THREADPOOL_THREAD_COUNT``)
and async ones on the event loop. The devhost drives that very library. What is the
devhost's own is the host's half of the conversation: the messages the Functions host
sends it (``worker_protocol``) and the reading of its answers.

The worker has an event loop of its own on a thread of its own, as the worker process
has: every invocation (HTTP functions, activities, entity batches) runs there, so async
functions share one loop, and the host's loop, which serves HTTP and replays
orchestrations, hands an invocation over and goes on.

The runtime keeps its state in module globals, as a worker process has one app; a
process loads one app at a time into it (the devhost's tests load one after another).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import json
import os
import random
import sys
import threading
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

from . import sdk_seams
from . import worker_protocol as protocol

V2_RUNTIME = "azure_functions_runtime"
V1_RUNTIME = "azure_functions_runtime_v1"
DISTRIBUTIONS = {V2_RUNTIME: "azure-functions-runtime", V1_RUNTIME: "azure-functions-runtime-v1"}
# The address the gRPC proxy passes as "host"; the runtime uses it only to serve HTTP
# streaming (an extension the devhost does not run).
HOST_ADDRESS = "127.0.0.1"
# The capabilities the Functions host announces in WorkerInitRequest that the runtime reads.
HOST_CAPABILITIES: dict[str, str] = {}


class AppLoadError(Exception):
    """The app cannot be loaded: what the host or the worker said, and why."""


@dataclass
class WorkerFunction:
    """A function as the host knows it: its name, the id the worker registered it under,
    and its bindings as the host reads them (the worker's raw bindings for a v2 app, its
    function.json for a v1 app)."""

    name: str
    function_id: str
    bindings: list[dict]
    worker: "PythonWorker" = field(repr=False, compare=False)

    @property
    def trigger(self) -> dict:
        return next(b for b in self.bindings if str(b.get("type", "")).endswith("Trigger"))

    def binding_names(self, *types: str) -> list[str]:
        return [str(b.get("name")) for b in self.bindings if b.get("type") in types]

    async def invoke(self, inputs: list[protocol.ParameterBinding],
                     invocation_id: Optional[str] = None) -> protocol.InvocationResponse:
        return await self.worker.invoke(self.function_id, inputs, invocation_id)

    def invoke_here(self, inputs: list[protocol.ParameterBinding]) -> protocol.InvocationResponse:
        """The same invocation, waited for on this thread (hosts run inline by tests)."""
        return self.worker.run(self.invoke(inputs))


# Invocation and trace ids need to be unique, not secret: drawn from one generator seeded
# from the system's entropy once, rather than a system call for each (about 1 ms of host
# CPU per review lifecycle otherwise).
_ids = random.Random(os.urandom(32))


def trace_parent() -> str:
    """A W3C traceparent of its own for each invocation, as the host sends one."""
    return f"00-{_ids.getrandbits(128):032x}-{_ids.getrandbits(64):016x}-00"


def new_invocation_id() -> str:
    """A new invocation id (a version-4 UUID, as the host gives each invocation)."""
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


def succeeded(response: protocol.InvocationResponse) -> bool:
    return response.result.status == protocol.StatusResult.Success


def typed_data_text(data: Optional[protocol.TypedData]) -> Optional[str]:
    """The text of a string, JSON or bytes value (UTF-8); None when there is none."""
    if data is None or data.WhichOneof("data") is None:
        return None
    kind = data.WhichOneof("data")
    value = getattr(data, kind)
    if kind == "bytes":
        return value.decode("utf-8")
    if kind in ("string", "json"):
        return value
    return str(value)


class PythonWorker:
    """One worker runtime library (``V2_RUNTIME`` or ``V1_RUNTIME``), loaded and started."""

    def __init__(self, runtime: str):
        distribution = DISTRIBUTIONS[runtime]
        try:
            self.runtime = importlib.import_module(runtime)
        except ImportError:
            raise AppLoadError(
                f"this Python ({sys.executable}) lacks {distribution}, Microsoft's Python worker "
                f"runtime, which indexes and runs the app here as Azure runs it on Python 3.13. "
                f"Pin it in the app's requirements.txt (Azure loads the version pinned there) and "
                f"install it: pip install {distribution}") from None
        self.distribution = distribution
        self.version = sdk_seams.check_runtime_version(distribution, metadata.version(distribution))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="worker loop", daemon=True)
        self._thread.start()

    def submit(self, coroutine) -> concurrent.futures.Future:
        """Run a coroutine on the worker's loop, from any thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def run(self, coroutine) -> Any:
        """Run a coroutine on the worker's loop and wait for it here: the start-up requests,
        and the invocations of hosts that run inline."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("the worker's loop cannot wait for a coroutine it would run itself")
        return self.submit(coroutine).result()

    def start(self, app_dir: Path) -> None:
        """WorkerInitRequest, after the proxy starts the runtime's thread pool (the v2
        runtime indexes the app here, and a failure to index fails the request)."""
        self.runtime.start_threadpool_executor()
        request = protocol.StreamingMessage(worker_init_request=protocol.WorkerInitRequest(
            capabilities=dict(HOST_CAPABILITIES), function_app_directory=str(app_dir)))
        response = self.run(self.runtime.worker_init_request(protocol.WorkerRequest(
            "WorkerInitRequest", request, {"protos": protocol, "host": HOST_ADDRESS})))
        if not succeeded(response):
            raise worker_failure("Worker failed to index functions", response.result)

    def indexed_functions(self) -> list[WorkerFunction]:
        """FunctionsMetadataRequest: the functions a v2 runtime indexed, with its raw bindings."""
        response = self.run(self.runtime.functions_metadata_request(
            protocol.WorkerRequest("FunctionsMetadataRequest", protocol.StreamingMessage(
                functions_metadata_request=protocol.FunctionsMetadataRequest()))))
        if not succeeded(response):
            raise worker_failure("Worker failed to index functions", response.result)
        return [WorkerFunction(m.name, m.function_id, [json.loads(b) for b in m.raw_bindings], self)
                for m in response.function_metadata_results or []]

    def load(self, function: WorkerFunction, directory: Path, script_file: Path,
             entry_point: str) -> None:
        """FunctionLoadRequest for a v1 function, with the metadata the host read from its
        function.json."""
        bindings = {str(b.get("name")): protocol.BindingInfo(
            type=str(b.get("type")), direction=_DIRECTIONS.get(str(b.get("direction", "in")).lower(), 0),
            data_type=_DATA_TYPES.get(str(b.get("dataType", "")).lower(), 0)) for b in function.bindings}
        request = protocol.StreamingMessage(function_load_request=protocol.FunctionLoadRequest(
            function_id=function.function_id, metadata=protocol.RpcFunctionMetadata(
                name=function.name, function_id=function.function_id, directory=str(directory),
                script_file=str(script_file), entry_point=entry_point, bindings=bindings,
                language="python")))
        response = self.run(self.runtime.function_load_request(
            protocol.WorkerRequest("FunctionLoadRequest", request)))
        if not succeeded(response):
            raise worker_failure(f"Worker failed to load function {function.name}", response.result)

    def user_function(self, function_id: str) -> Callable:
        return sdk_seams.worker_user_function(self.runtime, function_id)

    async def invoke(self, function_id: str, inputs: list[protocol.ParameterBinding],
                     invocation_id: Optional[str] = None) -> protocol.InvocationResponse:
        """InvocationRequest, as the host sends it for a function without a retry policy;
        awaited on any loop, run on the worker's."""
        request = protocol.StreamingMessage(invocation_request=protocol.InvocationRequest(
            invocation_id=invocation_id or new_invocation_id(), function_id=function_id,
            input_data=inputs, trace_context=protocol.RpcTraceContext(trace_parent=trace_parent())))
        invocation = self.runtime.invocation_request(
            protocol.WorkerRequest("FunctionInvocationRequest", request))
        if asyncio.get_running_loop() is self._loop:
            return await invocation
        return await asyncio.wrap_future(self.submit(invocation))

    def close(self) -> None:
        """Stop the worker's loop, after closing the SDK client's session, which belongs to it,
        and cancelling what the app still runs there (work it started beside a reply), as
        asyncio.run does at its end: a task left pending on a closed loop would be reported
        as destroyed whenever it is collected, and its cleanup would never run."""
        if self._loop.is_closed():
            return
        self.run(sdk_seams.reset_client_session())
        self.run(_cancel_other_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


# How long a closing worker waits for its cancelled tasks to finish their cleanup.
CANCEL_GRACE_SECONDS = 5.0


async def _cancel_other_tasks() -> None:
    running = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not running]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=CANCEL_GRACE_SECONDS)


class WorkerFailure(AppLoadError):
    """The worker refused the app: its message (``<type>: <message>``) and stack."""

    def __init__(self, message: str, stack_trace: str):
        super().__init__(message)
        self.stack_trace = stack_trace


def worker_failure(what: str, result: protocol.StatusResult) -> WorkerFailure:
    exception = result.exception or protocol.RpcException()
    return WorkerFailure(f"{what}: {exception.message}", exception.stack_trace)


_DIRECTIONS = {"in": 0, "out": 1, "inout": 2}
_DATA_TYPES = {"string": 1, "binary": 2, "stream": 3}


def v2_worker(app_dir: Path, script_name: str) -> tuple[PythonWorker, list[WorkerFunction]]:
    """Index a v2 app as the worker does: import its script (``PYTHON_SCRIPT_FILE_NAME``)
    by module name from the app folder, and read the functions of its one FunctionApp."""
    worker = PythonWorker(V2_RUNTIME)
    # The runtime imports the script by name: an app loaded earlier must not answer for it.
    sys.modules.pop(Path(script_name).stem, None)
    try:
        worker.start(app_dir)
        return worker, worker.indexed_functions()
    except WorkerFailure as failure:
        worker.close()
        concerned = _function_with_unresolvable_annotations(sys.modules.get(Path(script_name).stem))
        if concerned is None:
            raise
        # The worker's NameError from typing.get_type_hints names the type, not the function.
        raise WorkerFailure(f"{failure} (in the annotations of the function '{concerned}')",
                            failure.stack_trace) from None
    except BaseException:
        worker.close()
        raise


def _function_with_unresolvable_annotations(script: Any) -> Optional[str]:
    """The first function of the app's script whose annotations cannot be resolved at run
    time (a type imported only under ``TYPE_CHECKING``), as the worker's indexing reads them."""
    import typing

    import azure.functions as func

    for value in list(vars(script).values()) if script is not None else []:
        if not isinstance(value, func.FunctionRegister):
            continue
        for name, user_function in sdk_seams.registered_functions(value):
            try:
                typing.get_type_hints(user_function)
            except NameError:
                return name
            except Exception:  # noqa: BLE001 - another fault, which the worker's reason names
                continue
    return None
