"""Fixtures for the dispatch core: a builder of small hand-made road graphs laid out in
metres."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pytest

from dispatch.geometry import LocalProjection, haversine_m
from dispatch.roads import RoadGraph

PLANE = LocalProjection(30.85, 120.90)  # somewhere in Jiashan


def graph_in_metres(
    points: Mapping[str, tuple[float, float]], roads: Iterable[tuple[str, ...]]
) -> tuple[RoadGraph, dict[str, int]]:
    """A graph from named points at (x east, y north) metres and roads (from, to, class)
    between them, two-way unless a fourth element says "oneway". Lengths are straight."""
    names = list(points)
    index = {name: i for i, name in enumerate(names)}
    lat, lon = PLANE.to_latlon([points[n][0] for n in names], [points[n][1] for n in names])
    src, dst, cls = [], [], []
    for road in roads:
        a, b, road_class = road[:3]
        pairs = [(a, b)] if len(road) > 3 and road[3] == "oneway" else [(a, b), (b, a)]
        for u, v in pairs:
            src.append(index[u])
            dst.append(index[v])
            cls.append(road_class)
    length = haversine_m(lat[src], lon[src], lat[dst], lon[dst])
    return RoadGraph.from_edges(lat, lon, src, dst, length, cls), index


@pytest.fixture
def plane() -> LocalProjection:
    """The metric plane `make_graph` lays its points out on."""
    return PLANE


@pytest.fixture
def make_graph() -> Callable[..., tuple[RoadGraph, dict[str, int]]]:
    return graph_in_metres

