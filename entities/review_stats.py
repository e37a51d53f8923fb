"""The durable entity behind the review analytics: one aggregate per day (UTC), keyed by
the day (``2026-12-07``), holding what the reviews reported that day: counts and
fixed-bucket duration histograms per stage and per reviewer, and the changes to the seats
waiting for someone (shared_code/review_analytics.py says what each fact adds).

Reviews signal the day's entity at their transitions (orchestrations/hitl_orchestration.py,
``send_facts``), so a figure is read from a bounded number of aggregates, never from the
reviews themselves.
"""
from __future__ import annotations

import azure.durable_functions as df

from shared_code.review_analytics import apply

bp = df.Blueprint()

REVIEW_STATS = "review_stats"
ADD = "add"


@bp.entity_trigger(context_name="context")
def review_stats(context: df.DurableEntityContext) -> None:
    if context.operation_name == ADD:
        context.set_state(apply(context.get_state(lambda: None), context.get_input()))


def stats_entity(day: str) -> df.EntityId:
    return df.EntityId(REVIEW_STATS, day)
