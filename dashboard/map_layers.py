"""The console's base map, drawn from the deployment's own data — no tile server: the road
network dispatch routes on (road_nodes, road_edges), the region's boundaries, rivers and
towns (region_layers), and the registry's facilities.

Whatever network was loaded (an OSM extract, a GeoJSON file, the simulated county) is the
one on the map. The document is built from the database once per loaded network and
region, and served from memory (see `MapCache`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import psycopg
from numpy.typing import ArrayLike

# The region layers the console draws, and the key of each in the map document.
REGION_LAYERS: Mapping[str, str] = {"boundary": "boundaries", "rivers": "rivers", "towns": "towns"}

# How long a built document is served without asking the database whether the network or a
# region layer changed: a network loaded while the API runs is on the map within this long.
VERSION_CHECK_S = 10.0

# Identifies what the document was built from, in O(1): the rows of road_nodes are rewritten
# by every load (TRUNCATE and COPY in one transaction), so node 0's xmin changes with each
# network; region layers carry their load time.
VERSION_SQL = """SELECT (SELECT xmin::text FROM road_nodes WHERE node = 0) AS roads,
       (SELECT max(node) FROM road_nodes) AS nodes,
       (SELECT count(*) FROM region_layers) AS layers,
       (SELECT max(loaded_at) FROM region_layers) AS loaded_at"""


class RegionLayerError(ValueError):
    """A region layer cannot be stored: unknown name, or not GeoJSON; the message says why."""


# --- pure part -----------------------------------------------------------------------------


def road_lines(
    lat: ArrayLike, lon: ArrayLike, edge_from: ArrayLike, edge_to: ArrayLike, road_class: ArrayLike
) -> dict[str, Any]:
    """The road network as a GeoJSON FeatureCollection with one MultiLineString per road
    class. A two-way road's two directed edges are drawn once, and edges that run on
    through a node where nothing else of their class meets are joined into one line, so a
    county's network is a few thousand lines, not tens of thousands of segments."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    a, b = np.asarray(edge_from, dtype=np.int64), np.asarray(edge_to, dtype=np.int64)
    classes = np.asarray(road_class)
    features = []
    for cls in sorted({str(c) for c in classes.tolist()}):
        mask = classes == cls
        pairs = np.unique(np.column_stack([np.minimum(a[mask], b[mask]), np.maximum(a[mask], b[mask])]), axis=0)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        lines = [
            [[round(float(lon[n]), 6), round(float(lat[n]), 6)] for n in chain]
            for chain in _chains(pairs)
        ]
        features.append(
            {
                "type": "Feature",
                "properties": {"road_class": cls, "segments": len(pairs)},
                "geometry": {"type": "MultiLineString", "coordinates": lines},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _chains(pairs: np.ndarray) -> list[list[int]]:
    """Undirected edges (a < b, unique) as node paths: each path runs between nodes of
    degree other than 2, or round a loop. Every edge is in exactly one path."""
    neighbours: dict[int, list[int]] = {}
    for u, v in pairs.tolist():
        neighbours.setdefault(u, []).append(v)
        neighbours.setdefault(v, []).append(u)
    used: set[tuple[int, int]] = set()

    def walk(start: int, nxt: int) -> list[int]:
        path = [start]
        prev, node = start, nxt
        used.add((min(prev, node), max(prev, node)))
        while True:
            path.append(node)
            if len(neighbours[node]) != 2 or node == start:
                return path
            onward = neighbours[node][0] if neighbours[node][1] == prev else neighbours[node][1]
            edge = (min(node, onward), max(node, onward))
            if edge in used:
                return path
            used.add(edge)
            prev, node = node, onward

    paths = []
    # Ends and junctions first, so a line is never cut in the middle of a plain stretch...
    for node, near in neighbours.items():
        if len(near) != 2:
            for other in near:
                if (min(node, other), max(node, other)) not in used:
                    paths.append(walk(node, other))
    # ...then what is left: loops where every node has degree 2.
    for node, near in neighbours.items():
        for other in near:
            if (min(node, other), max(node, other)) not in used:
                paths.append(walk(node, other))
    return paths


def feature_collection(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A GeoJSON document as a FeatureCollection: a Feature or a bare geometry is wrapped."""
    kind = doc.get("type") if isinstance(doc, Mapping) else None
    if kind == "FeatureCollection" and isinstance(doc.get("features"), list):
        return dict(doc)
    if kind == "Feature":
        return {"type": "FeatureCollection", "features": [dict(doc)]}
    if kind in {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}:
        return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": dict(doc)}]}
    raise RegionLayerError(f"expected a GeoJSON FeatureCollection, Feature or geometry, got type {kind!r}")


def mark_home(collection: Mapping[str, Any], adcode: str) -> dict[str, Any]:
    """The boundary layer with the county's own feature marked `"home": true` — the area the
    console frames and draws as served. A file that marks one already is kept as it is;
    otherwise the feature whose `adcode` is the county's (as in the DataV and AutoNavi
    boundary files) is the home one, or the only feature of a one-feature file."""
    features = [dict(f) if isinstance(f, Mapping) else f for f in collection.get("features", [])]
    props: list[Mapping[str, Any]] = [
        f["properties"] if isinstance(f, dict) and isinstance(f.get("properties"), Mapping) else {} for f in features
    ]
    if not any(p.get("home") is True for p in props):
        home = [i for i, p in enumerate(props) if adcode and str(p.get("adcode", "")) == adcode]
        if not home and len(features) == 1 and isinstance(features[0], dict):
            home = [0]
        for i in home:
            features[i]["properties"] = {**props[i], "home": True}
    return {**collection, "features": features}


def points(rows: list[dict[str, Any]], id_key: str) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r[id_key],
                "properties": {k: v for k, v in r.items() if k not in ("lat", "lon")},
                "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            }
            for r in rows
        ],
    }


# --- database part ---------------------------------------------------------------------------


def save_region_layer(
    conn: psycopg.Connection, name: str, doc: Mapping[str, Any], *, source: str | None = None, now: datetime | None = None
) -> int:
    """Store (or replace) one region layer; returns its number of features."""
    if name not in REGION_LAYERS:
        raise RegionLayerError(f"no region layer {name!r}: the map draws {', '.join(REGION_LAYERS)}")
    collection = feature_collection(doc)
    conn.execute(
        """INSERT INTO region_layers (name, geojson, source, loaded_at) VALUES (%s, %s::jsonb, %s, %s)
           ON CONFLICT (name) DO UPDATE SET geojson = EXCLUDED.geojson, source = EXCLUDED.source,
                                            loaded_at = EXCLUDED.loaded_at""",
        (name, orjson.dumps(collection).decode(), source, now or datetime.now(UTC)),
    )
    return len(collection["features"])


def base_layers(conn: psycopg.Connection) -> bytes:
    """Boundaries, towns, rivers and roads as one JSON document of GeoJSON layers; a layer
    nothing was loaded for is an empty FeatureCollection."""
    empty: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    doc: dict[str, Any] = {key: empty for key in REGION_LAYERS.values()}
    with conn.cursor() as cur:
        cur.execute("SELECT name, geojson::text FROM region_layers WHERE name = ANY(%s)", (list(REGION_LAYERS),))
        region = {name: orjson.loads(text) for name, text in cur.fetchall()}
        nodes = np.array(cur.execute("SELECT lat, lon FROM road_nodes ORDER BY node").fetchall(), dtype=np.float64)
        edges = cur.execute("SELECT edge_from, edge_to, road_class FROM road_edges").fetchall()
    conn.commit()
    for name, key in REGION_LAYERS.items():
        if name in region:
            doc[key] = region[name]
    if len(nodes) and edges:
        f, t, cls = zip(*edges, strict=True)
        doc["roads"] = road_lines(nodes[:, 0], nodes[:, 1], f, t, cls)
    else:
        doc["roads"] = empty
    return orjson.dumps(doc)


@dataclass
class MapCache:
    """The base map document, rebuilt only when what it is drawn from changed. At most one
    rebuild runs at a time; the others wait for it rather than build the same thing."""

    check_every_s: float = VERSION_CHECK_S
    monotonic: Callable[[], float] = time.monotonic
    _key: Hashable = None
    _body: bytes | None = None
    _checked_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, version: Callable[[], Awaitable[Hashable]], build: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._body is not None and self.monotonic() - self._checked_at < self.check_every_s:
            return self._body
        async with self._lock:
            key = await version()
            if self._body is None or key != self._key:
                self._body, self._key = await build(), key
            self._checked_at = self.monotonic()
            return self._body
