"""How `watchpost db backup` and `restore` hand the password and find their client tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watchpost.backup import BackupError, PgTools, ToolSearch, find_pg_tools, split_url


def test_the_password_leaves_the_url_and_is_percent_decoded() -> None:
    assert split_url("postgresql://watchpost:p%40ss%3Aw@db:5432/watchpost") == (
        "postgresql://watchpost@db:5432/watchpost", "p@ss:w")
    assert split_url("postgres://watchpost@db/watchpost")[0] == "postgres://watchpost@db/watchpost"


def test_a_chrooted_tool_gets_the_password_in_its_environment_not_on_its_command_line() -> None:
    argv, env = PgTools("chroot", "/usr/lib/postgresql/17/bin", Path("/srv/root")).command(
        "pg_dump", ["-Fc", "-d", "postgresql://watchpost@db/watchpost"], "secret")
    assert argv[:2] == ["chroot", "/srv/root"] and "PGPASSWORD=secret" in argv
    assert argv[argv.index("/usr/lib/postgresql/17/bin/pg_dump"):] == [
        "/usr/lib/postgresql/17/bin/pg_dump", "-Fc", "-d", "postgresql://watchpost@db/watchpost"]
    assert "PGPASSWORD" not in env
    _, native_env = PgTools("native", "/opt/pg/bin").command("pg_dump", [], "secret")
    assert native_env["PGPASSWORD"] == "secret"


def test_an_explicit_tool_directory_wins(tmp_path: Path) -> None:
    assert find_pg_tools(17, pg_bin="/opt/pg17/bin", rootfs=tmp_path) == PgTools("native", "/opt/pg17/bin")


@pytest.mark.skipif(os.geteuid() != 0, reason="the root's tools are used as root only")
def test_the_local_timescaledb_roots_tools_are_used_through_chroot(tmp_path: Path) -> None:
    tool = tmp_path / "usr/lib/postgresql/99/bin/pg_dump"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert find_pg_tools(99, pg_bin=None, rootfs=tmp_path) == PgTools("chroot", "/usr/lib/postgresql/99/bin", tmp_path)


def test_missing_tools_name_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="install postgresql-client-99 or set WATCHPOST_PG_BIN"):
        find_pg_tools(99, pg_bin=None, rootfs=tmp_path)


def test_the_search_reads_only_what_it_is_given(tmp_path: Path) -> None:
    assert ToolSearch.from_environ({}, tmp_path) == ToolSearch(rootfs=tmp_path / "timescaledb-root")
    environ = {"WATCHPOST_PG_BIN": "/opt/pg/bin", "WATCHPOST_PG_MAJOR": "17", "WATCHPOST_PG_ROOTFS": "/srv/root"}
    assert ToolSearch.from_environ(environ, tmp_path) == ToolSearch(Path("/srv/root"), "/opt/pg/bin", 17)
