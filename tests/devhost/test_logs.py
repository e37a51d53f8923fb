"""The host's batching log handler: nothing lost, nothing held back for long, and a
fault that repeats written a few times per interval, then counted."""
from __future__ import annotations

import errno
import io
import logging
import re
import time

import pytest

import devhost.__main__ as cli
from devhost.logs import FLUSH_DELAY_SECONDS, BatchingStreamHandler, RepeatLimiter
from devhost.testing import wait_until


def make_logger(stream: io.StringIO) -> tuple[logging.Logger, BatchingStreamHandler]:
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"devhost-test-{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_lines_come_out_together_shortly_after_the_first():
    stream = io.StringIO()
    logger, handler = make_logger(stream)
    try:
        for index in range(100):
            logger.info("line %d", index)
        wait_until(lambda: stream.getvalue().count("\n") >= 100, timeout=20 * FLUSH_DELAY_SECONDS,
                   what="the 100 lines")
        assert stream.getvalue().splitlines() == [f"INFO line {i}" for i in range(100)]
    finally:
        handler.close()


def test_an_error_goes_out_at_once_with_what_came_before_it():
    stream = io.StringIO()
    logger, handler = make_logger(stream)
    try:
        logger.info("before")
        logger.error("broken")
        assert stream.getvalue().splitlines() == ["INFO before", "ERROR broken"]
    finally:
        handler.close()


def test_closing_writes_what_is_still_queued():
    stream = io.StringIO()
    logger, handler = make_logger(stream)
    logger.info("last words")
    handler.close()
    assert stream.getvalue() == "INFO last words\n"


# -- repeated records ------------------------------------------------------------------

SUMMARY = re.compile(r'\((\S+) (\w+) "(.*)" repeated (\d+) more times in the last ([\d.]+) s\)')


def limited_logger(stream: io.StringIO, limit: int = 5, interval: float = 1.0):
    handler = BatchingStreamHandler(stream, repeats=RepeatLimiter(limit=limit, interval=interval))
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"devhost-test-limited-{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def out_of_descriptors() -> OSError:
    try:
        raise OSError(errno.EMFILE, "Too many open files")
    except OSError as exc:
        return exc


def test_a_flood_of_one_error_is_written_a_few_times_then_summarised():
    """What asyncio does with descriptors used up: the same record with a traceback, 10,000
    times as fast as it can. At 8b53147 every one was written (about 3 MB here, 55 MB in
    13 s on the VM); now 5 are, and one summary line says how many more there were."""
    stream = io.StringIO()
    logger, handler = limited_logger(stream, limit=5, interval=1.0)
    error = out_of_descriptors()
    try:
        started = time.monotonic()
        for _ in range(10_000):
            logger.error("socket.accept() out of system resource", exc_info=error)
        burst_seconds = time.monotonic() - started
        written = len(stream.getvalue().encode())
        assert written < 5_000, written  # five records with their tracebacks
        if burst_seconds < 0.9:  # the window is not over yet, so neither is the count
            assert "repeated" not in stream.getvalue()
        wait_until(lambda: SUMMARY.search(stream.getvalue()), timeout=5, what="the summary line")
        text = stream.getvalue()
        summaries = SUMMARY.findall(text)
        full = text.count("ERROR socket.accept() out of system resource\n")
        assert full + sum(int(s[3]) for s in summaries) == 10_000
        assert full <= 5 * len(summaries)
        assert summaries[0][:3] == (logger.name, "ERROR", "socket.accept() out of system resource")
        assert len(text.encode()) < 10_000
    finally:
        handler.close()


