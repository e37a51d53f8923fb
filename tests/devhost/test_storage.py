"""The store's lock handling: another process's write lock is waited for briefly, not long."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from devhost import storage
from devhost.storage import Store


def hold_write_lock(path, seconds: float, held: threading.Event) -> threading.Thread:
    """Another connection (as another worker process would) holding the write lock."""
    def hold():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()
    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_a_transaction_waits_for_a_short_foreign_write_lock(tmp_path):
    store = Store(tmp_path / "hub.sqlite")
    held = threading.Event()
    holder = hold_write_lock(store.path, 0.2, held)
    held.wait(5)
    started = time.monotonic()
    with store.transaction():
        store.add_message("i1", None, {"EventType": 15}, 0.0)
    waited = time.monotonic() - started
    holder.join()
    assert 0.15 < waited < 2  # it waited for the lock, and not in long back-off sleeps
    assert [m.instance_id for m in store.due_messages("i1", 1.0)] == ["i1"]
    store.close()


def test_a_lock_held_past_the_timeout_is_reported_as_locked(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "LOCK_TIMEOUT_SECONDS", 0.1)
    store = Store(tmp_path / "hub.sqlite")
    held = threading.Event()
    holder = hold_write_lock(store.path, 0.6, held)
    held.wait(5)
    with pytest.raises(storage.StoreBusy, match="locked"):
        with store.transaction():
            pass
    holder.join()
    store.close()
