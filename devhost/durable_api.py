"""The Durable Functions HTTP API, served under ``/runtime/webhooks/durabletask/``.

It follows Microsoft's "HTTP API reference" for Durable Functions. The SDK's
``DurableOrchestrationClient`` calls the same routes through ``rpcBaseUrl``, so its
double-encoded bodies (a JSON string holding JSON) are accepted as well as plain JSON.

The handlers know nothing of sockets: they take an ``ApiRequest`` and give an
``ApiReply``. ``server`` serves them over aiohttp; ``client_transport`` hands them the
app's own client calls without a socket.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional
from urllib.parse import parse_qsl, quote, unquote

from .clock import parse_iso, to_iso
from .engine import EventType, Engine, EngineError
from .storage import TERMINAL_STATUSES, InstanceRow

WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
RUNTIME_STATUSES = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Terminated",
                    "Suspended")
_EVENT_NAMES = {0: "ExecutionStarted", 1: "ExecutionCompleted", 3: "ExecutionTerminated",
                4: "TaskScheduled", 5: "TaskCompleted", 6: "TaskFailed",
                7: "SubOrchestrationInstanceCreated", 8: "SubOrchestrationInstanceCompleted",
                9: "SubOrchestrationInstanceFailed", 10: "TimerCreated", 11: "TimerFired",
                15: "EventRaised"}
MAX_PAGE = 1000
UNPAGED = 1_000_000

# (method, path under WEBHOOK_PREFIX, handler name)
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
    ("POST", "/instances/{instance_id}/rewind", "not_supported"),
    ("POST", "/instances/{instance_id}/restart", "not_supported"),
)


def _compile(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


_ROUTES = tuple((method, _compile(template), name) for method, template, name in _ROUTE_TABLE)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    origin: str                      # scheme://host the caller used, for management URLs
    params: Mapping[str, str]        # route parameters, decoded
    query: Mapping[str, str]
    headers: Mapping[str, str]       # read with lower-case names
    body: bytes
    path: str                        # the path under WEBHOOK_PREFIX

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() == "true"


@dataclass(frozen=True)
class ApiReply:
    status: int
    payload: Any = None              # JSON-able; None means an empty body
    headers: Mapping[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def error_reply(status: int, message: str) -> ApiReply:
    # ExceptionMessage is what the SDK reads from a 400; Message is the documented field.
    return ApiReply(status, {"Message": message, "ExceptionMessage": message})


def parse_query(raw_query: str) -> dict[str, str]:
    """Query parameters as a dict; a repeated name keeps its first value, as aiohttp's get."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(name, value)
    return query


