"""The database connection every process opens, and the registry's version counter that
services poll to know when to re-read reference data. Schema migration is the composition
root's job (watchpost/db.py), not a service's."""

from __future__ import annotations

import orjson
import psycopg
from psycopg.types.json import set_json_loads

__all__ = ["connect", "registry_version"]


def connect(url: str, *, autocommit: bool = False, application_name: str = "watchpost") -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=autocommit, application_name=application_name, connect_timeout=10)
    # orjson parses the rule states (jsonb) several times faster than the standard library.
    set_json_loads(orjson.loads, conn)
    return conn


def registry_version(conn: psycopg.Connection) -> int:
    """Changes with every `watchpost registry load`: a cheap test of whether the registry
    must be re-read."""
    row = conn.execute("SELECT version FROM registry_version").fetchone()
    conn.commit()
    if row is None:
        raise LookupError("registry_version has no row: the database is not migrated")
    return int(row[0])
