"""A pg_dump -Fc backup of a TimescaleDB database restores, with TimescaleDB's documented
steps, into a fresh database that has every row and takes ingest again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_db import count, empty_database
from tests.fix_wait import wait_for

pytestmark = pytest.mark.slow

WATCHPOST = Path(sys.executable).parent / "watchpost"

# Readings over several chunks of every telemetry hypertable, and some dead letters.
TELEMETRY = """
INSERT INTO water_readings (station_id, ts, seq, ph, do_mg_l)
    SELECT 'WS-00' || (1 + i % 2), now() - i * INTERVAL '1 minute', i, 7.2, 6.1 FROM generate_series(1, 60000) AS i;
INSERT INTO wearable_readings (person_id, ts, hr_bpm, spo2_pct)
    SELECT 'P-0001', now() - i * INTERVAL '1 minute', 70, 97 FROM generate_series(1, 10000) AS i;
INSERT INTO unit_positions (unit_id, ts, lat, lon)
    SELECT 'AMB-01', now() - i * INTERVAL '5 seconds', 30.85, 120.92 FROM generate_series(1, 5000) AS i;
INSERT INTO dead_letters (received_at, topic, payload, reason, detail)
    SELECT now() - i * INTERVAL '1 hour', 'x/water/WS-001/telemetry', '\\x00', 'not_json', 'test' FROM generate_series(1, 50) AS i;
"""


def hypertable_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        names = [n for (n,) in conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1").fetchall()]
        return {n: conn.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    with empty_database("wp_restore") as url:
        yield url


def watchpost(*args: str, database_url: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | ({"WATCHPOST_DATABASE_URL": database_url} if database_url else {})
    done = subprocess.run([str(WATCHPOST), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 or not check, done.stderr
    return done


def test_a_backup_restores_every_row_and_ingest_resumes_on_it(
    database_url: str, empty_database_url: str, tmp_path: Path, start_ingest, publisher: Publisher
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(TELEMETRY)
    before = hypertable_counts(database_url)
    assert before["water_readings"] == 60000
    dump = tmp_path / "watchpost.dump"

    started = time.monotonic()
    backed_up = watchpost("db", "backup", str(dump), database_url=database_url)
    backup_s = time.monotonic() - started
    started = time.monotonic()
    watchpost("db", "restore", str(dump), empty_database_url)
    restore_s = time.monotonic() - started
    print(f"\nbackup {dump.stat().st_size / 1e6:.1f} MB in {backup_s:.1f} s, restore {restore_s:.1f} s "
          f"({sum(before.values())} hypertable rows); {backed_up.stderr.strip()}")

    restored = empty_database_url
    assert hypertable_counts(restored) == before
    assert count(restored, "SELECT count(*) FROM stations") == count(database_url, "SELECT count(*) FROM stations")
    assert count(restored, "SELECT max(version) FROM schema_migrations") == count(
        database_url, "SELECT max(version) FROM schema_migrations")
    assert count(restored, "SELECT count(*) FROM timescaledb_information.chunks") == count(
        database_url, "SELECT count(*) FROM timescaledb_information.chunks")

    start_ingest(db_url=restored)
    payload = orjson.dumps({"ts": time.time() - 1, "ph": 6.9, "do_mg_l": 5.5})
    publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/water/WS-001/telemetry", payload)])
    wait_for(lambda: count(restored, "SELECT count(*) FROM water_readings") == before["water_readings"] + 1)
    assert count(restored, "SELECT count(*) FROM water_readings WHERE ph = 6.9") == 1


def test_a_restore_into_a_database_that_has_tables_is_refused(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "watchpost.dump"
    watchpost("db", "backup", str(dump), database_url=database_url)
    assert dump.stat().st_mode & 0o077 == 0, "a backup holds health data: its owner's only"
    done = watchpost("db", "restore", str(dump), database_url, check=False)
    assert done.returncode == 1
    assert "not empty" in done.stderr
