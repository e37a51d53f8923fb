"""Durable state of the devhost: one SQLite database in WAL mode.

Tables:
- ``instances``: one row per orchestration instance (status, input, output, custom status).
- ``history``: the current execution's history events, in order.
- ``messages``: what an instance has yet to process (start, events, activity results,
  timers). A timer is a message that becomes visible at its fire time.
- ``work_items``: activities scheduled and not yet completed, and entity batches taken
  and not yet saved (``kind``). They are deleted in the same transaction that delivers
  their result, so a crash re-runs them (at least once).
- ``entities``: each durable entity's state (``@name@key``, as its messages are addressed)
  and its last operation: when it ran and its name.
- ``earlier_executions``: when each earlier execution of an instance that continued as new
  ran (a trigger keeps it; the history holds the current execution only).

``migrations.py`` builds these tables; this module holds the queries.

Every write happens inside ``transaction()``; a caller commits all changes of one
episode, one start or one raised event together. The class is thread-safe through a
single lock: SQLite has one writer anyway, and every statement here is short. One
connection serves reads and writes: a second one for reads would find its page cache
stale after every commit of the first, and read the pages again.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Iterator, Optional

from azure.durable_functions import OrchestrationRuntimeStatus

try:
    import orjson
except ImportError:  # an app's environment without it: the standard library reads it all
    orjson = None

from . import migrations
from .history import CONTROL_EVENTS, ORCHESTRATION_STATUS_NUMBERS

LOCK_TIMEOUT_SECONDS = 5.0
TERMINAL_STATUSES = tuple(s.value for s in (OrchestrationRuntimeStatus.Completed,
                                            OrchestrationRuntimeStatus.Failed,
                                            OrchestrationRuntimeStatus.Terminated,
                                            OrchestrationRuntimeStatus.Canceled))
_CONTROL_EVENT_NUMBERS = tuple(sorted(int(e) for e in CONTROL_EVENTS))

# Messages the runners may act on. A suspended instance takes only control messages; its
# other messages stay queued unoffered, else the runner would find them due on every poll.
# Read through the time index: every waiting instance has a timer message, so a plan that
# walks the messages in instance order (which GROUP BY instance_id invites) visits all of
# them on every pass, 10 ms with 100,000 reviews waiting, instead of the few that are due.
_OFFERED_MESSAGES = (
    "messages m INDEXED BY messages_by_time LEFT JOIN instances i ON i.instance_id = m.instance_id"
    " WHERE (i.runtime_status IS NULL OR i.runtime_status != 'Suspended'"
    f" OR json_extract(m.event, '$.EventType') IN {_CONTROL_EVENT_NUMBERS})"
    " AND (m.instance_id NOT LIKE '@%' OR NOT EXISTS (SELECT 1 FROM work_items w"
    " WHERE w.instance_id = m.instance_id AND w.kind = 'entity'))"
    " AND NOT EXISTS (SELECT 1 FROM held_instances h WHERE h.instance_id = m.instance_id"
    " AND h.until > ?)")  # bound to the time now

# SQLite's primary result codes (sqlite3.h) for a lock held elsewhere, for a database
# that cannot be written for now (disk full, I/O error, read-only, cannot open), and for a
# damaged file (a malformed page; no database at all, as when the header is overwritten).
_BUSY_CODES = {5, 6}
_UNAVAILABLE_CODES = {8, 10, 13, 14}
_DAMAGED_CODES = {11, 26}


class StoreError(Exception):
    """The state could not be read or written; nothing of the operation was kept."""


class StoreBusy(StoreError):
    """Another process held the lock too long; try again shortly."""


class StoreUnavailable(StoreError):
    """The disk refused the write (full, failing, read-only); retry after a while."""


class StoreTooNew(StoreError):
    """The state folder was written by a newer devhost."""


class StoreDamaged(StoreError):
    """The database file is damaged; what is stored there cannot all be read again."""


def _damaged(path: str, detail: str) -> StoreDamaged:
    return StoreDamaged(f"the state file {path} is damaged ({detail}): stop the devhost and move the "
                        "file aside, with its -wal and -shm files, to start with no state, or give "
                        "--data another folder")


def _translated(exc: sqlite3.Error, path: str) -> Exception:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _BUSY_CODES:
        return StoreBusy(str(exc))
    if code in _UNAVAILABLE_CODES:
        return StoreUnavailable(str(exc))
    if code in _DAMAGED_CODES:
        return _damaged(path, str(exc))
    return exc


def check_integrity(path: Path | str) -> None:
    """Raise StoreDamaged when SQLite's quick_check finds a damaged page in the state file.

    It reads every page. Through a memory map, which the kernel fills with read-ahead, a
    file of 100,000 waiting instances (500 MB) takes under a second even when it is not in
    the page cache; read a page at a time, in b-tree order, it took about 8 s then. The
    check runs in a child process, so that the mapped file never counts in the host's
    resident memory.
    """
    checked = subprocess.run([sys.executable, "-c", _QUICK_CHECK, str(path)], capture_output=True, text=True,
                             timeout=INTEGRITY_CHECK_SECONDS)
    if checked.returncode != 0:
        kind, _, detail = checked.stdout.strip().partition(" ")
        if kind == "error":
            code, _, message = detail.partition(" ")
            failure = sqlite3.DatabaseError(message)
            failure.sqlite_errorcode = int(code)
            raise _translated(failure, str(path))
        raise _damaged(str(path), f"SQLite's quick_check: {detail[:200]}")


# The longest a start-up integrity check may take (it measured about 1 s for 500 MB).
INTEGRITY_CHECK_SECONDS = 600
# Prints nothing and exits 0 for a sound file; "damaged <first problem>" or
# "error <SQLite error code> <message>" and exits 1 otherwise.
_QUICK_CHECK = """
import os, sqlite3, sys
path = sys.argv[1]
try:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA mmap_size={os.path.getsize(path)}")
    first_problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
