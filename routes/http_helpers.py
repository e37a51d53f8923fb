"""Small pieces every HTTP route shares: JSON replies, body parsing, path values, and the
one place where errors become status codes."""
from __future__ import annotations

import functools
import logging
from typing import Any, Optional
from urllib.parse import urlsplit

import azure.functions as func

from shared_code import fast_json
from shared_code.models import ValidationError, parse_json_object, validate_instance_id
from shared_code.settings import ConfigurationError

from .review_client import BackendUnavailable, Delivery, NoSuchReview

log = logging.getLogger(__name__)

BACKEND_RETRY_AFTER_SECONDS = "5"


class HttpError(Exception):
    def __init__(self, status: int, message: str, **details):
        super().__init__(message)
        self.status = status
        self.details = details


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> func.HttpResponse:
    return func.HttpResponse(fast_json.encode(body), status_code=status, mimetype="application/json",
                             headers=headers or {})


def error_response(status: int, message: str, headers: dict | None = None, **details) -> func.HttpResponse:
    return json_response({"error": message, **details}, status, headers)


def media_type(req: func.HttpRequest) -> str:
    return (req.headers.get("content-type") or "").split(";")[0].strip().lower()


def json_body(req: func.HttpRequest) -> dict:
    """The request's JSON object. Only JSON is read: a form or text/plain body (what a
    cross-site form can send without the browser asking first) gets 415."""
    kind = media_type(req)
    if kind != "application/json" and not kind.endswith("+json"):
        shown = f"'{kind}'" if kind else "none"
        raise HttpError(415, f"unsupported content type {shown}; send Content-Type: application/json")
    return parse_json_object(req.get_body())


def instance_id_param(req: func.HttpRequest) -> str:
    return validate_instance_id(req.route_params.get("instanceId", ""))


def origin_of(req: func.HttpRequest) -> str:
    """scheme://host[:port] of the URL the caller used; 400 when its Host header is not one
    a URL can hold (``a]b``, which a host may pass on)."""
    try:
        parts = urlsplit(req.url)
    except ValueError:
        raise HttpError(400, "the request's Host header is not a host name") from None
    return f"{parts.scheme}://{parts.netloc}"


def api_url(req: func.HttpRequest, path: str) -> str:
    """An absolute URL for another route of this app, on the origin and prefix the caller used."""
    url = req.url.split("?", 1)[0]
    cut = min((i for i in (url.find("/hitl/"), url.find("/agents/")) if i >= 0), default=len(url))
    return f"{url[:cut]}/{path.lstrip('/')}"


STATUS_RETRY_AFTER = "2"


def delivery_reply(req: func.HttpRequest, instance_id: str, delivery: Delivery, what: str,
                   applied: str, body: dict, for_round: Optional[int] = None) -> func.HttpResponse:
    """The reply to a delivered decision, cancel or deadline change (for ``for_round``, or
    the round under review): 200 once the review applied it, 409 when it refused it or
    ended first, saying what happened instead (the round was decided, by whom; the review
    was cancelled, timed out, …), 202 when it was delivered and not taken yet (the status
    shows when)."""
    outcome, review = delivery.outcome, delivery.review
    if outcome is not None and outcome.kind == "applied":
        return json_response({"message": applied, **body})
    # What the review did instead, as its status tells it now; the review's own reason
    # when the status does not explain it (a deadline change beyond the 30-day limit).
    instead = review.refusal(for_round) if review is not None else None
    if outcome is not None:
        raise HttpError(409, f"the {what} was not applied: {instead or outcome.reason}", **body)
    if review is not None and review.finished:
        raise HttpError(409, f"the {what} was not applied: {instead}", **body)
    status_url = api_url(req, f"hitl/status/{instance_id}")
    return json_response({"message": f"The {what} was delivered but the review has not taken it yet; "
                                     "the status shows when it does.",
                          "statusQueryGetUri": status_url, **body}, status=202,
                         headers={"Location": status_url, "Retry-After": STATUS_RETRY_AFTER})


def refusal_of(exc: Exception) -> Optional[tuple[int, str, dict, dict]]:
    """(status, reason, headers, details) for the errors a route raises on purpose: bad
    input 400, an unknown review 404, HttpError its own status, the Durable backend
    failing or a malformed setting 503; None for anything else (a bug)."""
    if isinstance(exc, HttpError):
        return exc.status, str(exc), {}, exc.details
    if isinstance(exc, ValidationError):
        return 400, str(exc), {}, {}
    if isinstance(exc, NoSuchReview):
        return 404, f"no review with id '{exc.args[0]}'", {}, {}
    if isinstance(exc, BackendUnavailable):
        return 503, str(exc), {"Retry-After": BACKEND_RETRY_AFTER_SECONDS}, {}
    if isinstance(exc, ConfigurationError):  # its message names the setting, never a secret
        return 503, f"the app is misconfigured: {exc}", {}, {}
    return None


def handles_http_errors(handler):
    """Turn errors into their JSON replies, so routes can raise instead of branching
    (``refusal_of``); anything else is logged and answered 500 without details."""
    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except Exception as exc:
            refusal = refusal_of(exc)
            if refusal is None:
                log.exception("route %s failed", handler.__name__)
                return error_response(500, "internal error; the function log has the details")
            status, reason, headers, details = refusal
            return error_response(status, reason, headers or None, **details)
    return wrapper
