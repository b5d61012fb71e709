"""A database with the simulated Jiashan county: generated registry, road network and the
map's region layers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from dashboard.map_layers import save_region_layer
from dispatch.store import save_road_graph
from simulators.jiashan_geo import region_layers
from simulators.jiashan_registry import DEFAULT_GEOJSON, generate_registry
from simulators.jiashan_roads import build_jiashan_network
from tests.fix_db import copy_database, template
from watchpost import registry


@pytest.fixture(scope="session")
def jiashan_registry() -> dict:
    return generate_registry(persons=6)


@pytest.fixture(scope="session")
def jiashan_network():
    return build_jiashan_network(DEFAULT_GEOJSON)


@pytest.fixture(scope="session")
def jiashan_template(jiashan_registry: dict, jiashan_network) -> Iterator[str]:
    def populate(url: str) -> None:
        with psycopg.connect(url) as conn:
            registry.load(conn, jiashan_registry)
            save_road_graph(conn, jiashan_network.graph, datetime.now(UTC))
            for name, doc in region_layers(DEFAULT_GEOJSON).items():
                save_region_layer(conn, name, doc, source="simulated Jiashan")

    with template("wp_jiashan", populate) as name:
        yield name


@pytest.fixture
def jiashan_url(jiashan_template: str) -> Iterator[str]:
    with copy_database(jiashan_template) as url:
        yield url
