"""Coordinate systems at the edges: Watchpost stores WGS84 (what GNSS devices report);
Chinese web maps and the boundary files derived from them (AutoNavi, DataV, Tencent) are in
GCJ-02, offset by a few hundred metres anywhere in China. A file or a document that says it is
GCJ-02 is converted on the way in; nothing is converted on a guess. Pure.

GCJ-02 is WGS84 plus a published, deterministic offset inside mainland China (none
outside); the inverse has no closed form and is found by fixed-point iteration, which
converges to well under a centimetre in a few steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CRS", "CoordinateError", "gcj02_to_wgs84", "to_wgs84", "wgs84_to_gcj02", "geojson_to_wgs84"]

CRS = ("wgs84", "gcj02")
# The Krasovsky 1940 ellipsoid the offset is defined on.
_A = 6378245.0
_EE = 0.00669342162296594323
_ITERATIONS = 6  # each step shrinks the error by ~1e-3; 6 is far below a millimetre


class CoordinateError(ValueError):
    """An unknown coordinate system name."""


def _in_china(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.bool_]:
    # The offset applies inside mainland China's rough box only, as the published algorithm does.
    inside: NDArray[np.bool_] = (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)
    return inside


def _delta(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    d_lat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    d_lon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = _in_china(lat, lon)
    return np.where(inside, d_lat, 0.0), np.where(inside, d_lon, 0.0)


def wgs84_to_gcj02(lat: ArrayLike, lon: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    la, lo = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    d_lat, d_lon = _delta(la, lo)
    return la + d_lat, lo + d_lon


def gcj02_to_wgs84(lat: ArrayLike, lon: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    target_lat, target_lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    la, lo = target_lat.copy(), target_lon.copy()
    for _ in range(_ITERATIONS):
        g_lat, g_lon = wgs84_to_gcj02(la, lo)
        la, lo = la - (g_lat - target_lat), lo - (g_lon - target_lon)
    return la, lo


def to_wgs84(lat: ArrayLike, lon: ArrayLike, crs: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coordinates given in `crs` (wgs84 or gcj02), as WGS84."""
    key = crs.strip().lower().replace("-", "")
    if key == "wgs84":
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    if key == "gcj02":
        return gcj02_to_wgs84(lat, lon)
    raise CoordinateError(f"coordinate system {crs!r}: expected one of {', '.join(CRS)}")


def geojson_to_wgs84(doc: Any, crs: str) -> Any:
    """A GeoJSON document (FeatureCollection, Feature or geometry) with every [lon, lat]
    position converted from `crs` to WGS84; a new document, the input is not changed."""
    to_wgs84(0.0, 0.0, crs)  # an unknown name fails before any work
    if isinstance(doc, dict):
        if doc.get("type") in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
            return {**doc, "coordinates": _convert_positions(doc.get("coordinates"), crs)}
        return {k: (geojson_to_wgs84(v, crs) if k in ("features", "geometry", "geometries") else v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [geojson_to_wgs84(item, crs) for item in doc]
    return doc


def _convert_positions(coords: Any, crs: str) -> Any:
    if isinstance(coords, list) and coords and isinstance(coords[0], int | float):
        lat, lon = to_wgs84(coords[1], coords[0], crs)
        return [round(float(lon), 7), round(float(lat), 7), *coords[2:]]
    if isinstance(coords, list):
        return [_convert_positions(c, crs) for c in coords]
    return coords


def positions(doc: Any) -> Iterator[tuple[float, float]]:
    """Every (lon, lat) position of a GeoJSON document, for tests and checks."""
    if isinstance(doc, dict):
        if "coordinates" in doc:
            yield from _walk(doc["coordinates"])
        for key in ("features", "geometry", "geometries"):
            if key in doc:
                yield from positions(doc[key])
    elif isinstance(doc, list):
        for item in doc:
            yield from positions(item)


def _walk(coords: Any) -> Iterator[tuple[float, float]]:
    if isinstance(coords, list) and coords and isinstance(coords[0], int | float):
        yield float(coords[0]), float(coords[1])
    elif isinstance(coords, list):
        for c in coords:
            yield from _walk(c)
