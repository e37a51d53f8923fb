"""The dashboard over HTTP: served by the devhost under the host's own rules (loopback Host,
a strict CSP with a nonce, nothing from elsewhere), its pages of instances and their
filters, and the change mark that live views poll."""
from __future__ import annotations

import re
import textwrap
from urllib.parse import quote

import pytest

from devhost.dashboard import COUNTS_INTERVAL_S, DASHBOARD_PATH, DATA_PATH, Dashboard, make_continuation
from devhost.storage import StoreUnavailable
from devhost.testing import wait_until
from tests.support.http import call


@pytest.fixture
def served(make_host):
    host = make_host("dashboard", clock=None)
    host.serve(port=0)
    return host


def data(host, route: str, **params):
    query = "&".join(f"{key}={quote(str(value))}" for key, value in params.items())
    return call("GET", f"{host.base_url}{DATA_PATH}/{route}" + (f"?{query}" if query else ""))


def test_the_page_is_served_with_a_nonce_csp_and_nothing_from_elsewhere(served):
    reply = call("GET", f"{served.base_url}{DASHBOARD_PATH}")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    policy = reply.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy).group(1)
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert f"style-src 'nonce-{nonce}'" in policy and "unsafe" not in policy
    page = reply.text
    assert page.count(f'nonce="{nonce}"') == 2  # the one style and the one script
    assert not re.search(r"<(script|link|img|iframe)[^>]*(src|href)=", page)
    assert not re.search(r"https?://", page)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert call("GET", f"{served.base_url}{DASHBOARD_PATH}").headers["Content-Security-Policy"] != policy


def test_the_host_rules_apply_to_the_dashboard(served):
    for path in (DASHBOARD_PATH, f"{DATA_PATH}/summary"):
        refused = call("GET", f"{served.base_url}{path}", headers={"Host": "rebound.example:80"})
        assert refused.status == 403 and "DNS rebinding" in refused.text


def test_the_start_page_links_to_the_dashboard(served):
    assert f'href="{DASHBOARD_PATH}"' in call("GET", f"{served.base_url}/").text


def test_the_dashboard_is_the_devhosts_even_under_an_app_that_serves_every_path(make_host, tmp_path):
    app_dir = tmp_path / "catch_all"
    app_dir.mkdir()
    (app_dir / "host.json").write_text('{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}')
    (app_dir / "function_app.py").write_text(textwrap.dedent('''
        import azure.functions as func
        app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

        @app.route(route="{*path}")
        def everything(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("the app")
    '''))
    host = make_host(app_dir, clock=None)
    host.serve(port=0)
    assert call("GET", f"{host.base_url}/elsewhere").text == "the app"
    assert "devhost dashboard" in call("GET", f"{host.base_url}{DASHBOARD_PATH}").text


def test_instances_are_listed_newest_first_a_page_at_a_time(served):
    started = [served.start("approval_flow") for _ in range(5)]
    pages, continuation = [], ""
    while True:
        reply = data(served, "instances", top=2, **({"continuation": continuation} if continuation else {}))
        assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
        pages.append([i["instanceId"] for i in reply.json["instances"]])
        continuation = reply.json["continuation"]
        if not continuation:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [instance_id for page in pages for instance_id in page]
    rows = [served.engine.instance(i) for i in listed]
    assert sorted(listed) == sorted(started)
    assert [(r.created_time, r.instance_id) for r in rows] == sorted(
        ((r.created_time, r.instance_id) for r in rows), reverse=True)


def test_each_filter_narrows_the_list(served, tmp_path):
    failing = {"payments_up_file": str(tmp_path / "down"), "amount": 1}
    waiting = served.start("approval_flow", instance_id="wait-1")
    failed = served.start("order_flow", failing, instance_id="order-1")
    served.start("order_flow", failing, instance_id="order-2")
    served.wait_for_instance(failed)
    served.wait_for_instance("order-2")

    def listed(**filters):
        reply = data(served, "instances", **filters)
        assert reply.status == 200, reply.text
        return {i["instanceId"] for i in reply.json["instances"]}

    assert listed(status="Failed") == {"order-1", "order-2"}
    assert listed(status="Running,Failed") == {"wait-1", "order-1", "order-2"}
    assert listed(name="approval_flow") == {waiting}
    assert listed(name="order_flow", status="Running") == set()
    assert listed(prefix="order-") == {"order-1", "order-2"}
    created = served.engine.instance("order-1").created_time
    assert "order-1" in listed(createdFrom=created, createdTo=created)
    assert listed(createdFrom="2000-01-01T00:00:00Z", createdTo="2000-01-02T00:00:00Z") == set()


