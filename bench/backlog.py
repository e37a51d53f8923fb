"""A backlog of waiting reviews written straight into a stopped host's state folder.

Starting 100,000 reviews over HTTP takes most of ten minutes on this machine; a benchmark
that needs them waiting, not started, copies one real waiting review instead. The copy is
exact: the template is a review the devhost itself started and brought to "awaiting
review" (its instance row, its history, its pending timer and its inbox card), and each copy has those
rows with a new instance id and a new execution id in every place the template had its
own. Copies are what a review waiting in round 1 is in the store; the host finds them
the way it finds any instance, when a message for one is due or a query lists it.

Ids follow the app's shape (``review-<UTC time>-<12 hex>``) with times just before the
template's, one microsecond apart, so they sort in the order they were made and before
every review started over HTTP afterwards.
"""
from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from routes.review_client import REVIEW_ID_PREFIX

BATCH = 5000


def state_database(state_dir: Path) -> Path:
    """The one task hub database a devhost keeps in ``state_dir``."""
    found = sorted(state_dir.glob("*.sqlite"))
    if len(found) != 1:
        raise RuntimeError(f"expected one task hub database in {state_dir}, found {found}")
    return found[0]


def copy_waiting_review(database: Path, template_id: str, count: int) -> list[str]:
    """Write ``count`` copies of the waiting review ``template_id``; returns their ids.

    The host must be stopped: this writes the database directly, in transactions of
    BATCH copies.
    """
    db = sqlite3.connect(database, isolation_level=None)
    try:
        instance = db.execute("SELECT * FROM instances WHERE instance_id = ?", (template_id,)).fetchone()
        if instance is None:
            raise RuntimeError(f"no instance {template_id} in {database}")
        columns = [d[0] for d in db.execute("SELECT * FROM instances LIMIT 0").description]
        row = dict(zip(columns, instance))
        if row["runtime_status"] != "Running":
            raise RuntimeError(f"the template {template_id} is {row['runtime_status']}, not waiting")
        history = db.execute("SELECT seq, event FROM history WHERE instance_id = ? ORDER BY seq",
                             (template_id,)).fetchall()
        messages = db.execute("SELECT execution_id, visible_at, timer_id, event FROM messages"
                              " WHERE instance_id = ? ORDER BY id", (template_id,)).fetchall()
        if not messages:
            raise RuntimeError(f"the template {template_id} has no pending timer: it is not waiting")
        # Its inbox card (entities/review_card.py), copied too: the inbox lists the cards.
        card = db.execute("SELECT name, key, entity_exists, state, last_operation_time FROM entities"
                          " WHERE entity_id = ?", (f"@review_card@{template_id}",)).fetchone()
        old_execution = row["execution_id"]
        first = _id_time(template_id) - timedelta(microseconds=count + 1)
        ids = []
        placeholders = ", ".join("?" for _ in columns)
        for start in range(0, count, BATCH):
            db.execute("BEGIN IMMEDIATE")
            instances, events, timers, cards = [], [], [], []
            for index in range(start, min(start + BATCH, count)):
                new_id = f"{REVIEW_ID_PREFIX}{first + timedelta(microseconds=index):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}"
                new_execution = uuid.uuid4().hex
                renamed = _renaming({template_id: new_id, old_execution: new_execution})
                copy = {name: renamed(value) for name, value in row.items()}
                instances.append(tuple(copy[name] for name in columns))
                events.extend((new_id, seq, renamed(event)) for seq, event in history)
                timers.extend((new_id, renamed(execution), visible_at, timer_id, renamed(event))
                              for execution, visible_at, timer_id, event in messages)
                if card is not None:
                    name, _, exists, state, operated = card
                    cards.append((f"@{name}@{new_id}", name, new_id, exists, renamed(state), operated))
                ids.append(new_id)
            db.executemany(f"INSERT INTO instances ({', '.join(columns)}) VALUES ({placeholders})", instances)
            db.executemany("INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)", events)
            db.executemany("INSERT INTO messages (instance_id, execution_id, visible_at, timer_id, event)"
                           " VALUES (?, ?, ?, ?, ?)", timers)
            db.executemany("INSERT INTO entities (entity_id, name, key, entity_exists, state, last_operation_time)"
                           " VALUES (?, ?, ?, ?, ?, ?)", cards)
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return ids
    finally:
        db.close()


def _renaming(names: dict[str, str]):
    """Text with every old name replaced by its new one; other values as they are."""
    def renamed(value):
        if not isinstance(value, str):
            return value
        for old, new in names.items():
            value = value.replace(old, new)
        return value
    return renamed


def _id_time(instance_id: str) -> datetime:
    stamp = instance_id[len(REVIEW_ID_PREFIX):].split("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc)
