"""Versioned schema migrations.

`schema.sql` is the full current schema; `migrations/NNNN_name.sql` are the steps from each
released schema to the next, numbered from 0001 (release 1, commit 4441f86, the baseline).
The database records what it has in `schema_migrations`. A fresh database gets schema.sql
and every version recorded at once; an existing one gets its missing steps in order, each in
its own transaction with its record, so a failure leaves it at the last complete version.

The pure part (`load_migrations`, `plan`, `changed_checksums`) works on lists of versions;
`apply` is the thin database part, called by `watchpost.db.migrate` under its lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

# Where the migration files are: shipped inside the package when installed from a wheel
# (`watchpost/sql_migrations`, a link to the top-level folder), else the source checkout's.
_PACKAGED_DIR = Path(__file__).resolve().parent / "sql_migrations"
_SOURCE_DIR = Path(__file__).resolve().parent.parent / "migrations"

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

# A database without schema_migrations that already has this table predates versioning: it
# was built from release 1's schema (or a later schema.sql, which the idempotent steps
# 0002-0007 tolerate), so it is recorded at the baseline and brought forward from there.
_BASELINE_VERSION = 1
_BASELINE_MARKER_TABLE = "stations"

SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    checksum    text NOT NULL           -- sha256 of the migration file as applied
)"""


class MigrationError(RuntimeError):
    """The database cannot be brought to Watchpost's schema; the message says why."""


class DatabaseNewerError(MigrationError):
    """The database records a schema version this code does not know: it was migrated by a
    newer Watchpost. Running older code against it could corrupt data, so it is refused."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


# --- pure part ---------------------------------------------------------------------------


def parse_filename(filename: str) -> tuple[int, str] | None:
    """`0002_alarms.sql` → (2, "alarms"); None for anything that is not a migration file."""
    match = _FILENAME.match(filename)
    if match is None:
        return None
    return int(match["version"]), match["name"]


def check_sequence(versions: Sequence[int]) -> None:
    """Versions must be 1, 2, … N with no gap or duplicate: a gap is a lost file."""
    expected = list(range(1, len(versions) + 1))
    if sorted(versions) != expected:
        raise MigrationError(f"migration versions must run 1..{len(versions)} without gaps, found {sorted(versions)}")


def plan(known: Sequence[int], applied: Collection[int]) -> list[int]:
    """The versions to apply, in order. Refuses a database that records a version the code
    does not know (newer, or one that was renumbered away)."""
    unknown = sorted(set(applied) - set(known))
    if unknown:
        newest_known = max(known, default=0)
        if max(unknown) > newest_known:
            raise DatabaseNewerError(
                f"the database is at schema version {max(applied)}, newer than this Watchpost knows "
                f"(up to {newest_known}): upgrade Watchpost, or restore a backup taken before the upgrade"
            )
        raise MigrationError(f"the database records schema versions this Watchpost does not have: {unknown}")
    return sorted(set(known) - set(applied))


def changed_checksums(known: Mapping[int, str], recorded: Mapping[int, str]) -> list[int]:
    """Versions whose file changed after the database applied it (worth a warning: the
    database has what the file said then, not what it says now)."""
    return sorted(v for v, checksum in recorded.items() if v in known and known[v] != checksum)


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files, ordered by version."""
    if directory is None:
        directory = _PACKAGED_DIR if _PACKAGED_DIR.is_dir() else _SOURCE_DIR
    if not directory.is_dir():
        raise MigrationError(f"no migrations folder at {directory}")
    migrations = []
    for path in directory.iterdir():
        parsed = parse_filename(path.name)
        if parsed is not None:
            migrations.append(Migration(parsed[0], parsed[1], path.read_text()))
    migrations.sort(key=lambda m: m.version)
    check_sequence([m.version for m in migrations])
    return migrations


# --- database part -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    applied: list[int]      # versions applied by this run (all of them for a fresh database)
    version: int            # the database's version now
    fresh: bool


def apply(conn: psycopg.Connection, schema_sql: str, migrations: Sequence[Migration]) -> Outcome:
    """Bring the database to the newest migration. `conn` is in autocommit mode and holds
    the migration lock; each step runs in its own transaction."""
    known = {m.version: m for m in migrations}
    newest = max(known)
    has_marker = _table_exists(conn, _BASELINE_MARKER_TABLE)
    conn.execute(SCHEMA_MIGRATIONS_DDL)
    recorded: dict[int, str] = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())

    if not recorded and not has_marker:
        with conn.transaction():
            conn.execute(schema_sql)
            for m in migrations:
                _record(conn, m)
        log.info("fresh database: schema.sql applied, recorded at version %d", newest)
        return Outcome(applied=sorted(known), version=newest, fresh=True)

    if not recorded:
        with conn.transaction():
            _record(conn, known[_BASELINE_VERSION])
        recorded = {_BASELINE_VERSION: known[_BASELINE_VERSION].checksum}
        log.info("unversioned database: recorded at the baseline, version %d", _BASELINE_VERSION)

    for version in changed_checksums({v: m.checksum for v, m in known.items()}, recorded):
        log.warning("migration %04d changed after it was applied to this database", version)

    pending = plan(sorted(known), recorded.keys())
    for version in pending:
        m = known[version]
        try:
            with conn.transaction():
                conn.execute(m.sql)
                _record(conn, m)
        except psycopg.Error as exc:
            raise MigrationError(f"migration {m.version:04d}_{m.name} failed (rolled back): {exc}") from exc
        log.info("applied migration %04d_%s", m.version, m.name)
    return Outcome(applied=pending, version=newest, fresh=False)


def _record(conn: psycopg.Connection, m: Migration) -> None:
    conn.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
        (m.version, m.name, m.checksum),
    )


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return row is not None and bool(row[0])
