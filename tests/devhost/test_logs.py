"""The host's batching log handler: nothing lost, nothing held back for long."""
from __future__ import annotations

import io
import logging
import time

from devhost.logs import FLUSH_DELAY_SECONDS, BatchingStreamHandler


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
        deadline = time.monotonic() + 20 * FLUSH_DELAY_SECONDS
        while stream.getvalue().count("\n") < 100 and time.monotonic() < deadline:
            time.sleep(FLUSH_DELAY_SECONDS / 5)
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
