"""Every place the devhost depends on what the Durable SDK or the Python worker runtime
does not publish.

The devhost drives the SDK's real replay engine and answers its real client, so a few of
the SDK's internals matter: how an orchestrator handle is built, the open tasks a replay
leaves behind (which tell the ids of retry attempts that never appear as actions), the
module functions the client sends its requests with, and the module-level date parser.
It drives Microsoft's worker runtime too, which keeps the functions it loaded, and a v1
app's package folders, in module state. They are reached from here only, each through
one small function with a test of its own (tests/devhost/test_sdk_seams.py), and
``check_sdk_version`` and ``check_runtime_version`` refuse releases these seams were not
checked against.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable, Iterator, Optional

from azure.durable_functions.models import DurableOrchestrationContext
from azure.durable_functions.models.actions.NoOpAction import NoOpAction
from azure.durable_functions.models.Task import TimerTask
from azure.durable_functions.models.utils import http_utils
from azure.durable_functions.orchestrator import Orchestrator

SDK_DISTRIBUTION = "azure-functions-durable"
# Releases whose internals the seams below were read against.
SUPPORTED_SDK_RELEASES = ("1.7.",)
SUPPORTED_RUNTIME_RELEASES = {"azure-functions-runtime": ("1.3.",),
                              "azure-functions-runtime-v1": ("1.2.",)}

# Module names, not the classes azure.durable_functions.models exports under the same names.
_CLIENT_MODULE = "azure.durable_functions.models.DurableOrchestrationClient"
_TIMESTAMP_MODULES = ("azure.durable_functions.models.history.HistoryEvent",
                      "azure.durable_functions.models.DurableOrchestrationStatus")
CLIENT_REQUEST_FUNCTIONS = ("post_async_request", "get_async_request", "delete_async_request")
RETRY_TIMER_MARK = "-WithRetry timer"


class UnsupportedSdk(RuntimeError):
    pass


def installed_sdk_version() -> str:
    return metadata.version(SDK_DISTRIBUTION)


def check_sdk_version(version: Optional[str] = None) -> str:
    version = version or installed_sdk_version()
    if not version.startswith(SUPPORTED_SDK_RELEASES):
        supported = ", ".join(f"{r}x" for r in SUPPORTED_SDK_RELEASES)
        raise UnsupportedSdk(
            f"devhost was written for {SDK_DISTRIBUTION} {supported}, but {version} is "
            f"installed. Install a supported release (requirements.txt pins one), or check "
            f"devhost/sdk_seams.py against the new release first.")
    return version


def check_runtime_version(distribution: str, version: str) -> str:
    supported = SUPPORTED_RUNTIME_RELEASES[distribution]
    if not version.startswith(supported):
        releases = ", ".join(f"{r}x" for r in supported)
        raise UnsupportedSdk(
            f"devhost was written for {distribution} {releases}, but {version} is installed. "
            f"Install a supported release, or check devhost/sdk_seams.py against the new one first.")
    return version


# -- the Python worker runtime --------------------------------------------------------

def worker_user_function(runtime, function_id: str) -> Callable:
    """The function the worker registered under an id (for an orchestrator, the SDK's
    handle), from the runtime's function registry."""
    return runtime.handle_event._functions.get_function(function_id).func


def registered_functions(app) -> list[tuple[str, Callable]]:
    """(name, user function) of each function an ``azure.functions`` app or blueprint
    holds, read from its builders: ``get_functions()`` builds them again, which refuses
    names it has already seen once the worker has indexed the app."""
    functions = []
    for builder in app._function_builders:
        function = builder._function
        user = function.get_user_function()
        functions.append((function.get_function_name() or user.__name__, user))
    return functions


def forget_v1_app_folders(runtime) -> None:
    """The v1 runtime's ``__app__`` package searches every folder it was given since the
    process started; a new app in the same process searches its own only."""
    runtime.loader._submodule_dirs.clear()


# -- orchestrators ------------------------------------------------------------------

def orchestrator_function(handle: Callable) -> Callable:
    """The app's generator function behind the handle the SDK's decorator registers."""
    return handle.orchestrator_function


def new_orchestrator(handle: Callable) -> Orchestrator:
    return Orchestrator(orchestrator_function(handle))


def reset_orchestrator(orchestrator: Orchestrator) -> Orchestrator:
    """The state a new ``Orchestrator`` starts with, without building one per episode (its
    executor defines a namedtuple class in ``__init__``, a sizeable share of a replay)."""
    orchestrator.task_orchestration_executor.initialize()
    return orchestrator


def orchestration_context(handle: Callable, fields: dict) -> DurableOrchestrationContext:
    """What the SDK's ``handle`` builds from the extension's context JSON, from its fields."""
    context = DurableOrchestrationContext(**fields)
    context._input_expected_type = getattr(handle, "_df_input_type", None)
    return context


# -- the tasks a replay leaves open -------------------------------------------------

def numbered_open_tasks(context: DurableOrchestrationContext) -> Iterator[tuple[int, Any]]:
    """Tasks still waiting after a replay that carry a task id (not event names)."""
    for task_id, task in context.open_tasks.items():
        if isinstance(task_id, int):
            yield task_id, task


def sequence_number(context: DurableOrchestrationContext) -> int:
    """How many task ids the replay handed out: tasks that were yielded take one each, and
    so does every fire-and-forget action (signal_entity), which leaves no open task."""
    return context._sequence_number


def is_hidden_task(task: Any) -> bool:
    """A retry timer or re-attempt of ``call_*_with_retry``: no action shows it."""
    return isinstance(task.action_repr, NoOpAction)


def is_retry_timer(task: Any) -> bool:
    return task.action_repr.metadata == RETRY_TIMER_MARK


def retried_action(task: Any) -> dict:
    """The action a hidden task repeats (or waits to repeat), with its retry options."""
    return task.parent.actions.to_json()


def retry_attempts(task: Any) -> tuple[int, int]:
    """(attempts made so far, attempts allowed) of the retry a hidden task belongs to."""
    parent = task.parent
    return parent.num_attempts, parent.retry_options.max_number_of_attempts


def is_cancelled_timer(task: Any) -> bool:
    return isinstance(task, TimerTask) and task.is_cancelled


# -- the client's transport and parsing -----------------------------------------------

def client_module():
    return importlib.import_module(_CLIENT_MODULE)


def replace_client_requests(make_replacement: Callable[[str, Callable], Callable]) -> None:
    """Swap the request functions the SDK's client module hands to every client it builds."""
    module = client_module()
    for name in CLIENT_REQUEST_FUNCTIONS:
        setattr(module, name, make_replacement(name, getattr(module, name)))


async def reset_client_session() -> None:
    """Close the SDK's shared aiohttp session, which is bound to the loop that made it. A
    Functions worker keeps one loop for life; a test process may start several hosts."""
    import asyncio

    await http_utils._close_session()
    http_utils._session_lock = asyncio.Lock()


def timestamp_parser_modules() -> list:
    return [importlib.import_module(name) for name in _TIMESTAMP_MODULES]


def replace_timestamp_parser(module, parser: Callable) -> None:
    module.dt_parse = parser


def timestamp_parser(module) -> Callable:
    return module.dt_parse
