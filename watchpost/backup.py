"""Backing up and restoring Watchpost's database, TimescaleDB's documented way.

A backup is pg_dump's custom format (-Fc), which TimescaleDB documents for logical backups:
hypertables, their chunks and the catalog all come along. A restore goes into an empty
database only: CREATE EXTENSION, SELECT timescaledb_pre_restore(), pg_restore,
SELECT timescaledb_post_restore() (which restarts the background jobs).

pg_dump must be the server's major version or newer (an older one refuses). The client
tools are looked for in this order: an explicit directory (`WATCHPOST_PG_BIN`); the host's
/usr/lib/postgresql/<major>/bin; the Debian root that scripts/timescaledb.sh builds
(`$WATCHPOST_HOME/timescaledb-root`), run with chroot, which needs root. The dump and the
restore stream through stdout and stdin, so no path inside that root is involved. The
password travels in PGPASSWORD, never on a command line.

This module ships in the wheel, so `watchpost db backup` and `watchpost db restore` work
wherever Watchpost is installed, not only in a source checkout. It reads no Watchpost
setting itself: the CLI passes where to look for the tools (`ToolSearch`).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import psycopg

from watchpost.outage import cause

# pg_dump's warnings about circular foreign keys between hypertables and chunks are
# expected (TimescaleDB's documentation says to ignore them); the restore orders them.
_EXPECTED_DUMP_NOISE = re.compile(
    r"circular foreign-key|consider using a full dump|to avoid this problem|^pg_dump: detail:|^pg_dump: hint:"
)
_URL_WITH_PASSWORD = re.compile(r"^(postgres(?:ql)?://)([^:@/]*)(?::([^@/]*))?@(.*)$")
# pg_dump and pg_restore of a large database take minutes, never hours on Watchpost's sizes;
# a bound keeps a hung server from holding an operator's shell (or a test) forever.
TOOL_TIMEOUT_S = 3600


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class ToolSearch:
    """Where to look for the client tools: `pg_bin` if set, then the host's, then `rootfs`
    (the local TimescaleDB root). `pg_major` set skips asking the server its version."""

    rootfs: Path
    pg_bin: str | None = None
    pg_major: int | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], home: Path) -> ToolSearch:
        """`WATCHPOST_PG_BIN`, `WATCHPOST_PG_MAJOR` and `WATCHPOST_PG_ROOTFS` (default: the
        root in Watchpost's home), as the CLI passes them."""
        major = environ.get("WATCHPOST_PG_MAJOR")
        return cls(rootfs=Path(environ.get("WATCHPOST_PG_ROOTFS") or home / "timescaledb-root"),
                   pg_bin=environ.get("WATCHPOST_PG_BIN") or None, pg_major=int(major) if major else None)


@dataclass(frozen=True)
class PgTools:
    """Where the PostgreSQL client tools of the server's major version are, and how to run
    them: `native` on this host, or `chroot` into `rootfs` (bin is then a path inside it)."""

    mode: str
    bin: str
    rootfs: Path | None = None

    def command(self, tool: str, args: Sequence[str], password: str) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run `tool args…` with the password in PGPASSWORD."""
        if self.mode == "chroot":
            assert self.rootfs is not None
            argv = ["chroot", str(self.rootfs), "/usr/bin/env", "-i", f"PATH={self.bin}:/usr/bin:/bin",
                    "LANG=C.UTF-8", f"PGPASSWORD={password}", f"{self.bin}/{tool}", *args]
            return argv, {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        return [f"{self.bin}/{tool}", *args], {**os.environ, "PGPASSWORD": password}

    def describe(self) -> str:
        return f"{self.mode} {self.bin}"


def split_url(url: str) -> tuple[str, str]:
    """The URL without its password, and the password (percent-decoded; empty if none)."""
    match = _URL_WITH_PASSWORD.match(url)
    if match is None:
        return url, os.environ.get("PGPASSWORD", "")
    scheme, user, password, rest = match.groups()
    return f"{scheme}{user}@{rest}", unquote(password or "")


def server_major(url: str) -> int:
    """The database server's major version (17 for 17.x)."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            return conn.info.server_version // 10000
    except psycopg.Error as exc:
        raise BackupError(f"cannot reach the database at {split_url(url)[0]}: {cause(exc)}") from None


def find_pg_tools(major: int, *, pg_bin: str | None, rootfs: Path) -> PgTools:
    """The client tools of PostgreSQL `major`: `pg_bin` if given, else the host's, else the
    ones inside the local TimescaleDB root (through chroot, as root only)."""
    if pg_bin:
        return PgTools("native", pg_bin)
    host_bin = f"/usr/lib/postgresql/{major}/bin"
    if os.access(f"{host_bin}/pg_dump", os.X_OK):
        return PgTools("native", host_bin)
    if os.access(rootfs / host_bin.lstrip("/") / "pg_dump", os.X_OK):
        if os.geteuid() != 0:
            raise BackupError(
                f"PostgreSQL {major} client tools are only in {rootfs}, which needs root to chroot into")
        return PgTools("chroot", host_bin, rootfs)
    raise BackupError(f"no PostgreSQL {major} client tools (pg_dump, pg_restore): "
                      f"install postgresql-client-{major} or set WATCHPOST_PG_BIN")


def _tools_for(url: str, search: ToolSearch) -> PgTools:
    return find_pg_tools(search.pg_major or server_major(url), pg_bin=search.pg_bin, rootfs=search.rootfs)


def backup(output: Path, url: str, search: ToolSearch) -> str:
    """Dump the database at `url` to `output` (pg_dump -Fc, mode 600). Written as
    `output.partial` and renamed when complete, so only a whole dump carries the final name.
    Returns a one-line summary."""
    bare_url, password = split_url(url)
    tools = _tools_for(url, search)
    started = time.monotonic()
    partial = output.with_name(output.name + ".partial")
    argv, env = tools.command("pg_dump", ["-Fc", "-d", bare_url], password)
    # A backup holds health data and password digests: readable by its owner only.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                                  timeout=TOOL_TIMEOUT_S)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    warnings = [line for line in done.stderr.decode(errors="replace").splitlines()
                if line and not _EXPECTED_DUMP_NOISE.search(line)]
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError("pg_dump failed: " + ("; ".join(warnings) or f"exit status {done.returncode}"))
    partial.replace(output)
    size_mb = output.stat().st_size / 1e6
    summary = (f"backup: {output} ({size_mb:.1f} MB, {time.monotonic() - started:.1f} s, "
               f"pg_dump from {tools.describe()})")
    return "\n".join([*warnings, summary])


