"""Loading a real road network: a GeoJSON FeatureCollection of (Multi)LineStrings, or an
OpenStreetMap extract (XML, or PBF through pyosmium). Both follow OSM's tagging: `highway` names the class (`fclass`,
`road_class` or `class` are accepted in GeoJSON), `maxspeed` overrides the class speed, and
`oneway` gives the direction (motorways and roundabouts are one-way unless tagged otherwise).

Every vertex becomes a node and every segment an edge. Paths that are not for cars
(footway, cycleway, steps…) are left out: an ambulance routed along a footpath would show
an ETA nobody can drive.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from .geometry import haversine_m
from .roads import DEFAULT_SPEED_KMH, ROAD_CLASS_CODE, RoadGraph, water_segments

# OSM highway values an ambulance can drive on, folded onto the graph's classes.
# Water lines a scene must not be snapped across (OSM `waterway=*`, or a GeoJSON feature's
# `waterway` property): rivers, canals and streams; ditches and drains are crossed on foot.
WATER_LINES = frozenset({"river", "canal", "stream"})

HIGHWAY_CLASS: Mapping[str, str] = {
    "motorway": "motorway",
    "motorway_link": "motorway",
    "trunk": "trunk",
    "trunk_link": "trunk",
    "primary": "primary",
    "primary_link": "primary",
    "secondary": "secondary",
    "secondary_link": "secondary",
    "tertiary": "tertiary",
    "tertiary_link": "tertiary",
    # In rural China `unclassified` is mostly the village road (村道): residential pace.
    "unclassified": "residential",
    "residential": "residential",
    "living_street": "residential",
    "road": "residential",
    "service": "service",
    "track": "track",
}
# Implied one-way in OSM unless tagged oneway=no.
_IMPLIED_ONEWAY = {"motorway", "motorway_link"}

_FORWARD, _BACKWARD, _BOTH = 1, -1, 0
_MPH = 1.609344
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph)?\s*$")


class RoadImportError(ValueError):
    """The source cannot be read as a road network; the message says where."""


@dataclass(frozen=True, slots=True)
class _Way:
    nodes: list[Any]  # keys into the node table
    road_class: str
    speed_kmh: float
    direction: int


def parse_maxspeed(value: Any) -> float | None:
    """km/h from an OSM maxspeed ("60", "60 km/h", "30 mph", "50;60" takes the first);
    None for what is no number ("CN:urban", "none", "walk") so the class default applies."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    match = _SPEED.match(str(value).split(";")[0])
    if not match:
        return None
    speed = float(match.group(1)) * (_MPH if match.group(2) == "mph" else 1.0)
    return speed if speed > 0 else None


def parse_oneway(value: Any, highway: str, junction: str | None = None) -> int:
    """1 along the geometry, -1 against it, 0 both ways. Also reads the Geofabrik
    shapefile convention (F, T, B)."""
    if value is None or value == "":
        return _FORWARD if highway in _IMPLIED_ONEWAY or junction == "roundabout" else _BOTH
    text = str(value).strip().lower()
    if text in {"yes", "true", "1", "f"}:
        return _FORWARD
    if text in {"-1", "reverse", "t"}:
        return _BACKWARD
    return _BOTH


