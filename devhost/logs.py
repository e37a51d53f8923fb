"""The host's log output: one line per function execution, written in batches.

A busy host logs a line for every episode, activity and request. Writing each one as it
comes costs a system call, and lets another thread take the GIL in the middle of the
work. Lines are queued instead, and a writer thread puts everything queued so far out
in one write, a moment after the first of them: late by at most FLUSH_DELAY_SECONDS,
and an error goes out at once.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Optional, TextIO

FLUSH_DELAY_SECONDS = 0.05


class BatchingStreamHandler(logging.Handler):
    def __init__(self, stream: Optional[TextIO] = None):
        super().__init__()
        self.stream = stream or sys.stderr
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        self._has_pending = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._write_batches, name="log writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self._pending_lock:
            self._pending.append(line)
            first = len(self._pending) == 1
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
        self.flush()
        super().close()

    def _write_batches(self) -> None:
        while not self._closed:
            self._has_pending.wait()
            self._has_pending.clear()
            if not self._closed:
                time.sleep(FLUSH_DELAY_SECONDS)  # let the lines that come meanwhile join
            self.flush()
