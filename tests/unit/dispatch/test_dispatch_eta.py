"""Road ETAs on hand-made graphs: one reversed Dijkstra per incident, routes to drive."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from dispatch.assignment import Incident, Priority, Unit, UnitStatus, decide
from dispatch.eta import ACCESS_SPEED_KMH, Unreachable, eta_from, eta_to, route, route_travel_s
from dispatch.geometry import haversine_m

NOW = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)

# A river runs north-south along x = 0 with one bridge, 2 km north of the incident.
RIVER_WITH_ONE_BRIDGE = (
    {
        "west_unit": (-200, 0),
        "west_bridgehead": (-200, 2000),
        "east_bridgehead": (200, 2000),
        "scene": (200, 0),
        "east_unit": (1000, 0),
    },
    [
        ("west_unit", "west_bridgehead", "residential"),
        ("west_bridgehead", "east_bridgehead", "residential"),
        ("east_bridgehead", "scene", "residential"),
        ("scene", "east_unit", "residential"),
    ],
)


def test_the_unit_nearest_as_the_crow_flies_loses_to_a_farther_one_on_the_same_bank(make_graph):
    graph, at = make_graph(*RIVER_WITH_ONE_BRIDGE)
    straight = {
        u: float(
            haversine_m(
                graph.lat[at[u]], graph.lon[at[u]], graph.lat[at["scene"]], graph.lon[at["scene"]]
            )
        )
        for u in ("west_unit", "east_unit")
    }
    assert straight["west_unit"] < straight["east_unit"]

    field = eta_to(graph, at["scene"])
    west, east = field.etas_for([at["west_unit"], at["east_unit"]])
    assert east == pytest.approx(800 / (30 / 3.6), rel=1e-3)
    assert west == pytest.approx(4400 / (30 / 3.6), rel=1e-3)

    units = [
        Unit("AMB-W", "ambulance", UnitStatus.AVAILABLE, at["west_unit"], NOW),
        Unit("AMB-E", "ambulance", UnitStatus.AVAILABLE, at["east_unit"], NOW),
    ]
    decision = decide(Incident("I-1", Priority.P1, NOW), units, {"AMB-W": west, "AMB-E": east}, NOW)
    assert decision.chosen is not None and decision.chosen.unit_id == "AMB-E"
    assert [c.unit_id for c in decision.ranked] == ["AMB-E", "AMB-W"]


def test_eta_is_the_time_to_the_scene_not_from_it_on_one_way_streets(make_graph):
    # a -> b is a short one-way street; back from b to a goes round the block.
    graph, at = make_graph(
        {"a": (0, 0), "b": (300, 0), "c": (300, 600), "d": (0, 600)},
        [
            ("a", "b", "residential", "oneway"),
            ("b", "c", "residential"),
            ("c", "d", "residential"),
            ("d", "a", "residential"),
        ],
    )
    to_b = eta_to(graph, at["b"]).etas_for([at["a"]])[0]
    from_b = eta_from(graph, at["b"])[at["a"]]
    assert to_b == pytest.approx(300 / (30 / 3.6), rel=1e-3)
    assert from_b == pytest.approx(1500 / (30 / 3.6), rel=1e-3)


def test_a_search_limit_leaves_farther_nodes_unreached(make_graph):
    graph, at = make_graph(*RIVER_WITH_ONE_BRIDGE)
    field = eta_to(graph, at["scene"], limit_s=200)
    assert np.isfinite(field.etas_for([at["east_unit"]])[0])
    assert np.isinf(field.etas_for([at["west_unit"]])[0])
    with pytest.raises(Unreachable, match="within 200 s"):
        eta_to(graph, at["scene"], limit_s=200, with_paths=True).path_from(at["west_unit"])


def test_route_crosses_at_the_bridge_and_its_legs_add_up_to_the_eta(make_graph):
    graph, at = make_graph(*RIVER_WITH_ONE_BRIDGE)
    path = route(graph, at["west_unit"], at["scene"])
    assert path == [at["west_unit"], at["west_bridgehead"], at["east_bridgehead"], at["scene"]]
    legs = route_travel_s(graph, path)
    assert sum(legs) == pytest.approx(eta_to(graph, at["scene"]).seconds[at["west_unit"]])


def test_route_prefers_the_faster_road_over_the_shorter_one(make_graph):
    graph, at = make_graph(
        {"a": (0, 0), "b": (2000, 0), "via": (1000, 600)},
        [("a", "b", "track"), ("a", "via", "primary"), ("via", "b", "primary")],
    )
    assert route(graph, at["a"], at["b"]) == [at["a"], at["via"], at["b"]]
    assert route(graph, at["a"], at["a"]) == [at["a"]]


def test_route_between_disconnected_nodes_raises_unreachable(make_graph):
    graph, at = make_graph(
        {"a": (0, 0), "b": (100, 0), "c": (5000, 0), "d": (5100, 0)},
        [("a", "b", "residential"), ("c", "d", "residential")],
    )
    with pytest.raises(Unreachable, match="cannot reach"):
        route(graph, at["a"], at["d"])
    assert np.isinf(eta_to(graph, at["d"]).seconds[at["a"]])


def test_etas_for_adds_the_walk_from_the_gps_fix_to_the_road(make_graph):
    graph, at = make_graph(*RIVER_WITH_ONE_BRIDGE)
    field = eta_to(graph, at["scene"])
    base = field.etas_for([at["east_unit"]])[0]
    with_access = field.etas_for([at["east_unit"]], access_m=[100.0])[0]
    assert with_access - base == pytest.approx(100 / (ACCESS_SPEED_KMH / 3.6))


def test_paths_are_only_available_when_asked_for(make_graph):
    graph, at = make_graph(*RIVER_WITH_ONE_BRIDGE)
    with pytest.raises(ValueError, match="with_paths=True"):
        eta_to(graph, at["scene"]).path_from(at["east_unit"])
    with pytest.raises(IndexError, match="not in the graph"):
        eta_to(graph, 99)
