"""The Durable Functions HTTP API, served under ``/runtime/webhooks/durabletask/``.

Each handler answers as the extension's ``HttpApiHandler`` answers: the same status
codes, bodies, headers and payload encoding (docs/DEVHOST-CONFORMANCE.md cites each
rule and names the test that checks it). The SDK's ``DurableOrchestrationClient``
calls the same routes through ``rpcBaseUrl``.

The handlers know nothing of sockets: they take an ``ApiRequest`` and give an
``ApiReply``. ``server`` serves them over aiohttp; ``client_transport`` hands them the
app's own client calls without a socket.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json.encoder
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping, Optional
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from azure.durable_functions import OrchestrationRuntimeStatus

from . import payloads
from .clock import parse_iso, to_iso
from .entities import EntityRequestError
from .engine import Engine
from .errors import InstanceAlreadyExists, InstanceFinished, InstanceNotFound, InvalidArgument, InvalidOperation
from .history import ORCHESTRATION_STATUS_NAMES, ORCHESTRATION_STATUS_NUMBERS, EventType
from .instances import MAX_INSTANCE_ID_CHARS
from .storage import TERMINAL_STATUSES, InstanceRow, StoreDamaged, StoreError

log = logging.getLogger("devhost")

WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
RUNTIME_STATUSES = tuple(ORCHESTRATION_STATUS_NUMBERS)
DEFAULT_PAGE_SIZE = 100          # OrchestrationStatusQueryCondition.PageSize
CONNECTION_NAME = "Storage"      # ConnectionStringNames.Storage, Azure Storage's default
CHECK_STATUS_RETRY_AFTER = "10"  # HttpApiHandler.CreateCheckStatusResponseMessage
RUNNING_STATUS_RETRY_AFTER = "5"  # HttpApiHandler.HandleGetStatusRequestAsync
_S = OrchestrationRuntimeStatus
# HandleGetStatusRequestAsync answers 202 for these; HandleRewindInstanceRequestAsync 410
# for those that cannot be rewound.
STILL_RUNNING = tuple(s.value for s in (_S.Running, _S.Pending, _S.ContinuedAsNew, _S.Suspended))
NOT_REWINDABLE = tuple(s.value for s in (_S.Canceled, _S.Terminated, _S.Completed))

# (method, path under WEBHOOK_PREFIX, handler name). Anything else is a 404, as
# HttpApiHandler.HandleRequestAsync answers any route or method it does not serve.
_ROUTE_TABLE = (
    ("POST", "/orchestrators/{name}", "start"),
    ("POST", "/orchestrators/{name}/{instance_id}", "start"),
    ("GET", "/instances", "query"),
    ("GET", "/instances/", "query"),
    ("DELETE", "/instances", "purge_many"),
    ("DELETE", "/instances/", "purge_many"),
    ("GET", "/instances/{instance_id}", "get_instance"),
    ("DELETE", "/instances/{instance_id}", "purge_one"),
    ("POST", "/instances/{instance_id}/raiseEvent/{event}", "raise_event"),
    ("POST", "/instances/{instance_id}/terminate", "terminate"),
    ("POST", "/instances/{instance_id}/suspend", "suspend"),
    ("POST", "/instances/{instance_id}/resume", "resume"),
    ("POST", "/instances/{instance_id}/rewind", "rewind"),
    ("POST", "/instances/{instance_id}/restart", "restart"),
    # EntityRoute: entities/{entityName?}/{entityKey?}, the key defaulting to "".
    ("GET", "/entities", "list_entities"),
    ("GET", "/entities/{entity_name}", "list_entities"),
    ("GET", "/entities/{entity_name}/{entity_key}", "get_entity"),
    ("POST", "/entities", "entity_without_name"),
    ("DELETE", "/entities", "entity_without_name"),
    ("POST", "/entities/{entity_name}", "signal_entity"),
    ("POST", "/entities/{entity_name}/{entity_key}", "signal_entity"),
    ("DELETE", "/entities/{entity_name}", "signal_entity"),
    ("DELETE", "/entities/{entity_name}/{entity_key}", "signal_entity"),
)
EMPTY_ENTITY_KEY = "$"           # HttpApiHandler.EmptyEntityKeySymbol


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{tail\*\}", "(?P<tail>.*)")
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern) + "/?$", re.IGNORECASE)


_ROUTES = tuple((method, _compile(template), name) for method, template, name in _ROUTE_TABLE)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    origin: str                      # scheme://host the caller used, for management URLs
    params: Mapping[str, str]        # route parameters, decoded
    query: Mapping[str, str]         # the first value of each query parameter
    headers: Mapping[str, str]       # read with lower-case names
    body: bytes
    path: str                        # the path under WEBHOOK_PREFIX
    query_items: tuple[tuple[str, str], ...] = ()   # every query parameter, in order

    def flag(self, name: str, default: bool = False) -> bool:
        """``bool.TryParse`` of a query parameter: true/false in any case, else the default."""
        value = self.query.get(name, "").strip().lower()
        return value == "true" if value in ("true", "false") else default

    def values(self, name: str) -> list[str]:
        """Repeated and comma-separated values (TryGetIEnumerableQueryParameterValue)."""
        return [part.strip() for key, value in self.query_items if key == name
                for part in value.split(",") if part.strip()]

    @property
    def url(self) -> str:
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in self.query_items)
        return f"{self.origin}{WEBHOOK_PREFIX}{self.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class ApiReply:
    status: int
    payload: Any = None              # JSON-able or a StatusPage; None means an empty body
    headers: Mapping[str, str] = field(default_factory=dict)
    empty: bool = False              # True: no body at all, even if payload is None

    def value(self) -> Any:
        """The payload as the client reads it (the in-process client takes values)."""
        return self.payload.values() if isinstance(self.payload, StatusPage) else self.payload

    def json_text(self) -> str:
        """The payload as the body of an HTTP reply: compact JSON, as the extension writes."""
        if isinstance(self.payload, StatusPage):
            return self.payload.json_text()
        return _value_text(self.payload)  # a null value is written "null", never an empty body


@dataclass(frozen=True)
class StatusPage:
    """A query's page of status objects, made into values or JSON text only when the
    reply goes out. Written as text, each stored custom status is copied as it is: it was
    stored as ``payloads.to_text`` wrote it, the compact JSON of this reply, so reading
    and printing it again would give the same characters (a page of 100 reviews is
    written in 0.1 ms this way; read and printed again, 2.3 ms). A state folder from the
    devhost's first releases may hold statuses spaced differently: the same values."""
    rows: list[InstanceRow]
    show_input: bool

    def values(self) -> list[dict]:
        return [describe(row, self.show_input) for row in self.rows]

    def json_text(self) -> str:
        return "[" + ",".join(describe_text(row, self.show_input) for row in self.rows) + "]"


