"""The store's lock handling (another process's write lock is waited for in short pauses,
and for a bounded time) and damaged state files (refused at start-up, clear failures
while running)."""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from types import SimpleNamespace

import pytest

from devhost import DevHost, storage
from devhost.storage import Store, StoreDamaged

from .conftest import APPS
from devhost.testing import wait_until
from tests.support.http import call

PAGE = 4096

# Pauses the store takes before it gets the lock back in the first test: enough to show
# it waits instead of failing, few enough to take milliseconds.
PAUSES_BEFORE_RELEASE = 20


def hold_write_lock(path, held: threading.Event, release: threading.Event) -> threading.Thread:
    """Another connection (as another worker process would) holding the write lock until
    ``release`` is set."""
    def hold():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(timeout=10)
        other.execute("COMMIT")
        other.close()
    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_a_transaction_waits_for_a_foreign_write_lock_in_short_pauses(tmp_path, monkeypatch):
    store = Store(tmp_path / "hub.sqlite")
    held, release, pauses = threading.Event(), threading.Event(), []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == PAUSES_BEFORE_RELEASE:
            release.set()  # the other process commits while the store is still waiting
        time.sleep(seconds)

    monkeypatch.setattr(storage, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pause))
    holder = hold_write_lock(store.path, held, release)
    assert held.wait(5)
    with store.transaction():
        store.add_message("i1", None, {"EventType": 15}, 0.0)
    holder.join()
    assert len(pauses) >= PAUSES_BEFORE_RELEASE
    assert max(pauses) <= 0.0005  # not SQLite's busy handler, whose pauses grow to 25 ms
    assert [m.instance_id for m in store.due_messages("i1", 1.0)] == ["i1"]
    store.close()


def test_a_lock_held_past_the_timeout_is_reported_as_locked(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "LOCK_TIMEOUT_SECONDS", 0.1)
    store = Store(tmp_path / "hub.sqlite")
    held, release = threading.Event(), threading.Event()
    holder = hold_write_lock(store.path, held, release)
    assert held.wait(5)
    try:
        with pytest.raises(storage.StoreBusy, match="locked"):
            with store.transaction():
                pass
    finally:
        release.set()
        holder.join()
    store.close()


# -- damaged state files -----------------------------------------------------------------

def state_with_instances(data_dir, count: int = 50):
    """A state folder of the features app with ``count`` waiting instances. Their ids are
    fixed so that the file's pages lie the same way every run: with random ids the page a
    test damages was now and then one SQLite fails on before quick_check can report it."""
    with DevHost(APPS / "features", data_dir=data_dir, local_settings=False) as host:
        ids = [host.start("custom_status", {"n": n}, instance_id=f"waiting-{n:03d}") for n in range(count)]
        host.run_until_idle()
        return host.store.path, ids