def _table_count(url: str) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables "
                           "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchone()
        assert row is not None
        return int(row[0])


def _run_sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


def restore(dump: Path, url: str, search: ToolSearch) -> str:
    """Restore `dump` into the empty database at `url` (it must exist: createdb it first; its
    server needs the TimescaleDB version that was backed up). Returns a one-line summary."""
    if not os.access(dump, os.R_OK) or not dump.is_file():
        raise BackupError(f"cannot read {dump}")
    bare_url, password = split_url(url)
    tools = _tools_for(url, search)
    started = time.monotonic()
    try:
        tables = _table_count(url)
    except psycopg.Error as exc:
        raise BackupError(f"cannot reach the target database: {cause(exc)}") from None
    if tables:
        raise BackupError(f"the target database is not empty ({tables} tables): restore into a fresh one")
    _run_sql(url, "CREATE EXTENSION IF NOT EXISTS timescaledb", "SELECT timescaledb_pre_restore()")
    # Streamed through stdin, so the chroot needs no path to the file. --no-owner: the
    # restoring role owns what it restores (it may differ from the backed-up one).
    argv, env = tools.command("pg_restore", ["--no-owner", "--exit-on-error", "-d", bare_url], password)
    with dump.open("rb") as source:  # pg_restore's own messages go to our stderr as they come
        done = subprocess.run(argv, env=env, stdin=source, timeout=TOOL_TIMEOUT_S)
    if done.returncode != 0:
        try:
            _run_sql(url, "SELECT timescaledb_post_restore()")
        except psycopg.Error:
            pass  # the restore's own failure is what the operator needs to read
        raise BackupError("pg_restore failed; the target database is incomplete: drop it and start again")
    _run_sql(url, "SELECT timescaledb_post_restore()")
    return f"restore: {dump} into {bare_url} ({time.monotonic() - started:.1f} s)"
