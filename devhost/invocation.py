"""The ``context`` a function gets when it asks for one, as the Python worker gives it.

The worker passes an ``azure.functions.Context`` to a function with a parameter named
``context`` that no binding uses (azure-functions-python-worker, ``functions.Registry
.add_function``: ``requires_context``): the invocation id, the function's name and
folder, a trace context and, without a retry policy, no retry context.
"""
from __future__ import annotations

import functools
import inspect
import secrets
import threading
import uuid
from typing import Callable, Optional

import azure.functions as func
from azure.functions._abc import TraceContext

CONTEXT_PARAMETER = "context"


class InvocationTrace(TraceContext):
    """A W3C trace context of its own for each invocation (the devhost traces nothing)."""

    def __init__(self):
        self._parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def attributes(self) -> dict:
        return {}


class InvocationContext(func.Context):
    def __init__(self, function_name: str, function_directory: str):
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = InvocationTrace()
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> None:
        return None

    @property
    def thread_local_storage(self) -> threading.local:
        return self._thread_local_storage


def asks_for_context(function: Callable, binding_names: set[str]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return CONTEXT_PARAMETER in parameters and CONTEXT_PARAMETER not in binding_names


def passing_context(function: Callable, name: str, directory: str,
                    binding_names: set[str]) -> Callable:
    """``function`` itself, or a wrapper that adds a fresh context to every call."""
    if not asks_for_context(function, binding_names):
        return function
    if inspect.iscoroutinefunction(function):
        @functools.wraps(function)
        async def call_async(**kwargs):
            return await function(**kwargs, context=InvocationContext(name, directory))
        return call_async

    @functools.wraps(function)
    def call(**kwargs):
        return function(**kwargs, context=InvocationContext(name, directory))
    return call


def context_annotation_problem(function: Callable) -> Optional[str]:
    """The worker refuses a ``context`` annotated with anything but a Context class."""
    annotation = inspect.signature(function).parameters[CONTEXT_PARAMETER].annotation
    named = annotation.rsplit(".", 1)[-1] if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    if annotation is inspect.Parameter.empty or named == "Context":
        return None
    return (f'the "context" parameter is expected to be of type azure.functions.Context, '
            f"got {annotation!r}")
