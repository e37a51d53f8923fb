"""The review analytics as a request reads them: the day aggregates (entities/review_stats.py)
kept in this process's memory and brought up to date from the entities' change feed.

The first request of a process reads every day's aggregate (one entity a day, however
many reviews it holds); later ones read only the aggregates changed since the last read
(usually today's), so a request costs the same with 100 or 100,000 reviews recorded.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable, Optional

from entities.review_stats import REVIEW_STATS
from shared_code.review_analytics import days_of, summarize, waiting_by_seat

from .inbox_index import EntityFeed


class StatsIndex:
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._days: dict[str, dict] = {}
        self._aggregates = EntityFeed(REVIEW_STATS, clock)  # the first read takes every day

    async def refresh(self, rpc_base_url: str) -> None:
        await self._aggregates.follow(rpc_base_url, self._keep)

    def _keep(self, day: str, state) -> None:
        if isinstance(state, dict):
            self._days[day] = state

    def summary(self, first: date, last: date, stage: Optional[str]) -> dict:
        return summarize(self._days, days_of(first, last), stage, waiting_by_seat(self._days.values(), stage))
