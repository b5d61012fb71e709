"""Where a point meets the road: the nearest point of the nearest road *edge* that can be
reached without crossing water, and the travel times that follow from it. Pure.

Snapping a scene to the nearest road node is wrong in a river network: the nearest junction
is often across a canal, so the audit shows a short ETA to a point the crew cannot walk from.
Here a point is projected onto every road edge near it; an edge is a candidate only if the
straight line from the point to its projection crosses no river or canal line the graph
carries (RoadGraph.water_*), and the closest candidate wins. The point-to-road leg is walked
or crawled at ACCESS_SPEED_KMH and added to the ETA; its length is in the audit.

On the edge u→v at fraction t, a unit arrives by driving to u and then t of the edge, or (on
a two-way road) to v and then 1 − t of the way back: one Dijkstra with both ends as sources
gives both, and `scene_etas` takes the smaller per unit. A unit's own fix is snapped the same
way and leaves its edge by either end.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from .eta import ACCESS_SPEED_KMH
from .geometry import segments_cross
from .roads import RoadGraph

__all__ = ["EdgeSnap", "SceneField", "crosses_water", "scene_field", "snap_cached", "snap_to_edge"]

# How far a point is searched for a road before giving up (a fix in a lake, a bad geocode):
# past this the nearest node is used and the audit says so.
MAX_SNAP_M = 5_000.0
# A scene exactly on a junction is a zero-cost leg, which a sparse matrix cannot hold.
MIN_LEG_S = 1e-6


@dataclass(frozen=True, slots=True)
class EdgeSnap:
    """A point placed on the directed edge `edge` (u → v) at fraction `t` from u."""

    edge: int
    u: int
    v: int
    t: float
    distance_m: float  # from the point to the road, walked at the access speed
    lat: float
    lon: float
    on_node: bool = False  # no edge qualified: fell back to the nearest node (u == v)
    along_s: float = math.inf  # the whole edge u → v, in seconds
    back_s: float = math.inf  # the whole edge v → u; inf on a one-way road

    @property
    def outside(self) -> bool:
        """No road within MAX_SNAP_M: a point far outside the service region (a fix from a
        receiver that lost its almanac, a default 0, 0), not to be trusted."""
        return self.on_node and self.distance_m > MAX_SNAP_M

    @property
    def access_s(self) -> float:
        return self.distance_m / (ACCESS_SPEED_KMH / 3.6)

    def audit(self) -> dict[str, object]:
        return {
            "snap_m": round(self.distance_m, 1),
            "snap_lat": round(self.lat, 6),
            "snap_lon": round(self.lon, 6),
            "snap": "node" if self.on_node else "edge",
            "outside_region": self.outside,  # flagged for the control room: no road within MAX_SNAP_M
        }


def crosses_water(graph: RoadGraph, x0: float, y0: float, x1: NDArray[np.float64], y1: NDArray[np.float64]) -> NDArray[np.bool_]:
    """For each segment (x0, y0) → (x1[k], y1[k]) in the graph's metres: does it cross a
    water line the graph carries?"""
    out = np.zeros(len(x1), dtype=bool)
    if not graph.n_water_segments or not len(x1):
        return out
    tree, wx0, wy0, wx1, wy1, half = graph.water_index
    reach = float(np.max(np.hypot(x1 - x0, y1 - y0))) + half
    near = np.asarray(tree.query_ball_point([x0, y0], reach), dtype=np.int64)
    if not near.size:
        return out
    hit = segments_cross(
        np.full((len(x1), near.size), x0), np.full((len(x1), near.size), y0),
        x1[:, None], y1[:, None], wx0[near][None], wy0[near][None], wx1[near][None], wy1[near][None],
    )
    crossing: NDArray[np.bool_] = np.asarray(hit.any(axis=1), dtype=bool)
    return crossing


def snap_to_edge(graph: RoadGraph, lat: float, lon: float, *, max_m: float = MAX_SNAP_M) -> EdgeSnap:
    """The nearest point on a road reachable from (lat, lon) without crossing water."""
    px, py = (float(c) for c in graph.projection.to_xy(lat, lon))
    fallback = graph.snap(lat, lon)
    tree, half = graph.edge_index
    radius = fallback.distance_m + half + 1.0
    while True:
        snap = _best_on_edges(graph, px, py, tree.query_ball_point([px, py], radius))
        if snap is not None and snap[3] <= radius - half:
            break  # nothing unseen can be closer than the search radius less a half edge
        if radius > max_m + half:
            snap = None if snap is None or snap[3] > max_m else snap
            break
        radius *= 2
    if snap is not None and snap[3] > max_m:
        snap = None  # a road, but too far to walk from: the point is outside the region
    if snap is None:
        node = fallback.node
        return EdgeSnap(-1, node, node, 0.0, fallback.distance_m, float(graph.lat[node]), float(graph.lon[node]), on_node=True)
    edge, t, (sx, sy), dist = snap
    slat, slon = graph.projection.to_latlon(sx, sy)
    u, v = int(graph.edge_from[edge]), int(graph.edge_to[edge])
    return EdgeSnap(edge, u, v, t, dist, float(slat), float(slon), along_s=graph.travel_s_between(u, v),
                    back_s=graph.travel_s_between(v, u))


@functools.lru_cache(maxsize=8192)
def snap_cached(graph: RoadGraph, lat: float, lon: float) -> EdgeSnap:
    """snap_to_edge, remembered: a parked unit's base or a facility is snapped once, not at
    every decision (the graph is hashed by identity; a reloaded graph is a new key)."""
    return snap_to_edge(graph, lat, lon)


def _best_on_edges(
    graph: RoadGraph, px: float, py: float, candidates: list[int]
) -> tuple[int, float, tuple[float, float], float] | None:
    if not candidates:
        return None
    edges = np.asarray(candidates, dtype=np.int64)
    x, y = graph.node_xy
    ax, ay = x[graph.edge_from[edges]], y[graph.edge_from[edges]]
    bx, by = x[graph.edge_to[edges]], y[graph.edge_to[edges]]
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    t = np.clip(np.where(seg2 > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(seg2 > 0, seg2, 1.0), 0.0), 0.0, 1.0)
    sx, sy = ax + t * dx, ay + t * dy
    dist = np.hypot(sx - px, sy - py)
    ok = ~crosses_water(graph, px, py, sx, sy)
    if not ok.any():
        return None
    # Ties (the two directions of one road, two roads meeting at a corner) go to the lowest
    # edge index, so one point always snaps the same way.
    order = np.lexsort((edges, np.round(dist, 3), ~ok))
    k = int(order[0])
    return int(edges[k]), float(t[k]), (float(sx[k]), float(sy[k])), float(dist[k])


@dataclass(frozen=True, eq=False)
class SceneField:
    """Seconds from every node to a scene snapped onto an edge (access leg not included)."""

    scene: EdgeSnap
    seconds: NDArray[np.float64]

    def eta_of(self, graph: RoadGraph, unit: EdgeSnap) -> float:
        """A unit at `unit` to the scene: off its edge by either end, the drive, the
        scene's walk from the road, and the unit's own access leg."""
        best = min(_leave(unit, self.seconds), _same_edge(unit, self.scene))
        return best + self.scene.access_s + unit.access_s if math.isfinite(best) else math.inf


def scene_field(graph: RoadGraph, scene: EdgeSnap, *, limit_s: float | None = None) -> SceneField:
    """One Dijkstra on the reversed graph from the scene itself: a virtual node joined to
    both ends of its edge (u reaches it in t of the edge, v in 1 − t of the way back), so
    the search costs what a search from one node does."""
    limit = np.inf if limit_s is None else float(limit_s)
    if scene.on_node:
        seconds: NDArray[np.float64] = dijkstra(graph.reverse, directed=True, indices=scene.u, limit=limit)
        return SceneField(scene, seconds)
    n = graph.n_nodes
    ends, costs = [], []
    for end, share, along in ((scene.u, scene.t, scene.along_s), (scene.v, 1.0 - scene.t, scene.back_s)):
        if math.isfinite(along):
            ends.append(end)
            costs.append(max(share * along, MIN_LEG_S))  # a zero would read as no edge
    rev = graph.reverse
    augmented = sp.csr_matrix(
        (np.concatenate([rev.data, costs]), np.concatenate([rev.indices, ends]),
         np.concatenate([rev.indptr, [rev.indptr[-1] + len(ends)]])),
        shape=(n + 1, n + 1),
    )
    seconds = dijkstra(augmented, directed=True, indices=n, limit=limit)[:n]
    return SceneField(scene, seconds)


def _leave(unit: EdgeSnap, to_scene: NDArray[np.float64]) -> float:
    if unit.on_node:
        return float(to_scene[unit.u])
    forward = _part(1.0 - unit.t, unit.along_s) + float(to_scene[unit.v])
    back = _part(unit.t, unit.back_s) + float(to_scene[unit.u])
    return min(forward, back)


def _part(share: float, seconds: float) -> float:
    """`share` of an edge's time; no edge (inf) stays inf even for a share of 0."""
    return share * seconds if math.isfinite(seconds) else math.inf


def _same_edge(unit: EdgeSnap, scene: EdgeSnap) -> float:
    """A unit on the scene's own road drives straight along it."""
    if unit.on_node or scene.on_node or {unit.u, unit.v} != {scene.u, scene.v}:
        return math.inf
    at = unit.t if unit.u == scene.u else 1.0 - unit.t  # the unit's place in scene.u → scene.v
    if at <= scene.t:
        return _part(scene.t - at, scene.along_s)
    return _part(at - scene.t, scene.back_s)