def graph_from_geojson(
    doc: Mapping[str, Any],
    *,
    speeds: Mapping[str, float] = DEFAULT_SPEED_KMH,
    default_class: str = "residential",
) -> RoadGraph:
    """Lines that share a coordinate (to 1e-7 degrees, ~1 cm) share a node; a feature with
    no class property gets `default_class`."""
    if doc.get("type") != "FeatureCollection":
        raise RoadImportError(f"expected a GeoJSON FeatureCollection, got type {doc.get('type')!r}")
    coords: dict[tuple[int, int], tuple[float, float]] = {}
    ways: list[_Way] = []
    water: list[list[tuple[float, float]]] = []
    for i, feature in enumerate(doc.get("features") or []):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        kind = geometry.get("type")
        if kind == "LineString":
            lines = [geometry.get("coordinates") or []]
        elif kind == "MultiLineString":
            lines = geometry.get("coordinates") or []
        else:
            continue  # points and polygons (bus stops, areas) are not roads
        if str(props.get("waterway")) in WATER_LINES:
            water += [_lonlat_line(line, i) for line in lines]
            continue
        highway = (
            props.get("highway")
            or props.get("fclass")
            or props.get("road_class")
            or props.get("class")
        )
        road_class = HIGHWAY_CLASS.get(str(highway)) if highway is not None else default_class
        if road_class is None:
            continue
        speed = parse_maxspeed(props.get("maxspeed")) or speeds[road_class]
        direction = parse_oneway(props.get("oneway"), str(highway), props.get("junction"))
        for line in lines:
            keys = []
            for point in line:
                try:
                    lon, lat = float(point[0]), float(point[1])
                except (TypeError, ValueError, IndexError):
                    raise RoadImportError(
                        f"features[{i}]: coordinate {point!r} is not [lon, lat]"
                    ) from None
                key = (round(lon * 1e7), round(lat * 1e7))
                coords.setdefault(key, (lat, lon))
                keys.append(key)
            ways.append(_Way(keys, road_class, speed, direction))
    return _build(coords, ways, node_ids=None, water=water)


def _lonlat_line(line: Any, i: int) -> list[tuple[float, float]]:
    """A water line's [lon, lat] positions as (lat, lon)."""
    try:
        return [(float(p[1]), float(p[0])) for p in line]
    except (TypeError, ValueError, IndexError):
        raise RoadImportError(f"features[{i}]: a waterway coordinate is not [lon, lat]") from None


def load_geojson(path: Path, **options: Any) -> RoadGraph:
    return graph_from_geojson(orjson.loads(Path(path).read_bytes()), **options)


# How often a long import says how far it got (OSM elements read).
PROGRESS_EVERY = 500_000

Progress = Callable[[str], None]


def _way_from_tags(tags: Mapping[str, str], refs: list[int], speeds: Mapping[str, float]) -> _Way | None:
    """The drivable way an OSM way's tags describe, or None (not a road a car can use)."""
    highway = tags.get("highway")
    road_class = HIGHWAY_CLASS.get(highway or "")
    if highway is None or road_class is None or tags.get("area") == "yes":
        return None
    speed = parse_maxspeed(tags.get("maxspeed")) or speeds[road_class]
    return _Way(refs, road_class, speed, parse_oneway(tags.get("oneway"), highway, tags.get("junction")))


def graph_from_osm_xml(
    source: bytes | str | IO[bytes], *, speeds: Mapping[str, float] = DEFAULT_SPEED_KMH, progress: Progress | None = None
) -> RoadGraph:
    """From OSM XML content (bytes or str) or an open binary file; nodes keep their OSM
    ids. A way that refers to a node missing from the extract is cut at that node."""
    stream = (
        io.BytesIO(source.encode() if isinstance(source, str) else source)
        if isinstance(source, str | bytes)
        else source
    )
    coords: dict[int, tuple[float, float]] = {}
    ways: list[_Way] = []
    water_refs: list[list[int]] = []
    read = 0
    try:
        for _, elem in ET.iterparse(stream, events=("end",)):
            if elem.tag == "node":
                coords[int(_attr(elem, "id"))] = (float(_attr(elem, "lat")), float(_attr(elem, "lon")))
                elem.clear()
            elif elem.tag == "way":
                tags = {str(t.get("k")): str(t.get("v")) for t in elem.iterfind("tag")}
                refs = [int(_attr(nd, "ref")) for nd in elem.iterfind("nd")]
                if tags.get("waterway") in WATER_LINES:
                    water_refs.append(refs)
                way = _way_from_tags(tags, refs, speeds)
                if way is not None:
                    ways.append(way)
                elem.clear()
            else:
                continue
            read += 1
            if progress is not None and read % PROGRESS_EVERY == 0:
                progress(f"read {len(coords):,} nodes and {len(ways):,} drivable ways")
    except (ET.ParseError, TypeError, ValueError) as exc:
        raise RoadImportError(f"not a readable OSM XML extract: {exc}") from exc
    water = [[coords[r] for r in refs if r in coords] for refs in water_refs]
    return _build(coords, ways, node_ids="keys", water=water)


