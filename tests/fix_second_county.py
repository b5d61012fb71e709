"""A second county, not the simulated demo: Leishan (tests/fixtures/second_county), loaded
from scratch into an empty database with the operator's commands, and the region settings
that name it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fix_broker import process_environment
from tests.fix_db import _server_url, copy_database, empty_database

SECOND_COUNTY = Path(__file__).resolve().parent / "fixtures" / "second_county"
# Its region settings, by name (a dispatcher fixture's keyword arguments: region__name_zh=…)…
SECOND_REGION = {
    "name_zh": "雷山", "name_en": "Leishan", "adcode": "522634", "cap_sender": "watchpost@leishan.example",
    "centre_lat": "26.44", "centre_lon": "108.12", "zoom": "10", "boundary_file": str(SECOND_COUNTY / "boundary.geojson"),
}
# …and as a process's environment.
SECOND_REGION_ENV = {f"WATCHPOST_REGION__{k.upper()}": v for k, v in SECOND_REGION.items()}


def watchpost(database_url: str, *args: str) -> str:
    """A `watchpost` command for the second county; its output, or the test fails with its error."""
    env = {**process_environment(), **SECOND_REGION_ENV, "WATCHPOST_DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "watchpost.cli", *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"watchpost {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def second_county_template() -> Iterator[str]:
    """An empty database, set up once as a county's IT team would — migrate, registry,
    roads, boundary — then closed to sessions so each test gets a copy."""
    with empty_database("wp_second_county") as url:
        watchpost(url, "db", "migrate")
        watchpost(url, "registry", "load", str(SECOND_COUNTY / "registry.yaml"))
        # A test county of 11 road nodes: below the default minimum a real county's file must reach.
        roads = watchpost(url, "roads", "load", "--osm", str(SECOND_COUNTY / "roads.osm"), "--min-nodes", "10")
        assert "road network: 11 nodes" in roads
        # No file: the region's boundary_file; no feature marked home: the one of its adcode.
        assert "home area: 雷山县" in watchpost(url, "region", "load", "boundary")
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        # As fix_db's templates: closed to new sessions (TimescaleDB's scheduler keeps one).
        with psycopg.connect(_server_url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        yield str(name)


@pytest.fixture
def second_county_url(second_county_template: str) -> Iterator[str]:
    with copy_database(second_county_template) as url:
        yield url
