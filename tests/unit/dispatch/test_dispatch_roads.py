"""The road graph type: travel times, snapping, components, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.eta import eta_to
from dispatch.roads import MIN_TRAVEL_S, RoadGraph, RoadGraphError


def test_travel_time_is_length_over_speed(make_graph):
    graph, at = make_graph({"a": (0, 0), "b": (1000, 0)}, [("a", "b", "primary")])
    assert graph.travel_s_between(at["a"], at["b"]) == pytest.approx(
        60.0, rel=1e-3
    )  # 1 km at 60 km/h
    assert graph.max_speed_kmh == 60.0


def test_parallel_roads_between_two_junctions_count_as_the_faster_one():
    graph = RoadGraph.from_edges(
        [30.85, 30.86], [120.9, 120.9], [0, 0], [1, 1], [1000.0, 1000.0], ["track", "primary"]
    )
    assert graph.n_edges == 2
    assert graph.travel_s_between(0, 1) == pytest.approx(60.0)  # not the sum of both


def test_a_zero_length_edge_still_counts_as_an_edge():
    graph = RoadGraph.from_edges([30.85, 30.85], [120.9, 120.9], [0], [1], [0.0], ["service"])
    assert graph.travel_s_between(0, 1) == MIN_TRAVEL_S
    assert eta_to(graph, 1).seconds[0] == MIN_TRAVEL_S


def test_snapping_finds_the_nearest_node_and_its_distance(make_graph, plane):
    graph, at = make_graph(
        {"a": (0, 0), "b": (500, 0), "c": (500, 400)},
        [("a", "b", "residential"), ("b", "c", "residential")],
    )
    lat, lon = plane.to_latlon([430.0], [30.0])
    snap = graph.snap(float(lat[0]), float(lon[0]))
    assert snap.node == at["b"]
    assert snap.distance_m == pytest.approx(np.hypot(70, 30), abs=0.5)
    nodes, dist = graph.snap_many(*plane.to_latlon([-10.0, 490.0], [0.0, 390.0]))
    assert nodes.tolist() == [at["a"], at["c"]]
    assert dist == pytest.approx([10.0, 14.1], abs=0.5)


def test_snapping_skips_nodes_that_are_on_no_road(make_graph, plane):
    graph, at = make_graph(
        {"a": (0, 0), "b": (500, 0), "lonely": (1000, 0)}, [("a", "b", "residential")]
    )
    lat, lon = plane.to_latlon([990.0], [0.0])
    assert graph.snap(float(lat[0]), float(lon[0])).node == at["b"]


def test_the_largest_component_drops_islands_and_one_way_traps(make_graph):
    graph, at = make_graph(
        {
            "a": (0, 0),
            "b": (500, 0),
            "c": (500, 500),
            "trap": (900, 0),
            "island1": (5000, 0),
            "island2": (5100, 0),
        },
        [
            ("a", "b", "residential"),
            ("b", "c", "residential"),
            ("c", "a", "residential"),
            ("b", "trap", "residential", "oneway"),
            ("island1", "island2", "residential"),
        ],
    )
    core = graph.largest_component()
    assert core.n_nodes == 3 and core.n_edges == 6
    assert sorted(core.node_id.tolist()) == sorted([at["a"], at["b"], at["c"]])


def test_a_graph_survives_a_round_trip_through_npz_and_arrays(make_graph, tmp_path):
    graph, at = make_graph(
        {"a": (0, 0), "b": (800, 0), "c": (800, 600)},
        [("a", "b", "secondary"), ("b", "c", "track", "oneway")],
    )
    path = tmp_path / "roads.npz"
    graph.save_npz(path)
    for loaded in (RoadGraph.load_npz(path), RoadGraph.from_arrays(graph.to_arrays())):
        for name in (
            "node_id",
            "lat",
            "lon",
            "edge_from",
            "edge_to",
            "length_m",
            "road_class",
            "speed_kmh",
        ):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(graph, name))
        np.testing.assert_array_equal(
            eta_to(loaded, at["c"]).seconds, eta_to(graph, at["c"]).seconds
        )


def test_an_unknown_format_version_is_refused(make_graph):
    graph, _ = make_graph({"a": (0, 0), "b": (1, 0)}, [("a", "b", "service")])
    arrays = {**graph.to_arrays(), "format": np.array(99)}
    with pytest.raises(RoadGraphError, match="format 99, this version reads format 1"):
        RoadGraph.from_arrays(arrays)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"road_class": ["footway"]}, "unknown road class 'footway'"),
        ({"edge_to": [5]}, r"edges refer to nodes outside 0..1"),
        ({"length_m": [-1.0]}, "every speed must be > 0 and every length >= 0"),
        ({"speed_kmh": [0.0]}, "every speed must be > 0"),
        ({"length_m": [1.0, 2.0]}, "length_m has 2 entries, expected 1"),
    ],
)
def test_invalid_arrays_are_refused_with_the_reason(kwargs, message):
    args = {
        "lat": [30.85, 30.86],
        "lon": [120.9, 120.9],
        "edge_from": [0],
        "edge_to": [1],
        "length_m": [10.0],
        "road_class": ["primary"],
        "speed_kmh": None,
        **kwargs,
    }
    with pytest.raises(RoadGraphError, match=message):
        RoadGraph.from_edges(**args)
