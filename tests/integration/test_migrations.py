"""Upgrading a database built from release 1's schema, with data in it, to the current
schema: the data stays, the schema ends up what a fresh `migrate` builds (every migration in
order), a second run does nothing, and a database migrated by a newer Watchpost is refused.
schema.sql, the snapshot generated for readers, builds that same schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fix_broker import process_environment
from tests.fix_db import empty_database
from watchpost.db import migrate
from watchpost.migrations import DatabaseNewerError, load_migrations, tables_by_migration

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Release 1's schema is migration 0001 itself, as it was before versioning.
RELEASE_1 = REPO / "migrations" / "0001_release_1.sql"
NEWEST = load_migrations()[-1].version

RELEASE_1_DATA = """
INSERT INTO partners VALUES ('P-SH', 'Qingpu', 310118);
INSERT INTO stations (station_id, name, lat, lon, town, partner_id)
    VALUES ('WS-001', 'Xitang bridge', 30.94, 120.89, 'Xitang', 'P-SH'),
           ('WS-002', 'Fenhu lake', 30.97, 120.83, 'Yaozhuang', NULL);
INSERT INTO persons (person_id, name, lat, lon) VALUES ('E-1', 'Wang Fang', 30.85, 120.92);
INSERT INTO facilities VALUES ('F-1', 'ambulance_station', 'Weitang station', 'Weitang', NULL, 30.84, 120.93);
INSERT INTO units (unit_id, kind, name, base_facility_id) VALUES ('A-1', 'ambulance', 'Ambulance 1', 'F-1');
INSERT INTO water_readings (station_id, ts, seq, ph, do_mg_l)
    SELECT 'WS-00' || (1 + i % 2), timestamptz '2024-03-01 00:00+08' + i * INTERVAL '1 hour', i, 7.0 + i / 100.0, 6.5
    FROM generate_series(0, 199) AS i;     -- spans several 7-day chunks
