"""Properties of road ETAs on random graphs: no ETA beats the crow at top speed, a new
road never makes anyone later, and the one-pass field agrees with a textbook Dijkstra."""

from __future__ import annotations

import heapq
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.eta import eta_to, route, route_travel_s
from dispatch.geometry import LocalProjection, haversine_m
from dispatch.roads import ROAD_CLASSES, RoadGraph

PLANE = LocalProjection(30.85, 120.90)


@st.composite
def road_graphs(draw, min_nodes=2, max_nodes=20):
    n = draw(st.integers(min_nodes, max_nodes))
    coords = st.floats(0, 3000, allow_nan=False)
    xy = draw(st.lists(st.tuples(coords, coords), min_size=n, max_size=n))
    edge = st.tuples(
        st.integers(0, n - 1),
        st.integers(0, n - 1),
        st.sampled_from(ROAD_CLASSES),
        st.floats(1.0, 1.6),
    )
    edges = [e for e in draw(st.lists(edge, max_size=4 * n)) if e[0] != e[1]]
    return xy, edges


def build(xy, edges) -> RoadGraph:
    lat, lon = PLANE.to_latlon([p[0] for p in xy], [p[1] for p in xy])
    src = [e[0] for e in edges]
    dst = [e[1] for e in edges]
    # A road is never shorter than the straight line between its ends (winding >= 1).
    length = (
        haversine_m(lat[src], lon[src], lat[dst], lon[dst]) * np.array([e[3] for e in edges])
        if edges
        else []
    )
    return RoadGraph.from_edges(lat, lon, src, dst, length, [e[2] for e in edges])


def textbook_times_to(graph: RoadGraph, target: int) -> list[float]:
    incoming: list[list[tuple[int, float]]] = [[] for _ in range(graph.n_nodes)]
    for u, v, t in zip(graph.edge_from, graph.edge_to, graph.travel_s, strict=True):
        incoming[v].append((int(u), float(t)))
    best = [math.inf] * graph.n_nodes
    best[target] = 0.0
    heap = [(0.0, target)]
    while heap:
        d, v = heapq.heappop(heap)
        if d > best[v]:
            continue
        for u, t in incoming[v]:
            if d + t < best[u]:
                best[u] = d + t
                heapq.heappush(heap, (d + t, u))
    return best


@settings(max_examples=150, deadline=None)
@given(road_graphs(), st.data())
def test_no_eta_is_below_the_straight_line_at_top_speed(graph_spec, data):
    graph = build(*graph_spec)
    target = data.draw(st.integers(0, graph.n_nodes - 1))
    seconds = eta_to(graph, target).seconds
    if graph.n_edges == 0:
        assert np.isinf(np.delete(seconds, target)).all()
        return
    crow = haversine_m(graph.lat, graph.lon, graph.lat[target], graph.lon[target]) / (
        graph.max_speed_kmh / 3.6
    )
    reached = np.isfinite(seconds)
    assert np.all(seconds[reached] >= crow[reached] * (1 - 1e-9))


@settings(max_examples=150, deadline=None)
@given(road_graphs(), st.data())
def test_adding_a_road_never_makes_any_eta_longer(graph_spec, data):
    xy, edges = graph_spec
    n = len(xy)
    target = data.draw(st.integers(0, n - 1))
    a = data.draw(st.integers(0, n - 1))
    b = data.draw(st.integers(0, n - 1).filter(lambda v: v != a))
    new_road = (a, b, data.draw(st.sampled_from(ROAD_CLASSES)), data.draw(st.floats(1.0, 1.6)))
    before = eta_to(build(xy, edges), target).seconds
    after = eta_to(build(xy, [*edges, new_road]), target).seconds
    assert np.all(after <= before + 1e-9)


@settings(max_examples=100, deadline=None)
@given(road_graphs(), st.data())
def test_the_one_pass_field_matches_a_textbook_dijkstra_and_its_routes(graph_spec, data):
    graph = build(*graph_spec)
    target = data.draw(st.integers(0, graph.n_nodes - 1))
    field = eta_to(graph, target, with_paths=True)
    np.testing.assert_allclose(field.seconds, textbook_times_to(graph, target), rtol=1e-9)
    for node in np.flatnonzero(np.isfinite(field.seconds)):
        path = field.path_from(int(node))
        assert path[0] == node and path[-1] == target
        assert math.isclose(sum(route_travel_s(graph, path)), field.seconds[node], rel_tol=1e-9)
    if np.isfinite(field.seconds[0]):
        assert route(graph, 0, target)[-1] == target
