"""The schema of the state database, built step by step by numbered migrations.

A state folder records the number of the last migration it has had in ``schema_version``.
Opening it (``storage.Store``) runs the migrations numbered after that one, in order, and
records the last number, all in the transaction the store opens for it: SQLite keeps
schema changes in a transaction like any other write, so a crash or a step that fails
leaves the folder at its old version, with nothing of the newer steps.

A state folder written before the migrations were numbered has no ``schema_version`` and
counts as version 0. It holds migration 1's tables already, which is why migration 1 only
creates what is missing; those written before a parent's execution id was kept lack that
column, which migration 5 adds wherever it is missing.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable, Optional


def _always(db: sqlite3.Connection) -> bool:
    return True


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]
    # Whether this database needs the statements; a step that older releases may have
    # made already checks for itself.
    needed: Callable[[sqlite3.Connection], bool] = _always


# How many earlier executions of one instance migration 6's trigger keeps.
MAX_EARLIER_EXECUTIONS = 50


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def _lacks_parent_execution_id(db: sqlite3.Connection) -> bool:
    return "parent_execution_id" not in columns(db, "instances")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "instances, history, messages and work items", (
        """CREATE TABLE IF NOT EXISTS instances (
            instance_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            runtime_status TEXT NOT NULL,
            input TEXT,
            output TEXT,
            custom_status TEXT,
            created_time TEXT NOT NULL,
            last_updated_time TEXT NOT NULL,
            parent_instance_id TEXT,
            parent_task_id INTEGER)""",
        "CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_time)",
        "CREATE INDEX IF NOT EXISTS instances_by_status ON instances (runtime_status, created_time)",
        """CREATE TABLE IF NOT EXISTS history (
            instance_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event TEXT NOT NULL,
            PRIMARY KEY (instance_id, seq)) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS messages (
            id INTEGER PRIMARY KEY,
            instance_id TEXT NOT NULL,
            execution_id TEXT,
            visible_at REAL NOT NULL,
            timer_id INTEGER,
            event TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS messages_by_time ON messages (visible_at)",
        "CREATE INDEX IF NOT EXISTS messages_by_instance ON messages (instance_id, visible_at)",
        """CREATE TABLE IF NOT EXISTS work_items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance_id TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            task_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            input TEXT)""",
    )),
    # Status queries list instances in id order, as Azure Storage lists its Instances
    # table (by PartitionKey); a running-only page then reads only running rows.
    Migration(2, "instances listed by status in id order", (
        "CREATE INDEX IF NOT EXISTS instances_by_status_id ON instances (runtime_status, instance_id)",
        "DROP INDEX IF EXISTS instances_by_status",
    )),
    # Durable entities: their state, and their batches as work items. An entity runs one
    # batch at a time: while one is taken, its messages wait.
    Migration(3, "durable entities", (
        """CREATE TABLE IF NOT EXISTS entities (
            entity_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            key TEXT NOT NULL,
            entity_exists INTEGER NOT NULL,
            state TEXT,
            last_operation_time TEXT NOT NULL)""",
        "ALTER TABLE work_items ADD COLUMN kind TEXT NOT NULL DEFAULT 'activity'",
        "CREATE INDEX IF NOT EXISTS work_items_by_instance ON work_items (instance_id)",
    )),
    # An instance this host refused for its version (Reject), or an entity whose batch
    # could not run, keeps all its messages, in their order, and is not offered again
    # until ``until``.
    Migration(4, "instances and entities held back", (
        """CREATE TABLE IF NOT EXISTS held_instances (
            instance_id TEXT PRIMARY KEY,
            until REAL NOT NULL)""",
    )),
    # A child's result is addressed to the parent execution that started it, so a parent
    # that continued as new drops it. State folders whose migration 1 was run by an older
    # release have the column already.
    Migration(5, "the execution of an instance's parent", (
        "ALTER TABLE instances ADD COLUMN parent_execution_id TEXT",
    ), needed=_lacks_parent_execution_id),
    # The dashboard lists instances newest first, a page at a time from a (created time,
    # id) cursor, optionally of some statuses or orchestrators: the unfiltered list walks
    # the creation index (the old one is its prefix), a filtered one the part of the
    # other index for each name and status asked for, so a page reads its rows and stops
    # at any number of instances (bench/dashboard_list.py). One index serves every filter
    # because each one that includes the status is rewritten when an instance's status
    # changes (bench/wal_frames.py).
    # An instance that continues as new keeps only its current execution's history; the
    # trigger notes when each earlier execution ran (the newest MAX_EARLIER_EXECUTIONS),
    # so the dashboard can show the generations. Purging an instance drops them.
    Migration(6, "the dashboard: instances newest first, and earlier executions", (
        "CREATE INDEX IF NOT EXISTS instances_by_created_id ON instances (created_time, instance_id)",
        "DROP INDEX IF EXISTS instances_by_created",
        "CREATE INDEX IF NOT EXISTS instances_by_name_status_created"
        " ON instances (name, runtime_status, created_time, instance_id)",
        """CREATE TABLE IF NOT EXISTS earlier_executions (
            instance_id TEXT NOT NULL,
            generation INTEGER NOT NULL,
            execution_id TEXT NOT NULL,
            started_time TEXT NOT NULL,
            ended_time TEXT NOT NULL,
            PRIMARY KEY (instance_id, generation)) WITHOUT ROWID""",
        f"""CREATE TRIGGER IF NOT EXISTS earlier_execution_kept
            AFTER UPDATE OF execution_id ON instances
            WHEN old.execution_id IS NOT new.execution_id
            BEGIN
                INSERT INTO earlier_executions
                    (instance_id, generation, execution_id, started_time, ended_time)
                SELECT old.instance_id, COALESCE(MAX(generation), 0) + 1, old.execution_id,
                       COALESCE(MAX(ended_time), old.created_time), new.last_updated_time
                FROM earlier_executions WHERE instance_id = old.instance_id;
                DELETE FROM earlier_executions WHERE instance_id = old.instance_id
                    AND generation <= (SELECT MAX(generation) FROM earlier_executions
                                       WHERE instance_id = old.instance_id) - {MAX_EARLIER_EXECUTIONS};
            END""",
        """CREATE TRIGGER IF NOT EXISTS earlier_executions_purged AFTER DELETE ON instances
            BEGIN
                DELETE FROM earlier_executions WHERE instance_id = old.instance_id;
            END""",
    )),
    # The dashboard lists each entity with the name of its last operation, which the
    # Durable HTTP API does not give (only its time). Entities last operated before this
    # step have none.
    Migration(7, "the name of each entity's last operation", (
        "ALTER TABLE entities ADD COLUMN last_operation_name TEXT",
    )),
    # An app that follows an entity name's changes (the entity query's
    # lastOperationTimeFrom, a few seconds back) reads the entities of that name changed
    # since, through this index, instead of walking every entity in id order (33 ms with
    # 100,000 review cards; bench/pending.py --inbox).
    Migration(8, "entities of a name by their last operation time", (
        "CREATE INDEX IF NOT EXISTS entities_by_name_operated ON entities (name, last_operation_time)",
    )),
)

LATEST_VERSION = MIGRATIONS[-1].version


def recorded_version(db: sqlite3.Connection) -> int:
    """The last migration this database has had (0 for one older than the numbering)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    rows = db.execute("SELECT version FROM schema_version").fetchall()
    return rows[0][0] if rows else 0


def migrate(db: sqlite3.Connection, after: int, up_to: Optional[int] = None) -> int:
    """Run the migrations numbered after ``after``, up to ``up_to`` (the latest unless
    given), and record the version reached. The caller holds the transaction."""
    up_to = LATEST_VERSION if up_to is None else up_to
    for migration in MIGRATIONS:
        if after < migration.version <= up_to and migration.needed(db):
            for statement in migration.statements:
                db.execute(statement)
    db.execute("DELETE FROM schema_version")
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (up_to,))
    return up_to
