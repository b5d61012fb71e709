"""Travel times by road: one Dijkstra per incident gives every unit's ETA at once.

The search runs on the reversed graph from the incident's node, so the distance it finds to
node v is the forward travel time from v *to* the incident — the ETA of a unit standing at
v. Its predecessor tree is, read forward, every unit's route to the scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import dijkstra

from .roads import RoadGraph

# A unit's GPS fix is rarely on a node: it covers the snap distance (yard, lane, field
# track) at about walking-to-crawling pace before it is on the graph.
ACCESS_SPEED_KMH = 15.0


class Unreachable(LookupError):
    """No road leads from one node to the other (or not within the search limit)."""


@dataclass(frozen=True, eq=False)
class EtaField:
    """Seconds from every node to `target`; inf where unreachable or beyond the limit."""

    target: int
    seconds: NDArray[np.float64]
    limit_s: float | None
    next_hop: NDArray[np.int32] | None  # next node towards the target, when paths were kept

    def etas_for(
        self, nodes: ArrayLike, *, access_m: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """ETA of units standing at `nodes`; `access_m` adds each unit's snap distance at
        ACCESS_SPEED_KMH."""
        seconds = self.seconds[np.asarray(nodes, dtype=np.int64)]
        if access_m is not None:
            seconds = seconds + np.asarray(access_m, dtype=np.float64) / (ACCESS_SPEED_KMH / 3.6)
        return seconds

    def path_from(self, node: int) -> list[int]:
        """Nodes from `node` to the target, both included."""
        if self.next_hop is None:
            raise ValueError("this field was computed without paths; pass with_paths=True")
        if not np.isfinite(self.seconds[node]):
            raise Unreachable(
                f"node {node} cannot reach node {self.target}" + _beyond(self.limit_s)
            )
        path = [int(node)]
        while path[-1] != self.target:
            path.append(int(self.next_hop[path[-1]]))
        return path


def eta_to(
    graph: RoadGraph, node: int, *, limit_s: float | None = None, with_paths: bool = False
) -> EtaField:
    """Travel time from every node to `node`. `limit_s` stops the search there (nodes
    farther away get inf), which bounds the work for a county-wide graph."""
    _check_node(graph, node)
    limit = np.inf if limit_s is None else float(limit_s)
    if with_paths:
        seconds, pred = dijkstra(
            graph.reverse, directed=True, indices=int(node), limit=limit, return_predecessors=True
        )
        return EtaField(int(node), seconds, limit_s, pred.astype(np.int32))
    seconds = dijkstra(graph.reverse, directed=True, indices=int(node), limit=limit)
    return EtaField(int(node), seconds, limit_s, None)


def eta_from(graph: RoadGraph, node: int, *, limit_s: float | None = None) -> NDArray[np.float64]:
    """Travel time from `node` to every node: from the scene to each hospital."""
    _check_node(graph, node)
    limit = np.inf if limit_s is None else float(limit_s)
    seconds: NDArray[np.float64] = dijkstra(graph.forward, directed=True, indices=int(node), limit=limit)
    return seconds


def route(graph: RoadGraph, from_node: int, to_node: int) -> list[int]:
    """The fastest route as a list of nodes, both ends included; raises Unreachable."""
    _check_node(graph, from_node)
    if from_node == to_node:
        return [int(from_node)]
    return eta_to(graph, to_node, with_paths=True).path_from(from_node)


def route_travel_s(graph: RoadGraph, path: Sequence[int]) -> list[float]:
    """Seconds spent on each leg of `path`, for a simulator to drive it in real time."""
    return [graph.travel_s_between(u, v) for u, v in pairwise(path)]


def _check_node(graph: RoadGraph, node: int) -> None:
    if not 0 <= node < graph.n_nodes:
        raise IndexError(f"node {node} is not in the graph (0..{graph.n_nodes - 1})")


def _beyond(limit_s: float | None) -> str:
    return f" within {limit_s:g} s" if limit_s is not None else ""
