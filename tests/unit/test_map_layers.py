"""The console's base map from a loaded road network: each road drawn once, joined into
lines, grouped by class; and a document rebuilt only when what it is drawn from changed."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.map_layers import MapCache, RegionLayerError, feature_collection, road_lines

# Nodes 0-1-2-3 along a street, 2-4 a branch off it, 5-6 a one-way motorway ramp.
LAT = [30.80, 30.81, 30.82, 30.83, 30.82, 30.90, 30.91]
LON = [120.90, 120.90, 120.90, 120.90, 120.91, 121.00, 121.00]
TWO_WAY = [(0, 1), (1, 2), (2, 3), (2, 4)]
EDGES = [*TWO_WAY, *((b, a) for a, b in TWO_WAY), (5, 6)]
CLASSES = ["residential"] * 8 + ["motorway"]


def lines_of(doc, road_class):
    [feature] = [f for f in doc["features"] if f["properties"]["road_class"] == road_class]
    assert feature["geometry"]["type"] == "MultiLineString"
    return feature["geometry"]["coordinates"]


def test_each_road_class_is_one_multilinestring():
    doc = road_lines(LAT, LON, *zip(*EDGES, strict=True), CLASSES)
    assert doc["type"] == "FeatureCollection"
    assert [f["properties"]["road_class"] for f in doc["features"]] == ["motorway", "residential"]


def test_the_two_directions_of_a_two_way_road_are_drawn_once_and_joined_between_junctions():
    doc = road_lines(LAT, LON, *zip(*EDGES, strict=True), CLASSES)
    segments = sorted(
        tuple(sorted((tuple(a), tuple(b))))
        for line in lines_of(doc, "residential")
        for a, b in zip(line[:-1], line[1:], strict=True)
    )
    expected = sorted(
        tuple(sorted(((LON[a], LAT[a]), (LON[b], LAT[b])))) for a, b in TWO_WAY
    )
    assert segments == expected
    # 0-1-2 runs on through node 1 (nothing else meets there): one line; 2-3 and 2-4 branch.
    assert sorted(len(line) for line in lines_of(doc, "residential")) == [2, 2, 3]
    assert lines_of(doc, "motorway") == [[[121.0, 30.9], [121.0, 30.91]]]


def test_a_ring_road_is_one_closed_line():
    lat, lon = [30.0, 30.0, 30.1], [120.0, 120.1, 120.05]
    doc = road_lines(lat, lon, [0, 1, 2], [1, 2, 0], ["tertiary"] * 3)
    [line] = lines_of(doc, "tertiary")
    assert len(line) == 4 and line[0] == line[-1]


def test_no_road_network_is_an_empty_collection():
    assert road_lines([], [], [], [], []) == {"type": "FeatureCollection", "features": []}


def test_a_region_layer_may_be_a_feature_or_a_bare_geometry_but_must_be_geojson():
    polygon = {"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 30]]]}
    assert feature_collection(polygon)["features"][0]["geometry"] == polygon
    assert len(feature_collection({"type": "Feature", "properties": {}, "geometry": polygon})["features"]) == 1
    with pytest.raises(RegionLayerError, match="got type 'Topology'"):
        feature_collection({"type": "Topology"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_map_is_rebuilt_only_when_the_network_or_a_region_layer_changed():
    clock, version, builds = Clock(), ["v1"], []
    cache = MapCache(check_every_s=10.0, monotonic=clock)

    async def current_version():
        return version[0]

    async def build():
        builds.append(version[0])
        return f"map of {version[0]}".encode()

    async def get():
        return await cache.get(current_version, build)

    assert asyncio.run(get()) == b"map of v1"
    version[0] = "v2"
    clock.now = 9.0
    assert asyncio.run(get()) == b"map of v1"  # not asked again within the check interval
    clock.now = 11.0
    assert asyncio.run(get()) == b"map of v2"
    clock.now = 30.0
    assert asyncio.run(get()) == b"map of v2"
    assert builds == ["v1", "v2"]


def _boundary(*props: dict) -> dict:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": p, "geometry": square} for p in props]}


def test_the_boundary_feature_of_the_countys_adcode_is_marked_home() -> None:
    from dashboard.map_layers import mark_home

    doc = mark_home(_boundary({"name": "雷山县", "adcode": 522634}, {"name": "台江县", "adcode": 522630}), "522634")
    assert [f["properties"].get("home") for f in doc["features"]] == [True, None]


def test_a_one_feature_boundary_is_home_and_a_file_that_marks_one_is_kept() -> None:
    from dashboard.map_layers import mark_home

    assert mark_home(_boundary({"name": "x"}), "522634")["features"][0]["properties"]["home"] is True
    marked = _boundary({"name": "a", "adcode": "522634"}, {"name": "b", "home": True})
    assert [f["properties"].get("home") for f in mark_home(marked, "522634")["features"]] == [None, True]
    assert [f["properties"].get("home") for f in mark_home(_boundary({"name": "a"}, {"name": "b"}), "")["features"]] == [None, None]
