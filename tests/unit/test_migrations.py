"""The pure part of versioned migrations: which steps a database is missing, when it must
be refused, and the schema.sql snapshot generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchpost.migrations import (
    REGENERATE_COMMAND,
    DatabaseNewerError,
    Migration,
    MigrationError,
    changed_checksums,
    check_sequence,
    load_migrations,
    parse_filename,
    plan,
    render_schema,
    tables_by_migration,
)

REPO = Path(__file__).resolve().parents[2]


def test_a_fresh_database_needs_every_version_in_order() -> None:
    assert plan([1, 2, 3], []) == [1, 2, 3]


def test_a_database_at_an_older_release_gets_only_the_missing_steps() -> None:
    assert plan([1, 2, 3, 4], [1, 2]) == [3, 4]


def test_a_hole_left_by_an_earlier_run_is_filled_in_order() -> None:
    assert plan([1, 2, 3, 4], [3, 1]) == [2, 4]


def test_a_current_database_needs_nothing() -> None:
    assert plan([1, 2, 3], [1, 2, 3]) == []


def test_a_database_newer_than_the_code_is_refused_with_its_version() -> None:
    with pytest.raises(DatabaseNewerError, match="schema version 9, newer than this Watchpost knows \\(up to 3\\)"):
        plan([1, 2, 3], [1, 2, 3, 9])


def test_a_recorded_version_missing_from_the_code_below_the_newest_is_refused_too() -> None:
    with pytest.raises(MigrationError, match=r"does not have: \[2\]") as info:
        plan([1, 3], [1, 2])
    assert not isinstance(info.value, DatabaseNewerError)


def test_migration_files_are_named_by_four_digit_version_and_name() -> None:
    assert parse_filename("0002_alarms.sql") == (2, "alarms")
    assert parse_filename("2_alarms.sql") is None
    assert parse_filename("0002_alarms.sql~") is None
    assert parse_filename("README.md") is None


def test_versions_with_a_gap_or_a_duplicate_are_rejected() -> None:
    check_sequence([1, 2, 3])
    for versions in ([1, 3], [1, 2, 2], [2, 3]):
        with pytest.raises(MigrationError, match="without gaps"):
            check_sequence(versions)


def test_a_changed_file_is_reported_by_version() -> None:
    assert changed_checksums({1: "a", 2: "b", 3: "c"}, {1: "a", 2: "x"}) == [2]


def test_the_shipped_migrations_start_at_release_one_and_are_contiguous() -> None:
    migrations = load_migrations(REPO / "migrations")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "release_1"
    # 0001 is release 1's whole schema: the upgrade test builds its old database from it.
    assert "CREATE TABLE IF NOT EXISTS water_readings" in migrations[0].sql


def test_a_comment_only_correction_of_an_applied_file_is_not_reported() -> None:
    assert changed_checksums({1: "now", 2: "b"}, {1: "before", 2: "b"}, {1: {"before"}}) == []
    assert changed_checksums({1: "now"}, {1: "other"}, {1: {"before"}}) == [1]


def test_the_tables_index_follows_each_table_through_the_migrations() -> None:
    steps = [
        Migration(1, "one", "CREATE TABLE IF NOT EXISTS a (x int);\nCREATE TABLE b (y int); -- ALTER TABLE c\n"),
        Migration(2, "two", "ALTER TABLE a ADD COLUMN z int;\nCREATE UNIQUE INDEX IF NOT EXISTS b_y ON b (y);\n"
                            "DROP TABLE IF EXISTS gone;"),
        Migration(3, "three", "alter table a add column w int;\nDROP TABLE b;\nCREATE TABLE b (y int);"),
    ]
    assert tables_by_migration(steps) == {"a": [1, 2, 3], "b": [3]}


def test_the_schema_snapshot_is_a_header_then_every_migration_in_order() -> None:
    steps = [Migration(1, "release_1", "CREATE TABLE a (x int);\n\n"), Migration(2, "more", "ALTER TABLE a ADD y int;")]
    text = render_schema(steps)
    assert text.startswith("-- Watchpost's database schema, GENERATED from migrations/ by `watchpost db schema")
    assert "-- a      0001, 0002\n" in text
    assert text.index("CREATE TABLE IF NOT EXISTS schema_migrations") < text.index("-- ==== 0001_release_1 ====")
    assert text.endswith("-- ==== 0001_release_1 ====\nCREATE TABLE a (x int);\n\n"
                         "-- ==== 0002_more ====\nALTER TABLE a ADD y int;\n")


def test_schema_sql_is_what_the_migrations_generate() -> None:
    """schema.sql is for readers and never applied: edited by hand, or left behind by a new
    migration, it would tell them something the database does not have."""
    expected = render_schema(load_migrations(REPO / "migrations"))
    assert (REPO / "schema.sql").read_text() == expected, (
        f"schema.sql is not the migrations' current schema: regenerate it with `{REGENERATE_COMMAND}`"
        " (change the schema with a new migrations/NNNN_name.sql, never in schema.sql)"
    )
