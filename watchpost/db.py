"""Schema migration: bringing a database to the newest schema. Run by the command line
(`watchpost db migrate`), the tests and the benchmarks; services only connect (kernel.db)."""

from __future__ import annotations

import logging

import psycopg

from kernel.db import connect
from watchpost import migrations
from watchpost.migrations import MigrationError

__all__ = ["MigrationError", "migrate"]

log = logging.getLogger(__name__)

# Hypertables that get columnstore compression where the server's TimescaleDB edition
# allows it (license 'timescale'). The Apache edition refuses compression, so there it is
# skipped: data stays uncompressed and retention alone bounds its size.
_COMPRESSIBLE = {
    "water_readings": "station_id",
    "wearable_readings": "person_id",
    "home_events": "person_id",
    "unit_positions": "unit_id",
    "unit_status_reports": "unit_id",
}


def migrate(url: str) -> str:
    """Bring the schema to the newest version (every migration on a fresh database, the
    missing ones on an existing one; see watchpost/migrations.py). Returns the TimescaleDB
    license found. Raises MigrationError, DatabaseNewerError for a database migrated by a
    newer Watchpost."""
    steps = migrations.load_migrations()
    with connect(url, autocommit=True, application_name="watchpost-migrate") as conn:
        available = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available is None:
            raise MigrationError(
                "the database server has no TimescaleDB extension: run scripts/timescaledb.sh start, "
                "or point WATCHPOST_DATABASE_URL at a server with TimescaleDB >= 2.19"
            )
        # Serialise concurrent migrations (several processes starting at once).
        conn.execute("SELECT pg_advisory_lock(hashtext('watchpost-migrate'))")
        try:
            outcome = migrations.apply(conn, steps)
            row = conn.execute("SHOW timescaledb.license").fetchone()
            license_ = str(row[0]) if row else "unknown"
            if license_ == "timescale":
                _enable_compression(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('watchpost-migrate'))")
    log.info(
        "schema at version %d, applied %s (TimescaleDB license %s)",
        outcome.version, ", ".join(f"{v:04d}" for v in outcome.applied) or "nothing", license_,
    )
    return license_


def _enable_compression(conn: psycopg.Connection) -> None:
    """Columnstore compression of chunks older than a week. Untested here: the machines
    this project is tested on run the Apache edition (see docs/storage.md)."""
    for table, segment_by in _COMPRESSIBLE.items():
        conn.execute(
            f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segment_by}')"
        )
        conn.execute(f"SELECT add_compression_policy('{table}', INTERVAL '7 days', if_not_exists => TRUE)")
