"""Each migration, run on a database at the schema before it that holds rows: the shape
changes as the step says, and every row is still there."""
from __future__ import annotations

import sqlite3

import pytest

from devhost import migrations
from devhost.migrations import LATEST_VERSION, MIGRATIONS, Migration, columns
from devhost.storage import Store, StoreUnavailable

# Values of each SQLite type for the rows put into every table.
SAMPLE_VALUES = {"INTEGER": 7, "REAL": 1.5, "TEXT": "text"}


def database_at(path, version: int) -> sqlite3.Connection:
    """A database with exactly migrations 1 to ``version``, and one row in every table."""
    db = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(db, after=migrations.recorded_version(db), up_to=version)
    for table in tables(db):
        add_row(db, table)
    return db


def tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                         " AND name NOT LIKE 'sqlite_%' AND name != 'schema_version'")}


def indexes(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                         " AND name NOT LIKE 'sqlite_%'")}


def add_row(db: sqlite3.Connection, table: str) -> None:
    declared = [(row[1], row[2]) for row in db.execute(f"PRAGMA table_info({table})")]
    names = ", ".join(name for name, _ in declared)
    db.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(declared))})",
               [SAMPLE_VALUES[kind] for _, kind in declared])


def rows_by_table(db: sqlite3.Connection) -> dict[str, tuple[list[str], list[tuple]]]:
    return {table: (columns(db, table), db.execute(f"SELECT * FROM {table}").fetchall())
            for table in tables(db)}


def assert_rows_kept(db: sqlite3.Connection, before: dict) -> None:
    for table, (names, rows) in before.items():
        assert db.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall() == rows, table


def migrate_one_step(db: sqlite3.Connection, to: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    migrations.migrate(db, after=to - 1, up_to=to)
    db.execute("COMMIT")
    assert migrations.recorded_version(db) == to


def test_the_migrations_are_numbered_one_by_one_from_1():
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_1_creates_the_tables_of_an_empty_database(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 0)
    migrate_one_step(db, 1)
    assert tables(db) == {"instances", "history", "messages", "work_items"}
    assert columns(db, "instances")[-2:] == ["parent_instance_id", "parent_task_id"]
    assert indexes(db) == {"instances_by_created", "instances_by_status", "messages_by_time",
                           "messages_by_instance"}


def test_1_keeps_the_tables_and_rows_of_a_folder_older_than_the_numbering(tmp_path):
    """Such a folder has migration 1's tables and no schema_version."""
    db = sqlite3.connect(tmp_path / "hub.sqlite", isolation_level=None)
    for statement in MIGRATIONS[0].statements:
        db.execute(statement)
    for table in tables(db):
        add_row(db, table)
    before = rows_by_table(db)
    assert migrations.recorded_version(db) == 0
    migrate_one_step(db, 1)
    assert_rows_kept(db, before)
    assert {table: names for table, (names, _) in rows_by_table(db).items()} == {
        table: names for table, (names, _) in before.items()}


def test_2_lists_instances_by_status_in_id_order(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 1)
    before = rows_by_table(db)
    migrate_one_step(db, 2)
    assert "instances_by_status_id" in indexes(db) and "instances_by_status" not in indexes(db)
    plan = " ".join(str(row) for row in db.execute(
        "EXPLAIN QUERY PLAN SELECT instance_id FROM instances WHERE runtime_status = 'Running'"
        " ORDER BY instance_id"))
    assert "instances_by_status_id" in plan
    assert_rows_kept(db, before)


def test_3_adds_entities_and_work_item_kinds(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 2)
    before = rows_by_table(db)
    migrate_one_step(db, 3)
    assert "entities" in tables(db) and "work_items_by_instance" in indexes(db)
    assert columns(db, "work_items")[-1] == "kind"
    assert db.execute("SELECT kind FROM work_items").fetchall() == [("activity",)]  # the old row
    assert_rows_kept(db, before)


def test_4_adds_the_instances_held_back(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 3)
    before = rows_by_table(db)
    migrate_one_step(db, 4)
    assert columns(db, "held_instances") == ["instance_id", "until"]
    assert_rows_kept(db, before)


def test_5_adds_the_parents_execution_where_it_is_missing(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 4)
    before = rows_by_table(db)
    migrate_one_step(db, 5)
    assert columns(db, "instances")[-1] == "parent_execution_id"
    assert db.execute("SELECT parent_execution_id FROM instances").fetchall() == [(None,)]
    assert_rows_kept(db, before)


def test_5_leaves_the_column_a_previous_release_made_in_migration_1(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 4)
    db.execute("ALTER TABLE instances ADD COLUMN parent_execution_id TEXT")
    db.execute("UPDATE instances SET parent_execution_id = 'parent-execution'")
    before = rows_by_table(db)
    migrate_one_step(db, 5)
    assert columns(db, "instances").count("parent_execution_id") == 1
    assert_rows_kept(db, before)


def plan_of(db: sqlite3.Connection, sql: str) -> str:
    return " ".join(str(row) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))


