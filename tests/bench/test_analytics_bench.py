"""bench.analytics at a small size: it records the facts, reads them back through the
route and prints its figures (never a check of how fast anything was)."""
from __future__ import annotations

import json

import pytest

from bench import analytics

pytestmark = pytest.mark.slow


def test_a_small_analytics_run_records_every_review_and_prints_its_figures(capsys):
    result = analytics.run(analytics.parse_args(["--reviews", "300", "--days", "5", "--calls", "12", "--callers", "2"]))
    assert result["one_at_a_time"]["n"] == 12 and result["concurrent"]["n"] == 12
    assert result["recorded_facts"] > 300 and result["first_call_ms"] > 0
    printed = capsys.readouterr().out
    assert "recorded 300 reviews" in printed and "one at a time" in printed
    json.dumps(result)
