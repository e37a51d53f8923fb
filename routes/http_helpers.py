"""Small pieces every HTTP route shares: JSON replies, body parsing, path values."""
from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func

from shared_code.models import ValidationError, parse_json_object, validate_instance_id

# curl -d sends form-urlencoded by default; the body must still be JSON either way.
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers=headers or {})


def error_response(status: int, message: str) -> func.HttpResponse:
    return json_response({"error": message}, status)


def json_body(req: func.HttpRequest) -> dict:
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_CONTENT_TYPES and not content_type.endswith("+json"):
        raise HttpError(415, f"unsupported content type '{content_type}'; send application/json")
    try:
        return parse_json_object(req.get_body())
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None


def instance_id_param(req: func.HttpRequest) -> str:
    try:
        return validate_instance_id(req.route_params.get("instanceId", ""))
    except ValidationError as exc:
        raise HttpError(400, str(exc)) from None


def api_url(req: func.HttpRequest, path: str) -> str:
    """An absolute URL for another route of this app, on the origin and prefix the caller used."""
    url = req.url.split("?", 1)[0]
    cut = min((i for i in (url.find("/hitl/"), url.find("/agents/")) if i >= 0), default=len(url))
    return f"{url[:cut]}/{path.lstrip('/')}"


def handles_http_errors(handler):
    """Turn ``HttpError`` into its JSON reply, so routes can raise instead of branching."""
    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except HttpError as exc:
            return error_response(exc.status, str(exc))
    return wrapper
