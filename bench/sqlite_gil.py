"""What the GIL shared with the worker's thread costs the host's SQLite calls.

    python -m bench.sqlite_gil [--reviews 5000] [--pages 200]

The devhost runs the host's loop and the worker's loop as two threads of one process (on
Azure they are two processes). Python's ``sqlite3`` gives up the GIL around every step of
a statement, one step per row read, and a thread that gave it up waits up to the switch
interval to take it back while another thread computes. This times a page of 101 reviews
of the Durable API's status query (what ``GET /api/hitl/pending?top=100`` asks the backend
for) on one thread, two ways: read row by row (a plain ``SELECT`` on a connection of its
own), and as the store reads it, in one step (``Store.query_instances``); each alone,
beside a thread running Python code, and the same with a switch interval of 0.5 ms
instead of the default 5 ms.

Then the same two ways for what every episode reads, an instance's history (a waiting
review's: 10 events): row by row, as the store reads it, and in one step, as SQLite's JSON
array of the events. A step that short is over before a computing thread wakes for the
GIL, so row by row the reader takes the GIL straight back; the one longer step lets the
other thread in, and the reader waits out its switch interval.

The store holds ``--reviews`` copies of one review waiting in round 1 (bench/backlog.py),
made in process with the offline writer; nothing is served over HTTP.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from bench import TASK_HUB, backlog
from bench.engine_rounds import start_input
from devhost.storage import _parsed as parsed


def page_times(read_page: Callable[[str], list], pages: int) -> list[float]:
    """Milliseconds per page, walking the list by continuation and starting over at its end."""
    times, after = [], ""
    for _ in range(pages):
        started = time.perf_counter()
        rows = read_page(after)
        times.append((time.perf_counter() - started) * 1000)
        after = rows[-2].instance_id if len(rows) == 101 else ""
    return times


def page_readers(host, connection: sqlite3.Connection) -> dict[str, Callable[[str], list]]:
    """The two ways to read a page of 101 instance rows (a page and one more): row by row,
    as the store read it before, on a connection of its own; and the store's own read."""
    from devhost.storage import _INSTANCE_COLUMNS, InstanceRow

    page = (f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id > ? AND runtime_status = 'Running'"
            " AND instance_id >= 'review-' AND instance_id < 'review.' ORDER BY instance_id LIMIT 101")

    def row_by_row(after: str) -> list:
        return [InstanceRow(*row) for row in connection.execute(page, (after,)).fetchall()]

    def at_once(after: str) -> list:
        return host.engine.instances(after=after, limit=101, statuses=("Running",), id_prefix="review-")

    return {"row_by_row": row_by_row, "at_once": at_once}


def history_times(read_history: Callable[[str], list], instance_ids: list[str], reads: int) -> list[float]:
    """Milliseconds per history read, going round the instances."""
    times = []
    for n in range(reads):
        started = time.perf_counter()
        read_history(instance_ids[n % len(instance_ids)])
        times.append((time.perf_counter() - started) * 1000)
    return times


def history_readers(connection: sqlite3.Connection) -> dict[str, Callable[[str], list]]:
    """An instance's history read row by row, each event parsed as the store's
    ``load_history`` parses it, and in one step as one JSON array that SQLite builds, put
    back in order by its ``seq``."""
    def row_by_row(instance_id: str) -> list:
        return [parsed(row[0]) for row in connection.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))]

    def at_once(instance_id: str) -> list:
        [(text,)] = connection.execute(
            "SELECT json_group_array(json_array(seq, json(event))) FROM"
            " (SELECT seq, event FROM history WHERE instance_id = ?)", (instance_id,)).fetchall()
        return [event for _, event in sorted(parsed(text), key=lambda pair: pair[0])]

    return {"row_by_row": row_by_row, "at_once": at_once}


class BusyThread:
    """A thread computing in Python until stopped, as the worker's loop does under load."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="busy", daemon=True)

    def _spin(self) -> None:
        total = 0
        while not self._stop.is_set():
            for n in range(1000):
                total += n * n

    def __enter__(self) -> "BusyThread":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def figures(times: list[float]) -> dict:
    return {"n": len(times), "p50_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3)}


def shown(label: str, found: dict, unit: str = "pages") -> str:
    return f"{label:<34}p50 {found['p50_ms']:.2f} ms, max {found['max_ms']:.2f} ms ({found['n']} {unit})"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=5000, help="reviews waiting in the store (default 5000)")
    parser.add_argument("--pages", type=int, default=200, help="pages and histories timed alone (default 200; "
                                                                  "a quarter of that beside the busy thread)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logging.disable(logging.CRITICAL)
    os.environ["HITL_WRITER"] = "offline"
    os.environ.setdefault("TASKHUB_NAME", TASK_HUB)
    from devhost.testing import TestingHost
    from routes.review_client import new_review_id

    with tempfile.TemporaryDirectory(prefix="bench-sqlite-gil-") as work:
        data = Path(work) / "state"
        os.environ["HITL_PUBLISH_DIR"] = str(Path(work) / "published")
        host = TestingHost(".", data_dir=data)
        try:
            template = host.start("hitl_orchestration", start_input("A review in the store"),
                                  instance_id=new_review_id())
            host.run_until_idle()
        finally:
            host.close()
        backlog.copy_waiting_review(backlog.state_database(data), template, args.reviews - 1)
        host = TestingHost(".", data_dir=data)
        interval = sys.getswitchinterval()
        result = {"reviews": args.reviews, "switch_interval_ms": interval * 1000}
        connection = sqlite3.connect(backlog.state_database(data))
        readers = page_readers(host, connection)
        busy_pages = max(args.pages // 4, 1)
        try:
            print(f"== bench.sqlite_gil: {args.reviews} reviews waiting, pages of 101, "
                  f"switch interval {interval * 1000:g} ms")
            for way, read_page in readers.items():
                result[f"{way}_alone"] = figures(page_times(read_page, args.pages))
                print(shown(f"{way}, alone:", result[f"{way}_alone"]))
            with BusyThread():
                for way, read_page in readers.items():
                    result[f"{way}_beside_a_busy_thread"] = figures(page_times(read_page, busy_pages))
                    print(shown(f"{way}, beside a busy thread:", result[f"{way}_beside_a_busy_thread"]))
                sys.setswitchinterval(0.0005)
                try:
                    result["row_by_row_beside_a_busy_thread_0_5_ms"] = figures(
                        page_times(readers["row_by_row"], busy_pages))
                finally:
                    sys.setswitchinterval(interval)
                print(shown("row_by_row, the same, 0.5 ms:", result["row_by_row_beside_a_busy_thread_0_5_ms"]))
            instance_ids = [row[0] for row in connection.execute(
                "SELECT instance_id FROM instances ORDER BY instance_id LIMIT ?", (args.pages,))]
            histories = history_readers(connection)
            assert histories["row_by_row"](instance_ids[0]) == histories["at_once"](instance_ids[0])
            result["history_events"] = len(histories["row_by_row"](instance_ids[0]))
            print(f"-- an instance's history ({result['history_events']} events)")
            for way, read_history in histories.items():
                result[f"history_{way}_alone"] = figures(history_times(read_history, instance_ids, args.pages))
                print(shown(f"history {way}, alone:", result[f"history_{way}_alone"], "reads"))
            with BusyThread():
                for way, read_history in histories.items():
                    result[f"history_{way}_beside_a_busy_thread"] = figures(
                        history_times(read_history, instance_ids, busy_pages))
                    print(shown(f"history {way}, beside a busy thread:",
                                result[f"history_{way}_beside_a_busy_thread"], "reads"))
        finally:
            connection.close()
            host.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
