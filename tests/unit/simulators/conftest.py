"""Fixtures for the simulator models: a generated Jiashan county and its road network, built
once per session."""

from __future__ import annotations

import pytest

from dispatch.jiashan_roads import build_jiashan_network
from simulators.county import County, county_from_registry
from simulators.crew import Roads
from simulators.jiashan_registry import DEFAULT_GEOJSON, generate_registry


@pytest.fixture(scope="session")
def registry_doc() -> dict:
    return generate_registry(persons=30)


@pytest.fixture(scope="session")
def county(registry_doc: dict) -> County:
    return county_from_registry(registry_doc)


@pytest.fixture(scope="session")
def roads() -> Roads:
    return Roads(build_jiashan_network(DEFAULT_GEOJSON).graph)
