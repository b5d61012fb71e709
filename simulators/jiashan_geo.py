"""The simulated county's geography: Jiashan's outline (the project's schematic region GeoJSON, WGS84), its
nine towns and sub-districts at approximate centres, and the rivers and canals that cut it
up. The road generator and the registry generator both build on this, so a water station
lies on a river the roads must bridge, and a village post lies in its town; and the console
draws it, as the region layers `watchpost roads load --synthetic-jiashan` stores.

Town centres and river courses are sketches, not surveys: a river here is named after a
real waterway and runs roughly where it does, but a deployment loads real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from dispatch.geometry import LocalProjection, clip_to_halfplane, densify, points_in_rings

COUNTY_ADCODE = 330421
_RIVER_SEED = 3304  # the rivers are fixed scenery: the road seed does not move them


@dataclass(frozen=True, slots=True)
class Town:
    key: str  # lower-case pinyin, used in ids
    name: str
    name_zh: str
    kind: str  # "sub-district" or "town"
    lat: float
    lon: float
    street_radius_m: float  # the built-up core with a dense street grid
    seat: bool = False


TOWNS: tuple[Town, ...] = (
    Town("weitang", "Weitang", "魏塘街道", "sub-district", 30.8460, 120.9120, 1300.0, seat=True),
    Town("luoxing", "Luoxing", "罗星街道", "sub-district", 30.8255, 120.9350, 1200.0, seat=True),
    Town("huimin", "Huimin", "惠民街道", "sub-district", 30.8580, 120.9700, 1000.0),
    Town("dayun", "Dayun", "大云镇", "town", 30.8020, 120.9820, 800.0),
    Town("xitang", "Xitang", "西塘镇", "town", 30.9440, 120.8880, 1000.0),
    Town("taozhuang", "Taozhuang", "陶庄镇", "town", 30.9880, 120.8380, 800.0),
    Town("yaozhuang", "Yaozhuang", "姚庄镇", "town", 30.9150, 120.9820, 900.0),
    Town("ganyao", "Ganyao", "干窑镇", "town", 30.8060, 120.8700, 800.0),
    Town("tianning", "Tianning", "天凝镇", "town", 30.8820, 120.8220, 800.0),
)

# (name, name_zh, control points as (lat, lon)). Each runs past the county edge or into
# another river, so that it splits the county: a river that stopped in a field would be
# walked around, and the detours it forces are the point.
# fmt: off
_RIVER_SKETCHES: tuple[tuple[str, str, tuple[tuple[float, float], ...]], ...] = (
    ("Taipu River", "太浦河",
     ((31.040, 120.700), (31.008, 120.790), (30.990, 120.870), (30.976, 120.930), (30.972, 120.975),
      (30.985, 121.060))),
    ("Hongqi Tang", "红旗塘",
     ((30.925, 120.700), (30.906, 120.790), (30.897, 120.870), (30.893, 120.940), (30.899, 121.000),
      (30.905, 121.080))),
    ("Luxu Tang", "芦墟塘", ((30.893, 120.878), (30.930, 120.872), (30.970, 120.880), (31.060, 120.872))),
    ("Jiashan Tang", "嘉善塘",
     ((30.740, 120.790), (30.800, 120.855), (30.836, 120.924), (30.865, 120.985), (30.899, 121.003))),
    ("Wuzi Tang", "伍子塘", ((30.836, 120.945), (30.800, 120.950), (30.760, 120.958), (30.700, 120.965))),
    ("Yuhui Tang", "俞汇塘",
     ((30.895, 120.955), (30.930, 120.958), (30.960, 120.968), (30.975, 120.978), (31.060, 121.000))),
    ("Changshui Tang", "长水塘",
     ((30.770, 120.760), (30.792, 120.850), (30.800, 120.920), (30.812, 121.000), (30.835, 121.080))),
    ("Tianning Tang", "天凝塘",
     ((31.003, 120.815), (30.940, 120.830), (30.880, 120.845), (30.820, 120.835), (30.740, 120.830))),
    # Three more rivers that leave for Shanghai at a cross-border section: from Yaozhuang to
    # Qingpu past the Dingzha hub, from Huimin (the old Dashun township) and from Dayun to
    # Jinshan's Fengjing. Each starts across another river (a confluence however that one
    # meanders). Appended last: the rivers before keep their courses.
    ("Dingzha Gang", "丁栅港",
     ((30.926, 120.950), (30.940, 120.985), (30.952, 121.005), (30.962, 121.040))),
    ("Fentou Gang", "坟头港",
     ((30.872, 120.972), (30.866, 121.000), (30.868, 121.030), (30.872, 121.070))),
    ("Fengjing Tang", "枫泾塘",
     ((30.790, 120.940), (30.788, 120.980), (30.792, 121.010), (30.796, 121.060))),
)
# fmt: on


@dataclass(frozen=True, eq=False)
class River:
    name: str
    name_zh: str
    lat: NDArray[np.float64]  # the course, one vertex every ~50 m
    lon: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Neighbour:
    adcode: int
    name: str
    role: str
    rings: tuple[NDArray[np.float64], ...]  # (lon, lat) rings

    @property
    def partner_id(self) -> str | None:
        """`qingpu` for "Qingpu, Shanghai (partner)"; None for a district that is not one."""
        return self.role.split(",")[0].strip().lower() if "(partner)" in self.role else None


@dataclass(frozen=True, eq=False)
class JiashanGeography:
    rings: tuple[NDArray[np.float64], ...]  # the county's (lon, lat) rings, holes included
    outer: tuple[int, ...]  # which of `rings` are outer rings (one per polygon)
    neighbours: tuple[Neighbour, ...]
    towns: tuple[Town, ...]
    rivers: tuple[River, ...]
    projection: LocalProjection

    def __repr__(self) -> str:
        return f"JiashanGeography({len(self.towns)} towns, {len(self.rivers)} rivers)"

    @cached_property
    def rings_xy(self) -> tuple[NDArray[np.float64], ...]:
        return tuple(np.column_stack(self.projection.to_xy(r[:, 1], r[:, 0])) for r in self.rings)

    def contains(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.bool_]:
        x, y = self.projection.to_xy(lat, lon)
        return points_in_rings(x, y, self.rings_xy)

    def contains_xy(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.bool_]:
        return points_in_rings(x, y, self.rings_xy)

    @cached_property
    def towns_xy(self) -> NDArray[np.float64]:
        return np.column_stack(
            self.projection.to_xy([t.lat for t in self.towns], [t.lon for t in self.towns])
        )

    def town_index(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Index into `towns` of the town each point belongs to (the nearest centre, which
        is what the approximate town boundaries are)."""
        x, y = self.projection.to_xy(np.atleast_1d(lat), np.atleast_1d(lon))
        return cKDTree(self.towns_xy).query(np.column_stack([x, y]))[1]

    def town_boundary(self, i: int) -> list[list[list[list[float]]]]:
        """Town `i`'s approximate area as GeoJSON MultiPolygon coordinates: the county cut
        by the perpendicular bisectors to every other centre (a clipped Voronoi cell).
        Holes in the county outline, if any, are not cut out."""
        c = self.towns_xy[i]
        out = []
        for ring in (self.rings_xy[k] for k in self.outer):
            cell = ring
            for j, other in enumerate(self.towns_xy):
                if j != i and len(cell):
                    cell = clip_to_halfplane(cell, other - c, float((other @ other - c @ c) / 2))
            if len(cell):
                lat, lon = self.projection.to_latlon(cell[:, 0], cell[:, 1])
                out.append([np.round(np.column_stack([lon, lat]), 6).tolist()])
        return out

    def nearest_neighbour(self, lat: float, lon: float) -> tuple[Neighbour, float]:
        """The neighbouring district whose boundary is closest, and the distance in metres."""
        x, y = self.projection.to_xy(lat, lon)
        best = min(
            (
                (n, float(tree.query([x, y])[0]))
                for n, tree in zip(self.neighbours, self._neighbour_trees, strict=True)
            ),
            key=lambda p: p[1],
        )
        return best

    @cached_property
    def _neighbour_trees(self) -> list[cKDTree]:
        trees = []
        for n in self.neighbours:
            xy = [
                densify(np.column_stack(self.projection.to_xy(r[:, 1], r[:, 0])), 100.0)
                for r in n.rings
            ]
            trees.append(cKDTree(np.vstack(xy)))
        return trees


