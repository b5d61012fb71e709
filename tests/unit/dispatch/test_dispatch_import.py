"""Loading real road networks: GeoJSON lines and OSM XML, on small hand-written fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.eta import eta_to, route
from dispatch.road_import import (
    RoadImportError,
    graph_from_geojson,
    graph_from_osm_xml,
    load_geojson,
    load_osm_xml,
    parse_maxspeed,
    parse_oneway,
)
from dispatch.roads import ROAD_CLASSES

FIXTURES = Path(__file__).parent / "fixtures"


def edges_of(graph):
    """{(from node_id, to node_id): (class, speed)} for readable assertions."""
    return {
        (int(graph.node_id[u]), int(graph.node_id[v])): (ROAD_CLASSES[c], float(s))
        for u, v, c, s in zip(
            graph.edge_from, graph.edge_to, graph.road_class, graph.speed_kmh, strict=True
        )
    }


def node_at(graph, lat, lon):
    return graph.snap(lat, lon).node


def test_geojson_lines_that_share_a_coordinate_share_a_node():
    graph = load_geojson(FIXTURES / "roads-small.geojson")
    assert graph.n_nodes == 8  # A..F and the two motorway ends; the footway added none
    assert graph.n_edges == 13  # 4 primary, 1 one-way, 4 track, 1 service, 2 tertiary, 1 motorway
    a, b, c = (node_at(graph, 30.850, lon) for lon in (120.900, 120.902, 120.904))
    d, e, f = (
        node_at(graph, 30.852, 120.904),
        node_at(graph, 30.852, 120.902),
        node_at(graph, 30.852, 120.900),
    )
    assert graph.travel_s_between(a, b) == pytest.approx(
        191.2 / (50 / 3.6), rel=0.01
    )  # maxspeed 50
    assert graph.travel_s_between(c, d) < float("inf") == graph.travel_s_between(d, c)  # oneway=yes
    assert graph.travel_s_between(f, e) < float("inf") == graph.travel_s_between(e, f)  # oneway=-1
    assert graph.travel_s_between(a, e) == float("inf")  # the footway is not a road
    assert graph.travel_s_between(f, a) == pytest.approx(
        222.4 / (30 * 1.609344 / 3.6), rel=0.01
    )  # 30 mph
    assert graph.travel_s_between(d, e) == pytest.approx(
        191.2 / (15 / 3.6), rel=0.01
    )  # fclass track, no maxspeed


def test_a_geojson_motorway_is_one_way_unless_tagged_otherwise():
    graph = load_geojson(FIXTURES / "roads-small.geojson")
    west, east = node_at(graph, 30.850, 120.906), node_at(graph, 30.850, 120.910)
    assert graph.travel_s_between(west, east) < float("inf") == graph.travel_s_between(east, west)


def test_geojson_routes_follow_one_way_streets():
    graph = load_geojson(FIXTURES / "roads-small.geojson")
    a, d = node_at(graph, 30.850, 120.900), node_at(graph, 30.852, 120.904)
    # a -> d may use the one-way C->D; d -> a must go D-E-B-A or D-E-F-A.
    assert route(graph, a, d)[-2:] == [node_at(graph, 30.850, 120.904), d]
    assert node_at(graph, 30.852, 120.902) in route(graph, d, a)


def test_a_geojson_feature_without_a_class_gets_the_default():
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[120.9, 30.85], [120.91, 30.85]],
                },
            },
        ],
    }
    assert set(edges_of(graph_from_geojson(doc, default_class="tertiary")).values()) == {
        ("tertiary", 40.0)
    }


def test_a_document_that_is_not_a_feature_collection_is_refused():
    with pytest.raises(RoadImportError, match="expected a GeoJSON FeatureCollection"):
        graph_from_geojson({"type": "Feature"})
    bad = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"highway": "primary"},
                "geometry": {"type": "LineString", "coordinates": [[120.9], [120.91, 30.85]]},
            },
        ],
    }
    with pytest.raises(
        RoadImportError, match=r"features\[0\]: coordinate \[120.9\] is not \[lon, lat\]"
    ):
        graph_from_geojson(bad)


def test_osm_xml_keeps_drivable_ways_with_their_ids_directions_and_speeds():
    graph = load_osm_xml(FIXTURES / "roads-small.osm")
    assert sorted(graph.node_id.tolist()) == [1, 2, 3, 4, 5, 6, 7]  # 8 is on no way, 99 is missing
    assert edges_of(graph) == {
        (1, 2): ("primary", 60.0),
        (2, 1): ("primary", 60.0),
        (2, 3): ("primary", 60.0),
        (3, 2): ("primary", 60.0),
        (3, 4): ("residential", 30.0),  # oneway=yes
        (5, 4): ("residential", 30.0),  # unclassified village road, oneway=-1
        (5, 6): ("service", 20.0),
        (6, 5): ("service", 20.0),  # cut where it meets the missing node 99
        (6, 7): ("tertiary", 40.0),
        (7, 6): ("tertiary", 40.0),  # the roundabout
    }


def test_osm_xml_from_bytes_gives_the_same_graph_as_from_a_file():
    from_file = load_osm_xml(FIXTURES / "roads-small.osm")
    from_bytes = graph_from_osm_xml((FIXTURES / "roads-small.osm").read_bytes())
    assert edges_of(from_file) == edges_of(from_bytes)
    node = int(from_bytes.snap(30.852, 120.904).node)
    assert from_bytes.node_id[node] == 4
    assert eta_to(from_bytes, node).seconds[from_bytes.snap(30.85, 120.90).node] > 0


def test_broken_osm_xml_is_refused_with_the_parser_message():
    with pytest.raises(RoadImportError, match="not a readable OSM XML extract"):
        graph_from_osm_xml(b"<osm><node id='1' lat='x' lon='120'/></osm>")
    with pytest.raises(RoadImportError, match="not a readable OSM XML extract"):
        graph_from_osm_xml("<osm><way>")


@pytest.mark.parametrize(
    ("raw", "kmh"),
    [
        ("60", 60.0),
        ("60 km/h", 60.0),
        ("40kmh", 40.0),
        ("30 mph", 48.28032),
        ("50;60", 50.0),
        (80, 80.0),
        ("CN:urban", None),
        ("none", None),
        ("walk", None),
        ("0", None),
        (None, None),
        (True, None),
    ],
)
def test_maxspeed_is_read_in_kmh_or_left_to_the_class_default(raw, kmh):
    assert parse_maxspeed(raw) == (pytest.approx(kmh) if kmh else None)


@pytest.mark.parametrize(
    ("raw", "highway", "junction", "direction"),
    [
        ("yes", "residential", None, 1),
        ("true", "residential", None, 1),
        ("1", "primary", None, 1),
        ("-1", "residential", None, -1),
        ("reverse", "residential", None, -1),
        ("no", "motorway", None, 0),
        (None, "motorway", None, 1),
        (None, "motorway_link", None, 1),
        (None, "tertiary", "roundabout", 1),
        (None, "primary", None, 0),
        ("F", "primary", None, 1),
        ("T", "primary", None, -1),
        ("B", "primary", None, 0),
    ],
)
def test_oneway_follows_osm_and_geofabrik_conventions(raw, highway, junction, direction):
    assert parse_oneway(raw, highway, junction) == direction


def test_waterways_in_an_osm_extract_become_the_graph_s_water_lines():
    from dispatch.road_import import graph_from_osm_xml

    xml = """<osm>
      <node id="1" lat="30.850" lon="120.900"/><node id="2" lat="30.850" lon="120.910"/>
      <node id="3" lat="30.849" lon="120.895"/><node id="4" lat="30.851" lon="120.915"/><node id="5" lat="30.852" lon="120.920"/>
      <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
      <way id="11"><nd ref="3"/><nd ref="4"/><nd ref="5"/><tag k="waterway" v="canal"/></way>
      <way id="12"><nd ref="3"/><nd ref="5"/><tag k="waterway" v="ditch"/></way>
    </osm>"""
    graph = graph_from_osm_xml(xml)
    assert graph.n_water_segments == 2
    assert graph.water[0].tolist() == [30.849, 120.895, 30.851, 120.915]


def test_waterways_in_geojson_become_water_lines_and_not_roads():
    from dispatch.road_import import graph_from_geojson

    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"highway": "residential"},
         "geometry": {"type": "LineString", "coordinates": [[120.90, 30.85], [120.91, 30.85]]}},
        {"type": "Feature", "properties": {"waterway": "river"},
         "geometry": {"type": "LineString", "coordinates": [[120.90, 30.849], [120.91, 30.851]]}},
    ]}
    graph = graph_from_geojson(doc)
    assert graph.n_edges == 2 and graph.n_water_segments == 1
