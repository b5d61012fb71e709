"""The live ETA and route the scoped pages show: from the unit's latest fix, on the road
graph. Pure: the graph and the positions come in; a unit without a fix is at its base.

Before the patient is on board the unit drives to the scene, then to the hospital; once it
is transporting, it drives to the hospital only. The hospital's board shows the time to the
hospital, the village doctor's page and the crew terminal the time to the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dispatch.eta import Unreachable, route
from dispatch.roads import RoadGraph

# Statuses in which the patient is in the unit (or handed over): the scene is behind it.
_PATIENT_ON_BOARD = frozenset({"transporting", "at_hospital"})


@dataclass(frozen=True, slots=True)
class LiveEta:
    to_scene_s: float | None  # None: already past the scene, or unreachable
    to_hospital_s: float | None


def _travel(graph: RoadGraph, path: list[int]) -> float:
    return float(sum(graph.travel_s_between(u, v) for u, v in zip(path, path[1:])))


def live_eta(
    graph: RoadGraph, unit_at: tuple[float, float] | None, status: str | None, scene: tuple[float, float],
    hospital: tuple[float, float] | None,
) -> LiveEta:
    if unit_at is None:
        return LiveEta(None, None)
    unit = graph.snap(*unit_at).node
    scene_node = graph.snap(*scene).node
    hospital_node = graph.snap(*hospital).node if hospital is not None else None
    try:
        if status in _PATIENT_ON_BOARD:
            to_h = 0.0 if status == "at_hospital" or hospital_node is None else _travel(graph, route(graph, unit, hospital_node))
            return LiveEta(None, to_h if hospital_node is not None else None)
        to_scene = _travel(graph, route(graph, unit, scene_node))
        on_to_hospital = _travel(graph, route(graph, scene_node, hospital_node)) if hospital_node is not None else None
        return LiveEta(to_scene, None if on_to_hospital is None else to_scene + on_to_hospital)
    except Unreachable:
        return LiveEta(None, None)


def route_coords(graph: RoadGraph, start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
    """The road graph's path from `start` to `end` as [lat, lon] points (empty: no road)."""
    try:
        path = route(graph, graph.snap(*start).node, graph.snap(*end).node)
    except Unreachable:
        return []
    lat, lon = np.asarray(graph.lat), np.asarray(graph.lon)
    return [(round(float(lat[n]), 6), round(float(lon[n]), 6)) for n in path]