def describe(row: InstanceRow, show_input: bool = True) -> dict:
    """A status object (StatusResponsePayload): stored values shown by ParseToJToken."""
    return {
        "name": row.name, "instanceId": row.instance_id, "runtimeStatus": row.runtime_status,
        "input": payloads.shown(row.input) if show_input else None,
        "customStatus": payloads.shown(row.custom_status), "output": payloads.shown(row.output),
        "createdTime": _status_time(row.created_time),
        "lastUpdatedTime": _status_time(row.last_updated_time),
    }


def describe_text(row: InstanceRow, show_input: bool = True) -> str:
    """``payloads.to_text(describe(row, show_input))``, with the custom status copied."""
    shown_input = _value_text(payloads.shown(row.input)) if show_input else "null"
    custom_status = "null" if row.custom_status is None else row.custom_status
    return (f'{{"name":{_string(row.name)},"instanceId":{_string(row.instance_id)},'
            f'"runtimeStatus":{_string(row.runtime_status)},"input":{shown_input},'
            f'"customStatus":{custom_status},"output":{_value_text(payloads.shown(row.output))},'
            f'"createdTime":{_string(_status_time(row.created_time))},'
            f'"lastUpdatedTime":{_string(_status_time(row.last_updated_time))}}}')


# A string as payloads.to_text writes it (non-ASCII characters unescaped), in C.
_string = json.encoder.encode_basestring


