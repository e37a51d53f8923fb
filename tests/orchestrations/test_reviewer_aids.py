"""The reviewer's aids in the review loop, on the devhost engine with a manual clock:
comments on passages from round to round, the house-rules check beside the decision, a
seat's first view, and the facts a review reports to the day's aggregate."""
from __future__ import annotations

import json
import pytest

from devhost.history import EventType
from shared_code.models import RunRequest

ORCHESTRATOR = "hitl_orchestration"
RULES = ("no claims without a source", "under 600 words", "ends with a call to action")


def start(host, rules=(), **request):
    run = RunRequest.from_json({"topic": "Durable timers", **request})
    instance_id = host.start(ORCHESTRATOR, run.to_start_input(rules))
    host.run_until_idle()
    return instance_id


def custom(host, instance_id):
    return host.status(instance_id)["customStatus"]


def decide(host, instance_id, approved, round_, event_id, **extra):
    host.raise_event(instance_id, "ApprovalEvent", {"approved": approved, "round": round_, "id": event_id, **extra})
    host.run_until_idle()


def stats_signals(host, instance_id):
    return [json.loads(e["Input"]) for e in host.history(instance_id)
            if e["EventType"] == EventType.EVENT_SENT and e["InstanceId"].startswith("@review_stats@")]


def day(host):
    exists, state = host.entity_state("review_stats", host.clock.now().date().isoformat())
    assert exists
    return state


def test_a_review_without_house_rules_checks_nothing(manual_host):
    instance_id = start(manual_host)
    assert custom(manual_host, instance_id)["check"] is None
    decide(manual_host, instance_id, True, 1, "a1")
    assert "check_draft" not in manual_host.replay(instance_id).scheduled


def test_the_draft_is_checked_while_its_reviewers_can_already_decide(manual_host, monkeypatch):
    import activities.check_draft as activity

    seen = []
    real = activity.checked

    def watched(request, settings):
        # The stage is open and decidable before the check has an answer, and a decision
        # that arrives meanwhile is taken: the check holds nobody up.
        seen.append(custom(manual_host, instance_id))
        manual_host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": 1, "id": "early"})
        return real(request, settings)

    monkeypatch.setattr(activity, "checked", watched)
    instance_id = manual_host.start(ORCHESTRATOR, RunRequest.from_json({"topic": "Timers"}).to_start_input(RULES))
    manual_host.run_until_idle()
    assert seen[0]["stage"] == "awaiting_review" and seen[0]["check"] == {"status": "checking"}
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["decisions"][0]["id"] == "early"


def test_the_offline_checker_rates_each_rule(manual_host):
    instance_id = start(manual_host, RULES)
    check = custom(manual_host, instance_id)["check"]
    assert check["status"] == "checked" and check["checker"] == "offline"
    verdicts = {r["rule"]: (r["verdict"], r["by"]) for r in check["results"]}
    assert verdicts == {"no claims without a source": ("pass", "offline"), "under 600 words": ("pass", "code"),
                        "ends with a call to action": ("fail", "offline")}


def test_a_checker_that_fails_shows_not_checked_and_the_review_goes_on(manual_host, monkeypatch):
    import activities.check_draft as activity

    def broken(*_):
        raise RuntimeError("boom")

    monkeypatch.setattr(activity, "checked", broken)
    instance_id = start(manual_host, RULES)
    check = custom(manual_host, instance_id)["check"]
    assert check["status"] == "not_checked" and check["reason"] == activity.UNEXPECTED
    assert "boom" not in json.dumps(manual_host.status(instance_id))
    decide(manual_host, instance_id, True, 1, "a1")
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"


def test_a_check_task_that_fails_outright_shows_not_checked(manual_host, monkeypatch):
    """Should the activity itself fail (not merely report a failure), the review still
    shows "not checked" and waits for its decision."""
    import activities.check_draft as activity

    def broken(*_):
        raise RuntimeError("boom")

    monkeypatch.setattr(activity, "checked", broken)
    monkeypatch.setattr(activity.log, "exception", broken)
    instance_id = start(manual_host, RULES)
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Running", status["output"]
    assert status["customStatus"]["check"] == {"status": "not_checked", "reason": "the checker failed unexpectedly"}


