"""The store's lock handling: another process's write lock is waited for in short pauses,
and for a bounded time."""
from __future__ import annotations

import sqlite3
import threading
import time
from types import SimpleNamespace

import pytest

from devhost import storage
from devhost.storage import Store

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