def _value_text(value: Any) -> str:
    return "null" if value is None else payloads.to_text(value)


def no_content(status: int, headers: Optional[Mapping[str, str]] = None) -> ApiReply:
    """``request.CreateResponse(status)``: no body."""
    return ApiReply(status, None, headers or {}, empty=True)


def message_reply(status: int, message: str) -> ApiReply:
    """``request.CreateErrorResponse(status, message)``."""
    return ApiReply(status, {"Message": message})


def exception_reply(status: int, message: str, exception_message: str, exception_type: str) -> ApiReply:
    """``request.CreateErrorResponse(status, message, exception)``: what the SDK reads from
    a 400 is ``ExceptionMessage``."""
    return ApiReply(status, {"Message": message, "ExceptionMessage": exception_message,
                             "ExceptionType": exception_type, "StackTrace": None})


def parse_query(raw_query: str) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    items = tuple(parse_qsl(raw_query, keep_blank_values=True))
    first: dict[str, str] = {}
    for name, value in items:
        first.setdefault(name, value)
    return first, items


_STORED_TIME_CHARS = len("2026-01-01T00:00:00.000000Z")


def _status_time(iso: str) -> str:
    # ConvertFrom: CreatedTime.ToString("s") + "Z", whole seconds. The devhost stores its
    # times as to_iso writes them (UTC, microseconds, "Z"), whose first 19 characters are
    # already those seconds: a status page shows two per instance, so only other forms are
    # parsed.
    if len(iso) == _STORED_TIME_CHARS and iso.endswith("Z"):
        return iso[:19] + "Z"
    return to_iso(parse_iso(iso))[:19] + "Z"


def _seconds(request: ApiRequest, name: str) -> Optional[float]:
    try:
        value = float(request.query[name])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None


