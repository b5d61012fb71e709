"""What of an imported network dispatch routes on: the largest strongly connected part,
what was dropped, and the networks refused outright. Also the PBF reader and progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from dispatch import road_import
from dispatch.road_components import UnroutableNetwork, keep_largest_component, routable
from dispatch.road_import import graph_from_geojson, graph_from_osm_xml, load_osm_pbf
from dispatch.roads import RoadGraph


def line(a: tuple[float, float], b: tuple[float, float], **props: object) -> dict:
    return {"type": "Feature", "properties": {"highway": "residential", **props},
            "geometry": {"type": "LineString", "coordinates": [[a[1], a[0]], [b[1], b[0]]]}}


def grid(n: int, *, lat0: float = 30.83, lon0: float = 120.92, step: float = 0.002, **props: object) -> list[dict]:
    """An n x n grid of two-way streets."""
    features = []
    for i in range(n):
        for j in range(n):
            here = (lat0 + i * step, lon0 + j * step)
            if i + 1 < n:
                features.append(line(here, (lat0 + (i + 1) * step, lon0 + j * step), **props))
            if j + 1 < n:
                features.append(line(here, (lat0 + i * step, lon0 + (j + 1) * step), **props))
    return features


def collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": features}


def test_a_one_way_dead_end_and_an_island_are_dropped_and_counted() -> None:
    features = grid(3)
    features.append(line((30.83, 120.92), (30.82, 120.92), oneway="yes"))  # in, never out
    features.append(line((30.90, 121.00), (30.90, 121.01)))  # an island
    graph = graph_from_geojson(collection(features))
    pruned = keep_largest_component(graph)
    assert (graph.n_nodes, pruned.graph.n_nodes) == (12, 9)
    assert (pruned.dropped_nodes, pruned.dropped_edges) == (3, 3)
    assert pruned.components == 3
    # Every node of what is kept reaches every other.
    assert connected_components(pruned.graph.forward, directed=True, connection="strong")[0] == 1


def test_a_connected_network_is_kept_whole_with_its_source_ids() -> None:
    graph = graph_from_osm_xml(
        '<osm><node id="7" lat="30.0" lon="120.0"/><node id="9" lat="30.001" lon="120.0"/>'
        '<way id="1"><nd ref="7"/><nd ref="9"/><tag k="highway" v="primary"/></way></osm>'
    )
    pruned = keep_largest_component(graph)
    assert pruned.graph is graph and pruned.dropped_nodes == 0
    assert sorted(pruned.graph.node_id.tolist()) == [7, 9]


def test_a_file_with_no_drivable_road_is_refused() -> None:
    footpaths = collection([line((30.0, 120.0), (30.01, 120.0), highway="footway")])
    with pytest.raises(UnroutableNetwork, match="no drivable road"):
        routable(graph_from_geojson(footpaths))


def test_a_network_whose_connected_part_is_too_small_is_refused() -> None:
    with pytest.raises(UnroutableNetwork, match="has 9 nodes .* at least 50 are needed"):
        routable(graph_from_geojson(collection(grid(3))))
    assert routable(graph_from_geojson(collection(grid(3))), min_nodes=9).graph.n_nodes == 9


def test_an_empty_graph_is_refused() -> None:
    empty = RoadGraph.from_edges([], [], [], [], [], np.array([], dtype=np.int8))
    with pytest.raises(UnroutableNetwork):
        routable(empty)


OSM_XML = """<?xml version="1.0"?>
<osm version="0.6">
  <node id="1" lat="30.8300" lon="120.9200" version="1"/>
  <node id="2" lat="30.8310" lon="120.9200" version="1"/>
  <node id="3" lat="30.8310" lon="120.9210" version="1"/>
  <node id="4" lat="30.8320" lon="120.9210" version="1"/>
  <node id="5" lat="30.8330" lon="120.9210" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="primary"/><tag k="maxspeed" v="60"/></way>
  <way id="11" version="1"><nd ref="3"/><nd ref="4"/><tag k="highway" v="residential"/><tag k="oneway" v="yes"/></way>
  <way id="12" version="1"><nd ref="4"/><nd ref="5"/><tag k="highway" v="footway"/></way>
  <way id="13" version="1"><nd ref="2"/><nd ref="4"/><tag k="waterway" v="river"/></way>
</osm>
"""


def test_a_pbf_extract_reads_as_its_xml_does(tmp_path: Path) -> None:
    osmium = pytest.importorskip("osmium")
    xml = tmp_path / "county.osm"
    xml.write_text(OSM_XML)
    pbf = tmp_path / "county.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    from_xml, from_pbf = road_import.load_osm(xml), road_import.load_osm(pbf)
    assert from_pbf.n_nodes == from_xml.n_nodes == 4 and from_pbf.n_edges == from_xml.n_edges == 5
    order_x, order_p = np.argsort(from_xml.node_id), np.argsort(from_pbf.node_id)
    assert from_pbf.node_id[order_p].tolist() == from_xml.node_id[order_x].tolist() == [1, 2, 3, 4]
    assert np.allclose(from_pbf.lat[order_p], from_xml.lat[order_x])
    assert sorted(from_pbf.speed_kmh.tolist()) == sorted(from_xml.speed_kmh.tolist())
    assert from_pbf.water.shape == from_xml.water.shape == (1, 4)


def test_a_file_that_is_not_pbf_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("osmium")
    bad = tmp_path / "county.osm.pbf"
    bad.write_bytes(b"not a pbf at all")
    with pytest.raises(road_import.RoadImportError, match="not a readable OSM PBF extract"):
        load_osm_pbf(bad)


def test_a_long_import_says_how_far_it_got(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(road_import, "PROGRESS_EVERY", 3)
    said: list[str] = []
    graph_from_osm_xml(OSM_XML, progress=said.append)
    assert said == ["read 3 nodes and 0 drivable ways", "read 5 nodes and 1 drivable ways", "read 5 nodes and 2 drivable ways"]
