"""Clocks for the engine: the real one for the CLI, a manual one for tests."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


def to_iso(moment: datetime) -> str:
    """UTC with microseconds and a 'Z', e.g. 2026-01-01T00:00:00.000000Z (hot path: no strftime)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """Time that moves only when a test says so, so a 72-hour timeout takes no real time."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += delta
