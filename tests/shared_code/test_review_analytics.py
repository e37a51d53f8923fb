"""The analytics aggregates: facts add up per day, periods merge, medians come from buckets."""
from __future__ import annotations

import csv
import io

import pytest

from shared_code.review_analytics import (BOUNDS, MAX_REVIEWERS_PER_STAGE, OTHER_REVIEWERS, apply, bucket_of,
                                          days_of, fact, quantile, summarize, to_csv, waiting_by_seat)
from datetime import date

D1, D2 = "2026-03-01", "2026-03-02"


def day_of(*facts):
    return apply(None, list(facts))


@pytest.mark.parametrize("seconds, bucket", [(0, 0), (9.9, 0), (10, 1), (59, 2), (3600, 9), (10 ** 9, len(BOUNDS))])
def test_durations_fall_in_fixed_buckets(seconds, bucket):
    assert bucket_of(seconds) == bucket


def test_a_median_is_interpolated_within_its_bucket():
    day = day_of(*(fact("decided", D1, stage="editor", s=s, ok=True) for s in (1200, 2400, 10000)))
    value, (low, high) = quantile(day["stages"]["editor"]["toDecision"], 0.5)
    assert (low, high) == (1800, 3600) and low <= value <= high


def test_facts_add_up_in_the_day():
    day = day_of(fact("started", D1), fact("started", D1),
                 fact("viewed", D1, stage="editor", s=30),
                 fact("vote", D1, stage="editor", who="bob", s=600, ok=False),
                 fact("decided", D1, stage="editor", s=600, ok=False),
                 fact("missed", D1, stage="legal", escalated=True),
                 fact("ended", D1, how="published", rounds=2, s=7200),
                 fact("ended", D1, how="timed_out", rounds=1, s=None),
                 fact("load", D1, seats=[["editor", "user:bob", 1], ["editor", "role:x", 1]]),
                 fact("load", D1, seats=[["editor", "user:bob", -1]]),
                 {"f": "nonsense"}, "not a fact")
    reviews = day["reviews"]
    assert (reviews["started"], reviews["published"], reviews["timed_out"], reviews["rounds"]) == (2, 1, 1, {"2": 1})
    editor = day["stages"]["editor"]
    assert (editor["decided"], editor["approved"], editor["viewed"]) == (1, 0, 1)
    assert day["stages"]["legal"]["missed"] == 1 and day["stages"]["legal"]["escalated"] == 1
    assert day["reviewers"]["editor"]["bob"]["decided"] == 1
    assert day["load"] == {"editor": {"user:bob": 0, "role:x": 1}}


def test_a_day_keeps_a_bounded_number_of_reviewers():
    facts = [fact("vote", D1, stage="s", who=f"p{n}", s=1, ok=True) for n in range(MAX_REVIEWERS_PER_STAGE + 3)]
    people = day_of(*facts)["reviewers"]["s"]
    assert len(people) == MAX_REVIEWERS_PER_STAGE + 1 and people[OTHER_REVIEWERS]["decided"] == 3


def test_a_period_merges_its_days_and_a_stage_filter_keeps_one_stage():
    days = {D1: day_of(fact("started", D1), fact("decided", D1, stage="editor", s=100, ok=True),
                       fact("decided", D1, stage="legal", s=100, ok=True),
                       fact("ended", D1, how="published", rounds=1, s=500)),
            D2: day_of(fact("started", D2), fact("decided", D2, stage="editor", s=100, ok=False),
                       fact("ended", D2, how="rejected", rounds=3, s=None),
                       fact("vote", D2, stage="legal", who="carol", s=50, ok=True))}
    whole = summarize(days, [D1, D2], None, {})
    assert whole["reviews"]["started"] == 2 and whole["reviews"]["rejectedOut"] == 1
    assert whole["reviews"]["approvedAtRound1"] == {"count": 1, "share": 1.0}
    assert [s["name"] for s in whole["stages"]] == ["editor", "legal"]
    assert whole["stages"][0]["decided"] == 2 and whole["stages"][0]["rejected"] == 1
    editor = summarize(days, [D1, D2], "editor", {})
    assert [s["name"] for s in editor["stages"]] == ["editor"] and editor["reviewers"] == []
    first_day = summarize(days, [D1], None, {})
    assert first_day["reviews"]["started"] == 1 and [d["day"] for d in first_day["days"]] == [D1]


def test_what_waits_adds_up_over_every_day_and_names_people():
    days = [day_of(fact("load", D1, seats=[["editor", "user:Bob@x.com", 1], ["legal", "role:legal", 2]])),
            day_of(fact("load", D2, seats=[["legal", "role:legal", -1]]))]
    assert waiting_by_seat(days) == {"user:Bob@x.com": 1, "role:legal": 1}
    assert waiting_by_seat(days, "editor") == {"user:Bob@x.com": 1}
    shown = summarize({D1: day_of(fact("vote", D1, stage="editor", who="bob@x.com", s=60, ok=True))}, [D1], None,
                      waiting_by_seat(days))["reviewers"]
    assert shown[0] == {"name": "Bob@x.com", "waiting": 1, "decided": 1, "approved": 1, "medianSeconds": 90.0,
                        "medianRange": [60, 120]}


def test_the_csv_has_one_figure_a_row_and_no_formulas():
    days = {D1: day_of(fact("vote", D1, stage="editor", who="=HYPERLINK(1)", s=60, ok=True))}
    rows = list(csv.reader(io.StringIO(to_csv(summarize(days, [D1], None, {})))))
    assert rows[0] == ["section", "name", "metric", "value"]
    assert ["reviewer", "'=HYPERLINK(1)", "decided", "1"] in rows
    assert all(len(row) == 4 for row in rows)


def test_days_of_a_period():
    assert days_of(date(2026, 2, 27), date(2026, 3, 1)) == ["2026-02-27", "2026-02-28", "2026-03-01"]