class DurableApi:
    def __init__(self, engine: Engine, task_hub: str):
        self.engine = engine
        self.task_hub = task_hub

    async def handle(self, method: str, raw_path: str, origin: str, raw_query: str,
                     headers: Mapping[str, str], body: bytes) -> ApiReply:
        """Serve one request; ``raw_path`` is the still-encoded path under WEBHOOK_PREFIX."""
        query, items = parse_query(raw_query)
        headers = {k.lower(): v for k, v in headers.items()}
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(raw_path)
            if match is None or route_method not in ("*", method):
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            request = ApiRequest(method, origin, params, query, headers, body, raw_path, items)
            return await self._run(getattr(self, name), request)
        return no_content(404)

    @staticmethod
    async def _run(handler: Callable[[ApiRequest], Any], request: ApiRequest) -> ApiReply:
        try:
            reply = handler(request)
            return await reply if isinstance(reply, Awaitable) else reply
        except InvalidArgument as exc:
            return exception_reply(400, "One or more of the arguments submitted is incorrect",
                                   str(exc), "System.ArgumentException")
        except InstanceAlreadyExists as exc:
            return exception_reply(500, "Something went wrong while processing your request", str(exc),
                                   "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")
        except InvalidOperation as exc:
            return exception_reply(500, "Something went wrong while processing your request", str(exc),
                                   "System.InvalidOperationException")
        except InstanceNotFound:
            return no_content(404)
        except InstanceFinished:
            return no_content(410)
        except StoreDamaged as exc:
            # Retrying will not help; the log names the file, the caller never learns paths.
            log.error("Durable API %s %s: %s", request.method, request.path, exc)
            return ApiReply(500, {"Message": "The devhost's state file is damaged; see the host log."})
        except StoreError as exc:
            # The devhost's own state is not writable right now (no extension counterpart:
            # Azure Storage answers a throttled or failed write with a 5xx too).
            log.warning("Durable API %s %s: state unavailable: %s", request.method, request.path, exc)
            return ApiReply(503, {"Message": "The devhost cannot reach its state right now; "
                                             "retry shortly."}, {"Retry-After": "5"})

    # -- management payloads ---------------------------------------------------------

    def _instance_root(self, origin: str, instance_id: str) -> str:
        # GetClientResponseLinks: WebUtility.UrlEncode of the id
        return f"{origin}{WEBHOOK_PREFIX}/instances/{quote_plus(instance_id)}"

    def _management_query(self) -> str:
        return f"taskHub={quote_plus(self.task_hub)}&connection={CONNECTION_NAME}"

    def management_urls(self, origin: str, instance_id: str, with_rewind: bool) -> dict:
        """``HttpManagementPayload``; the check-status reply has no rewind URL."""
        root, q = self._instance_root(origin, instance_id), self._management_query()
        urls = {"id": instance_id,
                "statusQueryGetUri": f"{root}?{q}",
                "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}?{q}",
                "terminatePostUri": f"{root}/terminate?reason={{text}}&{q}"}
        if with_rewind:
            urls["rewindPostUri"] = f"{root}/rewind?reason={{text}}&{q}"
        urls.update({"purgeHistoryDeleteUri": f"{root}?{q}",
                     "restartPostUri": f"{root}/restart?{q}",
                     "suspendPostUri": f"{root}/suspend?reason={{text}}&{q}",
                     "resumePostUri": f"{root}/resume?reason={{text}}&{q}"})
        return urls

    def check_status_reply(self, origin: str, instance_id: str) -> ApiReply:
        urls = self.management_urls(origin, instance_id, with_rewind=False)
        return ApiReply(202, urls, {"Location": urls["statusQueryGetUri"],
                                    "Retry-After": CHECK_STATUS_RETRY_AFTER})

    # -- starting --------------------------------------------------------------------

    async def start(self, request: ApiRequest) -> ApiReply:
        try:
            input_value = payloads.read_object(request.body.decode("utf-8", "replace"), payloads.MAX_DEPTH)
        except payloads.PayloadError as exc:
            return exception_reply(400, "Invalid JSON content", str(exc),
                                   "Newtonsoft.Json.JsonReaderException")
        # ?version= (extension 3.6.0 and later): the instance's version; without it, defaultVersion.
        instance_id = self.engine.start_instance(request.params["name"], request.params.get("instance_id"),
                                                 payloads.to_text(input_value),
                                                 version=request.query.get("version"))
        return await self._reply_when_done(request, instance_id)

    async def _reply_when_done(self, request: ApiRequest, instance_id: str) -> ApiReply:
        """With both ``timeout`` and ``pollingInterval`` (seconds), wait for the instance
        as WaitForCompletionOrCreateCheckStatusResponseAsync does."""
        timeout, interval = _seconds(request, "timeout"), _seconds(request, "pollingInterval")
        if timeout is None or interval is None:
            return self.check_status_reply(request.origin, instance_id)
        if interval > timeout:
            return exception_reply(400, "One or more of the arguments submitted is incorrect",
                                   f"Total timeout {_dotnet_double(timeout)} should be bigger than "
                                   f"retry timeout {_dotnet_double(interval)}",
                                   "System.ArgumentException")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            row = self.engine.instance(instance_id)
            if row is not None and row.runtime_status == "Completed":
                return ApiReply(200, payloads.shown(row.output))
            if row is not None and row.is_terminal:
                return self._status_reply(request, row, allow_500=False)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self.check_status_reply(request.origin, instance_id)
            # The Stopwatch loop: Task.Delay(min(remaining, interval)), then look again.
            await asyncio.sleep(min(remaining, interval))

    async def restart(self, request: ApiRequest) -> ApiReply:
        try:
            new_id = self.engine.restart(request.params["instance_id"],
                                         request.flag("restartWithNewInstanceId", default=True))
        except InvalidArgument as exc:
            return exception_reply(400, "InstanceId does not match a valid orchestration instance.",
                                   str(exc), "System.ArgumentException")
        return await self._reply_when_done(request, new_id)

    # -- reading ---------------------------------------------------------------------

    def get_instance(self, request: ApiRequest) -> ApiReply:
        row = self.engine.instance(request.params["instance_id"])
        if row is None:
            return no_content(404)
        return self._status_reply(request, row, allow_500=True)

    def _status_reply(self, request: ApiRequest, row: InstanceRow, allow_500: bool) -> ApiReply:
        body = describe(row, show_input=request.flag("showInput", default=True))
        if request.flag("showHistory") and row.runtime_status != "Pending":
            body["historyEvents"] = self.public_history(row, request.flag("showHistoryOutput"),
                                                        request.flag("showInput", default=True))
        if row.runtime_status in STILL_RUNNING:
            return ApiReply(202, body, {"Location": request.url, "Retry-After": RUNNING_STATUS_RETRY_AFTER})
        if (row.runtime_status == "Failed" and allow_500
                and request.flag("returnInternalServerErrorOnFailure")):
            return ApiReply(500, body)
        return ApiReply(200, body)

    def public_history(self, row: InstanceRow, with_output: bool, with_input: bool) -> list[dict]:
        """The current execution's history as DurableClient.ConvertHistoryToJArray shows it:
        type names, scheduled events folded into their completions, no orchestrator
        start/complete events, no EventId or IsPlayed."""
        scheduled: dict[tuple[str, int], dict] = {}
        shown: list[Optional[dict]] = []
        positions: dict[tuple[str, int], int] = {}
        for stored in self.engine.stored_history(row.instance_id):
            # A call the extension never scheduled has no event there (R9). Retry timers and
            # attempts are real events there (RetryInterceptor), so they are shown.
            if stored.get("DevHostUnscheduled"):
                continue
            kind = EventType(stored["EventType"])
            if kind in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
                continue
            item = {k: v for k, v in stored.items() if k not in ("EventId", "IsPlayed", "DevHostHidden")}
            item["EventType"] = _EVENT_NAMES[kind]
            family = _FAMILIES.get(kind)
            if kind in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED):
                key = (family, stored["EventId"])
                scheduled[key] = stored
                positions[key] = len(shown)
                item.pop("Version", None)
            elif family and (family, stored.get("TaskScheduledId")) in scheduled:
                key = (family, item.pop("TaskScheduledId"))
                source = scheduled.pop(key)
                shown[positions.pop(key)] = None
                item["ScheduledTime"] = source["Timestamp"]
                item["FunctionName"] = source["Name"]
                if with_input:
                    item["Input"] = source.get("Input")
            if kind == EventType.EXECUTION_STARTED:
                item["FunctionName"] = item.pop("Name", row.name)
                for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                    item.pop(key, None)
            if kind == EventType.EXECUTION_COMPLETED:
                item["OrchestrationStatus"] = ORCHESTRATION_STATUS_NAMES.get(item.get("OrchestrationStatus"),
                                                                item.get("OrchestrationStatus"))
            if kind == EventType.TIMER_FIRED:
                item.pop("TimerId", None)
            if "Result" in item:
                if with_output:
                    item["Result"] = payloads.shown(item["Result"])
                elif kind in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                              EventType.EXECUTION_COMPLETED):
                    item.pop("Result")
            if not with_input:
                item.pop("Input", None)
            shown.append(item)
        return [item for item in shown if item is not None]

    def query(self, request: ApiRequest) -> ApiReply:
        top = DEFAULT_PAGE_SIZE
        if request.query.get("top", "").strip().lstrip("-").isdigit():
            top = int(request.query["top"])
        try:
            after = _read_token(request.headers.get("x-ms-continuation-token", ""))
        except ValueError:
            return message_reply(400, "The continuation token is not one this API returned.")
        rows = self.engine.instances(after=after, limit=max(top, 1) + 1, **self._filters(request))
        more = len(rows) > top
        rows = rows[:max(top, 1)]
        token = _make_token(rows[-1].instance_id) if more and rows else ""
        return ApiReply(200, StatusPage(rows, request.flag("showInput", default=True)),
                        {"x-ms-continuation-token": token})

    @staticmethod
    def _filters(request: ApiRequest, statuses: Optional[list[str]] = None) -> dict:
        # Enum.TryParse: case-sensitive; values it cannot parse are dropped.
        wanted = [s for s in (statuses if statuses is not None else request.values("runtimeStatus"))
                  if s in RUNTIME_STATUSES]
        filters = {"statuses": tuple(wanted), "id_prefix": request.query.get("instanceIdPrefix", "")}
        for param, key in (("createdTimeFrom", "created_from"), ("createdTimeTo", "created_to")):
            moment = _date_time(request.query.get(param, ""))
            if moment is not None:
                filters[key] = to_iso(moment)
        return filters

    # -- events and control ------------------------------------------------------------

    def raise_event(self, request: ApiRequest) -> ApiReply:
        # HandleRaiseEventRequestAsync: existence, then finished, then content type, then body.
        instance_id = request.params["instance_id"]
        self.engine.require_active(instance_id)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return message_reply(400, "Only application/json request content is supported")
        try:
            data = payloads.read_token(request.body.decode("utf-8", "replace"), payloads.MAX_DEPTH)
        except payloads.PayloadError as exc:
            return exception_reply(400, "Invalid JSON content", str(exc), "Newtonsoft.Json.JsonReaderException")
        self.engine.raise_event(instance_id, request.params["event"], payloads.to_text(data))
        return no_content(202)

    def terminate(self, request: ApiRequest) -> ApiReply:
        self.engine.terminate(request.params["instance_id"], request.query.get("reason"))
        return no_content(202)

    def suspend(self, request: ApiRequest) -> ApiReply:
        self.engine.suspend(request.params["instance_id"], request.query.get("reason"))
        return no_content(202)

    def resume(self, request: ApiRequest) -> ApiReply:
        self.engine.resume(request.params["instance_id"], request.query.get("reason"))
        return no_content(202)

    def rewind(self, request: ApiRequest) -> ApiReply:
        row = self.engine.instance(request.params["instance_id"])
        if row is None:
            return no_content(404)
        if row.runtime_status in NOT_REWINDABLE:
            return no_content(410)
        if row.runtime_status != "Failed":
            return exception_reply(500, "Something went wrong while processing your request",
                                   "The rewind operation is only supported on failed orchestration instances.",
                                   "System.InvalidOperationException")
        return message_reply(501, "The devhost does not support rewind (the extension marks it obsolete).")

    # -- purging ---------------------------------------------------------------------

    def purge_one(self, request: ApiRequest) -> ApiReply:
        if not self.engine.purge(request.params["instance_id"]):
            return no_content(404)
        return ApiReply(200, {"instancesDeleted": 1})

    def purge_many(self, request: ApiRequest) -> ApiReply:
        if _date_time(request.query.get("createdTimeFrom", "")) is None:
            return ApiReply(400, "Please provide value for 'createdTimeFrom' parameter.")
        # Azure Storage keeps only the terminal statuses asked for; with none left it
        # purges every status, running instances included.
        statuses = [s for s in request.values("runtimeStatus") if s in TERMINAL_STATUSES]
        filters = self._filters(request, statuses)
        filters.setdefault("created_to", to_iso(self.engine.clock.now()))
        deleted, after = 0, ""
        while True:
            rows = self.engine.instances(after=after, limit=1000, **filters)
            deleted += sum(1 for r in rows if self.engine.purge(r.instance_id))
            if len(rows) < 1000:
                break
            after = rows[-1].instance_id
        if deleted == 0:
            return no_content(404)
        return ApiReply(200, {"instancesDeleted": deleted})

    # -- entities ----------------------------------------------------------------------

    def signal_entity(self, request: ApiRequest) -> ApiReply:
        """HandlePostEntityOperationRequestAsync: DELETE is the "delete" operation; a body
        is the input, parsed when it is application/json and a string otherwise."""
        operation = "delete" if request.method == "DELETE" else request.query.get("op", "")
        input_text = None
        if request.body:
            text = request.body.decode("utf-8", "replace")
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type == "application/json":
                try:
                    value = payloads.read_token(text, payloads.MAX_DEPTH)
                except payloads.PayloadError as exc:
                    return message_reply(400, f"Could not parse JSON content: {exc}")
                # RequestMessage.SetInput keeps a token's compact text, JSON null included.
                input_text = "null" if value is None else payloads.to_text(value)
            else:
                input_text = payloads.to_text(text)
        try:
            self.engine.signal_entity(request.params["entity_name"], request.params.get("entity_key", ""),
                                      operation, input_text)
        except (InvalidArgument, EntityRequestError) as exc:
            # HandleRequestAsync: an ArgumentException becomes CreateErrorResponse(400, message).
            return message_reply(400, str(exc))
        return no_content(202)

    @staticmethod
    def entity_without_name(request: ApiRequest) -> ApiReply:
        # new EntityId(null, ...): ArgumentNullException(paramName, message).
        return message_reply(400, "Invalid entity id: entity name must not be a null or empty string. "
                                  "(Parameter 'entityName')")

    def get_entity(self, request: ApiRequest) -> ApiReply:
        """HandleGetEntityRequestAsync: 200 with the state as JSON, or 404."""
        key = request.params["entity_key"]
        row = self.engine.entity(request.params["entity_name"], "" if key == EMPTY_ENTITY_KEY else key)
        if row is None or not row.exists:
            return no_content(404)
        return ApiReply(200, entity_state(row.state))

    def list_entities(self, request: ApiRequest) -> ApiReply:
        """HandleListEntitiesRequestAsync: DurableEntityStatus items, a page at a time."""
        top = DEFAULT_PAGE_SIZE
        if request.query.get("top", "").strip().isdigit():
            top = max(int(request.query["top"]), 1)
        try:
            after = _read_token(request.headers.get("x-ms-continuation-token", ""))
        except ValueError:
            return message_reply(400, "The continuation token is not one this API returned.")
        window = {key: to_iso(moment) for param, key in (("lastOperationTimeFrom", "operated_from"),
                                                         ("lastOperationTimeTo", "operated_to"))
                  if (moment := _date_time(request.query.get(param, ""))) is not None}
        rows = self.engine.entities(request.params.get("entity_name"), after=after, limit=top + 1, **window)
        token = _make_token(rows[top - 1].entity_id) if len(rows) > top else ""
        fetch_state = request.flag("fetchState")
        listed = []
        for row in rows[:top]:
            item = {"entityId": {"name": row.name, "key": row.key},
                    "lastOperationTime": row.last_operation_time}
            if fetch_state:
                item["state"] = entity_state(row.state)
            listed.append(item)
        return ApiReply(200, listed, {"x-ms-continuation-token": token})