def load_geography(geojson_path: Path) -> JiashanGeography:
    """Read the county and its neighbours from the region GeoJSON (simulators/data/README.md)."""
    doc = orjson.loads(Path(geojson_path).read_bytes())
    county = None
    neighbours = []
    for feature in doc["features"]:
        props = feature["properties"]
        rings, outer = _rings(feature["geometry"])
        if props["adcode"] == COUNTY_ADCODE:
            county = (rings, outer)
        else:
            neighbours.append(
                Neighbour(int(props["adcode"]), props["name"], props.get("role", ""), rings)
            )
    if county is None:
        raise ValueError(f"{geojson_path}: no feature with adcode {COUNTY_ADCODE} (Jiashan)")
    rings, outer = county
    all_points = np.vstack(rings)
    lon0, lat0 = (all_points.min(axis=0) + all_points.max(axis=0)) / 2
    projection = LocalProjection(float(lat0), float(lon0))
    rng = np.random.default_rng(_RIVER_SEED)
    rivers = tuple(
        _meander(name, zh, points, projection, rng) for name, zh, points in _RIVER_SKETCHES
    )
    return JiashanGeography(rings, outer, tuple(neighbours), TOWNS, rivers, projection)


def region_layers(geojson_path: Path) -> dict[str, dict[str, Any]]:
    """The simulated county's base map, as the region layers the console draws: the
    county (marked `home`, the area the map frames) and its neighbours from the region
    GeoJSON, the towns, the rivers."""
    geo = load_geography(geojson_path)
    boundary = orjson.loads(Path(geojson_path).read_bytes())
    for feature in boundary["features"]:
        if feature["properties"].get("adcode") == COUNTY_ADCODE:
            feature["properties"]["home"] = True
    return {"boundary": boundary, "towns": towns_geojson(geo), "rivers": rivers_geojson(geo)}


