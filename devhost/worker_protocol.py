"""The messages of the Functions host's worker protocol, as plain Python objects.

Microsoft's Python worker runtime (``azure-functions-runtime``, ``-v1`` for v1 apps) takes
the protocol's message types from its caller: the gRPC proxy hands it the compiled
protobuf module as ``properties["protos"]``. The devhost drives the same library in
process and hands it this module instead. It holds only the messages and fields the
library reads or builds, with protobuf's conventions where the library relies on them:
a field left out (or given as ``None``) reads as its default, a ``oneof`` answers
``WhichOneof``, and enum values are plain ints compared with ``==`` or ``is``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

Factory = Callable[[], Any]


class Message:
    """Keyword fields; each field not given takes its default, as protobuf reads an unset field."""

    FIELDS: dict[str, Optional[Factory]] = {}
    __slots__ = ()

    def __init__(self, **values: Any) -> None:
        fields = self.FIELDS
        if not fields.keys() >= values.keys():
            unknown = values.keys() - fields.keys()
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        for name, default in fields.items():
            value = values.get(name)
            if value is None and default is not None:
                value = default()
            setattr(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELDS if getattr(self, n) not in (None, "", {}, []))
        return f"{type(self).__name__}({shown})"


def _message(type_name: str, /, **fields: Optional[Factory]) -> type:
    return type(type_name, (Message,), {"FIELDS": fields, "__slots__": tuple(fields)})


class OneOf:
    """A message that is one of several fields (``TypedData.data``, ``ParameterBinding.rpc_data``)."""

    GROUP = ""
    KINDS: tuple[str, ...] = ()
    __slots__ = ("_kind", "_value")

    def __init__(self, **value: Any) -> None:
        given = [(k, v) for k, v in value.items() if v is not None]
        if len(given) > 1 or not value.keys() <= set(self.KINDS):
            raise TypeError(f"{type(self).__name__}: one of {', '.join(self.KINDS)} at most")
        self._kind, self._value = given[0] if given else (None, None)

    def WhichOneof(self, group: str) -> Optional[str]:  # noqa: N802 (protobuf's name)
        if group != self.GROUP:
            raise ValueError(f"{type(self).__name__} has no oneof {group!r}")
        return self._kind

    def __getattr__(self, name: str) -> Any:
        if name in type(self).KINDS:
            return self._value if self._kind == name else None
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._kind}={self._value!r})"


class TypedData(OneOf):
    GROUP = "data"
    KINDS = ("string", "json", "bytes", "stream", "http", "int", "double", "collection_bytes",
             "collection_string", "collection_double", "collection_sint64", "model_binding_data",
             "collection_model_binding_data")


class ParameterBinding(OneOf):
    GROUP = "rpc_data"
    KINDS = ("data", "rpc_shared_memory")
    __slots__ = ("name",)

    def __init__(self, name: str = "", **value: Any) -> None:
        super().__init__(**value)
        self.name = name


RpcHttp = _message("RpcHttp", method=str, url=str, headers=dict, body=TypedData, params=dict,
                   status_code=str, query=dict, enable_content_negotiation=bool, cookies=list)

SameSite = type("SameSite", (), {"None": 0, "Lax": 1, "Strict": 2, "ExplicitNone": 3})
RpcHttpCookie = _message("RpcHttpCookie", name=str, value=str, domain=None, path=None, expires=None,
                         secure=None, http_only=None, same_site=int, max_age=None)
RpcHttpCookie.SameSite = SameSite

NullableString = _message("NullableString", value=str)
NullableBool = _message("NullableBool", value=bool)
NullableDouble = _message("NullableDouble", value=float)
NullableTimestamp = _message("NullableTimestamp", value=None)
Timestamp = _message("Timestamp", seconds=int, nanos=int)

RpcException = _message("RpcException", source=str, stack_trace=str, message=str,
                        is_user_exception=bool, type=str)
StatusResult = _message("StatusResult", status=int, result=str, exception=None, logs=list)
StatusResult.Failure, StatusResult.Success, StatusResult.Cancelled = 0, 1, 2

BindingInfo = _message("BindingInfo", type=str, direction=int, data_type=int, properties=dict)
# Direction: "in" is a Python keyword, so protobuf exposes it only through getattr.
setattr(BindingInfo, "in", 0)
BindingInfo.out, BindingInfo.inout = 1, 2
BindingInfo.undefined, BindingInfo.string, BindingInfo.binary, BindingInfo.stream = 0, 1, 2, 3

RpcRetryOptions = _message("RpcRetryOptions", max_retry_count=int, delay_interval=None,
                           minimum_interval=None, maximum_interval=None, retry_strategy=None)
RpcFunctionMetadata = _message(
    "RpcFunctionMetadata", name=str, directory=str, script_file=str, entry_point=str,
    bindings=dict, is_proxy=bool, status=None, language=str, raw_bindings=list, function_id=str,
    managed_dependency_enabled=bool, retry_options=None, properties=dict)
WorkerMetadata = _message("WorkerMetadata", runtime_name=str, runtime_version=str,
                          worker_version=str, worker_bitness=str, custom_properties=dict)

WorkerInitRequest = _message("WorkerInitRequest", host_version=str, capabilities=dict,
                             log_categories=dict, worker_directory=str, function_app_directory=str)
WorkerInitResponse = _message("WorkerInitResponse", worker_version=str, capabilities=dict,
                              result=StatusResult, worker_metadata=None)
FunctionsMetadataRequest = _message("FunctionsMetadataRequest", function_app_directory=str)
FunctionMetadataResponse = _message("FunctionMetadataResponse", function_metadata_results=list,
                                    result=StatusResult, use_default_metadata_indexing=bool)
FunctionLoadRequest = _message("FunctionLoadRequest", function_id=str, metadata=RpcFunctionMetadata,
                               managed_dependency_enabled=bool)
FunctionLoadResponse = _message("FunctionLoadResponse", function_id=str, result=StatusResult,
                                is_dependency_downloaded=bool)

RpcTraceContext = _message("RpcTraceContext", trace_parent=str, trace_state=str, attributes=dict)
RetryContext = _message("RetryContext", retry_count=int, max_retry_count=int, exception=RpcException)
InvocationRequest = _message("InvocationRequest", invocation_id=str, function_id=str,
                             input_data=list, trigger_metadata=dict, trace_context=RpcTraceContext,
                             retry_context=RetryContext)
InvocationResponse = _message("InvocationResponse", invocation_id=str, output_data=list,
                              return_value=None, result=StatusResult)

StreamingMessage = _message("StreamingMessage", request_id=str, worker_init_request=None,
                            functions_metadata_request=None, function_load_request=None,
                            invocation_request=None)


class WorkerRequest:
    """What the runtime's request handlers take: the host's message, and for the first
    one the properties its caller passes (this module as ``protos``, the host address)."""

    __slots__ = ("name", "request", "properties")

    def __init__(self, name: str, request: Any, properties: Optional[dict] = None) -> None:
        self.name, self.request, self.properties = name, request, properties or {}