def overwrite_pages(path, pages) -> None:
    """Garbage over whole pages (counted from 0, the header's page), as a failing disk or a
    stray write leaves them."""
    garbage = bytes(range(1, 256)) * (PAGE // 255 + 1)
    with open(path, "r+b") as file:
        for page in pages:
            file.seek(page * PAGE)
            file.write(garbage[:PAGE])


def pages_of(path) -> int:
    return os.path.getsize(path) // PAGE


def test_a_state_file_with_damaged_pages_is_refused_before_the_app_runs(tmp_path):
    """Before, a state file with garbage in its middle pages was opened and the host died
    later, on the first query that read one, with an uncaught sqlite3.DatabaseError."""
    path, _ = state_with_instances(tmp_path / "data")
    overwrite_pages(path, [pages_of(path) // 2, pages_of(path) // 2 + 1])
    with pytest.raises(StoreDamaged) as refusal:
        DevHost(APPS / "features", data_dir=tmp_path / "data", local_settings=False)
    message = str(refusal.value)
    assert message.startswith(f"the state file {path} is damaged (SQLite's quick_check: ")
    assert "move the file aside" in message and "--data" in message and "\n" not in message


def test_a_state_file_with_a_damaged_header_is_refused_the_same_way(tmp_path):
    path, _ = state_with_instances(tmp_path / "data", count=1)
    with open(path, "r+b") as file:
        file.write(b"not SQLite at all" * 4)
    with pytest.raises(StoreDamaged, match=r"^the state file .* is damaged \(file is not a database\): "):
        DevHost(APPS / "features", data_dir=tmp_path / "data", local_settings=False)


def damage_under_a_running_host(path) -> None:
    """Damage every page but the first, then commit from another connection, as another
    process would: the host's connection then drops its page cache and reads the file."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    overwrite_pages(path, range(1, pages_of(path)))
    other.execute("PRAGMA user_version = 7")
    other.close()


def test_pages_damaged_while_the_host_runs_fail_requests_and_episodes_clearly(tmp_path, caplog):
    """Before, each request that read a damaged page ended in a traceback (the Durable API,
    the start page) and the episode loop logged one on every pass."""
    caplog.set_level(logging.INFO)
    path, ids = state_with_instances(tmp_path / "data", count=20)
    with DevHost(APPS / "features", data_dir=tmp_path / "data", local_settings=False) as host:
        base = host.serve(port=0)
        assert call("GET", f"{base}/runtime/webhooks/durabletask/instances/{ids[0]}").status == 202  # running
        damage_under_a_running_host(path)

        status = call("GET", f"{base}/runtime/webhooks/durabletask/instances/{ids[0]}")
        assert status.status == 500 and "damaged" in status.text and str(path) not in status.text
        raised = call("POST", f"{base}/runtime/webhooks/durabletask/instances/{ids[1]}/raiseEvent/Answer", 1)
        assert raised.status == 500 and "damaged" in raised.text
        start_page = call("GET", f"{base}/")
        assert start_page.status == 200 and "the state cannot be read just now" in start_page.text
        assert str(path) not in start_page.text
        wait_until(lambda: any("is damaged" in r.getMessage() and "work is retried" in r.getMessage()
                               for r in caplog.records), what="the episode loop's report")
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert all(str(path) in r.getMessage() for r in caplog.records if "is damaged" in r.getMessage())


def test_an_entity_query_reads_the_same_entities_whichever_index_it_takes(tmp_path, monkeypatch):
    """A query with lastOperationTimeFrom over few recent changes reads them through the
    time index and sorts them; over many it walks the id order. Both give the same pages."""
    store = Store(tmp_path / "hub.sqlite")
    with store.transaction():
        for n in range(300):
            name = "card" if n % 3 else "stats"
            store.put_entity(storage.EntityRow(f"@{name}@k{(n * 37) % 300:03d}", name, f"k{(n * 37) % 300:03d}",
                                               n % 7 != 0, "{}", f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z",
                                               "op"))

    def pages(name, since, until=""):
        seen, after = [], ""
        while True:
            page = store.query_entities(name=name, after=after, operated_from=since, operated_to=until, limit=7)
            if not page:
                return seen
            seen += [(row.entity_id, row.last_operation_time) for row in page]
            after = page[-1].entity_id

    windows = [("card", "2026-01-01T00:04:30.000000Z", ""), ("card", "2026-01-01T00:02:00.000000Z", ""),
               ("card", "2026-01-01T00:01:00.000000Z", "2026-01-01T00:03:00.000000Z"),
               ("stats", "2026-01-01T00:00:00.000000Z", ""), (None, "2026-01-01T00:04:00.000000Z", "")]
    through_time_index = [pages(*window) for window in windows]
    assert all(through_time_index) and through_time_index[0] == sorted(through_time_index[0])
    monkeypatch.setattr(storage, "FEW_OPERATED", 0)  # every query walks the id order
    assert [pages(*window) for window in windows] == through_time_index
    def plan_of_the_query(few_operated):
        monkeypatch.setattr(storage, "FEW_OPERATED", few_operated)
        executed = []
        store._db.set_trace_callback(executed.append)
        store.query_entities(name="card", operated_from="2026-01-01T00:04:30.000000Z", limit=7)
        store._db.set_trace_callback(None)
        return " ".join(str(row) for row in store._db.execute("EXPLAIN QUERY PLAN " + executed[-1]))

    assert "entities_by_name_operated" in plan_of_the_query(5000) and "TEMP B-TREE" in plan_of_the_query(5000)
    walked = plan_of_the_query(0)
    assert "sqlite_autoindex_entities_1" in walked and "TEMP B-TREE" not in walked  # the id order, no sort
    store.close()


def test_a_page_of_instances_read_in_one_step_is_the_rows_read_one_by_one(tmp_path):
    """query_instances reads its page as one JSON array built by SQLite (one step, so the
    GIL is given up once rather than once a row): every value comes back as stored, texts
    with quotes, escapes, control and non-ASCII characters, NULLs and integers, in id order."""
    store = Store(tmp_path / "hub.sqlite")
    odd_texts = ['{"a":"b \\" \\\\ \\u0001"}', "Füchse 🦉 \u2028", "", "\t\n", None]
    with store.transaction():
        for n in range(40):
            store.put_instance(storage.InstanceRow(
                f"review-{(n * 17) % 40:04d}", "hitl_orchestration", f"e{n}", "Running" if n % 5 else "Completed",
                odd_texts[n % 5], odd_texts[(n + 1) % 5], odd_texts[(n + 2) % 5],
                f"2026-01-01T00:00:{n % 60:02d}.000000Z", "2026-01-01T00:01:00.000000Z",
                None if n % 2 else f"parent-{n}", (None, n * 1000, 2 ** 63 - 1, -(2 ** 63))[n % 4], None))
    one_by_one = [storage.InstanceRow(*row) for row in store._db.execute(
        f"SELECT {storage._INSTANCE_COLUMNS} FROM instances WHERE runtime_status = 'Running'"
        " AND instance_id > 'review-0003' ORDER BY instance_id LIMIT 25")]
    page = store.query_instances(statuses=("Running",), id_prefix="review-", after="review-0003", limit=25)
    assert len(page) == 25 and page == one_by_one
    assert store.query_instances(statuses=("Running",), after="review-9999") == []
    store.close()


def test_a_page_json_cannot_hold_is_read_row_by_row(tmp_path):
    """A BLOB in a row (a state file edited by hand; the devhost writes text, integers and
    NULL) cannot go into SQLite's JSON array: the page is then read row by row."""
    store = Store(tmp_path / "hub.sqlite")
    with store.transaction():
        for n in range(3):
            store.put_instance(storage.InstanceRow(f"review-{n}", "hitl_orchestration", "e", "Running", None, None,
                                                   "{}", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z",
                                                   None, None, None))
    store._db.execute("UPDATE instances SET output = ? WHERE instance_id = 'review-1'", (b"\x00\x01",))
    page = store.query_instances(statuses=("Running",), limit=10)
    assert [row.instance_id for row in page] == ["review-0", "review-1", "review-2"]
    assert page[1].output == b"\x00\x01"
    store.close()


def test_history_and_messages_read_back_as_written(tmp_path):
    """Events are read through orjson where it reads them as the standard library does (the
    store's hot reads): every event comes back equal to what was written, payload texts
    included (escapes, lone surrogates and huge numbers inside a payload stay text), and so
    do values orjson reads otherwise or refuses: an integer beyond 64 bits (which orjson
    reads as a float) in a field that takes any JSON value, a float, a NaN."""
    store = Store(tmp_path / "hub.sqlite")
    payloads = ['{"n": 123456789012345678901234567890, "x": 1e400, "s": "\\ud800"}', "Füchse 🦉 \u2028",
                '"\\u0000 \\" quote"', "", None]
    events = [{"EventType": n % 19, "EventId": n - 1, "IsPlayed": bool(n % 2), "Timestamp": "2026-01-01T00:00:00.000000Z",
               "Name": "Füchse 🦉" if n % 3 else "name", "Input": payloads[n % 5], "TaskScheduledId": 2 ** 63 - 1,
               "Version": (2 ** 64, -(2 ** 63) - 1, [10 ** 40, {"v": 2 ** 70}], 0.5, -0.0, "1", None)[n % 7]}
              for n in range(10)]
    odd = {"EventType": 6, "EventId": -1, "IsPlayed": False, "Timestamp": "t", "Result": float("nan")}
    with store.transaction():
        store.append_history("i", 0, events + [odd])
        for event in events + [odd]:
            store.add_message("i", "e", event, 0.0)
    history, messages = store.load_history("i"), store.due_messages("i", 1.0)
    assert history[:-1] == events and [m.event for m in messages][:-1] == events
    assert [repr(e) for e in history[:-1]] == [repr(e) for e in events]  # 2**64 is not 2.0**64 in a repr
    for read in (history[-1], messages[-1].event):  # NaN is not equal to itself: compare its text
        assert repr(read) == repr(odd)
    store.close()
