"""The reviewer workspace's data: the inbox, the page's state (whole texts, diff,
Markdown) and edit-and-approve, over HTTP against the devhost."""
from __future__ import annotations

import base64
import json

import pytest

from devhost.testing import wait_until
from tests.support.http import call

from .test_hitl_routes import awaiting, run_review, status_of
from .test_review_routes import token_for


def principal(*claims):
    body = {"auth_typ": "aad", "claims": [{"typ": t, "val": v} for t, v in claims]}
    return base64.b64encode(json.dumps(body).encode()).decode()


def inbox(base, query=""):
    return call("GET", f"{base}/api/hitl/inbox/items{query}").json


def listed(base, count, query=""):
    """The inbox once it lists ``count`` reviews (cards appear once the first notice is out)."""
    return wait_until(lambda: (page := inbox(base, query))["counts"]["all"] == count and page)


def test_the_inbox_lists_every_waiting_review_sorted_and_filtered(served_host):
    base = served_host.base_url
    ids = []
    for topic, hours in (("Short fuse on sagas", 2), ("Long wait on timers", 200), ("Sagas, again", 20)):
        ids.append(run_review(base, topic=topic, approval_timeout_hours=hours)["instanceId"])
        wait_until(lambda i=ids[-1]: awaiting(base, i, 1))  # one at a time: "age" is when each began to wait
    short, long, middle = ids
    by_deadline = listed(base, 3)
    assert [i["instanceId"] for i in by_deadline["items"]] == [short, middle, long]
    assert by_deadline["counts"] == {"mine": 3, "all": 3} and by_deadline["continuation"] is None
    by_age = inbox(base, "?sort=age")
    assert [i["instanceId"] for i in by_age["items"]] == [short, long, middle]
    sagas = inbox(base, "?q=SAGAS")
    assert [i["instanceId"] for i in sagas["items"]] == [short, middle]
    item = sagas["items"][0]
    assert item["round"] == 1 and item["maxRounds"] == 3 and item["notification"]["status"] == "sent"
    assert item["stage"] == "review" and item["mine"] is True
    assert item["reviewUrl"].startswith(f"{base}/api/hitl/review/{short}?token=")
    assert call("GET", item["reviewUrl"].replace("?token=", "/state?token=")).json["canDecide"] is True
    assert call("GET", f"{base}/api/hitl/inbox/items?sort=topic").status == 400
    decided = call("POST", f"{base}/api/hitl/approve/{short}", {"approved": True, "round": 1})
    assert decided.status == 200
    assert [i["instanceId"] for i in listed(base, 2)["items"]] == [middle, long]


def test_the_inbox_pages_with_a_continuation(served_host):
    base = served_host.base_url
    ids = []
    for n in range(5):
        ids.append(run_review(base, topic=f"Paged {n}")["instanceId"])
        wait_until(lambda i=ids[-1]: awaiting(base, i, 1))
    listed(base, 5)
    seen, token = [], ""
    for _ in range(3):
        page = inbox(base, f"?sort=age&top=2" + (f"&continuation={token}" if token else ""))
        seen += [i["instanceId"] for i in page["items"]]
        token = page["continuation"]
        if not token:
            break
    assert seen == ids and token is None
    assert call("GET", f"{base}/api/hitl/inbox/items?sort=deadline&continuation={token or 'x'}").status == 400


