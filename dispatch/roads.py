"""The road graph the dispatcher routes on: nodes with coordinates, directed edges with a
length, road class and speed, and the travel-time matrices one Dijkstra needs.

Everything is numpy arrays, so a county's graph (or a province's) loads from an `.npz` in
milliseconds and a dispatcher process never parses OSM at start-up. The forward matrix
answers "how long from here to everywhere"; its transpose answers "how long from
everywhere to here", which is the question an incident asks of every unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypedDict

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from .geometry import LocalProjection

# Index order is the code stored per edge (int8).
ROAD_CLASSES: tuple[str, ...] = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "residential",
    "service",
    "track",
)
ROAD_CLASS_CODE: Mapping[str, int] = MappingProxyType(
    {name: i for i, name in enumerate(ROAD_CLASSES)}
)

# Free-flow speeds used when a road carries no usable maxspeed: China's legal limits for
# expressways and class roads, lowered for town and village roads where tricycles, farm
# vehicles and narrow bridges set the real pace.
DEFAULT_SPEED_KMH: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 100.0,
        "trunk": 70.0,
        "primary": 60.0,
        "secondary": 50.0,
        "tertiary": 40.0,
        "residential": 30.0,
        "service": 20.0,
        "track": 15.0,
    }
)

# An edge of zero length (two nodes at one coordinate) would be a zero in the sparse matrix,
# and a zero there is ambiguous (edge or no edge); a centisecond changes no ranking.
MIN_TRAVEL_S = 0.01

_FORMAT = 1  # bump when the array layout changes


class RoadArrays(TypedDict):
    """The arrays of a saved road graph, by the names `save_npz` stores them under."""

    format: NDArray[Any]
    node_id: NDArray[Any]
    lat: NDArray[Any]
    lon: NDArray[Any]
    edge_from: NDArray[Any]
    edge_to: NDArray[Any]
    length_m: NDArray[Any]
    road_class: NDArray[Any]
    speed_kmh: NDArray[Any]
    water: NDArray[Any]


class RoadGraphError(ValueError):
    """The arrays do not describe a valid road graph; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Snap:
    node: int
    distance_m: float


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """Nodes are indexed 0..n-1; `node_id` keeps the source's ids (OSM ids) for reference.
    Edges are directed: a two-way road is two edges. `water` holds the river and canal
    lines a road crosses only at a bridge, as segments (lat1, lon1, lat2, lon2): snapping a
    point onto a road never crosses one (dispatch/snapping.py)."""

    node_id: NDArray[np.int64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    edge_from: NDArray[np.int32]
    edge_to: NDArray[np.int32]
    length_m: NDArray[np.float64]
    road_class: NDArray[np.int8]
    speed_kmh: NDArray[np.float64]
    water: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 4)), repr=False)
    travel_s: NDArray[np.float64] = field(init=False, repr=False)
    forward: sp.csr_matrix = field(init=False, repr=False)
    reverse: sp.csr_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n, m = len(self.lat), len(self.edge_from)
        for name, arr, size in (
            ("node_id", self.node_id, n),
            ("lon", self.lon, n),
            ("edge_to", self.edge_to, m),
            ("length_m", self.length_m, m),
            ("road_class", self.road_class, m),
            ("speed_kmh", self.speed_kmh, m),
        ):
            if len(arr) != size:
                raise RoadGraphError(f"{name} has {len(arr)} entries, expected {size}")
        if m and (
            min(self.edge_from.min(), self.edge_to.min()) < 0
            or max(self.edge_from.max(), self.edge_to.max()) >= n
        ):
            raise RoadGraphError(f"edges refer to nodes outside 0..{n - 1}")
        if m and (not np.all(self.speed_kmh > 0) or not np.all(self.length_m >= 0)):
            raise RoadGraphError("every speed must be > 0 and every length >= 0")
        if self.water.ndim != 2 or self.water.shape[1] != 4:
            raise RoadGraphError(f"water must be k x 4 segments (lat1, lon1, lat2, lon2), got shape {self.water.shape}")
        if m and (self.road_class.min() < 0 or self.road_class.max() >= len(ROAD_CLASSES)):
            raise RoadGraphError(f"road_class codes must be 0..{len(ROAD_CLASSES) - 1}")
        travel_s = np.maximum(self.length_m / (self.speed_kmh / 3.6), MIN_TRAVEL_S)
        object.__setattr__(self, "travel_s", travel_s)
        forward = _fastest_edge_matrix(self.edge_from, self.edge_to, travel_s, n)
        object.__setattr__(self, "forward", forward)
        object.__setattr__(self, "reverse", forward.T.tocsr())

    def __repr__(self) -> str:
        return f"RoadGraph({self.n_nodes} nodes, {self.n_edges} edges)"

    @classmethod
    def from_edges(
        cls,
        lat: ArrayLike,
        lon: ArrayLike,
        edge_from: ArrayLike,
        edge_to: ArrayLike,
        length_m: ArrayLike,
        road_class: ArrayLike,
        speed_kmh: ArrayLike | None = None,
        node_id: ArrayLike | None = None,
        water: ArrayLike | None = None,
    ) -> RoadGraph:
        """Build from plain sequences. `road_class` may be names or codes; a missing speed
        is the class default."""
        classes = np.asarray(road_class)
        if classes.dtype.kind in "US":
            unknown = sorted(set(classes.tolist()) - set(ROAD_CLASSES))
            if unknown:
                raise RoadGraphError(
                    f"unknown road class {unknown[0]!r}; expected one of {', '.join(ROAD_CLASSES)}"
                )
            classes = np.array([ROAD_CLASS_CODE[c] for c in classes.tolist()], dtype=np.int8)
        classes = classes.astype(np.int8)
        if speed_kmh is None:
            defaults = np.array([DEFAULT_SPEED_KMH[c] for c in ROAD_CLASSES])
            speed_kmh = defaults[classes] if classes.size else np.empty(0)
        lat = np.asarray(lat, dtype=np.float64)
        return cls(
            node_id=np.arange(len(lat), dtype=np.int64)
            if node_id is None
            else np.asarray(node_id, dtype=np.int64),
            lat=lat,
            lon=np.asarray(lon, dtype=np.float64),
            edge_from=np.asarray(edge_from, dtype=np.int32),
            edge_to=np.asarray(edge_to, dtype=np.int32),
            length_m=np.asarray(length_m, dtype=np.float64),
            road_class=classes,
            speed_kmh=np.asarray(speed_kmh, dtype=np.float64),
            water=_water(water),
        )

    @property
    def n_nodes(self) -> int:
        return len(self.lat)

    @property
    def n_edges(self) -> int:
        return len(self.edge_from)

    @property
    def max_speed_kmh(self) -> float:
        return float(self.speed_kmh.max()) if self.n_edges else 0.0

    def travel_s_between(self, u: int, v: int) -> float:
        """Time of the fastest direct edge u -> v; inf when there is none."""
        start, end = self.forward.indptr[u], self.forward.indptr[u + 1]
        hit = np.flatnonzero(self.forward.indices[start:end] == v)
        return float(self.forward.data[start + hit[0]]) if hit.size else float("inf")

    # -- snapping -------------------------------------------------------------------------

    @cached_property
    def projection(self) -> LocalProjection:
        if not self.n_nodes:
            return LocalProjection(0.0, 0.0)
        return LocalProjection(
            float((self.lat.min() + self.lat.max()) / 2),
            float((self.lon.min() + self.lon.max()) / 2),
        )

    @cached_property
    def _snap_index(self) -> tuple[cKDTree, NDArray[np.int64]]:
        # Only nodes on some edge: snapping to an isolated node would make every ETA inf.
        on_edge = np.zeros(self.n_nodes, dtype=bool)
        on_edge[self.edge_from] = True
        on_edge[self.edge_to] = True
        nodes = np.flatnonzero(on_edge)
        if not nodes.size:
            raise RoadGraphError("the graph has no edges to snap to")
        x, y = self.projection.to_xy(self.lat[nodes], self.lon[nodes])
        return cKDTree(np.column_stack([x, y])), nodes

    @property
    def n_water_segments(self) -> int:
        return len(self.water)

    @cached_property
    def node_xy(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self.projection.to_xy(self.lat, self.lon)

    @cached_property
    def edge_index(self) -> tuple[cKDTree, float]:
        """A KD-tree of edge midpoints (metres) and the largest half edge length: every
        edge passing within r of a point has its midpoint within r + that half."""
        if not self.n_edges:
            raise RoadGraphError("the graph has no edges to snap to")
        x, y = self.node_xy
        ax, ay, bx, by = x[self.edge_from], y[self.edge_from], x[self.edge_to], y[self.edge_to]
        half = float(np.max(np.hypot(bx - ax, by - ay))) / 2
        return cKDTree(np.column_stack([(ax + bx) / 2, (ay + by) / 2])), half

    @cached_property
    def water_index(
        self,
    ) -> tuple[cKDTree, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
        """Water segments in metres, with a KD-tree of their midpoints and the largest half
        segment length (the same bound as edge_index)."""
        x0, y0 = self.projection.to_xy(self.water[:, 0], self.water[:, 1])
        x1, y1 = self.projection.to_xy(self.water[:, 2], self.water[:, 3])
        half = float(np.max(np.hypot(x1 - x0, y1 - y0))) / 2 if len(x0) else 0.0
        return cKDTree(np.column_stack([(x0 + x1) / 2, (y0 + y1) / 2])), x0, y0, x1, y1, half

    def snap(self, lat: float, lon: float) -> Snap:
        """The nearest node that lies on a road, and how far away it is."""
        nodes, dist = self.snap_many([lat], [lon])
        return Snap(int(nodes[0]), float(dist[0]))

    def snap_many(
        self, lat: ArrayLike, lon: ArrayLike
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        tree, nodes = self._snap_index
        x, y = self.projection.to_xy(np.atleast_1d(lat), np.atleast_1d(lon))
        dist, idx = tree.query(np.column_stack([x, y]))
        return nodes[idx], dist

    # -- serialisation --------------------------------------------------------------------

    def to_arrays(self) -> RoadArrays:
        """The graph as a dict of arrays (what `save_npz` writes); derived matrices are
        rebuilt on load, which takes ~1 s per million edges."""
        return {
            "format": np.array(_FORMAT),
            "node_id": self.node_id,
            "lat": self.lat,
            "lon": self.lon,
            "edge_from": self.edge_from,
            "edge_to": self.edge_to,
            "length_m": self.length_m,
            "road_class": self.road_class,
            "speed_kmh": self.speed_kmh,
            "water": self.water,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> RoadGraph:
        version = int(np.asarray(arrays.get("format", -1)))
        if version != _FORMAT:
            raise RoadGraphError(
                f"road graph format {version}, this version reads format {_FORMAT}"
            )
        return cls(
            node_id=np.asarray(arrays["node_id"], dtype=np.int64),
            lat=np.asarray(arrays["lat"], dtype=np.float64),
            lon=np.asarray(arrays["lon"], dtype=np.float64),
            edge_from=np.asarray(arrays["edge_from"], dtype=np.int32),
            edge_to=np.asarray(arrays["edge_to"], dtype=np.int32),
            length_m=np.asarray(arrays["length_m"], dtype=np.float64),
            road_class=np.asarray(arrays["road_class"], dtype=np.int8),
            speed_kmh=np.asarray(arrays["speed_kmh"], dtype=np.float64),
            water=_water(arrays.get("water")),  # absent in files saved before water lines
        )

    def save_npz(self, path: Path) -> None:
        np.savez_compressed(path, **self.to_arrays())

    @classmethod
    def load_npz(cls, path: Path) -> RoadGraph:
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays({k: data[k] for k in data.files})

    def subgraph(self, keep: NDArray[np.bool_]) -> RoadGraph:
        """The graph induced by the nodes where `keep` is true, renumbered 0..k-1."""
        new_index = np.full(self.n_nodes, -1, dtype=np.int64)
        new_index[keep] = np.arange(int(keep.sum()))
        edges = keep[self.edge_from] & keep[self.edge_to]
        return RoadGraph(
            node_id=self.node_id[keep],
            lat=self.lat[keep],
            lon=self.lon[keep],
            edge_from=new_index[self.edge_from[edges]].astype(np.int32),
            edge_to=new_index[self.edge_to[edges]].astype(np.int32),
            length_m=self.length_m[edges],
            road_class=self.road_class[edges],
            speed_kmh=self.speed_kmh[edges],
            water=self.water,
        )

    def largest_component(self) -> RoadGraph:
        """The largest strongly connected part: from any of its nodes every other one can be
        reached and back. Imported extracts have islands (a gated compound, a road cut by
        the extract's edge) that would otherwise swallow a snapped unit."""
        from scipy.sparse.csgraph import connected_components

        _, labels = connected_components(self.forward, directed=True, connection="strong")
        return self.subgraph(labels == np.bincount(labels).argmax())


def _fastest_edge_matrix(
    u: NDArray[np.integer[Any]], v: NDArray[np.integer[Any]], t: NDArray[np.float64], n: int
) -> sp.csr_matrix:
    # A CSR built from COO sums duplicate entries; parallel roads between the same two
    # junctions must give the faster one instead.
    order = np.lexsort((t, v, u))
    u, v, t = u[order], v[order], t[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    matrix = sp.csr_matrix((t[first], (u[first], v[first])), shape=(n, n))
    matrix.sort_indices()
    return matrix


def _water(segments: ArrayLike | None) -> NDArray[np.float64]:
    if segments is None:
        return np.empty((0, 4))
    arr = np.asarray(segments, dtype=np.float64)
    return arr.reshape(0, 4) if arr.size == 0 else arr


def water_segments(lines: Sequence[tuple[ArrayLike, ArrayLike]]) -> NDArray[np.float64]:
    """(lat1, lon1, lat2, lon2) segments of polylines given as (lats, lons)."""
    parts = []
    for lat, lon in lines:
        la, lo = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        if len(la) >= 2:
            parts.append(np.column_stack([la[:-1], lo[:-1], la[1:], lo[1:]]))
    return np.vstack(parts) if parts else np.empty((0, 4))
