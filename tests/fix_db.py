"""A real TimescaleDB for tests: one migrated template database per session, and a fresh
copy of it for every test that asks for `database_url`."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from watchpost import registry
from watchpost.db import migrate

SMALL_REGISTRY = Path(__file__).parent / "fixtures" / "registry-small.yaml"


def _server_url() -> str:
    url = os.environ.get("WATCHPOST_TEST_DATABASE_URL") or os.environ.get("WATCHPOST_DATABASE_URL")
    if not url:
        pytest.exit("set WATCHPOST_DATABASE_URL (make test does: it starts TimescaleDB first)", returncode=2)
    return url


def _with_dbname(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@contextmanager
def template(prefix: str, populate: Callable[[str], None]) -> Iterator[str]:
    """A migrated database filled by `populate(url)`, closed to sessions so that it can be
    copied; dropped afterwards. Yields its name."""
    server = _server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_dbname(server, name)
        migrate(url)
        populate(url)
        with psycopg.connect(server, autocommit=True) as conn:
            # TimescaleDB's scheduler keeps a session in every database with the extension,
            # and a template must have none to be copied: close it to new sessions.
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        yield name
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    def populate(url: str) -> None:
        with psycopg.connect(url) as conn:
            registry.load(conn, registry.read_document(SMALL_REGISTRY))

    with template("wp_template", populate) as name:
        yield name


@contextmanager
def empty_database(prefix: str = "wp_empty") -> Iterator[str]:
    """A new database with nothing in it (no TimescaleDB yet); dropped afterwards."""
    server = _server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def copy_database(template: str) -> Iterator[str]:
    """A fresh database copied from a template; dropped afterwards."""
    server = _server_url()
    name = f"wp_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        for _ in range(50):
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except psycopg.errors.ObjectInUse:  # a scheduler session still closing
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (template,))
                time.sleep(0.1)
    try:
        yield _with_dbname(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(template_database: str) -> Iterator[str]:
    """A fresh database with the schema and the small test registry loaded."""
    with copy_database(template_database) as url:
        yield url


def count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]