UPDATE retention_policies SET keep = INTERVAL '10 years' WHERE hypertable = 'water_readings';
"""


@pytest.fixture
def release_1_database() -> Iterator[str]:
    """A database as release 1 left it, registry and readings included."""
    with empty_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(RELEASE_1.read_text())
            conn.execute(RELEASE_1_DATA)
        yield url


@pytest.fixture(scope="module")
def fresh_database() -> Iterator[str]:
    with empty_database() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="module")
def fresh_schema(fresh_database: str) -> dict[str, list[tuple]]:
    return schema_of(fresh_database)


def schema_of(url: str) -> dict[str, list[tuple]]:
    queries = {
        "columns": """SELECT table_name, column_name, ordinal_position, data_type, is_nullable,
                             column_default, is_identity
                      FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3""",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
        "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                          FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
        "hypertables": """SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions
                          ORDER BY 1""",
        "sequences": "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public' ORDER BY 1",
        "migrations": "SELECT version, name, checksum FROM schema_migrations ORDER BY 1",
    }
    with psycopg.connect(url) as conn:
        return {what: conn.execute(sql).fetchall() for what, sql in queries.items()}


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_release_1_with_data_upgrades_to_exactly_the_fresh_schema(release_1_database: str, fresh_schema) -> None:
    url = release_1_database
    readings_before = rows(url, "SELECT * FROM water_readings ORDER BY station_id, ts")
    registry_sql = "SELECT station_id, name, partner_id FROM stations ORDER BY 1"
    registry_before = rows(url, registry_sql)
    assert len(readings_before) == 200

    migrate(url)

    assert rows(url, "SELECT station_id, ts, received_at, seq, flag, temp_c, ph, do_mg_l, codmn_mg_l, cod_mg_l, "
                     "nh3n_mg_l, tp_mg_l, tn_mg_l, turbidity_ntu, cond_us_cm "
                     "FROM water_readings ORDER BY station_id, ts") == readings_before
    assert rows(url, registry_sql) == registry_before
    assert rows(url, "SELECT count(*) FROM persons")[0][0] == 1
    assert rows(url, "SELECT count(*) FROM units")[0][0] == 1
    # New columns on old rows are empty, and the operator's retention change survived.
    assert rows(url, "SELECT count(*) FROM stations WHERE hj212_mn IS NULL") == [(2,)]
    assert dict(rows(url, "SELECT hypertable, keep::text FROM retention_policies")) == {
        "water_readings": "10 years", "wearable_readings": "180 days", "home_events": "180 days",
        "unit_positions": "90 days", "unit_status_reports": "2 years", "dead_letters": "30 days",
        "events": "90 days", "station_averages": "5 years",
    }
    assert rows(url, "SELECT version FROM registry_version") == [(0,)]

    upgraded = schema_of(url)
    for what in fresh_schema:
        assert upgraded[what] == fresh_schema[what], what
    assert [v for v, *_ in upgraded["migrations"]] == list(range(1, NEWEST + 1))


def test_the_upgrade_applies_each_missing_step_and_records_when(release_1_database: str) -> None:
    migrate(release_1_database)
    recorded = rows(release_1_database, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    assert [(v, n) for v, n, _ in recorded][:3] == [(1, "release_1"), (2, "alarms"), (3, "registry_version")]
    assert all(at is not None for *_, at in recorded)


def test_a_second_migrate_is_a_no_op(release_1_database: str) -> None:
    migrate(release_1_database)
    before = schema_of(release_1_database)
    stamps = rows(release_1_database, "SELECT version, applied_at FROM schema_migrations ORDER BY 1")

    migrate(release_1_database)

    assert schema_of(release_1_database) == before
    assert rows(release_1_database, "SELECT version, applied_at FROM schema_migrations ORDER BY 1") == stamps


def test_a_fresh_database_applies_every_version_in_its_own_transaction(fresh_database: str, fresh_schema) -> None:
    assert [v for v, *_ in fresh_schema["migrations"]] == list(range(1, NEWEST + 1))
    # applied_at is the time its transaction began: one transaction per step, in order.
    stamps = [at for (at,) in rows(fresh_database, "SELECT applied_at FROM schema_migrations ORDER BY version")]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_schema_sql_builds_exactly_what_migrate_builds(fresh_schema) -> None:
    with empty_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((REPO / "schema.sql").read_text())
        snapshot = schema_of(url)
    for what in fresh_schema:
        if what != "migrations":    # the versions are migrate's to record
            assert snapshot[what] == fresh_schema[what], what
    assert snapshot["migrations"] == []


def test_the_snapshots_table_index_names_every_table_a_fresh_database_has(fresh_schema) -> None:
    tables = {table for table, *_ in fresh_schema["columns"]} - {"schema_migrations"}
    assert set(tables_by_migration(load_migrations())) == tables


def test_a_database_migrated_by_a_newer_watchpost_is_refused(release_1_database: str) -> None:
    url = release_1_database
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, 'from_the_future', 'x')",
                     (NEWEST + 1,))
    with pytest.raises(DatabaseNewerError, match=f"schema version {NEWEST + 1}, newer"):
        migrate(url)

    cli = subprocess.run(
        [sys.executable, "-m", "watchpost.cli", "db", "migrate"],
        env={**process_environment(), "WATCHPOST_DATABASE_URL": url},
        capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 1
    assert f"schema version {NEWEST + 1}, newer than this Watchpost knows" in cli.stderr


def test_a_failing_step_is_rolled_back_and_leaves_the_last_complete_version(release_1_database: str) -> None:
    url = release_1_database
    # A table in the way of 0002's index makes its CREATE INDEX fail after CREATE TABLEs ran.
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE events (event_id bigint, ts timestamptz)")
    with pytest.raises(Exception, match="0002_alarms failed"):
        migrate(url)
    assert rows(url, "SELECT version FROM schema_migrations") == [(1,)]
    assert rows(url, "SELECT to_regclass('alarms') IS NULL") == [(True,)]
