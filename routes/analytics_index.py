"""The review analytics as a request reads them: the day aggregates (entities/review_stats.py)
kept in this process's memory and brought up to date from the entities' change feed.

The first request of a process reads every day's aggregate (one entity a day, however
many reviews it holds); later ones read only the aggregates changed since the last read
(usually today's), so a request costs the same with 100 or 100,000 reviews recorded.
"""
from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Optional

from entities.review_stats import REVIEW_STATS
from shared_code.review_analytics import days_of, summarize, waiting_by_seat

from .inbox_index import changed_entities

# Reads of the change feed overlap by this much, so that an aggregate saved while the
# previous read ran (with an earlier operation time) is not missed.
OVERLAP = timedelta(seconds=10)
# Readers within this long of the last read share it.
FRESH_SECONDS = 0.25


class StatsIndex:
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._clock = clock
        self._days: dict[str, dict] = {}
        self._read_to: Optional[datetime] = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self, rpc_base_url: str) -> None:
        if time.monotonic() - self._read_at < FRESH_SECONDS:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < FRESH_SECONDS:
                return
            started = self._clock()
            since = None if self._read_to is None else self._read_to - OVERLAP
            async for changed in changed_entities(rpc_base_url, REVIEW_STATS, since):
                for day, state in changed:
                    if isinstance(state, dict):
                        self._days[day] = state
            self._read_to, self._read_at = started, time.monotonic()

    def summary(self, first: date, last: date, stage: Optional[str]) -> dict:
        return summarize(self._days, days_of(first, last), stage, waiting_by_seat(self._days.values(), stage))