def decode_payload(raw: bytes) -> Optional[str]:
    """The JSON text of a start input or event payload, however the caller encoded it."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if isinstance(value, str):
        try:
            json.loads(value)
            return value  # the SDK's double encoding: the string already is JSON text
        except ValueError:
            pass
    return json.dumps(value)


def _loads(text: Optional[str]):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _public_time(iso: str) -> str:
    # Millisecond precision, so instances created within one second still sort by age.
    return to_iso(parse_iso(iso))[:23] + "Z"


class DurableApi:
    def __init__(self, engine: Engine):
        self.engine = engine

    def handle(self, method: str, raw_path: str, origin: str, query: Mapping[str, str],
               headers: Mapping[str, str], body: bytes) -> ApiReply:
        """Serve one request; ``raw_path`` is the still-encoded path under WEBHOOK_PREFIX."""
        allowed: set[str] = set()
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(raw_path)
            if match is None:
                continue
            if route_method != method:
                allowed.add(route_method)
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            request = ApiRequest(method, origin, params, query, headers, body, raw_path)
            return self._run(getattr(self, name), request)
        if allowed:
            return ApiReply(405, {"error": f"method {method} is not allowed here"},
                            {"Allow": ", ".join(sorted(allowed))})
        return ApiReply(404, {"error": f"the Durable HTTP API has no {WEBHOOK_PREFIX}{raw_path}"})

    @staticmethod
    def _run(handler: Callable[[ApiRequest], ApiReply], request: ApiRequest) -> ApiReply:
        try:
            return handler(request)
        except (ApiError, EngineError) as exc:
            return error_reply(exc.status, str(exc))

    # -- management payloads ---------------------------------------------------------

    def management_urls(self, base: str, instance_id: str) -> dict:
        root = f"{base}{WEBHOOK_PREFIX}/instances/{quote(instance_id, safe='')}"
        return {
            "id": instance_id,
            "statusQueryGetUri": root,
            "sendEventPostUri": root + "/raiseEvent/{eventName}",
            "terminatePostUri": root + "/terminate?reason={text}",
            "rewindPostUri": root + "/rewind?reason={text}",
            "purgeHistoryDeleteUri": root,
            "restartPostUri": root + "/restart",
            "suspendPostUri": root + "/suspend?reason={text}",
            "resumePostUri": root + "/resume?reason={text}",
        }

    # -- handlers --------------------------------------------------------------------

    def start(self, request: ApiRequest) -> ApiReply:
        input_json = decode_payload(request.body)
        instance_id = self.engine.start_instance(
            request.params["name"], request.params.get("instance_id"), input_json)
        payload = self.management_urls(request.origin, instance_id)
        return ApiReply(202, payload, {"Location": payload["statusQueryGetUri"], "Retry-After": "1"})

    def get_instance(self, request: ApiRequest) -> ApiReply:
        row = self.engine.store.get_instance(request.params["instance_id"])
        if row is None:
            return ApiReply(404)
        body = self.describe(row, show_input=request.query.get("showInput", "true").lower() != "false")
        if request.flag("showHistory"):
            body["historyEvents"] = self._public_history(row, request.flag("showHistoryOutput"))
        return ApiReply(200 if row.runtime_status in TERMINAL_STATUSES else 202, body)

    def describe(self, row: InstanceRow, show_input: bool = True) -> dict:
        return {
            "name": row.name, "instanceId": row.instance_id, "runtimeStatus": row.runtime_status,
            "input": _loads(row.input) if show_input else None,
            "customStatus": _loads(row.custom_status), "output": _loads(row.output),
            "createdTime": _public_time(row.created_time),
            "lastUpdatedTime": _public_time(row.last_updated_time),
        }

    def _public_history(self, row: InstanceRow, with_output: bool) -> list[dict]:
        shown = []
        for event in self.engine.store.load_history(row.instance_id):
            name = _EVENT_NAMES.get(event["EventType"])
            if name is None:
                continue
            item = {"EventType": name, "Timestamp": event["Timestamp"]}
            if event.get("Name"):
                item["FunctionName" if event["EventType"] != EventType.EVENT_RAISED else "Name"] = event["Name"]
            for key in ("TaskScheduledId", "TimerId", "FireAt", "OrchestrationStatus", "Reason"):
                if key in event:
                    item[key] = event[key]
            if with_output:
                for key in ("Input", "Result"):
                    if event.get(key) is not None:
                        item[key] = _loads(event[key])
            shown.append(item)
        return shown

    def query(self, request: ApiRequest) -> ApiReply:
        rows, token = self._page(request)
        headers = {"x-ms-continuation-token": token} if token else {}
        show_input = request.flag("showInput")
        return ApiReply(200, [self.describe(r, show_input) for r in rows], headers)

    def _page(self, request: ApiRequest) -> tuple[list[InstanceRow], Optional[str]]:
        # The SDK's get_status_all/get_status_by send no 'top' and never follow a
        # continuation token, so without 'top' everything comes in one reply.
        top = request.query.get("top", str(UNPAGED))
        if "top" in request.query and (not (top.isascii() and top.isdigit()) or not 1 <= int(top) <= MAX_PAGE):
            raise ApiError(400, f"'top' must be an integer from 1 to {MAX_PAGE}.")
        after = ("", "")
        token = request.headers.get("x-ms-continuation-token", "")
        if token and token != "null":
            try:
                created, instance_id = json.loads(token)
                after = (str(created), str(instance_id))
            except (ValueError, TypeError):
                raise ApiError(400, "The continuation token is not valid.") from None
        rows = self.engine.store.query_instances(
            after=after, limit=int(top) + 1, **self._filters(request))
        if len(rows) > int(top):
            last = rows[int(top) - 1]
            return rows[:int(top)], json.dumps([last.created_time, last.instance_id])
        return rows, None

    @staticmethod
    def _filters(request: ApiRequest) -> dict:
        statuses = tuple(s for s in request.query.get("runtimeStatus", "").split(",") if s)
        unknown = [s for s in statuses if s not in RUNTIME_STATUSES]
        if unknown:
            raise ApiError(400, f"Unknown runtimeStatus value(s): {', '.join(unknown)}.")
        filters = {"statuses": statuses, "id_prefix": request.query.get("instanceIdPrefix", "")}
        for param, key in (("createdTimeFrom", "created_from"), ("createdTimeTo", "created_to")):
            value = request.query.get(param)
            if value:
                try:
                    filters[key] = to_iso(parse_iso(value))
                except ValueError:
                    raise ApiError(400, f"'{param}' is not an ISO 8601 date-time.") from None
        return filters

    def raise_event(self, request: ApiRequest) -> ApiReply:
        data = decode_payload(request.body)
        self.engine.raise_event(request.params["instance_id"], request.params["event"], data)
        return ApiReply(202)

    def terminate(self, request: ApiRequest) -> ApiReply:
        self.engine.terminate(request.params["instance_id"], request.query.get("reason", ""))
        return ApiReply(202)

    def suspend(self, request: ApiRequest) -> ApiReply:
        self.engine.suspend(request.params["instance_id"], request.query.get("reason", ""))
        return ApiReply(202)

    def resume(self, request: ApiRequest) -> ApiReply:
        self.engine.resume(request.params["instance_id"], request.query.get("reason", ""))
        return ApiReply(202)

    def purge_one(self, request: ApiRequest) -> ApiReply:
        instance_id = request.params["instance_id"]
        row = self.engine.store.get_instance(instance_id)
        if row is None:
            return ApiReply(404)
        if not row.is_terminal:
            raise ApiError(400, f"Instance '{instance_id}' is {row.runtime_status}; only "
                                "completed, failed or terminated instances can be purged.")
        self.engine.purge(instance_id)
        return ApiReply(200, {"instancesDeleted": 1})

    def purge_many(self, request: ApiRequest) -> ApiReply:
        filters = self._filters(request)
        if not filters.get("created_from"):
            raise ApiError(400, "'createdTimeFrom' is required to purge by filter.")
        if not filters["statuses"]:
            filters["statuses"] = TERMINAL_STATUSES
        deleted, after = 0, ("", "")
        while True:
            rows = self.engine.store.query_instances(after=after, limit=MAX_PAGE, **filters)
            deleted += sum(1 for r in rows if r.is_terminal and self.engine.purge(r.instance_id))
            if len(rows) < MAX_PAGE:
                break
            after = (rows[-1].created_time, rows[-1].instance_id)
        if deleted == 0:
            return ApiReply(404)
        return ApiReply(200, {"instancesDeleted": deleted})

    @staticmethod
    def not_supported(request: ApiRequest) -> ApiReply:
        operation = request.path.rsplit("/", 1)[-1]
        return error_reply(501, f"The devhost does not support '{operation}'.")
