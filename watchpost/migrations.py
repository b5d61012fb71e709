"""Versioned schema migrations: the one source of Watchpost's schema.

`migrations/NNNN_name.sql` are the steps from each released schema to the next, numbered
from 0001 (release 1, commit 4441f86, the whole schema of that release). The database
records what it has in `schema_migrations`. Every database, fresh or existing, gets its
missing steps in order, each in its own transaction with its record, so a failure leaves it
at the last complete version; a fresh database simply starts from 0001. A database from
before versioning is recorded at 0001 and brought forward from there.

`schema.sql` at the repository root is not applied by anything: it is a snapshot for
readers, generated from the migrations by `render_schema` (`watchpost db schema >
schema.sql`), and a unit test fails when it is not current.

The pure part (`load_migrations`, `plan`, `changed_checksums`, `render_schema`) works on
lists of versions and files; `apply` is the thin database part, called by
`watchpost.db.migrate` under its lock.
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
# was built from release 1's schema (or from a later full schema, which the idempotent steps
# 0002-0007 tolerate), so it is recorded at the baseline and brought forward from there.
_BASELINE_VERSION = 1
_BASELINE_MARKER_TABLE = "stations"

# Checksums a migration file had before a correction of its comments alone: a database that
# recorded one of them has exactly the schema the file builds now, so it is not warned about.
# 0001's header said that fresh databases skipped it, until they started applying it.
_EARLIER_CHECKSUMS: Mapping[int, frozenset[str]] = {
    1: frozenset({"f71fa40337a2c0c71375248dedbd2e0937ab0e33fbb760460677b33eceba6b1c"}),
}

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


def changed_checksums(
    known: Mapping[int, str], recorded: Mapping[int, str], earlier: Mapping[int, Collection[str]] | None = None
) -> list[int]:
    """Versions whose file changed after the database applied it (worth a warning: the
    database has what the file said then, not what it says now). `earlier` holds checksums
    a file had before a comment-only correction; recording one of them is no change."""
    earlier = earlier or {}
    return sorted(
        v for v, checksum in recorded.items()
        if v in known and known[v] != checksum and checksum not in earlier.get(v, ())
    )


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


# How schema.sql is regenerated; named in the file's header and in the test that keeps it current.
REGENERATE_COMMAND = "watchpost db schema > schema.sql"

_STATEMENTS_ON_TABLES = re.compile(
    r"""\b(?:
        (?P<create>CREATE \s+ (?:UNLOGGED \s+)? TABLE \s+ (?:IF \s+ NOT \s+ EXISTS \s+)?)
      | (?P<alter>ALTER \s+ TABLE \s+ (?:IF \s+ EXISTS \s+)? (?:ONLY \s+)?)
      | (?P<index>CREATE \s+ (?:UNIQUE \s+)? INDEX \s+ (?:CONCURRENTLY \s+)? (?:IF \s+ NOT \s+ EXISTS \s+)?
                  \w+ \s+ ON \s+ (?:ONLY \s+)?)
      | (?P<drop>DROP \s+ TABLE \s+ (?:IF \s+ EXISTS \s+)?)
    )(?P<table>\w+)""",
    re.IGNORECASE | re.VERBOSE,
)


def tables_by_migration(migrations: Sequence[Migration]) -> dict[str, list[int]]:
    """Each table the migrations leave, with the versions that create and then change it
    (columns, constraints, indexes), in order. Comments are ignored; a dropped table is left
    out. schema.sql's header lists it so that a reader finds a table's whole story."""
    history: dict[str, list[int]] = {}
    for m in migrations:
        code = "\n".join(line.split("--", 1)[0] for line in m.sql.splitlines())
        for match in _STATEMENTS_ON_TABLES.finditer(code):
            table = match["table"].lower()
            if match["drop"]:
                history.pop(table, None)
            elif match["create"] or table in history:
                versions = history.setdefault(table, [])
                if m.version not in versions:
                    versions.append(m.version)
    return dict(sorted(history.items()))


def render_schema(migrations: Sequence[Migration]) -> str:
    """schema.sql: a snapshot of the schema for readers, generated from the migrations. A
    header (what the file is, how to regenerate it, where each table is defined), then the
    `schema_migrations` table that migrate creates itself and every migration's text under a
    banner, in order. Applied to an empty database it builds what `migrate` builds, without
    the version records."""
    tables = tables_by_migration(migrations)
    width = max(len(name) for name in ["table", *tables])
    header = [
        f"-- Watchpost's database schema, GENERATED from migrations/ by `{REGENERATE_COMMAND}`:",
        "-- do not edit. To change the schema, add a migrations/NNNN_name.sql and regenerate.",
        "--",
        "-- `watchpost db migrate` applies the migrations below in order, each in its own",
        "-- transaction with its record in schema_migrations; a fresh database gets them all. Read",
        "-- together they are the current schema: each table is created by one migration and may",
        "-- be changed by later ones (see watchpost/migrations.py and docs/operations.md).",
        "--",
        f"-- {'table'.ljust(width)}  created in, then changed by",
    ]
    header += [
        f"-- {table.ljust(width)}  {', '.join(f'{v:04d}' for v in versions)}"
        for table, versions in tables.items()
    ]
    sections = [
        "\n".join(header),
        "-- ==== schema_migrations (created by `watchpost db migrate` itself) ====\n"
        + SCHEMA_MIGRATIONS_DDL.strip() + ";",
    ]
    sections += [f"-- ==== {m.version:04d}_{m.name} ====\n{m.sql.strip()}" for m in migrations]
    return "\n\n".join(sections) + "\n"


# --- database part -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    applied: list[int]      # versions applied by this run (all of them for a fresh database)
    version: int            # the database's version now
    fresh: bool


def apply(conn: psycopg.Connection, migrations: Sequence[Migration]) -> Outcome:
    """Bring the database to the newest migration. `conn` is in autocommit mode and holds
    the migration lock; each step runs in its own transaction."""
    known = {m.version: m for m in migrations}
    newest = max(known)
    has_marker = _table_exists(conn, _BASELINE_MARKER_TABLE)
    conn.execute(SCHEMA_MIGRATIONS_DDL)
    recorded: dict[int, str] = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
    fresh = not recorded and not has_marker

    if not recorded and has_marker:
        with conn.transaction():
            _record(conn, known[_BASELINE_VERSION])
        recorded = {_BASELINE_VERSION: known[_BASELINE_VERSION].checksum}
        log.info("unversioned database: recorded at the baseline, version %d", _BASELINE_VERSION)

    for version in changed_checksums({v: m.checksum for v, m in known.items()}, recorded, _EARLIER_CHECKSUMS):
        log.warning("migration %04d changed after it was applied to this database", version)

    pending = plan(sorted(known), recorded.keys())
    if fresh:
        log.info("fresh database: applying every migration, 0001 to %04d", newest)
    for version in pending:
        m = known[version]
        try:
            with conn.transaction():
                conn.execute(m.sql)
                _record(conn, m)
        except psycopg.Error as exc:
            raise MigrationError(f"migration {m.version:04d}_{m.name} failed (rolled back): {exc}") from exc
        log.info("applied migration %04d_%s", m.version, m.name)
    return Outcome(applied=pending, version=newest, fresh=fresh)


def _record(conn: psycopg.Connection, m: Migration) -> None:
    conn.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
        (m.version, m.name, m.checksum),
    )


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return row is not None and bool(row[0])