except sqlite3.Error as exc:
    print("error", getattr(exc, "sqlite_errorcode", 0) or 0, exc)
    sys.exit(1)
if first_problem != "ok":
    print("damaged", " ".join(first_problem.replace("*** in database main ***", "").split()))
    sys.exit(1)
"""


@dataclass
class InstanceRow:
    instance_id: str
    name: str
    execution_id: str
    runtime_status: str
    input: Optional[str]
    output: Optional[str]
    custom_status: Optional[str]
    created_time: str
    last_updated_time: str
    parent_instance_id: Optional[str]
    parent_task_id: Optional[int]
    parent_execution_id: Optional[str] = None

    @property
    def is_terminal(self) -> bool:
        return self.runtime_status in TERMINAL_STATUSES


@dataclass
class Message:
    id: int
    instance_id: str
    execution_id: Optional[str]
    event: dict


@dataclass(frozen=True)
class EntityRow:
    entity_id: str                # "@name@key"
    name: str                     # lowercased, as EntityId keeps it
    key: str
    exists: bool
    state: Optional[str]          # the SDK's JSON text of the state
    last_operation_time: str
    # The last operation its last batch ran; None before one has run, or when that batch
    # ran before the devhost kept it (migration 7).
    last_operation_name: Optional[str]


def _prefix_range(id_prefix: str) -> tuple[str, str]:
    # A range rather than LIKE, so '%' and '_' in a prefix mean themselves.
    return id_prefix, id_prefix + "\U0010ffff"


def _created_and_prefix(clauses: list[str], args: list, created_from: str, created_to: str,
                        id_prefix: str) -> None:
    """The instance filters both listings share: created from, created to, an id prefix."""
    if created_from:
        clauses.append("created_time >= ?")
        args.append(created_from)
    if created_to:
        clauses.append("created_time <= ?")
        args.append(created_to)
    if id_prefix:
        clauses.append("instance_id >= ? AND instance_id < ?")
        args.extend(_prefix_range(id_prefix))


_ENTITY_COLUMNS = "entity_id, name, key, entity_exists, state, last_operation_time, last_operation_name"
# Up to this many entities changed since a query's lastOperationTimeFrom are read through
# the time index and sorted (a few milliseconds at most); more, and the id order is walked.
FEW_OPERATED = 5000


def _entity_row(values: tuple) -> EntityRow:
    entity_id, name, key, exists, state, operated, operation = values
    return EntityRow(entity_id, name, key, bool(exists), state, operated, operation)


@dataclass
class WorkItem:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: Optional[str]
    kind: str = "activity"      # or "entity": a batch of an entity's requests


@dataclass(frozen=True)
class Shard:
    """Which instances one host process runs: those whose id hashes to ``index`` mod ``count``."""
    index: int = 0
    count: int = 1

    def owner_of(self, instance_id: str) -> int:
        return shard_of(instance_id) % self.count

    def sql(self, column: str) -> tuple[str, tuple]:
        if self.count == 1:
            return "", ()
        return f" AND devhost_shard({column}) % ? = ?", (self.count, self.index)


def shard_of(instance_id: str) -> int:
    return zlib.crc32(instance_id.encode("utf-8"))


_ALL_STATUSES = tuple(ORCHESTRATION_STATUS_NUMBERS)
# An id prefix that matches fewer instances than this is read through the primary key and
# sorted; a broader one is checked while walking the page's index.
PREFIX_SORT_LIMIT = 1000


def _parsed(text: str, any_integer: bool = True):
    """The value of JSON the store wrote or SQLite built from stored columns, read with
    orjson where it reads the same value as the standard library: a page of the status
    query (100 statuses), a history's events, the due messages of every episode. Where
    orjson refuses (the standard library's NaN, an escaped lone surrogate) the standard
    library reads the text, and so it does wherever orjson's value holds a float when the
    text may hold ``any_integer``: orjson reads an integer beyond 64 bits as a float, and
    an event can hold one (a version is any JSON value). SQLite's own integers are 64-bit."""
    if orjson is not None:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if not (any_integer and _holds_float(value)):
                return value
    return json.loads(text)


def _holds_float(value) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is float:
            return True
        if type(item) is dict:
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
    return False


_INSTANCE_COLUMNS = ("instance_id, name, execution_id, runtime_status, input, output, custom_status,"
                     " created_time, last_updated_time, parent_instance_id, parent_task_id, parent_execution_id")


class Store:
    def __init__(self, path: Path | str, synchronous: str = "NORMAL"):
        self.path = str(path)
        self._lock = threading.RLock()
        self._db: Optional[sqlite3.Connection] = None
        try:
            try:
                self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                # No busy handler: SQLite's backs off in sleeps of 1 to 25 ms, while a write here
                # holds the lock for about a millisecond, so with several worker processes the
                # back-off, not the work, would set the pace. _when_free retries much sooner.
                self._db.execute("PRAGMA busy_timeout=0")
                self._when_free(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
                # NORMAL keeps every commit across a process crash (kill -9); only a power
                # loss can drop the last commits, which a local host can accept.
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._db.create_function("devhost_shard", 1, shard_of, deterministic=True)
                # Commits on this connection; PRAGMA data_version counts the other
                # connections' (worker processes'). Together they say whether anything changed.
                self.commits = 0
            except sqlite3.Error as exc:
                raise _translated(exc, self.path) from None
            self.schema_version = self._migrate()
        except (StoreError, sqlite3.Error) as exc:
            if self._db is not None:
                self._db.close()
            if isinstance(exc, (StoreDamaged, StoreTooNew)):
                raise  # their messages name the file and what to do
            unusable = type(exc) if isinstance(exc, StoreError) else StoreUnavailable
            raise unusable(f"the state file {self.path} cannot be opened: {exc}") from None

    def _migrate(self) -> int:
        """Bring the schema up to date (devhost/migrations.py): the migrations this state
        folder has not had run in order, in one transaction with the version they reach."""
        with self.transaction():
            current = migrations.recorded_version(self._db)
            if current > migrations.LATEST_VERSION:
                raise StoreTooNew(f"{self.path} has state schema version {current}; this devhost "
                                  f"knows versions up to {migrations.LATEST_VERSION}. Use a newer "
                                  "devhost or another --data folder.")
            return migrations.migrate(self._db, after=current)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """All writes of one operation, kept together or not at all. SQLite's errors leave
        as StoreBusy or StoreUnavailable when they mean "not now"."""
        with self._lock:
            try:
                self._when_free(lambda: self._db.execute("BEGIN IMMEDIATE"))
            except sqlite3.Error as exc:
                raise _translated(exc, self.path) from None
            try:
                yield self
                self._db.execute("COMMIT")
                self.commits += 1
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _translated(exc, self.path) from None
                raise

    def _query(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            try:
                return self._when_free(lambda: self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise _translated(exc, self.path) from None

    def _query_at_once(self, sql: str, args: tuple, columns: str) -> list[tuple]:
        """The rows of ``sql`` (whose first column is its order), read in one step of SQLite
        as one JSON array. ``sqlite3`` gives up the GIL around every step, one a row, and
        takes it back from whichever thread holds it then: beside the worker's thread
        computing, a page of 101 rows read row by row waited about 90 ms on this host's
        thread, read at once about 11 ms (``python -m bench.sqlite_gil``). The order is put
        back from the first column, as an aggregate's order is not SQLite's promise. Values
        come back as stored: the devhost writes these columns as text, integers and NULL
        (a REAL would come back with 15 significant digits)."""
        try:
            rows = self._query(f"SELECT json_group_array(json_array({columns})) FROM ({sql})", args)
        except (sqlite3.DataError, sqlite3.OperationalError) as exc:
            if not isinstance(exc, sqlite3.DataError) and (exc.sqlite_errorcode & 0xFF) != sqlite3.SQLITE_ERROR:
                raise
            # A page JSON cannot hold (a BLOB a state file was given by hand) or longer than
            # SQLite's longest string: read row by row, which raises what is really wrong.
            return self._query(sql, args)
        return sorted(map(tuple, _parsed(rows[0][0], any_integer=False)), key=itemgetter(0)) if rows and rows[0][0] else []

    @staticmethod
    def _when_free(statement):
        """Run a statement, retrying after short random pauses while another worker process
        holds a lock it needs (a write lock for BEGIN IMMEDIATE; in WAL mode a read waits
        only in rare moments, such as another process recovering the WAL)."""
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                return statement()
            except sqlite3.OperationalError as exc:
                code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
                if code not in _BUSY_CODES or time.monotonic() > deadline:
                    raise
            time.sleep(random.uniform(0.00005, 0.0005))

    # -- instances ---------------------------------------------------------------

    def get_instance(self, instance_id: str) -> Optional[InstanceRow]:
        rows = self._query(f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?",
                           (instance_id,))
        return InstanceRow(*rows[0]) if rows else None

    def put_instance(self, row: InstanceRow) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (row.instance_id, row.name, row.execution_id, row.runtime_status, row.input,
             row.output, row.custom_status, row.created_time, row.last_updated_time,
             row.parent_instance_id, row.parent_task_id, row.parent_execution_id))

    def update_instance(self, row: InstanceRow) -> None:
        """Save what an episode can change; unlike a replace, leaves the creation index alone."""
        self._db.execute(
            "UPDATE instances SET execution_id = ?, runtime_status = ?, input = ?, output = ?,"
            " custom_status = ?, last_updated_time = ? WHERE instance_id = ?",
            (row.execution_id, row.runtime_status, row.input, row.output, row.custom_status,
             row.last_updated_time, row.instance_id))

    def query_instances(self, *, statuses: tuple[str, ...] = (), created_from: str = "",
                        created_to: str = "", id_prefix: str = "", after: str = "",
                        limit: int = 100) -> list[InstanceRow]:
        """Instances in id order, starting after the id ``after``."""
        clauses, args = ["instance_id > ?"], [after]
        if statuses:
            clauses.append(f"runtime_status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        _created_and_prefix(clauses, args, created_from, created_to, id_prefix)
        sql = (f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE {' AND '.join(clauses)}"
               " ORDER BY instance_id LIMIT ?")
        return [InstanceRow(*r) for r in self._query_at_once(sql, (*args, limit), _INSTANCE_COLUMNS)]

    def page_instances(self, *, statuses: tuple[str, ...] = (), name: str = "", created_from: str = "",
                       created_to: str = "", id_prefix: str = "", before: Optional[tuple[str, str]] = None,
                       limit: int = 50) -> list[InstanceRow]:
        """Instances newest first (created time, then id, both descending), starting after
        the (created time, id) ``before``.

        Every page walks an index kept in this order (migration 6) and stops at ``limit``
        rows. Filtered by name or status, it walks the part of the (name, status) index of
        each pair asked for, every name when none is, and SQLite merges those parts. An
        id prefix is checked on the way, unless it matches so few instances that reading
        those and sorting them is cheaper than walking.
        """
        clauses, args = [], []
        if name or statuses:
            index = "instances_by_name_status_created"
            names = (name,) if name else self.instance_names()
            wanted = statuses or _ALL_STATUSES
            clauses.append(f"name IN ({','.join('?' * len(names))})"
                           f" AND runtime_status IN ({','.join('?' * len(wanted))})")
            args.extend((*names, *wanted))
        else:
            index = "instances_by_created_id"
        if before is not None:
            clauses.append("(created_time, instance_id) < (?, ?)")
            args.extend(before)
        _created_and_prefix(clauses, args, created_from, created_to, id_prefix)
        if id_prefix and self._at_most(PREFIX_SORT_LIMIT - 1, "SELECT 1 FROM instances"
                                       " WHERE instance_id >= ? AND instance_id < ?", _prefix_range(id_prefix)):
            index = "sqlite_autoindex_instances_1"  # the primary key
        sql = (f"SELECT {_INSTANCE_COLUMNS} FROM instances INDEXED BY {index}"
               f" WHERE {' AND '.join(clauses) or '1'}"
               " ORDER BY created_time DESC, instance_id DESC LIMIT ?")
        return [InstanceRow(*r) for r in self._query(sql, (*args, limit))]

    def _at_most(self, limit: int, rows: str, args: tuple) -> bool:
        """Whether the query ``rows`` (``SELECT 1 ...``) gives at most ``limit`` rows, read
        no further than one more: how a page decides whether the few rows it wants are
        worth sorting rather than walking an index in the page's order."""
        [(count,)] = self._query(f"SELECT COUNT(*) FROM ({rows} LIMIT ?)", (*args, limit + 1))
        return count <= limit

    def instance_names(self) -> tuple[str, ...]:
        """The orchestrator names instances have, in order: one index seek per name."""
        rows = self._query(
            "WITH RECURSIVE names(name) AS (SELECT MIN(name) FROM instances"
            " UNION ALL SELECT (SELECT MIN(name) FROM instances WHERE name > names.name)"
            " FROM names WHERE names.name IS NOT NULL) SELECT name FROM names WHERE name IS NOT NULL")
        return tuple(r[0] for r in rows)

    def instance_counts(self) -> list[tuple[str, str, int]]:
        """(orchestrator, runtime status, instances) for every pair that has any."""
        return [tuple(r) for r in self._query(
            "SELECT name, runtime_status, COUNT(*) FROM instances GROUP BY name, runtime_status"
            " ORDER BY name, runtime_status")]

    def earlier_executions(self, instance_id: str) -> list[tuple[int, str, str, str]]:
        """(generation, execution id, started, ended) of the executions an instance ended
        by continuing as new that are still kept, oldest first."""
        return [tuple(r) for r in self._query(
            "SELECT generation, execution_id, started_time, ended_time FROM earlier_executions"
            " WHERE instance_id = ? ORDER BY generation", (instance_id,))]

    def change_mark(self) -> tuple[int, int]:
        """Changes when anything is committed to the state, by this process or another."""
        return self._query("PRAGMA data_version")[0][0], self.commits

    def delete_instance(self, instance_id: str) -> None:
        for table in ("instances", "history", "messages", "work_items", "held_instances"):
            self._db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))

    # -- history -----------------------------------------------------------------

    def load_history(self, instance_id: str) -> list[dict]:
        rows = self._query("SELECT event FROM history WHERE instance_id = ? ORDER BY seq",
                           (instance_id,))
        return [_parsed(r[0]) for r in rows]

    def append_history(self, instance_id: str, start_seq: int, events: list[dict]) -> None:
        self._db.executemany(
            "INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
            [(instance_id, start_seq + i, json.dumps(e)) for i, e in enumerate(events)])

    def clear_history(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))

    # -- messages ----------------------------------------------------------------

    def add_message(self, instance_id: str, execution_id: Optional[str], event: dict,
                    visible_at: float, timer_id: Optional[int] = None) -> None:
        self._db.execute(
            "INSERT INTO messages (instance_id, execution_id, visible_at, timer_id, event)"
            " VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, visible_at, timer_id, json.dumps(event)))

    def due_instance_ids(self, now: float, limit: int, shard: Shard = Shard()) -> list[str]:
        mine, args = shard.sql("m.instance_id")
        rows = self._query(
            f"SELECT m.instance_id FROM {_OFFERED_MESSAGES} AND m.visible_at <= ?{mine}"
            " GROUP BY m.instance_id ORDER BY MIN(m.id) LIMIT ?", (now, now, *args, limit))
        return [r[0] for r in rows]

    def due_messages(self, instance_id: str, now: float) -> list[Message]:
        rows = self._query(
            "SELECT id, instance_id, execution_id, event FROM messages"
            " WHERE instance_id = ? AND visible_at <= ? ORDER BY visible_at, id", (instance_id, now))
        return [Message(r[0], r[1], r[2], _parsed(r[3])) for r in rows]

    def hold_instance(self, instance_id: str, until: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO held_instances (instance_id, until) VALUES (?, ?)",
                         (instance_id, until))

    def release_instance(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM held_instances WHERE instance_id = ?", (instance_id,))

    def delete_messages(self, ids: list[int]) -> None:
        self._db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def delete_timer(self, instance_id: str, timer_id: int) -> None:
        self._db.execute("DELETE FROM messages WHERE instance_id = ? AND timer_id = ?",
                         (instance_id, timer_id))

    def delete_pending_work(self, instance_id: str) -> None:
        """Drop timers and activities of an instance that has finished or restarted."""
        self._db.execute("DELETE FROM messages WHERE instance_id = ? AND timer_id IS NOT NULL",
                         (instance_id,))
        self._db.execute("DELETE FROM work_items WHERE instance_id = ?", (instance_id,))

    def next_visible_at(self, now: float, shard: Shard = Shard()) -> Optional[float]:
        """When something is next offered: a message becoming visible, or a hold ending."""
        mine, args = shard.sql("m.instance_id")
        # In time order with LIMIT 1, so the time index is walked and the scan stops at the
        # first offered message instead of visiting every pending timer.
        rows = self._query(
            f"SELECT m.visible_at FROM {_OFFERED_MESSAGES}{mine} ORDER BY m.visible_at LIMIT 1",
            (now, *args))
        held = self._query("SELECT MIN(h.until) FROM held_instances h WHERE h.until > ?"
                           " AND EXISTS (SELECT 1 FROM messages m WHERE m.instance_id = h.instance_id"
                           f"{mine})", (now, *args))
        times = [t for t in (rows[0][0] if rows else None, held[0][0]) if t is not None]
        return min(times) if times else None

    # -- entities ----------------------------------------------------------------

    def get_entity(self, entity_id: str) -> Optional[EntityRow]:
        rows = self._query(f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE entity_id = ?", (entity_id,))
        return _entity_row(rows[0]) if rows else None

    def put_entity(self, row: EntityRow) -> None:
        self._db.execute(f"INSERT OR REPLACE INTO entities ({_ENTITY_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                         (row.entity_id, row.name, row.key, int(row.exists), row.state,
                          row.last_operation_time, row.last_operation_name))

    def query_entities(self, *, name: Optional[str], after: str = "", operated_from: str = "",
                       operated_to: str = "", limit: int = 100) -> list[EntityRow]:
        """Existing entities (of one name, or all), in id order, from after ``after``."""
        if name is not None and operated_from and self._at_most(
                FEW_OPERATED, "SELECT 1 FROM entities INDEXED BY entities_by_name_operated"
                " WHERE name = ? AND last_operation_time >= ?", (name, operated_from)):
            # A recent change feed: the few entities it names, read through the time index
            # and put in id order, rather than every entity of the name walked in id order.
            rows = self._query(
                f"SELECT {_ENTITY_COLUMNS} FROM entities INDEXED BY entities_by_name_operated"
                " WHERE name = ? AND last_operation_time >= ? AND (? = '' OR last_operation_time <= ?)"
                " AND entity_exists = 1 AND entity_id > ? ORDER BY entity_id LIMIT ?",
                (name, operated_from, operated_to, operated_to, after, limit))
            return [_entity_row(r) for r in rows]
        # "? IS NULL OR name = ?" keeps SQLite on the id order: given "name = ?" and the time,
        # it would take the time index and sort every entity of the name for each page.
        rows = self._query(
            f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE (? IS NULL OR name = ?) AND entity_exists = 1"
            " AND entity_id > ? AND last_operation_time >= ?"
            " AND (? = '' OR last_operation_time <= ?) ORDER BY entity_id LIMIT ?",
            (name, name, after, operated_from, operated_to, operated_to, limit))
        return [_entity_row(r) for r in rows]

    # -- activities --------------------------------------------------------------

    def add_work_item(self, instance_id: str, execution_id: str, task_id: int, name: str,
                      input_: Optional[str], kind: str = "activity") -> int:
        cur = self._db.execute(
            "INSERT INTO work_items (instance_id, execution_id, task_id, name, input, kind)"
            " VALUES (?, ?, ?, ?, ?, ?)", (instance_id, execution_id, task_id, name, input_, kind))
        return cur.lastrowid

    def all_work_items(self, shard: Shard = Shard()) -> list[WorkItem]:
        mine, args = shard.sql("instance_id")
        rows = self._query("SELECT id, instance_id, execution_id, task_id, name, input, kind FROM work_items"
                           f" WHERE 1{mine} ORDER BY id", args)
        return [WorkItem(*r) for r in rows]

    def take_work_item(self, item_id: int) -> bool:
        """Delete a finished work item; False when it was already gone (purged, restarted)."""
        return self._db.execute("DELETE FROM work_items WHERE id = ?", (item_id,)).rowcount == 1