def test_the_inbox_is_held_to_the_reviewers_when_configured(served_host, monkeypatch):
    base = served_host.base_url
    monkeypatch.setenv("HITL_REVIEWERS", "Reviewer, 0a1b2c3d-group")
    refused = call("GET", f"{base}/api/hitl/inbox/items")
    assert refused.status == 403 and "App Service Authentication" in refused.json["error"]
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    assert call("GET", f"{base}/api/hitl/inbox/items").status == 401
    outsider = principal(("roles", "Reader"), ("groups", "ffff-other"))
    denied = call("GET", f"{base}/api/hitl/inbox/items", headers={"x-ms-client-principal": outsider})
    assert denied.status == 403 and "not one of this app's reviewers" in denied.json["error"]
    page = call("GET", f"{base}/api/hitl/inbox", headers={"x-ms-client-principal": outsider})
    assert page.status == 403 and "text/html" in page.headers["Content-Type"]
    for claims in ((("roles", "Reviewer"),),
                   (("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "0a1b2c3d-group"),)):
        allowed = call("GET", f"{base}/api/hitl/inbox/items", headers={"x-ms-client-principal": principal(*claims)})
        assert allowed.status == 200, claims
    assert call("GET", f"{base}/api/hitl/inbox",
                headers={"x-ms-client-principal": principal(("roles", "Reviewer"))}).status == 200


def test_the_inbox_and_the_owner_routes_need_the_function_key_in_azure():
    """The devhost does not check keys (as func does not); what Azure checks is the level
    each function declares, which the app's default sets to FUNCTION."""
    import azure.durable_functions as df
    import azure.functions as func

    from routes.owner_routes import bp

    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    levels = {f.get_function_name(): f.get_trigger().auth_level for f in app.get_functions()}
    assert set(levels) == {"hitl_pending", "hitl_inbox", "hitl_inbox_items", "hitl_cancel", "hitl_extend",
                           "hitl_claim", "hitl_delegate", "hitl_reassign"}
    assert all(level == func.AuthLevel.FUNCTION for level in levels.values()), levels


def test_the_page_state_has_the_whole_draft_its_markdown_and_the_diff(served_host):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    first = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token_for(instance_id, 1)}").json
    assert first["previousDraft"] is None and first["diff"] is None
    assert first["draftHtml"].startswith("<p>An offline draft about")
    call("POST", f"{base}/api/hitl/approve/{instance_id}",
         {"approved": False, "feedback": "Say <b>why</b> & how", "round": 1})
    wait_until(lambda: awaiting(base, instance_id, 2))
    state = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token_for(instance_id, 2)}").json
    assert state["previousDraft"]["title"].startswith("Draft 1")
    inserted = "".join(r["text"] for r in state["diff"] if r["op"] == "+")
    assert "Revised for feedback: Say <b>why</b> & how" in inserted
    assert [r["op"] for r in state["titleDiff"]] == ["=", "-", "+", "="] or "+" in {r["op"] for r in state["titleDiff"]}
    assert "&lt;b&gt;why&lt;/b&gt; &amp; how" in state["draftHtml"]  # Markdown with raw HTML off
    assert state["decisions"][0]["feedback"] == "Say <b>why</b> & how"


@pytest.mark.parametrize("text, absent", [
    ("[x](javascript:alert(1))", "href=\"javascript"), ("<script>alert(1)</script>", "<script"),
    ("![i](x onerror=alert(1))", "<img"), ("<img src=x onerror=alert(1)>", "<img"),
    ("[d](data:text/html;base64,PHNjcmlwdD4=)", "href=\"data"),
])
def test_markdown_never_yields_script_or_unsafe_links(text, absent):
    from routes.draft_view import render_markdown

    assert absent not in render_markdown(text)


def test_edit_and_approve_publishes_the_edit_and_audits_it(served_host, offline_env):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    token = token_for(instance_id, 1)
    edited = {"approved": True, "title": "Timers, edited", "content": "A **better** text."}
    reply = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token}", edited)
    assert reply.status == 200, reply.text
    done = wait_until(lambda: (s := status_of(base, instance_id))["runtimeStatus"] == "Completed" and s)
    assert (done["output"]["title"], done["output"]["content"]) == ("Timers, edited", "A **better** text.")
    record = done["output"]["decisions"][0]
    assert record["by"] == "review link"
    assert record["edited"]["after"]["chars"] == len("Timers, edited\n\nA **better** text.")
    assert len(record["edited"]["before"]["sha256"]) == 64
    assert record["edited"]["before"] != record["edited"]["after"]
    published = json.loads((offline_env / "published" / f"{instance_id}.json").read_text())
    assert published["content"] == "A **better** text."


@pytest.mark.parametrize("body, reason", [
    ({"approved": False, "feedback": "x", "content": "y"}, "goes with an approval"),
    ({"approved": True, "content": "   "}, "non-empty string"),
    ({"approved": True, "title": "t" * 301}, "at most 300"),
    ({"approved": True, "content": "c" * 20001}, "at most 20000"),
    ({"approved": True, "title": 5}, "must be a string"),
])
def test_a_bad_edit_gets_400_with_the_reason(served_host, body, reason):
    base = served_host.base_url
    instance_id = run_review(base)["instanceId"]
    wait_until(lambda: awaiting(base, instance_id, 1))
    reply = call("POST", f"{base}/api/hitl/approve/{instance_id}", {**body, "round": 1})
    assert reply.status == 400 and reason in reply.json["error"], reply.text
