"""A synthetic road network of Jiashan, deterministic for a given seed.

Inside the county's outline (the project's schematic drawing): a jittered grid of village roads (~200 m apart) with a
county road every ~2 km, a denser grid of streets in each town's core, national and
provincial roads between the towns, and two expressways that touch the local network only
at their interchanges. Then the rivers cut it: a road segment that crosses a river
survives only as a bridge. Main roads always bridge; a village road gets a bridge every
1.2–2.5 km along a river, a town street every ~300 m. So, as in the real plain river
network, the unit nearest as the crow flies is often across water with no bridge near.

A deployment loads its real network with road_import; this one drives tests and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from dispatch.geometry import densify, haversine_m, segments_cross
from dispatch.roads import DEFAULT_SPEED_KMH, ROAD_CLASS_CODE, RoadGraph, water_segments
from simulators.jiashan_geo import JiashanGeography, load_geography

__all__ = ["DEFAULT_SEED", "JiashanNetwork", "build_jiashan_network"]

DEFAULT_SEED = 20_240_601
_C = ROAD_CLASS_CODE

# Waypoints are town keys or (lat, lon). Courses are approximate; names say what they mimic.
# fmt: off
MAIN_ROADS: tuple[tuple[str, str, tuple[str | tuple[float, float], ...]], ...] = (
    ("G320 national road", "trunk",
     ((30.872, 120.740), "tianning", "weitang", "huimin", (30.872, 121.045))),
    ("Jiaxi road", "primary", ("weitang", "xitang", "taozhuang", (31.030, 120.830))),
    ("Jiayao road", "primary", ("weitang", (30.880, 120.950), "yaozhuang", (30.930, 121.040))),
    ("Jiadayun road", "primary", ("luoxing", "dayun", (30.775, 121.020))),
    ("Jiagan road", "primary", ("luoxing", "ganyao", (30.790, 120.790))),
    ("Xiyao road", "secondary", ("xitang", "yaozhuang")),
    ("Tianxi road", "secondary", ("tianning", "xitang")),
    ("Tiangan road", "secondary", ("tianning", "ganyao")),
    ("Taotian road", "secondary", ("taozhuang", (30.950, 120.800), "tianning")),
    ("Huida road", "secondary", ("huimin", "dayun")),
    ("Huiyao road", "secondary", ("huimin", "yaozhuang")),
)
# Expressways touch the local network only where they pass over a main road (interchanges).
MOTORWAYS: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = (
    ("G60 Shanghai-Kunming expressway", ((30.818, 120.740), (30.815, 120.900), (30.808, 121.050))),
    ("S32 Shanghai-Jiaxing-Huzhou expressway",
     ((30.860, 120.740), (30.915, 120.860), (30.948, 120.950), (30.962, 121.050))),
)
# fmt: on
RAMP_SPEED_KMH = 40.0

RURAL_ARTERIAL_EVERY = 10  # every 10th grid line (~2 km) is a county road
RURAL_DROP_FRACTION = 0.12  # fields and ponds interrupt the village grid
TRACK_FRACTION = 0.2
RIVER_BRIDGE_SPACING_M = (1200.0, 2500.0)  # village roads: one bridge per this much river
TOWN_BRIDGE_SPACING_M = 300.0
JUNCTION_REACH_M = 150.0  # a main road meets a local road within this distance
_WINDING = {"track": 1.08, "residential": 1.04}  # village roads are not ruler-straight
_MAIN = np.array([c in {"motorway", "trunk", "primary", "secondary"} for c in _C], dtype=bool)


@dataclass(frozen=True, eq=False)
class JiashanNetwork:
    graph: RoadGraph
    geography: JiashanGeography
    is_bridge: NDArray[np.bool_]  # per graph edge
    removed_crossings: int  # road segments dropped because they would cross water

    def __repr__(self) -> str:
        return f"JiashanNetwork({self.graph!r}, {int(self.is_bridge.sum())} bridge edges)"


def build_jiashan_network(
    geojson_path: Path,
    *,
    seed: int = DEFAULT_SEED,
    rural_spacing_m: float = 200.0,
) -> JiashanNetwork:
    geo = load_geography(geojson_path)
    b = _Builder(geo, np.random.default_rng(seed))
    b.rural_grid(rural_spacing_m)
    for i in range(len(geo.towns)):
        b.town_grid(i)
    b.stitch_towns(rural_spacing_m)
    b.main_roads()
    b.motorways()
    return b.finish()


class _Builder:
    """Accumulates nodes (x, y metres) and undirected edges: a, b, class code, one-way
    (a -> b only) and a speed that overrides the class default when > 0."""

    def __init__(self, geo: JiashanGeography, rng: np.random.Generator) -> None:
        self.geo, self.rng = geo, rng
        self.x: list[NDArray] = []
        self.y: list[NDArray] = []
        self.n = 0
        self.edges: dict[str, list[NDArray]] = {k: [] for k in ("a", "b", "cls", "oneway", "speed")}
        self.rural_count = 0  # nodes 0.. are the village grid
        self.local_count = 0  # nodes 0.. are village roads and town streets
        self.town_nodes: list[NDArray[np.int64]] = []
        self.main_nodes: list[NDArray[np.int64]] = []

    def add_nodes(self, x: NDArray, y: NDArray) -> NDArray[np.int64]:
        ids = np.arange(self.n, self.n + len(x))
        self.x.append(np.asarray(x, dtype=float))
        self.y.append(np.asarray(y, dtype=float))
        self.n += len(x)
        return ids

    def add_edges(
        self,
        a: NDArray,
        b: NDArray,
        cls: NDArray | int,
        oneway: NDArray | int = 0,
        speed: float = 0.0,
    ) -> None:
        n = len(a)
        for key, value in (("a", a), ("b", b), ("cls", cls), ("oneway", oneway)):
            self.edges[key].append(np.broadcast_to(np.asarray(value, dtype=np.int64), (n,)))
        self.edges["speed"].append(np.full(n, speed))

    def _lattice(
        self, cx: float, cy: float, half: int, spacing: float, angle: float, jitter: float
    ):
        i, j = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1), indexing="ij")
        u, v = j * spacing, i * spacing
        c, s = np.cos(angle), np.sin(angle)
        x = cx + c * u - s * v + self.rng.uniform(-jitter, jitter, u.shape)
        y = cy + s * u + c * v + self.rng.uniform(-jitter, jitter, u.shape)
        return i, j, u, v, x, y

    @staticmethod
    def _grid_edges(keep: NDArray[np.bool_], ids: NDArray[np.int64], i: NDArray, j: NDArray):
        """Lattice neighbours that were both kept: (a, b, grid line of the edge, row and
        column of a) for the east-west edges, then the north-south ones."""
        index = np.full(keep.shape, -1, dtype=np.int64)
        index[keep] = ids
        out = []
        for a, b, line in (
            (index[:, :-1], index[:, 1:], i[:, :-1]),
            (index[:-1, :], index[1:, :], j[:-1, :]),
        ):
            ok = (a >= 0) & (b >= 0)
            rows, cols = np.nonzero(ok)
            out.append((a[ok], b[ok], line[ok], rows, cols))
        return out

    def rural_grid(self, spacing: float) -> None:
        ring = np.vstack(self.geo.rings_xy)
        lo, hi = ring.min(axis=0), ring.max(axis=0)
        half = int(np.ceil(max(hi - lo) / 2 / spacing)) + 1
        centre = (lo + hi) / 2
        i, j, _, _, x, y = self._lattice(centre[0], centre[1], half, spacing, 0.0, 0.2 * spacing)
        keep = self.geo.contains_xy(x.ravel(), y.ravel()).reshape(x.shape)
        for t, (tx, ty) in enumerate(self.geo.towns_xy):
            keep &= np.hypot(x - tx, y - ty) > self.geo.towns[t].street_radius_m + spacing / 3
        ids = self.add_nodes(x[keep], y[keep])
        self.rural_count = self.local_count = self.n
        for a, b, along, _, _ in self._grid_edges(keep, ids, i, j):
            arterial = along % RURAL_ARTERIAL_EVERY == 0
            cls = np.where(
                arterial,
                _C["tertiary"],
                np.where(self.rng.random(len(a)) < TRACK_FRACTION, _C["track"], _C["residential"]),
            )
            kept = arterial | (self.rng.random(len(a)) >= RURAL_DROP_FRACTION)
            self.add_edges(a[kept], b[kept], cls[kept])

    def town_grid(self, t: int) -> None:
        town = self.geo.towns[t]
        spacing = 90.0 if town.seat else 100.0
        half = int(np.ceil(town.street_radius_m / spacing))
        cx, cy = self.geo.towns_xy[t]
        i, j, u, v, x, y = self._lattice(
            cx, cy, half, spacing, self.rng.uniform(-0.35, 0.35), 0.1 * spacing
        )
        keep = (np.hypot(u, v) <= town.street_radius_m) & self.geo.contains_xy(
            x.ravel(), y.ravel()
        ).reshape(x.shape)
        ids = self.add_nodes(x[keep], y[keep])
        self.town_nodes.append(ids)
        for a, b, along, rows, cols in self._grid_edges(keep, ids, i, j):
            cls = np.where(along % 6 == 0, _C["secondary"], _C["residential"])
            # The old core of the county seat has one-way streets, alternating by line,
            # so that "time to" and "time from" differ and the reversed search matters.
            mid = (
                (np.hypot(u[rows, cols], v[rows, cols]) < 500.0)
                & (cls == _C["residential"])
                & (town.key == "weitang")
            )
            flip = mid & (along % 2 == 1)
            self.add_edges(np.where(flip, b, a), np.where(flip, a, b), cls, mid.astype(np.int64))
        self.local_count = self.n

    def stitch_towns(self, spacing: float) -> None:
        # Every village road end near a town's edge runs on to the nearest street.
        xy = self.xy()
        rural = xy[: self.rural_count]
        for t, ids in enumerate(self.town_nodes):
            r = np.hypot(*(rural - self.geo.towns_xy[t]).T)
            ring = np.flatnonzero(r < self.geo.towns[t].street_radius_m + 1.5 * spacing)
            if not len(ids) or not len(ring):
                continue
            dist, near = cKDTree(xy[ids]).query(rural[ring])
            ok = dist < 1.5 * spacing
            self.add_edges(ring[ok], ids[near[ok]], _C["residential"])

    def _polyline(
        self, points: list[NDArray], step: float, shared: dict[Any, int], keys: list[Any]
    ) -> NDArray[np.int64]:
        """Node ids along a polyline; waypoints with a key are shared between roads, so
        two roads through a town centre meet there."""
        for point, key in zip(points, keys, strict=True):
            if key not in shared:
                shared[key] = int(self.add_nodes(point[:1], point[1:])[0])
        ids = [shared[keys[0]]]
        for k in range(len(points) - 1):
            inner = densify(np.vstack([points[k], points[k + 1]]), step)[1:-1]
            ids += self.add_nodes(inner[:, 0], inner[:, 1]).tolist()
            ids.append(shared[keys[k + 1]])
        return np.array(ids, dtype=np.int64)

    def _waypoint(self, w: str | tuple[float, float]) -> tuple[Any, NDArray]:
        if isinstance(w, str):
            t = next(k for k, town in enumerate(self.geo.towns) if town.key == w)
            return w, self.geo.towns_xy[t]
        return w, np.array(self.geo.projection.to_xy(*w))

    def _inside_edges(self, ids: NDArray[np.int64], cls: int, speed: float = 0.0) -> None:
        xy = self.xy()
        inside = self.geo.contains_xy(xy[ids, 0], xy[ids, 1])
        ok = inside[:-1] & inside[1:]
        self.add_edges(ids[:-1][ok], ids[1:][ok], cls, 0, speed)

    def xy(self) -> NDArray[np.float64]:
        return np.column_stack([np.concatenate(self.x), np.concatenate(self.y)])

    def main_roads(self) -> None:
        shared: dict[Any, int] = {}
        for _name, cls, waypoints in MAIN_ROADS:
            keys, points = zip(*(self._waypoint(w) for w in waypoints), strict=True)
            ids = self._polyline(list(points), 200.0, shared, list(keys))
            self._inside_edges(ids, _C[cls])
            self.main_nodes.append(ids)
        # Junctions: every main-road node meets the nearest local road if one is close.
        xy = self.xy()
        local = cKDTree(xy[: self.local_count])
        mains = np.unique(np.concatenate(self.main_nodes))
        mains = mains[self.geo.contains_xy(xy[mains, 0], xy[mains, 1])]
        dist, near = local.query(xy[mains])
        ok = dist < JUNCTION_REACH_M
        self.add_edges(mains[ok], near[ok], _C["tertiary"])

    def motorways(self) -> None:
        main_segments = [(ids[:-1], ids[1:]) for ids in self.main_nodes]
        for name, course in MOTORWAYS:
            points = [np.array(self.geo.projection.to_xy(*p)) for p in course]
            ids = self._polyline(points, 400.0, {}, [(name, k) for k in range(len(points))])
            self._inside_edges(ids, _C["motorway"])
            # An interchange wherever the expressway passes over a main road: a ramp between
            # the nearest ends of the two crossing segments, and no access anywhere else.
            xy = self.xy()
            m_a, m_b = ids[:-1], ids[1:]
            for r_a, r_b in main_segments:
                ii, jj = (g.ravel() for g in np.meshgrid(np.arange(len(m_a)), np.arange(len(r_a))))
                hit = segments_cross(*xy[m_a[ii]].T, *xy[m_b[ii]].T, *xy[r_a[jj]].T, *xy[r_b[jj]].T)
                for k in np.flatnonzero(hit):
                    ends = np.array([m_a[ii[k]], m_b[ii[k]]])
                    road = np.array([r_a[jj[k]], r_b[jj[k]]])
                    gap = np.hypot(*(xy[ends][:, None] - xy[road][None]).transpose(2, 0, 1))
                    e, f = np.unravel_index(np.argmin(gap), gap.shape)
                    if self.geo.contains_xy(
                        xy[[ends[e], road[f]], 0], xy[[ends[e], road[f]], 1]
                    ).all():
                        self.add_edges(np.array([ends[e]]), np.array([road[f]]), _C["motorway"], speed=RAMP_SPEED_KMH)

    def finish(self) -> JiashanNetwork:
        xy = self.xy()
        e = {k: np.concatenate(v) for k, v in self.edges.items()}
        crossings, bridged = self._river_crossings(xy, e["a"], e["b"], e["cls"])
        keep = ~crossings | bridged
        e = {k: v[keep] for k, v in e.items()}
        bridge = (crossings & bridged)[keep]
        # Directed: two-way edges both ways, one-way edges a -> b.
        two = e["oneway"] == 0
        src = np.concatenate([e["a"], e["b"][two]])
        dst = np.concatenate([e["b"], e["a"][two]])
        cls = np.concatenate([e["cls"], e["cls"][two]])
        speed_override = np.concatenate([e["speed"], e["speed"][two]])
        is_bridge = np.concatenate([bridge, bridge[two]])
        # Keep the largest strongly connected part: pockets walled in by rivers and the
        # county edge, with no bridge out, are not somewhere a unit can be sent.
        nodes = _largest_strong_component(src, dst, len(xy))
        renumber = np.cumsum(nodes) - 1
        ok = nodes[src] & nodes[dst]
        src, dst, cls, speed_override, is_bridge = (
            renumber[src[ok]],
            renumber[dst[ok]],
            cls[ok],
            speed_override[ok],
            is_bridge[ok],
        )
        lat, lon = self.geo.projection.to_latlon(xy[nodes, 0], xy[nodes, 1])
        names = np.array(list(_C))
        speed = np.where(
            speed_override > 0, speed_override, np.array([DEFAULT_SPEED_KMH[c] for c in _C])[cls]
        )
        winding = np.array([_WINDING.get(c, 1.0) for c in _C])[cls]
        length = haversine_m(lat[src], lon[src], lat[dst], lon[dst]) * winding
        # The graph carries the rivers, so a point is never snapped onto the far bank.
        water = water_segments([(river.lat, river.lon) for river in self.geo.rivers])
        graph = RoadGraph.from_edges(lat, lon, src, dst, length, names[cls], speed, water=water)
        removed = int(crossings.sum() - bridged.sum())
        return JiashanNetwork(graph, self.geo, is_bridge, removed)

    def _river_crossings(
        self, xy: NDArray, a_ids: NDArray, b_ids: NDArray, cls: NDArray
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Per undirected edge: does it cross a river, and is every crossing a bridge."""
        a, b = xy[a_ids], xy[b_ids]
        mid_tree = cKDTree((a + b) / 2)
        reach = float(np.hypot(*(b - a).T).max()) / 2 + 30.0
        crosses = np.zeros(len(a), dtype=bool)
        unbridged = np.zeros(len(a), dtype=bool)
        towns_xy = self.geo.towns_xy
        radii = np.array([t.street_radius_m for t in self.geo.towns])
        for river in self.geo.rivers:
            r = np.column_stack(self.geo.projection.to_xy(river.lat, river.lon))
            s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(r, axis=0).T))])
            hits = mid_tree.query_ball_point((r[:-1] + r[1:]) / 2, reach)
            seg = np.repeat(np.arange(len(hits)), [len(h) for h in hits])
            edge = (
                np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
                if len(seg)
                else np.empty(0, dtype=np.int64)
            )
            hit = segments_cross(*a[edge].T, *b[edge].T, *r[seg].T, *r[seg + 1].T)
            seg, edge = seg[hit], edge[hit]
            # One crossing per (edge, river): a meander crossing an edge twice is one bridge.
            order = np.lexsort((s[seg], edge))
            seg, edge = seg[order], edge[order]
            first = np.ones(len(edge), dtype=bool)
            first[1:] = edge[1:] != edge[:-1]
            seg, edge = seg[first], edge[first]
            crosses[edge] = True
            # Main roads always bridge; village roads and streets get a bridge every so often.
            local = ~_MAIN[cls[edge]]
            by_s = np.argsort(s[seg[local]], kind="stable")
            l_seg, l_edge = seg[local][by_s], edge[local][by_s]
            in_town = (
                np.hypot(*(r[l_seg][:, None, :] - towns_xy[None]).transpose(2, 0, 1))
                < radii + 300.0
            ).any(axis=1)
            last, gap = (
                -self.rng.uniform(0, RIVER_BRIDGE_SPACING_M[1]),
                self.rng.uniform(*RIVER_BRIDGE_SPACING_M),
            )
            for k in range(len(l_edge)):
                need = TOWN_BRIDGE_SPACING_M if in_town[k] else gap
                if s[l_seg[k]] - last >= need:
                    last, gap = s[l_seg[k]], self.rng.uniform(*RIVER_BRIDGE_SPACING_M)
                else:
                    unbridged[l_edge[k]] = True
        return crosses, crosses & ~unbridged


def _largest_strong_component(src: NDArray, dst: NDArray, n: int) -> NDArray[np.bool_]:
    matrix = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(matrix, directed=True, connection="strong")
    return labels == np.bincount(labels).argmax()