def rivers_geojson(geo: JiashanGeography) -> dict[str, Any]:
    """The rivers inside the county, for the console's base map."""
    features = []
    for river in geo.rivers:
        inside = geo.contains(river.lat, river.lon)
        runs = _runs(np.column_stack([river.lon, river.lat]), inside)
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiLineString",
                    "coordinates": [np.round(r, 6).tolist() for r in runs],
                },
                "properties": {
                    "name": river.name,
                    "name_zh": river.name_zh,
                    "kind": "river",
                    "approximate": True,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def towns_geojson(geo: JiashanGeography) -> dict[str, Any]:
    """Each town's centre (Point) and approximate area (Polygon)."""
    features = []
    for i, t in enumerate(geo.towns):
        props = {"key": t.key, "name": t.name, "name_zh": t.name_zh, "kind": t.kind, "seat": t.seat}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [t.lon, t.lat]},
                "properties": {**props, "feature": "centre"},
            }
        )
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "MultiPolygon", "coordinates": geo.town_boundary(i)},
                "properties": {**props, "feature": "boundary", "approximate": True},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _rings(geometry: dict[str, Any]) -> tuple[tuple[NDArray[np.float64], ...], tuple[int, ...]]:
    """All rings of a (Multi)Polygon, and the indices of the outer ones."""
    multi = geometry["type"] == "MultiPolygon"
    polygons = geometry["coordinates"] if multi else [geometry["coordinates"]]
    rings: list[NDArray[np.float64]] = []
    outer: list[int] = []
    for polygon in polygons:
        outer.append(len(rings))
        rings += [np.asarray(ring, dtype=np.float64) for ring in polygon]
    return tuple(rings), tuple(outer)


def _meander(
    name: str,
    name_zh: str,
    points: Sequence[tuple[float, float]],
    projection: LocalProjection,
    rng: np.random.Generator,
) -> River:
    # Plain-country rivers wander a few hundred metres either side of their line; sums of
    # long sines keep the course smooth and never let it cross itself.
    lat, lon = np.array(points).T
    xy = densify(np.column_stack(projection.to_xy(lat, lon)), 50.0)
    step = np.diff(xy, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*step.T))])
    tangent = np.vstack([step, step[-1:]])
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]]) / np.hypot(*tangent.T)[:, None]
    offset = np.zeros(len(s))
    for _ in range(3):
        wavelength = rng.uniform(1500.0, 5000.0)
        amplitude = rng.uniform(40.0, 0.1 * wavelength / np.pi)
        offset += amplitude * np.sin(2 * np.pi * s / wavelength + rng.uniform(0, 2 * np.pi))
    offset *= np.minimum(
        1.0, np.minimum(s, s[-1] - s) / 500.0
    )  # ends stay on the sketch (confluences)
    xy = xy + normal * offset[:, None]
    lat, lon = projection.to_latlon(xy[:, 0], xy[:, 1])
    return River(name, name_zh, lat, lon)


def _runs(points: NDArray[np.float64], keep: NDArray[np.bool_]) -> list[NDArray[np.float64]]:
    runs, start = [], None
    for i, k in enumerate([*keep.tolist(), False]):
        if k and start is None:
            start = i
        elif not k and start is not None:
            if i - start >= 2:
                runs.append(points[start:i])
            start = None
    return runs
