"""A database with the simulated Jiashan county: generated registry and road network."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from dispatch.jiashan_roads import build_jiashan_network
from dispatch.store import save_road_graph
from simulators.jiashan_registry import DEFAULT_GEOJSON, generate_registry
from tests.fix_db import _server_url, _with_dbname
from watchpost import registry
from watchpost.db import migrate


@pytest.fixture(scope="session")
def jiashan_registry() -> dict:
    return generate_registry(persons=6)


@pytest.fixture(scope="session")
def jiashan_network():
    return build_jiashan_network(DEFAULT_GEOJSON)


@pytest.fixture(scope="session")
def jiashan_template(jiashan_registry: dict, jiashan_network) -> Iterator[str]:
    server = _server_url()
    name = f"wp_jiashan_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(server, name)
    migrate(url)
    with psycopg.connect(url) as conn:
        registry.load(conn, jiashan_registry)
        save_road_graph(conn, jiashan_network.graph)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def jiashan_url(jiashan_template: str) -> Iterator[str]:
    from tests.fix_db import copy_database

    with copy_database(jiashan_template) as url:
        yield url
