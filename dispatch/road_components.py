"""What of an imported road network dispatch can route on.

An extract cut at the county's edge, a one-way street mapped without its way back, a car
park's exit lane: each leaves nodes that can be reached but not left, or left but not
reached. An ambulance routed to one would never come back; a unit parked on one would have
no route to anyone. Dispatch therefore keeps the largest strongly connected component —
every node in it reaches every other — and the import says what it dropped. A network with
no drivable road, or too small a component, is refused before the loaded one is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

from .roads import RoadGraph

# A county's network has tens of thousands of nodes; one of fewer than this is a wrong file
# (a bounding box on the wrong place, a layer of footpaths), not a county.
MIN_ROUTABLE_NODES = 50


class UnroutableNetwork(ValueError):
    """The network cannot be routed on; the message says why and what was found."""


@dataclass(frozen=True, slots=True)
class Pruned:
    """The routable part of a network and what was dropped to get it."""

    graph: RoadGraph
    dropped_nodes: int
    dropped_edges: int
    components: int  # strongly connected components in the network as imported


def keep_largest_component(graph: RoadGraph) -> Pruned:
    """The network's largest strongly connected component (its nodes keep their source
    ids; water lines are kept whole: they only bound snapping)."""
    if graph.n_nodes == 0:
        return Pruned(graph, 0, 0, 0)
    count, labels = connected_components(graph.forward, directed=True, connection="strong")
    largest = int(np.bincount(labels).argmax())
    keep = labels == largest
    if keep.all():
        return Pruned(graph, 0, 0, int(count))
    new_index = np.full(graph.n_nodes, -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    edges = keep[graph.edge_from] & keep[graph.edge_to]
    pruned = RoadGraph.from_edges(
        graph.lat[keep], graph.lon[keep],
        new_index[graph.edge_from[edges]], new_index[graph.edge_to[edges]],
        graph.length_m[edges], graph.road_class[edges], graph.speed_kmh[edges],
        node_id=graph.node_id[keep], water=graph.water,
    )
    return Pruned(pruned, graph.n_nodes - pruned.n_nodes, graph.n_edges - pruned.n_edges, int(count))


def routable(graph: RoadGraph, *, min_nodes: int = MIN_ROUTABLE_NODES) -> Pruned:
    """The part of `graph` dispatch routes on, or UnroutableNetwork."""
    if graph.n_edges == 0:
        raise UnroutableNetwork(
            "no drivable road in the file: no line has a highway class an ambulance can drive "
            "(motorway … track); footways, cycleways and areas are left out"
        )
    pruned = keep_largest_component(graph)
    if pruned.graph.n_nodes < min_nodes:
        raise UnroutableNetwork(
            f"the largest part of the network where every node reaches every other has {pruned.graph.n_nodes} nodes "
            f"(of {graph.n_nodes}, in {pruned.components} parts); at least {min_nodes} are needed "
            "(check the extract covers the county, and its one-way tags)"
        )
    return pruned
