"""Signed review links, the page's decision route, the pending list and cancel."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from devhost.testing import wait_until
from shared_code.review_links import ReviewGrant, sign
from tests.conftest import SIGNING_KEY
from tests.support.http import call


def start_review(base, topic="Signed links", **fields):
    instance_id = call("POST", f"{base}/api/hitl/run", {"topic": topic, **fields}).json["instanceId"]
    # Settled: the draft waits and its notice has gone out (it is sent while the draft waits).
    status = wait_until(lambda: (s := call("GET", f"{base}/api/hitl/status/{instance_id}").json)
                      ["customStatus"].get("stage") == "awaiting_review"
                      and s["customStatus"]["notification"]["status"] != "sending" and s)
    return instance_id, status


def token_for(instance_id, round_=1, expires_in=timedelta(hours=1), key=SIGNING_KEY):
    grant = ReviewGrant(instance_id, round_, datetime.now(timezone.utc) + expires_in)
    return sign(grant, key.encode())


def notified_link(host, instance_id):
    """The review URL that notify_reviewer produced for the newest round."""
    results = [e for e in host.history(instance_id) if e["EventType"] == 5]
    return [json.loads(e["Result"]) for e in results if "review_url" in e["Result"]][-1]["review_url"]


def test_notified_link_opens_the_page_and_decides(served_host):
    base = served_host.base_url
    instance_id, _ = start_review(base)
    link = notified_link(served_host, instance_id)
    token = parse_qs(urlsplit(link).query)["token"][0]
    page = call("GET", f"{base}/api/hitl/review/{instance_id}?token={token}")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'nonce-" in page.headers["Content-Security-Policy"]
    state = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token}")
    assert state.json["canDecide"] is True and state.json["round"] == 1
    decided = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token}",
                   {"approved": False, "feedback": "Tighter intro"})
    assert decided.status == 200 and decided.json["decision"]["by"] == "review link"
    follow = decided.json["followToken"]
    cannot_decide = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={follow}",
                         {"approved": True})
    assert cannot_decide.status == 403 and "not decide" in cannot_decide.json["error"]
    renewed = wait_until(lambda: (s := call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={follow}").json)
                       .get("token") and s)
    assert renewed["round"] == 2 and renewed["canDecide"] is True
    stale = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token}")
    assert stale.status == 403  # the round-1 link itself cannot reach round 2
    approved = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={renewed['token']}",
                    {"approved": True})
    assert approved.status == 200
    done = wait_until(lambda: (s := call("GET", f"{base}/api/hitl/status/{instance_id}").json)["runtimeStatus"] == "Completed" and s)
    assert [(d["round"], d["by"]) for d in done["output"]["decisions"]] == [(1, "review link"), (2, "review link")]


@pytest.mark.parametrize("case", ["tampered", "expired", "other-instance", "wrong-key", "missing"])
def test_bad_tokens_get_403_and_leave_the_review_alone(served_host, case):
    base = served_host.base_url
    instance_id, before = start_review(base)
    good = token_for(instance_id)
    token = {
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": token_for(instance_id, expires_in=timedelta(seconds=-1)),
        "other-instance": token_for("someone-else"),
        "wrong-key": token_for(instance_id, key="x" * 40),
        "missing": "",
    }[case]
    page = call("GET", f"{base}/api/hitl/review/{instance_id}?token={token}")
    assert page.status == 403 and "<h1>This review link cannot be used</h1>" in page.text
    decision = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token}", {"approved": True})
    assert decision.status == 403 and decision.json["error"]
    state = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token}")
    assert state.status == 403
    after = call("GET", f"{base}/api/hitl/status/{instance_id}").json
    assert after["customStatus"] == before["customStatus"] and after["runtimeStatus"] == "Running"


def test_token_for_an_earlier_round_cannot_decide_the_current_one(served_host):
    """It sees nothing of the current round; a decision sent with it is told that its own
    round was already decided."""
    base = served_host.base_url
    instance_id, _ = start_review(base)
    round_one = token_for(instance_id, 1)
    call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": False, "feedback": "again", "round": 1})
    wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("round") == 2
             and call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("stage") == "awaiting_review")
    decision = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={round_one}", {"approved": True})
    assert decision.status == 409 and "round 1 was already decided" in decision.json["error"]
    page = call("GET", f"{base}/api/hitl/review/{instance_id}?token={round_one}")
    assert page.status == 403
    state = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={round_one}")
    assert state.status == 403 and "token" not in state.text
    status = call("GET", f"{base}/api/hitl/status/{instance_id}").json
    assert status["runtimeStatus"] == "Running" and len(status["customStatus"]["decisions"]) == 1


def test_page_rejection_requires_feedback(served_host):
    base = served_host.base_url
    instance_id, _ = start_review(base)
    reply = call("POST", f"{base}/api/hitl/review/{instance_id}/decision?token={token_for(instance_id)}",
                 {"approved": False, "feedback": "  "})
    assert reply.status == 400 and "needs 'feedback'" in reply.json["error"]


def test_links_disabled_without_a_signing_key(served_host, monkeypatch):
    monkeypatch.delenv("HITL_REVIEW_SIGNING_KEY")
    monkeypatch.setenv("HITL_DEV_INSECURE_LINKS", "0")  # else a local host uses the development key
    base = served_host.base_url
    instance_id, status = start_review(base)
    assert "HITL_REVIEW_SIGNING_KEY" in status["customStatus"]["notification"]["links"]
    page = call("GET", f"{base}/api/hitl/review/{instance_id}?token=anything")
    assert page.status == 503


def test_pending_lists_waiting_reviews_oldest_first_with_paging(served_host):
    base = served_host.base_url
    ids = [start_review(base, topic=f"Pending {n}")[0] for n in range(3)]
    first = call("GET", f"{base}/api/hitl/pending?top=2").json
    assert [i["instanceId"] for i in first["items"]] == ids[:2]
    # Links point at the host and port the caller used.
    assert first["items"][0]["reviewUrl"].startswith(f"{base}/api/hitl/review/")
    second = call("GET", f"{base}/api/hitl/pending?top=2&continuation={first['continuation']}").json
    assert [i["instanceId"] for i in second["items"]] == [ids[2]] and second["continuation"] is None
    assert call("GET", f"{base}/api/hitl/pending?top=0").status == 400
    assert call("GET", f"{base}/api/hitl/pending?continuation=%%%").status == 400


def test_a_pending_page_holding_a_status_orjson_refuses_still_lists(served_host):
    """The page of statuses is read with orjson (shared_code/fast_json.py), which refuses
    an unpaired surrogate escape that the Durable backend may hand on from any status in
    the hub; the standard library then reads it. Before the fallback: a 503 for the page."""
    base = served_host.base_url
    instance_id, _ = start_review(base, topic="An odd status")
    store = served_host.store
    with store.transaction():
        row = store.get_instance(instance_id)
        status = json.loads(row.custom_status)
        row.custom_status = json.dumps({**status, "message": "waiting \ud800"})
        store.update_instance(row)
    page = call("GET", f"{base}/api/hitl/pending")
    assert page.status == 200, page.text
    assert [i["instanceId"] for i in page.json["items"]] == [instance_id]


def test_a_pending_page_holding_a_status_with_an_odd_round_still_lists(served_host):
    """A review link's payload is written by hand when its numbers are integers; a round
    of another type (a status written by hand) goes to the JSON encoder as before, rather
    than failing the page with a 500."""
    base = served_host.base_url
    instance_id, _ = start_review(base, topic="An odd round")
    store = served_host.store
    with store.transaction():
        row = store.get_instance(instance_id)
        row.custom_status = json.dumps({**json.loads(row.custom_status), "round": "abc"})
        store.update_instance(row)
    page = call("GET", f"{base}/api/hitl/pending")
    assert page.status == 200, page.text
    assert [i["instanceId"] for i in page.json["items"]] == [instance_id]


def test_cancel_ends_the_review_with_the_reason(served_host):
    base = served_host.base_url
    instance_id, _ = start_review(base)
    reply = call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "topic withdrawn"})
    assert reply.status == 200, reply.text
    status = call("GET", f"{base}/api/hitl/status/{instance_id}").json
    assert status["runtimeStatus"] == "Failed" and status["customStatus"]["stage"] == "cancelled"
    assert "topic withdrawn" in status["error"] and "topic withdrawn" in status["workflowStatus"]
    assert status["customStatus"]["cancel"]["by"] == "function key"
    again = call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "twice"})
    assert again.status == 409
    assert call("POST", f"{base}/api/hitl/cancel/nope-123", {}).status == 404
    assert call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": 5}).status in (400, 409)


def test_an_earlier_rounds_link_shows_nothing_of_a_finished_review(served_host):
    """Before: a round-1 link still opened the page and state of a finished review, with
    the final content and every decision."""
    base = served_host.base_url
    instance_id, _ = start_review(base)
    round_one = token_for(instance_id, 1, expires_in=timedelta(hours=80))
    assert call("POST", f"{base}/api/hitl/approve/{instance_id}",
                {"approved": False, "feedback": "again", "round": 1}).status == 200
    wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("round") == 2
             and call("GET", f"{base}/api/hitl/status/{instance_id}").json["customStatus"].get("stage") == "awaiting_review")
    assert call("POST", f"{base}/api/hitl/approve/{instance_id}", {"approved": True, "round": 2}).status == 200
    # The approval is applied when it is answered 200; the publication may still be running.
    wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["runtimeStatus"] == "Completed",
               what="the review to finish")
    for path in (f"/api/hitl/review/{instance_id}", f"/api/hitl/review/{instance_id}/state"):
        old = call("GET", f"{base}{path}?token={round_one}")
        assert old.status == 403 and "Draft" not in old.text
    last = call("GET", f"{base}/api/hitl/review/{instance_id}/state?token={token_for(instance_id, 2)}")
    assert last.status == 200 and last.json["stage"] == "published"


def test_a_bad_id_or_a_purged_review_gets_a_page_that_says_so_not_a_500(served_host):
    base = served_host.base_url
    bad = call("GET", f"{base}/api/hitl/review/bad!id?token={token_for('bad!id')}")
    assert bad.status == 400 and "<h1>Bad request</h1>" in bad.text
    instance_id, _ = start_review(base)
    call("POST", f"{base}/api/hitl/cancel/{instance_id}", {"reason": "purge me"})
    wait_until(lambda: call("GET", f"{base}/api/hitl/status/{instance_id}").json["runtimeStatus"] == "Failed")
    assert call("DELETE", f"{base}/runtime/webhooks/durabletask/instances/{instance_id}").status == 200
    gone = call("GET", f"{base}/api/hitl/review/{instance_id}?token={token_for(instance_id)}")
    assert gone.status == 404 and "<h1>Review not found</h1>" in gone.text
    assert "Traceback" not in gone.text + bad.text
