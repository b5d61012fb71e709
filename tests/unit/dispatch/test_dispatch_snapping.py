"""Snapping onto road edges, never across water, and the ETAs that follow from it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dispatch.eta import ACCESS_SPEED_KMH, eta_to
from dispatch.roads import RoadGraph
from dispatch.snapping import scene_field, snap_to_edge


def latlon(plane, x, y):
    lat, lon = plane.to_latlon([float(x)], [float(y)])
    return float(lat[0]), float(lon[0])


def with_water(graph: RoadGraph, plane, *lines) -> RoadGraph:
    segments = []
    for line in lines:
        for (x0, y0), (x1, y1) in zip(line, line[1:]):
            segments.append([*latlon(plane, x0, y0), *latlon(plane, x1, y1)])
    return dataclasses.replace(graph, water=np.array(segments))


def test_a_point_beside_a_long_road_snaps_onto_the_road_not_its_far_junction(make_graph, plane):
    graph, at = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "residential")])
    snap = snap_to_edge(graph, *latlon(plane, 400, 30))
    assert {snap.u, snap.v} == {at["a"], at["b"]}
    assert snap.distance_m == pytest.approx(30.0, abs=0.5)
    assert graph.snap(*latlon(plane, 400, 30)).distance_m > 390  # what node snapping would say
    place = snap.t if snap.u == at["a"] else 1 - snap.t
    assert place == pytest.approx(0.4, abs=0.002)


def test_a_scene_is_never_snapped_across_a_river(make_graph, plane):
    # The near road is across the river, 40 m away; the home's own lane is 120 m away.
    graph, at = make_graph(
        {"a": (0, 0), "b": (1000, 0), "c": (0, 160), "d": (1000, 160)},
        [("a", "b", "residential"), ("c", "d", "residential")],
    )
    graph = with_water(graph, plane, [(-100, 80), (1100, 80)])
    home = latlon(plane, 500, 40)
    snap = snap_to_edge(graph, *home)
    assert {snap.u, snap.v} == {at["a"], at["b"]}
    assert snap.distance_m == pytest.approx(40.0, abs=0.5)
    # Without the river it would be the nearer road on the other bank... here equally near,
    # so move the home: 30 m from the far road, 130 m from its own.
    home = latlon(plane, 500, 50)
    snap = snap_to_edge(graph, *home)
    assert {snap.u, snap.v} == {at["a"], at["b"]}
    dry = snap_to_edge(dataclasses.replace(graph, water=np.empty((0, 4))), *latlon(plane, 500, 130))
    assert {dry.u, dry.v} == {at["c"], at["d"]}


def test_the_eta_adds_the_walk_from_the_road_and_the_part_of_the_edge(make_graph, plane):
    graph, at = make_graph({"a": (0, 0), "b": (1000, 0), "c": (2000, 0)}, [("a", "b", "residential"), ("b", "c", "residential")])
    scene = snap_to_edge(graph, *latlon(plane, 300, 20))
    field = scene_field(graph, scene)
    unit = snap_to_edge(graph, *latlon(plane, 2000, 0))
    edge_s = 1000 / (30 / 3.6)
    walk_s = 20 / (ACCESS_SPEED_KMH / 3.6)
    assert field.eta_of(graph, unit) == pytest.approx(edge_s + 0.7 * edge_s + walk_s, rel=2e-3)


def test_a_one_way_road_is_reached_only_from_its_start(make_graph, plane):
    graph, at = make_graph(
        {"a": (0, 0), "b": (1000, 0), "c": (1000, 1000), "d": (0, 1000)},
        [("a", "b", "residential", "oneway"), ("b", "c", "residential"), ("c", "d", "residential"), ("d", "a", "residential")],
    )
    field = scene_field(graph, snap_to_edge(graph, *latlon(plane, 900, 0)))
    from_b = snap_to_edge(graph, *latlon(plane, 1000, 500))
    leg = 1000 / (30 / 3.6)
    # From b's side the unit must go round by c, d, a and then 0.9 of a -> b.
    assert field.eta_of(graph, from_b) == pytest.approx(0.5 * leg + 2 * leg + 0.9 * leg, rel=2e-3)


def test_a_unit_on_the_scene_s_own_road_drives_straight_along_it(make_graph, plane):
    graph, at = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "residential")])
    field = scene_field(graph, snap_to_edge(graph, *latlon(plane, 800, 0)))
    unit = snap_to_edge(graph, *latlon(plane, 600, 0))
    assert field.eta_of(graph, unit) == pytest.approx(200 / (30 / 3.6), rel=2e-3)


def test_the_scene_field_matches_node_searches_at_the_junctions(make_graph, plane):
    graph, at = make_graph(
        {"a": (0, 0), "b": (1000, 0), "c": (1000, 700)}, [("a", "b", "primary"), ("b", "c", "residential")]
    )
    scene = snap_to_edge(graph, *latlon(plane, 1000, 0.0))
    field = scene_field(graph, scene)
    reference = eta_to(graph, at["b"]).seconds
    assert field.seconds[at["a"]] == pytest.approx(reference[at["a"]], abs=0.05)
    assert field.seconds[at["c"]] == pytest.approx(reference[at["c"]], abs=0.05)


def test_snapping_is_the_same_whatever_the_order_of_equally_near_roads(make_graph, plane):
    graph, _ = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "residential")])
    first = snap_to_edge(graph, *latlon(plane, 500, 10))
    again = snap_to_edge(graph, *latlon(plane, 500, 10))
    assert first == again
    assert first.edge == min(k for k in range(graph.n_edges))  # both directions tie: the lower index


def test_a_point_walled_in_by_water_falls_back_to_the_nearest_node_and_says_so(make_graph, plane):
    graph, at = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "residential")])
    graph = with_water(graph, plane, [(-100, 50), (1100, 50)])
    snap = snap_to_edge(graph, *latlon(plane, 500, 100), max_m=500)
    assert snap.on_node and snap.audit()["snap"] == "node"
    assert math.isfinite(scene_field(graph, snap).seconds[at["a"]])


def test_water_lines_survive_saving_the_graph(make_graph, plane, tmp_path):
    graph, _ = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "residential")])
    graph = with_water(graph, plane, [(-100, 50), (500, 60), (1100, 50)])
    graph.save_npz(tmp_path / "g.npz")
    loaded = RoadGraph.load_npz(tmp_path / "g.npz")
    assert loaded.n_water_segments == 2
    assert np.allclose(loaded.water, graph.water)


def test_a_point_far_from_every_road_is_outside_the_service_region(make_graph, plane):
    graph, _ = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "residential")])
    assert snap_to_edge(graph, *latlon(plane, 500, 20_000)).outside
    assert not snap_to_edge(graph, *latlon(plane, 500, 200)).outside