def test_comments_go_to_the_writer_until_resolved_and_keep_their_story(manual_host):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, False, 1, "r1", comments=[
        {"quote": "gives the same draft for the same input", "comment": "Say why it matters"},
        {"quote": "An offline draft about", "comment": "A warmer opening"}])
    status = custom(manual_host, instance_id)
    assert status["round"] == 2 and [c["state"] for c in status["comments"]] == ["answered", "answered"]
    assert [c["quoteState"] for c in status["comments"]] == ["changed", "changed"]
    assert status["changes"] == ['rewrote "gives the same draft for the same input" (c1)',
                                 'rewrote "An offline draft about" (c2)']
    manual_host.raise_event(instance_id, "SeatChangeEvent", {"change": "resolve", "round": 2, "comment": "c1",
                                                             "by": "ann", "id": "n1"})
    manual_host.raise_event(instance_id, "SeatChangeEvent", {"change": "reopen", "round": 2, "comment": "c2",
                                                             "by": "ann", "id": "n2"})
    manual_host.raise_event(instance_id, "SeatChangeEvent", {"change": "reopen", "round": 2, "comment": "c2",
                                                             "by": "ann", "id": "n3"})
    manual_host.run_until_idle()
    status = custom(manual_host, instance_id)
    assert [c["state"] for c in status["comments"]] == ["resolved", "open"]
    assert status["ignored"][-1]["reason"] == "comment 'c2' is already open"
    decide(manual_host, instance_id, False, 2, "r2", feedback="Closer")
    status = custom(manual_host, instance_id)
    assert [(c["state"], c.get("answerRound")) for c in status["comments"]] == [("resolved", 2), ("answered", 3)]
    decide(manual_host, instance_id, True, 3, "a3")
    trail = manual_host.status(instance_id)["output"]["comments"]
    assert [[a["round"] for a in c["answers"]] for c in trail] == [[2], [2, 3]]
    assert [[(s["round"], s["state"], s["by"]) for s in c["changes"]] for c in trail] == [
        [(2, "resolved", "ann")], [(2, "open", "ann")]]


def test_a_comment_whose_quote_is_not_in_the_draft_is_refused_by_the_review_too(manual_host):
    instance_id = start(manual_host)
    decide(manual_host, instance_id, False, 1, "r1", comments=[{"quote": "words nobody wrote", "comment": "x"}])
    status = custom(manual_host, instance_id)
    assert status["round"] == 1 and status["comments"] == []
    assert status["ignored"][-1]["reason"] == "the quote of comment 1 is not in the draft of round 1"


def test_a_plain_review_reports_its_facts_in_two_signals(manual_host):
    instance_id = start(manual_host)
    manual_host.advance(minutes=10)
    decide(manual_host, instance_id, True, 1, "a1")
    assert manual_host.status(instance_id)["runtimeStatus"] == "Completed"
    signals = stats_signals(manual_host, instance_id)
    assert len(signals) == 2
    figures = day(manual_host)
    assert figures["reviews"]["started"] == 1 and figures["reviews"]["published"] == 1
    assert figures["reviews"]["rounds"] == {"1": 1}
    assert figures["stages"]["review"]["decided"] == 1 and figures["load"] == {"review": {"anyone": 0}}
    assert figures["reviewers"]["review"]["function key"]["decided"] == 1


def test_a_seats_first_view_is_recorded_once(manual_host):
    instance_id = start(manual_host)
    manual_host.advance(minutes=3)
    for _ in range(2):
        manual_host.raise_event(instance_id, "SeatChangeEvent", {"change": "viewed", "round": 1, "stage": 0, "seat": 0})
        manual_host.run_until_idle()
        manual_host.advance(minutes=1)
    assert [v["seat"] for v in custom(manual_host, instance_id)["views"]] == [0]
    assert day(manual_host)["stages"]["review"]["viewed"] == 1


def test_a_review_that_times_out_reports_the_missed_deadline(manual_host):
    instance_id = start(manual_host, approval_timeout_hours=2)
    manual_host.advance(hours=3)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Failed"
    figures = day(manual_host)
    assert figures["reviews"]["timed_out"] == 1 and figures["stages"]["review"]["missed"] == 1
    assert figures["load"] == {"review": {"anyone": 0}}