def entity_state(text: Optional[str]) -> Any:
    """DurableEntityStatus: the state parsed as JSON, or kept as a string if it is not."""
    try:
        return payloads.read_token(text)
    except payloads.PayloadError:
        return text


_EVENT_NAMES = {kind: "".join(part.capitalize() for part in kind.name.split("_")) for kind in EventType}
_FAMILIES = {EventType.TASK_SCHEDULED: "task", EventType.TASK_COMPLETED: "task", EventType.TASK_FAILED: "task",
             EventType.SUB_ORCHESTRATION_INSTANCE_CREATED: "sub",
             EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED: "sub",
             EventType.SUB_ORCHESTRATION_INSTANCE_FAILED: "sub"}


def _dotnet_double(value: float) -> str:
    """A double as C# string interpolation writes it: 1.0 is "1", 0.5 is "0.5"."""
    return str(int(value)) if value == int(value) else repr(value)


def _date_time(text: str) -> Optional[datetime]:
    """``DateTime.TryParse`` of an ISO date-time; None when it does not parse."""
    try:
        return parse_iso(text) if text.strip() else None
    except ValueError:
        return None


def _make_token(instance_id: str) -> str:
    return base64.urlsafe_b64encode(instance_id.encode("utf-8")).decode("ascii")


def _read_token(token: str) -> str:
    """The instance id a continuation token resumes after. The token is opaque, as Azure
    Storage's is; one this API did not make is refused (the devhost's choice)."""
    if not token or token == "null":
        return ""
    if not _TOKEN.fullmatch(token):
        raise ValueError("not a continuation token")
    try:
        after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError):
        raise ValueError("not a continuation token") from None
    if len(after) > MAX_INSTANCE_ID_CHARS:
        raise ValueError("not a continuation token")
    return after


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,2048}={0,2}")
