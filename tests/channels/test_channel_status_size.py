"""The per-seat notices keep the custom status under the Durable extension's 16 KB with the
largest policy, every seat told on Slack and every decision by the longest display name."""
from __future__ import annotations

from shared_code.identity import MAX_DISPLAY_NAME_CHARS
from shared_code.review_policy import MAX_SEATS, MAX_STAGES
from shared_code.review_status import CUSTOM_STATUS_LIMIT_BYTES, utf16_size


def test_the_largest_policy_told_on_slack_keeps_its_status_under_16_kb(manual_host, slack_api, monkeypatch):
    monkeypatch.setenv("HITL_SLACK_CHANNEL", "C0REVIEWS")
    names = [f"stage-{n}" for n in range(MAX_STAGES)]
    policy = {"stages": [{"name": name, "reviewers": [f"role:{name}"] * MAX_SEATS, "require": "all"}
                         for name in names]}
    instance_id = manual_host.start("hitl_orchestration", {"topic": "t" * 2000, "max_review_attempts": 1,
                                                           "review": policy})
    manual_host.run_until_idle()
    sizes, told = [], []
    for stage in range(MAX_STAGES):
        custom = manual_host.status(instance_id)["customStatus"]
        told.append(len([s for s in custom["notification"]["seats"] if s.get("slack") == "sent"]))
        for seat in range(MAX_SEATS):
            person = f"p{seat}@contoso.com"
            manual_host.raise_event(instance_id, "ApprovalEvent", {
                "approved": True, "feedback": f"{person} ".ljust(4000, "f"), "round": 1, "stage_index": stage,
                "by": person, "channel": "slack", "person": {"name": person, "roles": [names[stage]]},
                # The longest display name a decision records, outside the BMP (two UTF-16 units each).
                "by_name": "\U0001d49c" * MAX_DISPLAY_NAME_CHARS,
                "id": f"s{stage}{person}".replace("@", "-").replace(".", "-")})
            manual_host.run_until_idle()
            sizes.append(utf16_size(manual_host.status(instance_id)["customStatus"]))
    assert told == [MAX_SEATS] * MAX_STAGES
    assert max(sizes) <= CUSTOM_STATUS_LIMIT_BYTES
    done = manual_host.status(instance_id)
    assert done["runtimeStatus"] == "Completed"
    assert {len(d["byName"]) for d in done["output"]["decisions"]} == {MAX_DISPLAY_NAME_CHARS}