def load_osm_pbf(
    path: Path, *, speeds: Mapping[str, float] = DEFAULT_SPEED_KMH, progress: Progress | None = None
) -> RoadGraph:
    """From an OpenStreetMap PBF extract (what Geofabrik and most mirrors publish), read with
    pyosmium: ways with their nodes' locations, so only the nodes of roads and waterways are
    kept in memory."""
    try:
        import osmium
    except ImportError:  # pragma: no cover - a dependency of the package
        raise RoadImportError("reading .osm.pbf needs the osmium package (pyosmium)") from None
    coords: dict[int, tuple[float, float]] = {}
    ways: list[_Way] = []
    water_refs: list[list[int]] = []
    counted = [0]

    class Ways(osmium.SimpleHandler):
        def way(self, w: Any) -> None:
            counted[0] += 1
            if progress is not None and counted[0] % PROGRESS_EVERY == 0:
                progress(f"read {counted[0]:,} ways, {len(ways):,} drivable")
            tags = w.tags
            highway, waterway = tags.get("highway"), tags.get("waterway")
            if highway is None and waterway not in WATER_LINES:
                return
            refs = []
            for n in w.nodes:
                if n.location.valid():
                    coords[n.ref] = (n.location.lat, n.location.lon)
                    refs.append(n.ref)
            if waterway in WATER_LINES:
                water_refs.append(refs)
            way = _way_from_tags({k: tags.get(k) for k in ("highway", "maxspeed", "oneway", "junction", "area") if k in tags},
                                 refs, speeds)
            if way is not None:
                ways.append(way)

    try:
        Ways().apply_file(str(path), locations=True)
    except RuntimeError as exc:
        raise RoadImportError(f"not a readable OSM PBF extract: {exc}") from exc
    water = [[coords[r] for r in refs if r in coords] for refs in water_refs]
    return _build(coords, ways, node_ids="keys", water=water)


def _attr(elem: ET.Element, name: str) -> str:
    value = elem.get(name)
    if value is None:
        raise ValueError(f"<{elem.tag}> has no {name}")
    return value


def load_osm_xml(path: Path, **options: Any) -> RoadGraph:
    with open(path, "rb") as f:
        return graph_from_osm_xml(f, **options)


def load_osm(path: Path, **options: Any) -> RoadGraph:
    """An OSM extract by its name: `.osm.pbf` / `.pbf`, otherwise OSM XML."""
    return load_osm_pbf(path, **options) if str(path).endswith(".pbf") else load_osm_xml(path, **options)


def _build(
    coords: Mapping[Any, tuple[float, float]], ways: Iterable[_Way], node_ids: str | None,
    water: Iterable[list[tuple[float, float]]] = (),
) -> RoadGraph:
    index: dict[Any, int] = {}
    src: list[int] = []
    dst: list[int] = []
    cls: list[int] = []
    spd: list[float] = []
    for way in ways:
        for a, b in zip(way.nodes[:-1], way.nodes[1:], strict=True):
            if a not in coords or b not in coords or a == b:
                continue
            ia, ib = index.setdefault(a, len(index)), index.setdefault(b, len(index))
            pairs = (
                [(ia, ib)]
                if way.direction == _FORWARD
                else [(ib, ia)]
                if way.direction == _BACKWARD
                else [(ia, ib), (ib, ia)]
            )
            for tail, head in pairs:
                src.append(tail)
                dst.append(head)
                cls.append(ROAD_CLASS_CODE[way.road_class])
                spd.append(way.speed_kmh)
    keys = list(index)
    lat = np.array([coords[k][0] for k in keys], dtype=np.float64)
    lon = np.array([coords[k][1] for k in keys], dtype=np.float64)
    u, v = np.array(src, dtype=np.int32), np.array(dst, dtype=np.int32)
    length = haversine_m(lat[u], lon[u], lat[v], lon[v]) if len(u) else np.empty(0)
    return RoadGraph.from_edges(
        lat,
        lon,
        u,
        v,
        length,
        np.array(cls, dtype=np.int8),
        np.array(spd, dtype=np.float64),
        node_id=np.array(keys, dtype=np.int64) if node_ids == "keys" else None,
        water=water_segments([([p[0] for p in line], [p[1] for p in line]) for line in water]),
    )
