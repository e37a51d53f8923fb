"""The host's log output: one line per function execution, written in batches.

A busy host logs a line for every episode, activity and request. Writing each one as it
comes costs a system call, and lets another thread take the GIL in the middle of the
work. Lines are queued instead, and a writer thread puts everything queued so far out
in one write, a moment after the first of them: late by at most FLUSH_DELAY_SECONDS,
and an error goes out at once.

A fault that repeats can log far faster than anyone reads: with file descriptors used
up, asyncio's server logs "socket.accept() out of system resource" with a traceback
for every connection it fails to accept, about 10,000 a second. A ``RepeatLimiter``
lets the first REPEAT_LIMIT records of one kind (same logger, level and message
template) through per REPEAT_INTERVAL_SECONDS, counts the rest without formatting them,
and writes one summary line for them when the interval is over. Records of another
kind are not held back by it: a different error still goes out at once.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, TextIO

FLUSH_DELAY_SECONDS = 0.05
REPEAT_LIMIT = 10                  # records of one kind let through per interval
REPEAT_INTERVAL_SECONDS = 10.0
REPEAT_MIN_LEVEL = logging.WARNING  # the per-request INFO lines are never limited
MAX_TRACKED_KINDS = 1024           # more kinds than this at once are let through untracked
SHOWN_TEMPLATE_CHARS = 200


@dataclass
class _Window:
    started: float
    record: logging.LogRecord       # the first record of the window, for the summary's fields
    passed: int = 0
    suppressed: int = 0


class RepeatLimiter:
    """Counts records by (logger, level, message template) in windows of ``interval``
    seconds. Beyond ``limit`` in one window they are suppressed; once the window is over,
    ``summaries`` gives one record saying how many were. Thread-safe; ``clock`` is for tests.
    Records below ``min_level`` (the per-request INFO lines) are never limited."""

    def __init__(self, limit: int = REPEAT_LIMIT, interval: float = REPEAT_INTERVAL_SECONDS,
                 min_level: int = REPEAT_MIN_LEVEL, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or interval <= 0:
            raise ValueError("a repeat limit needs limit >= 1 and interval > 0")
        self.limit, self.interval, self.min_level, self.clock = limit, interval, min_level, clock
        self._windows: dict[tuple, _Window] = {}
        self._finished: list[tuple[_Window, float]] = []  # over, with suppressed records
        self._earliest_end: Optional[float] = None        # of the windows with suppressed records
        self._lock = threading.Lock()

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        return (record.name, record.levelno, template)

    def admit(self, record: logging.LogRecord) -> tuple[bool, bool]:
        """(write it, suppression began): the first value is False for a record that is
        only counted; the second is True for the first record suppressed in a window, when
        whoever writes the summaries should start waiting for this window's end."""
        if record.levelno < self.min_level or getattr(record, "repeat_summary", False):
            return True, False
        key, now = self.kind(record), self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.started >= self.interval:
                if window.suppressed:
                    self._finished.append((window, now))  # its summary is due now
                window = None
            if window is None:
                if key not in self._windows and len(self._windows) >= MAX_TRACKED_KINDS:
                    self._forget_quiet_windows(now)
                    if len(self._windows) >= MAX_TRACKED_KINDS:
                        return True, False  # fail open: never lose a record for want of room
                self._windows[key] = _Window(now, record, passed=1)
                return True, False
            if window.passed < self.limit:
                window.passed += 1
                return True, False
            window.suppressed += 1
            if window.suppressed > 1:
                return False, False
            end = window.started + self.interval
            if self._earliest_end is None or end < self._earliest_end:
                self._earliest_end = end
            return False, True

    def next_due(self) -> Optional[float]:
        """Seconds until a summary is due (0 when one is), None when none is pending."""
        with self._lock:
            if self._finished:
                return 0.0
            if self._earliest_end is None:
                return None
            return max(0.0, self._earliest_end - self.clock())

    def summaries(self, everything: bool = False) -> list[logging.LogRecord]:
        """Summary records of the windows that are over (``everything``: of every window
        with suppressed records, as when the log closes), oldest first; each is given once."""
        now = self.clock()
        with self._lock:
            if not everything and not self._finished and (
                    self._earliest_end is None or now < self._earliest_end):
                return []  # the common case, without looking at every window
            done, self._finished = self._finished, []
            for key, window in list(self._windows.items()):
                if window.suppressed and (everything or now - window.started >= self.interval):
                    done.append((window, now))
                    del self._windows[key]
            ends = [w.started + self.interval for w in self._windows.values() if w.suppressed]
            self._earliest_end = min(ends) if ends else None
        return [self._summary(window, at) for window, at in sorted(done, key=lambda d: d[0].started)]

    def _forget_quiet_windows(self, now: float) -> None:
        for key in [k for k, w in self._windows.items()
                    if not w.suppressed and now - w.started >= self.interval]:
            del self._windows[key]

    def _summary(self, window: _Window, now: float) -> logging.LogRecord:
        first = window.record
        template = self.kind(first)[2]
        if len(template) > SHOWN_TEMPLATE_CHARS:
            template = template[:SHOWN_TEMPLATE_CHARS - 1] + "…"
        seconds = now - window.started
        shown = f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"
        record = logging.LogRecord(
            first.name, first.levelno, first.pathname, first.lineno,
            "(%s %s \"%s\" repeated %d more times in the last %s s)",
            (first.name, first.levelname, template, window.suppressed, shown), None)
        record.repeat_summary = True
        return record


class BatchingStreamHandler(logging.Handler):
    def __init__(self, stream: Optional[TextIO] = None, repeats: Optional[RepeatLimiter] = None):
        super().__init__()
        self.stream = stream or sys.stderr
        self.repeats = repeats
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        self._has_pending = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._write_batches, name="log writer", daemon=True)
        self._writer.start()

    def filter(self, record: logging.LogRecord):
        # Before any formatting: a suppressed record costs a dictionary lookup, not a
        # traceback rendered and thrown away.
        if not super().filter(record):
            return False
        if self.repeats is None:
            return True
        admitted, began = self.repeats.admit(record)
        if began:
            self._has_pending.set()  # the writer must wake to write the summary when due
        return admitted

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        summaries = self._summary_lines() if self.repeats is not None else []
        with self._pending_lock:
            self._pending.extend(summaries)
            self._pending.append(line)
            first = len(self._pending) == 1 + len(summaries)
        if record.levelno >= logging.ERROR:
            self.flush()
        elif first:
            self._has_pending.set()

    def flush(self) -> None:
        with self._pending_lock:
            lines, self._pending = self._pending, []
        if lines:
            with self.lock:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()

    def close(self) -> None:
        self._closed = True
        self._has_pending.set()
        self._writer.join(timeout=5)
        self._queue_summaries(everything=True)
        self.flush()
        super().close()

    def _summary_lines(self, everything: bool = False) -> list[str]:
        lines = []
        for summary in self.repeats.summaries(everything):
            try:
                lines.append(self.format(summary))
            except Exception:
                self.handleError(summary)
        return lines

    def _queue_summaries(self, everything: bool = False) -> None:
        if self.repeats is None:
            return
        lines = self._summary_lines(everything)
        if lines:
            with self._pending_lock:
                self._pending.extend(lines)

    def _write_batches(self) -> None:
        while not self._closed:
            self._has_pending.wait(self.repeats.next_due() if self.repeats is not None else None)
            self._has_pending.clear()
            if not self._closed:
                time.sleep(FLUSH_DELAY_SECONDS)  # let the lines that come meanwhile join
            self._queue_summaries()
            self.flush()
