"""The console's base map is the deployment's own: the road network it loaded and the
region layers it loaded, through `watchpost roads load` / `watchpost region load` and a
real API process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

from simulators.jiashan_registry import DEFAULT_GEOJSON
from tests.fix_broker import process_environment

pytestmark = pytest.mark.slow

# A hamlet of four roads, nowhere near Jiashan: a two-way street with a branch, and a ramp.
HAMLET_ROADS = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"highway": "residential"},
         "geometry": {"type": "LineString", "coordinates": [[100.0, 10.0], [100.001, 10.0], [100.002, 10.0]]}},
        {"type": "Feature", "properties": {"highway": "residential"},
         "geometry": {"type": "LineString", "coordinates": [[100.001, 10.0], [100.001, 10.001]]}},
        # Two-way here (a ramp is one-way unless tagged): an import keeps only the part of the
        # network every node can reach and leave.
        {"type": "Feature", "properties": {"highway": "motorway_link", "oneway": "no"},
         "geometry": {"type": "LineString", "coordinates": [[100.002, 10.0], [100.003, 10.001]]}},
    ],
}
HAMLET_BOUNDARY = {
    "type": "Feature",
    "properties": {"name": "Hamlet", "home": True},
    "geometry": {"type": "Polygon", "coordinates": [[[99.99, 9.99], [100.01, 9.99], [100.01, 10.01], [99.99, 9.99]]]},
}


def watchpost(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**process_environment(), "WATCHPOST_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "watchpost.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def segments(doc: dict, road_class: str) -> set[frozenset[tuple[float, float]]]:
    out = set()
    for feature in doc["features"]:
        if feature["properties"]["road_class"] == road_class:
            for line in feature["geometry"]["coordinates"]:
                out |= {frozenset((tuple(a), tuple(b))) for a, b in zip(line[:-1], line[1:], strict=True)}
    return out


def test_the_map_draws_the_loaded_road_network_and_region_not_the_simulated_county(
    start_api, database_url: str, tmp_path: Path
) -> None:
    roads_file, boundary_file = tmp_path / "hamlet-roads.geojson", tmp_path / "hamlet.geojson"
    roads_file.write_bytes(orjson.dumps(HAMLET_ROADS))
    boundary_file.write_bytes(orjson.dumps(HAMLET_BOUNDARY))
    watchpost(database_url, "roads", "load", "--geojson", str(roads_file), "--min-nodes", "5")
    assert "1 features" in watchpost(database_url, "region", "load", "boundary", str(boundary_file)).stdout

    api = start_api(database_url)
    with api.client("op1") as http:
        r = http.get("/api/map")
    assert r.status_code == 200
    doc = r.json()
    assert {f["properties"]["road_class"] for f in doc["roads"]["features"]} == {"residential", "motorway"}
    assert segments(doc["roads"], "residential") == {
        frozenset({(100.0, 10.0), (100.001, 10.0)}),
        frozenset({(100.001, 10.0), (100.002, 10.0)}),
        frozenset({(100.001, 10.0), (100.001, 10.001)}),
    }
    assert segments(doc["roads"], "motorway") == {frozenset({(100.002, 10.0), (100.003, 10.001)})}
    assert [f["properties"]["name"] for f in doc["boundaries"]["features"]] == ["Hamlet"]
    assert doc["rivers"]["features"] == [] and doc["towns"]["features"] == []
    assert doc["facilities"]["type"] == "FeatureCollection"


def test_an_unknown_region_layer_is_refused_by_name(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "lakes.geojson"
    path.write_bytes(orjson.dumps(HAMLET_BOUNDARY))
    env = {**process_environment(), "WATCHPOST_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "watchpost.cli", "region", "load", "lakes", str(path)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "no region layer 'lakes'" in result.stderr


def test_the_synthetic_county_loader_also_writes_its_region_layers(database_url: str) -> None:
    out = watchpost(database_url, "roads", "load", "--synthetic-jiashan", str(DEFAULT_GEOJSON)).stdout
    assert "region layers: boundary, towns, rivers" in out
    with psycopg.connect(database_url) as conn:
        layers = dict(
            conn.execute("SELECT name, jsonb_array_length(geojson->'features') FROM region_layers").fetchall()
        )
    assert set(layers) == {"boundary", "rivers", "towns"}
    assert all(n > 0 for n in layers.values())