@pytest.mark.parametrize("params, message", [
    ({"status": "Sleeping"}, "unknown runtime status 'Sleeping'"),
    ({"top": "0"}, "top must be a whole number from 1 to 100"),
    ({"top": "500"}, "top must be a whole number from 1 to 100"),
    ({"createdFrom": "yesterday"}, "createdFrom is not an ISO 8601 date and time"),
    ({"continuation": "not-one"}, "continuation is not one this dashboard gave"),
    ({"continuation": make_continuation("not a time", "x")}, "continuation is not one this dashboard gave"),
])
def test_a_query_the_list_cannot_answer_is_a_400_saying_why(served, params, message):
    reply = data(served, "instances", **params)
    assert reply.status == 400 and message in reply.json["message"]


def test_an_unknown_instance_is_a_404(served):
    assert data(served, "instance", id="nobody").status == 404


def test_the_change_mark_stays_while_nothing_changes_and_moves_with_a_start(served):
    first = data(served, "summary").json
    assert first["changed"] and first["counts"] == [] and "approval_flow" in first["orchestrators"]
    assert first["entities"] == ["counter"]
    unchanged = data(served, "summary", since=first["mark"]).json
    assert unchanged == {"mark": first["mark"], "changed": False}
    instance_id = served.start("approval_flow")
    served.wait_for_instance(instance_id, lambda status: status["runtimeStatus"] == "Running")

    def counted():
        summary = data(served, "summary", since=first["mark"]).json
        return summary["changed"] and summary["counts"] == [
            {"name": "approval_flow", "runtimeStatus": "Running", "count": 1}]
    wait_until(counted, what="the start is counted")


def test_entities_are_listed_with_their_state_and_last_operation_a_page_at_a_time(served):
    for key, operation in (("b", "add"), ("a", "add"), ("c", "reset")):
        served.signal_entity("counter", key, operation, 2)
    wait_until(lambda: served.entity_state("counter", "c") == (True, 0), what="the signals applied")
    first = data(served, "entities", top=2, name="Counter")  # EntityId lowercases the name
    assert first.status == 200 and first.headers["Cache-Control"] == "no-store"
    assert [(e["key"], e["state"], e["lastOperationName"]) for e in first.json["entities"]] == [
        ("a", 2, "add"), ("b", 2, "add")]
    assert all(e["name"] == "counter" and e["lastOperationTime"] for e in first.json["entities"])
    rest = data(served, "entities", top=2, continuation=first.json["continuation"]).json
    assert [(e["key"], e["state"], e["lastOperationName"]) for e in rest["entities"]] == [("c", 0, "reset")]
    assert rest["continuation"] == ""
    assert data(served, "entities", top=3).json["continuation"] == ""  # a page that holds the last one
    assert data(served, "entities", name="nobody").json == {"entities": [], "continuation": ""}
    assert data(served, "entities", top=0).status == 400


def test_counts_are_computed_at_most_once_an_interval_however_many_poll(make_host, monkeypatch):
    host = make_host("dashboard")
    moment = [100.0]
    dashboard = Dashboard(host.api, monotonic=lambda: moment[0])
    computed = []
    count_instances = host.store.instance_counts
    monkeypatch.setattr(host.store, "instance_counts", lambda: computed.append(1) or count_instances())
    first = dashboard.summary()
    host.start("approval_flow")  # a commit: the store's mark moves
    for _ in range(20):  # pages polling within the interval get the counts they have
        assert dashboard.summary(first["mark"]) == {"mark": first["mark"], "changed": False}
    assert len(computed) == 1
    moment[0] += COUNTS_INTERVAL_S
    later = dashboard.summary(first["mark"])
    assert later["changed"] and later["counts"] == [{"name": "approval_flow", "runtimeStatus": "Pending", "count": 1}]
    assert dashboard.summary(later["mark"]) == {"mark": later["mark"], "changed": False}
    assert len(computed) == 2


def test_a_state_that_cannot_be_read_is_a_503_saying_so(served, monkeypatch):
    def unreadable(**query):
        raise StoreUnavailable("disk I/O error")
    monkeypatch.setattr(served.store, "page_instances", unreadable)
    reply = data(served, "instances")
    assert reply.status == 503 and "cannot read its state" in reply.json["message"]