def test_different_errors_are_not_held_back_by_a_flood():
    """Each distinct error goes out at once, flood or not (at 8b53147 they did too, but
    drowned in the flood)."""
    stream = io.StringIO()
    logger, handler = limited_logger(stream, limit=3, interval=60.0)
    try:
        for _ in range(1_000):
            logger.error("socket.accept() out of system resource")
        for index in range(100):
            logger.error(f"storage fault number {index}")
            assert stream.getvalue().endswith(f"ERROR storage fault number {index}\n")
        logger.warning("disk %s is full", "/data")
        logger.error("disk %s is full", "/data")  # same template, another level
        lines = stream.getvalue().splitlines()
        assert lines.count("ERROR socket.accept() out of system resource") == 3
        assert [line for line in lines if "storage fault" in line] == [
            f"ERROR storage fault number {i}" for i in range(100)]
        assert lines[-1] == "ERROR disk /data is full"
    finally:
        handler.close()
    assert stream.getvalue().splitlines()[-1] == (
        f'ERROR ({logger.name} ERROR "socket.accept() out of system resource" repeated 997 more '
        f"times in the last {SUMMARY.findall(stream.getvalue())[-1][4]} s)")


def test_info_lines_are_never_limited():
    """The host writes one INFO line per execution with one template; a busy host must
    still show every one of them."""
    stream = io.StringIO()
    logger, handler = limited_logger(stream, limit=2, interval=60.0)
    for index in range(500):
        logger.info("Executed 'Functions.%s' (Succeeded, Id=%d)", "echo", index)
    handler.close()
    assert len(stream.getvalue().splitlines()) == 500 and "repeated" not in stream.getvalue()


def test_the_limit_counts_per_interval_and_forgets_nothing():
    """Unit rules on a manual clock: ``limit`` per window, one summary per window that
    suppressed anything, and a fresh window afterwards."""
    now = [100.0]
    limiter = RepeatLimiter(limit=3, interval=10.0, clock=lambda: now[0])
    record = logging.LogRecord("asyncio", logging.ERROR, "x.py", 1, "accept failed", None, None)
    assert [limiter.admit(record)[0] for _ in range(5)] == [True, True, True, False, False]
    assert limiter.summaries() == [] and limiter.next_due() == pytest.approx(10.0)
    now[0] += 10.0
    assert limiter.next_due() == 0.0
    [summary] = limiter.summaries()
    assert summary.getMessage() == '(asyncio ERROR "accept failed" repeated 2 more times in the last 10 s)'
    assert summary.levelno == logging.ERROR and limiter.admit(summary) == (True, False)
    assert limiter.summaries() == [] and limiter.next_due() is None
    assert limiter.admit(record) == (True, False)  # a new window


def test_a_window_that_ends_under_load_starts_the_next_one_at_once():
    """The record that arrives just after a window with suppressed records ends is
    counted in the next window; the summary of the old one is due at once."""
    now = [0.0]
    limiter = RepeatLimiter(limit=1, interval=1.0, clock=lambda: now[0])
    record = logging.LogRecord("asyncio", logging.ERROR, "x.py", 1, "accept failed", None, None)
    assert [limiter.admit(record)[0] for _ in range(3)] == [True, False, False]
    now[0] = 1.5
    assert [limiter.admit(record)[0] for _ in range(3)] == [True, False, False]
    assert limiter.next_due() == 0.0
    [summary] = limiter.summaries()
    assert "repeated 2 more times" in summary.getMessage()
    now[0] = 2.5
    [summary] = limiter.summaries()
    assert "repeated 2 more times" in summary.getMessage()


def test_the_cli_log_handler_limits_repeats(monkeypatch, tmp_path):
    """``python -m devhost`` logs through a BatchingStreamHandler with a RepeatLimiter (at
    8b53147 it had none)."""
    configured = {}
    monkeypatch.setattr(cli.logging, "basicConfig", lambda **kwargs: configured.update(kwargs))
    assert cli.main([str(tmp_path / "no-app-here")]) == 2
    [handler] = configured["handlers"]
    assert isinstance(handler, BatchingStreamHandler) and isinstance(handler.repeats, RepeatLimiter)
    handler.close()
