"""The review analytics over HTTP, checked against reviews with known timings: the app is
served on a manual clock, and each review is started, viewed and decided at a moment the
test chooses."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from devhost import ManualClock
from devhost.testing import TestingHost, wait_until
from shared_code.review_links import ReviewGrant, sign
from tests.conftest import APP_DIR, SIGNING_KEY
from tests.support.http import call
from tests.support.principals import principal_header

# Tomorrow, 08:00 UTC: the routes check deadlines and links against the real clock, so the
# reviews' moments are in the future.
T0 = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
DAY = T0.date().isoformat()
POLICY = {"stages": [{"name": "legal", "reviewers": ["user:bob@contoso.com", "user:carol@contoso.com"],
                      "require": "all"}]}


@pytest.fixture
def host(offline_env):
    clock = ManualClock(T0)
    with TestingHost.served(APP_DIR, clock=clock) as served:
        yield served


def start(base, **fields):
    return call("POST", f"{base}/api/hitl/run", {"topic": "Known timings", **fields}).json["instanceId"]


def status(base, instance_id):
    return call("GET", f"{base}/api/hitl/status/{instance_id}").json


def settled(base, instance_id, round_=1):
    return wait_until(lambda: (s := status(base, instance_id)["customStatus"])["stage"] == "awaiting_review"
                      and s["round"] == round_ and s["notification"]["status"] != "sending" and s)


def at(host, moment):
    host.advance(seconds=(moment - host.clock.now()).total_seconds())


def data(base, **params):
    query = "&".join(f"{k}={v}" for k, v in {"from": DAY, "to": DAY, **params}.items())
    return call("GET", f"{base}/api/hitl/analytics/data?{query}")


def test_the_figures_match_reviews_with_known_timings(host):
    base = host.base_url
    published_first, revised, cancelled = (start(base) for _ in range(3))
    team = start(base, review=POLICY)
    timed_out = start(base, approval_timeout_hours=2)
    for instance_id in (published_first, revised, cancelled, team, timed_out):
        settled(base, instance_id)

    at(host, T0 + timedelta(minutes=5))   # the first review's page is opened 5 minutes after its notice
    token = sign(ReviewGrant(published_first, 1, T0 + timedelta(hours=72)), SIGNING_KEY.encode())
    assert call("GET", f"{base}/api/hitl/review/{published_first}/state?token={token}").status == 200
    wait_until(lambda: status(base, published_first)["customStatus"]["views"])

    at(host, T0 + timedelta(minutes=10))
    assert call("POST", f"{base}/api/hitl/approve/{team}",
                {"approved": True, "round": 1, "reviewer": "bob@contoso.com"}).status == 200
    at(host, T0 + timedelta(minutes=20))
    assert call("POST", f"{base}/api/hitl/approve/{published_first}", {"approved": True, "round": 1}).status == 200
    at(host, T0 + timedelta(minutes=30))
    assert call("POST", f"{base}/api/hitl/cancel/{cancelled}", {"reason": "withdrawn"}).status == 200
    at(host, T0 + timedelta(hours=1))
    assert call("POST", f"{base}/api/hitl/approve/{revised}",
                {"approved": False, "round": 1, "feedback": "Shorter"}).status == 200
    settled(base, revised, round_=2)
    at(host, T0 + timedelta(hours=3))     # round 2 became reviewable at 1 h: decided 2 h later
    assert call("POST", f"{base}/api/hitl/approve/{revised}", {"approved": True, "round": 2}).status == 200
    wait_until(lambda: status(base, timed_out)["runtimeStatus"] == "Failed")
    wait_until(lambda: status(base, revised)["runtimeStatus"] == "Completed")

    body = wait_until(lambda: (r := data(base).json)["reviews"]["published"] == 2 and r)
    reviews = body["reviews"]
    assert {k: reviews[k] for k in ("started", "published", "rejectedOut", "timedOut", "cancelled", "failed")} == {
        "started": 5, "published": 2, "rejectedOut": 0, "timedOut": 1, "cancelled": 1, "failed": 0}
    assert reviews["approvedAtRound1"] == {"count": 1, "share": 0.5}
    assert reviews["roundsToApproval"] == [{"rounds": 1, "reviews": 1}, {"rounds": 2, "reviews": 1}]
    # Published after 20 minutes and after 3 hours: the median is the lower, in [15 min, 30 min).
    assert reviews["toPublication"]["count"] == 2 and reviews["toPublication"]["medianRange"] == [900, 1800]

    stages = {s["name"]: s for s in body["stages"]}
    review = stages["review"]
    # Decided after 20 min (approved), 1 h (rejected) and 2 h (approved): median 1 h.
    assert (review["decided"], review["approved"], review["rejected"]) == (3, 2, 1)
    assert review["toDecision"]["medianRange"] == [3600, 7200]
    assert (review["deadlinesMissed"], review["escalations"]) == (1, 0)
    assert review["firstViews"] == 1 and review["toFirstView"]["medianRange"] == [300, 600]
    assert stages["legal"]["decided"] == 0  # carol has not decided yet

    people = {p["name"]: p for p in body["reviewers"]}
    assert people["bob@contoso.com"]["decided"] == 1 and people["bob@contoso.com"]["medianRange"] == [600, 900]
    assert people["carol@contoso.com"]["waiting"] == 1 and people["carol@contoso.com"]["decided"] == 0
    assert people["function key"]["decided"] == 3
    assert "anyone" not in people  # nothing open to anyone waits any more

    legal = data(base, stage="legal").json
    assert [s["name"] for s in legal["stages"]] == ["legal"]
    assert [p["name"] for p in legal["reviewers"]] == ["carol@contoso.com", "bob@contoso.com"]

    rows = list(csv.reader(io.StringIO(data(base, format="csv").text)))
    assert ["reviews", "", "published", "2"] in rows and ["stage", "review", "deadlinesMissed", "1"] in rows
    assert ["reviewer", "carol@contoso.com", "waiting", "1"] in rows

    before = data(base, **{"from": (T0 - timedelta(days=3)).date().isoformat(),
                           "to": (T0 - timedelta(days=1)).date().isoformat()}).json
    assert before["reviews"]["started"] == 0 and len(before["days"]) == 3


@pytest.mark.parametrize("query, reason", [
    ("from=2026-13-01", "'from' must be a day as YYYY-MM-DD"),
    ("from=2026-03-02&to=2026-03-01", "'from' (2026-03-02) is after 'to' (2026-03-01)"),
    ("from=2024-01-01&to=2026-01-01", "a period is at most 366 days"),
    ("format=xml", "'format' must be one of json, csv"),
    ("stage=%3Cscript%3E", "'stage' is a stage's name"),
])
def test_a_bad_query_gets_a_400_with_the_reason(served_host, query, reason):
    reply = call("GET", f"{served_host.base_url}/api/hitl/analytics/data?{query}")
    assert reply.status == 400 and reason in reply.json["error"], reply.text


def test_the_page_draws_its_charts_on_the_server_and_is_for_owners(served_host, monkeypatch):
    base = served_host.base_url
    page = call("GET", f"{base}/api/hitl/analytics")
    assert page.status == 200 and "script-src 'nonce-" in page.headers["Content-Security-Policy"]
    body = call("GET", f"{base}/api/hitl/analytics/data?charts=svg").json
    assert set(body["charts"]) == {"perDay", "toDecision", "rounds"}
    assert all(svg.startswith("<svg") and "<script" not in svg for svg in body["charts"].values())
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    monkeypatch.setenv("HITL_OWNERS", "role:owners")
    reader = {"x-ms-client-principal": principal_header("eve@contoso.com", roles=("readers",))}
    assert call("GET", f"{base}/api/hitl/analytics", headers=reader).status == 403
    assert call("GET", f"{base}/api/hitl/analytics/data", headers=reader).status == 403
    owner = {"x-ms-client-principal": principal_header("olga@contoso.com", roles=("owners",))}
    assert call("GET", f"{base}/api/hitl/analytics/data", headers=owner).status == 200
