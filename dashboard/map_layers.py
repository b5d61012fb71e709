"""The console's base map, drawn from the project's own data — no tile server: the county and
its neighbours (region GeoJSON), town areas, rivers and main roads of the simulated network,
and the registry's stations and facilities."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

from dispatch.jiashan_geo import load_geography, rivers_geojson, towns_geojson
from dispatch.jiashan_roads import build_jiashan_network
from simulators.jiashan_registry import DEFAULT_GEOJSON


@functools.cache
def base_layers(region_path: Path = DEFAULT_GEOJSON) -> bytes:
    """Boundaries, towns, rivers and main roads as one JSON document of GeoJSON layers.
    Built once per process (about a second) and served from memory."""
    region = orjson.loads(region_path.read_bytes())
    geography = load_geography(region_path)
    network = build_jiashan_network(region_path)
    return orjson.dumps(
        {
            "boundaries": region,
            "towns": towns_geojson(geography),
            "rivers": rivers_geojson(geography),
            "roads": network.main_roads_geojson(),
        }
    )


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
