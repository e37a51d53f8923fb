"""The Durable Functions HTTP API, served under ``/runtime/webhooks/durabletask/``.

It follows Microsoft's "HTTP API reference" for Durable Functions. The SDK's
``DurableOrchestrationClient`` calls the same routes through ``rpcBaseUrl``, so its
double-encoded bodies (a JSON string holding JSON) are accepted as well as plain JSON.
"""
from __future__ import annotations

import json
from typing import Optional
from urllib.parse import quote

from aiohttp import web

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


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str) -> web.Response:
    # ExceptionMessage is what the SDK reads from a 400; Message is the documented field.
    return web.json_response({"Message": message, "ExceptionMessage": message}, status=status)


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


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() == "true"


def _public_time(iso: str) -> str:
    # Millisecond precision, so instances created within one second still sort by age.
    return to_iso(parse_iso(iso))[:23] + "Z"


class DurableApi:
    def __init__(self, engine: Engine):
        self.engine = engine

    def routes(self) -> list[web.RouteDef]:
        p = WEBHOOK_PREFIX
        return [
            web.post(p + "/orchestrators/{name}", self.start),
            web.post(p + "/orchestrators/{name}/{instance_id}", self.start),
            web.get(p + "/instances", self.query),
            web.get(p + "/instances/", self.query),
            web.delete(p + "/instances", self.purge_many),
            web.delete(p + "/instances/", self.purge_many),
            web.get(p + "/instances/{instance_id}", self.get_instance),
            web.delete(p + "/instances/{instance_id}", self.purge_one),
            web.post(p + "/instances/{instance_id}/raiseEvent/{event}", self.raise_event),
            web.post(p + "/instances/{instance_id}/terminate", self.terminate),
            web.post(p + "/instances/{instance_id}/suspend", self.suspend),
            web.post(p + "/instances/{instance_id}/resume", self.resume),
            web.post(p + "/instances/{instance_id}/rewind", self.not_supported),
            web.post(p + "/instances/{instance_id}/restart", self.not_supported),
        ]

    @web.middleware
    async def errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, str(exc))
        except EngineError as exc:
            return error_response(exc.status, str(exc))

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

    async def start(self, request: web.Request) -> web.Response:
        input_json = decode_payload(await request.read())
        instance_id = self.engine.start_instance(
            request.match_info["name"], request.match_info.get("instance_id"), input_json)
        payload = self.management_urls(f"{request.scheme}://{request.host}", instance_id)
        return web.json_response(payload, status=202, headers={
            "Location": payload["statusQueryGetUri"], "Retry-After": "1"})

    async def get_instance(self, request: web.Request) -> web.Response:
        row = self.engine.store.get_instance(request.match_info["instance_id"])
        if row is None:
            return web.Response(status=404)
        body = self.describe(row, show_input=request.query.get("showInput", "true").lower() != "false")
        if _flag(request, "showHistory"):
            body["historyEvents"] = self._public_history(row, _flag(request, "showHistoryOutput"))
        status = 200 if row.runtime_status in TERMINAL_STATUSES else 202
        return web.json_response(body, status=status)

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

    async def query(self, request: web.Request) -> web.Response:
        rows, token = self._page(request)
        headers = {"x-ms-continuation-token": token} if token else {}
        show_input = _flag(request, "showInput")
        return web.json_response([self.describe(r, show_input) for r in rows], headers=headers)

    def _page(self, request: web.Request) -> tuple[list[InstanceRow], Optional[str]]:
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
    def _filters(request: web.Request) -> dict:
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

    async def raise_event(self, request: web.Request) -> web.Response:
        data = decode_payload(await request.read())
        self.engine.raise_event(request.match_info["instance_id"], request.match_info["event"], data)
        return web.Response(status=202)

    async def terminate(self, request: web.Request) -> web.Response:
        self.engine.terminate(request.match_info["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def suspend(self, request: web.Request) -> web.Response:
        self.engine.suspend(request.match_info["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def resume(self, request: web.Request) -> web.Response:
        self.engine.resume(request.match_info["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def purge_one(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        row = self.engine.store.get_instance(instance_id)
        if row is None:
            return web.Response(status=404)
        if not row.is_terminal:
            raise ApiError(400, f"Instance '{instance_id}' is {row.runtime_status}; only "
                                "completed, failed or terminated instances can be purged.")
        self.engine.purge(instance_id)
        return web.json_response({"instancesDeleted": 1})

    async def purge_many(self, request: web.Request) -> web.Response:
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
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    async def not_supported(self, request: web.Request) -> web.Response:
        operation = request.path.rsplit("/", 1)[-1]
        return error_response(501, f"The devhost does not support '{operation}'.")