def test_an_escalation_is_a_missed_deadline_counted_once(manual_host):
    instance_id = start(manual_host, approval_timeout_hours=2, on_timeout="escalate", escalation_hours=1)
    manual_host.advance(hours=2, minutes=1)
    manual_host.advance(hours=1)
    assert manual_host.status(instance_id)["runtimeStatus"] == "Failed"
    stage = day(manual_host)["stages"]["review"]
    assert (stage["missed"], stage["escalated"]) == (1, 1)


@pytest.mark.parametrize("kind", ["cancel", "reject"])
def test_every_ending_is_reported(manual_host, kind):
    instance_id = start(manual_host, max_review_attempts=1)
    if kind == "cancel":
        manual_host.raise_event(instance_id, "CancelEvent", {"reason": "withdrawn", "id": "c1"})
        manual_host.run_until_idle()
    else:
        decide(manual_host, instance_id, False, 1, "r1", feedback="no")
    figures = day(manual_host)
    assert figures["reviews"]["cancelled" if kind == "cancel" else "rejected"] == 1
    assert figures["load"] == {"review": {"anyone": 0}}


def test_fifty_comments_in_the_largest_review_keep_every_status_under_the_limit(manual_host, monkeypatch):
    """The largest review the product allows: five stages of twenty seats, the most house
    rules at their longest, rejections with the longest feedback and 20, 20 and 10 long
    comments. Every status it sets fits, the review runs to publication, and its output
    keeps every comment whole."""
    from shared_code.house_rules import MAX_RULE_CHARS, MAX_RULES
    from shared_code.models import MAX_COMMENT_CHARS, MAX_COMMENTS_PER_REVIEW, MAX_FEEDBACK_CHARS
    from shared_code.passages import draft_text
    from shared_code.review_policy import MAX_SEATS, MAX_STAGES
    from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, ReviewStatus, utf16_size

    sizes = []
    made = ReviewStatus.to_custom_status

    def measured(self):
        status = made(self)
        sizes.append(utf16_size(status))
        return status

    monkeypatch.setattr(ReviewStatus, "to_custom_status", measured)
    stages = [f"stage-{s}" for s in range(MAX_STAGES)]
    policy = {"stages": [{"name": name, "reviewers": [f"role:{name}"] * MAX_SEATS, "require": "all"}
                         for name in stages]}
    rules = tuple((f"rule {n}: " + "say something plain about the topic " * 5)[:MAX_RULE_CHARS] for n in range(MAX_RULES))
    instance_id = start(manual_host, rules, max_review_attempts=4, review=policy)

    def seat(stage, n):
        return {"by": f"p{n}@contoso.com", "person": {"name": f"p{n}@contoso.com", "roles": [stage]}}

    for round_, count in ((1, 20), (2, 20), (3, 10)):
        quote = draft_text(custom(manual_host, instance_id)["draft"]).split("\n")[1][:30].strip()
        comments = [{"quote": quote, "comment": (f"comment {n} " + "z" * MAX_COMMENT_CHARS)[:MAX_COMMENT_CHARS]} for n in range(count)]
        decide(manual_host, instance_id, False, round_, f"r{round_}", stage_index=0, feedback="f" * MAX_FEEDBACK_CHARS,
               comments=comments, **seat(stages[0], 0))
        status = manual_host.status(instance_id)
        assert status["runtimeStatus"] == "Running", status["output"]
        assert status["customStatus"]["round"] == round_ + 1
    assert custom(manual_host, instance_id)["commentCount"] == MAX_COMMENTS_PER_REVIEW
    for index, name in enumerate(stages):
        for n in range(MAX_SEATS):
            decide(manual_host, instance_id, True, 4, f"a{index}-{n}", stage_index=index, **seat(name, n))
    status = manual_host.status(instance_id)
    assert status["runtimeStatus"] == "Completed", status["customStatus"]["message"]
    assert max(sizes) <= CUSTOM_STATUS_LIMIT_BYTES, max(sizes)
    trail = status["output"]["comments"]
    assert len(trail) == MAX_COMMENTS_PER_REVIEW and all(len(c["comment"]) == MAX_COMMENT_CHARS for c in trail)