def test_6_lists_instances_newest_first_on_an_index_per_filter(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 5)
    before = rows_by_table(db)
    migrate_one_step(db, 6)
    newest_first = "ORDER BY created_time DESC, instance_id DESC LIMIT 50"
    for where, index in (("1", "instances_by_created_id"),
                         ("name IN ('a', 'b') AND runtime_status IN ('Failed', 'Running')",
                          "instances_by_name_status_created")):
        plan = plan_of(db, f"SELECT * FROM instances WHERE {where} {newest_first}")
        assert index in plan, plan
    assert "instances_by_created" not in indexes(db)
    assert_rows_kept(db, before)


def test_6_notes_each_execution_an_instance_ends_by_continuing_as_new(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 5)
    migrate_one_step(db, 6)
    db.execute("UPDATE instances SET execution_id = 'second', last_updated_time = 'T2'")
    db.execute("UPDATE instances SET runtime_status = 'Running', last_updated_time = 'T3'")  # same execution
    db.execute("UPDATE instances SET execution_id = 'third', last_updated_time = 'T4'")
    # The sample row's execution id, created time and instance id are all "text".
    assert db.execute("SELECT generation, execution_id, started_time, ended_time FROM earlier_executions"
                      " WHERE instance_id = 'text' ORDER BY generation").fetchall() == [
        (1, "text", "text", "T2"), (2, "second", "T2", "T4")]
    db.execute("DELETE FROM instances")
    assert db.execute("SELECT COUNT(*) FROM earlier_executions WHERE instance_id = 'text'").fetchone() == (0,)


def test_6_keeps_only_the_newest_earlier_executions(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 5)
    migrate_one_step(db, 6)
    db.execute("DELETE FROM earlier_executions")
    for execution in range(migrations.MAX_EARLIER_EXECUTIONS + 5):
        db.execute("UPDATE instances SET execution_id = ?", (f"e{execution}",))
    generations = [row[0] for row in db.execute("SELECT generation FROM earlier_executions ORDER BY generation")]
    assert generations == list(range(6, migrations.MAX_EARLIER_EXECUTIONS + 6))


def test_7_adds_the_name_of_each_entitys_last_operation(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 6)
    before = rows_by_table(db)
    migrate_one_step(db, 7)
    assert columns(db, "entities")[-1] == "last_operation_name"
    assert db.execute("SELECT last_operation_name FROM entities").fetchall() == [(None,)]  # not recorded
    assert_rows_kept(db, before)


def test_8_indexes_entities_by_name_and_last_operation_time(tmp_path):
    db = database_at(tmp_path / "hub.sqlite", 7)
    before = rows_by_table(db)
    migrate_one_step(db, 8)
    assert "entities_by_name_operated" in indexes(db)
    assert [row[2] for row in db.execute("PRAGMA index_info(entities_by_name_operated)")] == [
        "name", "last_operation_time"]
    assert_rows_kept(db, before)


def test_a_new_state_folder_gets_every_migration(tmp_path):
    store = Store(tmp_path / "hub.sqlite")
    store.close()
    db = sqlite3.connect(tmp_path / "hub.sqlite")
    assert migrations.recorded_version(db) == LATEST_VERSION
    assert tables(db) == {"instances", "history", "messages", "work_items", "entities", "held_instances",
                          "earlier_executions"}


def test_a_step_that_fails_leaves_the_folder_at_its_old_version(tmp_path, monkeypatch):
    """The steps a folder lacks run in one transaction: none of them is kept when one fails."""
    path = tmp_path / "hub.sqlite"
    db = database_at(path, 3)
    before = rows_by_table(db)
    db.close()
    broken = Migration(LATEST_VERSION + 1, "a step that cannot run", ("ALTER TABLE nowhere ADD COLUMN x",))
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "LATEST_VERSION", broken.version)
    with pytest.raises(StoreUnavailable, match="no such table: nowhere"):
        Store(path)
    db = sqlite3.connect(path)
    assert migrations.recorded_version(db) == 3
    assert "held_instances" not in tables(db)
    assert "parent_execution_id" not in columns(db, "instances")
    assert_rows_kept(db, before)
