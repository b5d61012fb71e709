"""Fixtures for the simulator models and the synthetic county they run in: a generated
Jiashan registry and road network, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.county import County, county_from_registry
from simulators.crew import Roads
from simulators.jiashan_registry import DEFAULT_GEOJSON, generate_registry
from simulators.jiashan_roads import JiashanNetwork, build_jiashan_network


@pytest.fixture(scope="session")
def registry_doc() -> dict:
    return generate_registry(persons=30)


@pytest.fixture(scope="session")
def county(registry_doc: dict) -> County:
    return county_from_registry(registry_doc)


@pytest.fixture(scope="session")
def geojson_path() -> Path:
    if not DEFAULT_GEOJSON.exists():
        pytest.skip(f"region boundaries not found at {DEFAULT_GEOJSON} (see simulators/data/README.md)")
    return DEFAULT_GEOJSON


@pytest.fixture(scope="session")
def jiashan(geojson_path: Path) -> JiashanNetwork:
    return build_jiashan_network(geojson_path)


@pytest.fixture(scope="session")
def roads(jiashan: JiashanNetwork) -> Roads:
    return Roads(jiashan.graph)
