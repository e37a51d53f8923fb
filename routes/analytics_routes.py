"""How a team's reviews go, for the app's owners.

- ``GET /api/hitl/analytics``        the analytics page (figures, tables, charts drawn as SVG)
- ``GET /api/hitl/analytics/data``   its data: ``?from=YYYY-MM-DD&to=YYYY-MM-DD&stage=&format=json|csv``
                                     (``charts=svg`` adds the page's charts)

Both need the function key, and with HITL_OWNERS a signed-in owner. A request reads the
day aggregates the reviews keep as they go (routes/analytics_index.py), never the
reviews themselves.
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import azure.durable_functions as df
import azure.functions as func

from shared_code.review_analytics import MAX_PERIOD_DAYS, to_csv
from shared_code.settings import load_settings

from .analytics_charts import charts
from .analytics_index import StatsIndex
from .decisions import key_caller
from .http_helpers import HttpError, handles_http_errors, json_response
from .inbox_index import EntityQueryFailed
from .pages import NO_STORE, error_page, page
from .review_client import BackendUnavailable, ReviewClient

bp = df.Blueprint()
log = logging.getLogger(__name__)

ANALYTICS_PAGE = (Path(__file__).parent / "analytics_page.html").read_text(encoding="utf-8")
DEFAULT_PERIOD_DAYS = 30
FORMATS = ("json", "csv")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}")

# This process's view of the day aggregates, one per Durable backend it talks to.
INDEXES: dict[str, StatsIndex] = {}


@bp.route(route="hitl/analytics", methods=["GET"])
def hitl_analytics(req: func.HttpRequest) -> func.HttpResponse:
    if not key_caller(req, load_settings()).owner:
        return error_page(403, "The analytics are for the app's owners (HITL_OWNERS).")
    return page(ANALYTICS_PAGE)


@bp.route(route="hitl/analytics/data", methods=["GET"])
@bp.durable_client_input(client_name="client")
@handles_http_errors
async def hitl_analytics_data(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    if not key_caller(req, load_settings()).owner:
        raise HttpError(403, "the analytics are for the app's owners (HITL_OWNERS)")
    first, last = period(req.params.get("from"), req.params.get("to"), datetime.now(timezone.utc).date())
    stage = req.params.get("stage") or None
    if stage is not None and not _STAGE.fullmatch(stage):
        raise HttpError(400, "'stage' is a stage's name: 1-40 letters, digits, spaces, '_', '.' or '-'")
    shape = req.params.get("format") or "json"
    if shape not in FORMATS:
        raise HttpError(400, f"'format' must be one of {', '.join(FORMATS)}")
    backend = ReviewClient(client).rpc_base_url
    index = INDEXES.setdefault(backend, StatsIndex())
    try:
        await index.refresh(backend)
    except EntityQueryFailed as exc:
        log.error("could not read the review analytics: %s: %s", type(exc).__name__, exc)
        raise BackendUnavailable("the Durable backend could not give the analytics just now; retry shortly") from None
    summary = index.summary(first, last, stage)
    if shape == "csv":
        name = f"review-analytics-{first.isoformat()}-{last.isoformat()}.csv"
        return func.HttpResponse(to_csv(summary), mimetype="text/csv", charset="utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"', **NO_STORE})
    if req.params.get("charts") == "svg":
        summary["charts"] = charts(summary)
    return json_response(summary, headers=NO_STORE)


def period(first: Optional[str], last: Optional[str], today: date) -> tuple[date, date]:
    """The days asked for (``from`` and ``to`` inclusive, in UTC), by default the last
    30 days up to today; at most MAX_PERIOD_DAYS."""
    end = _day(last, "to") if last else today
    start = _day(first, "from") if first else end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise HttpError(400, f"'from' ({start}) is after 'to' ({end})")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise HttpError(400, f"a period is at most {MAX_PERIOD_DAYS} days; this one has {(end - start).days + 1}")
    return start, end


def _day(text: str, name: str) -> date:
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise HttpError(400, f"'{name}' must be a day as YYYY-MM-DD, got {text[:20]!r}") from None
