"""Plane geometry at county scale: a local metric projection, great-circle distance, and the
few vectorised tests the road and registry generators need (point in polygon, segment
crossing, clipping by a half-plane).

A county is ~30 km across, so an equirectangular projection around its centre is accurate
to ~0.2 % — far below the error of road lengths or GPS fixes — and lets a KD-tree and the
crossing tests work in plain metres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
_DEG = np.pi / 180.0

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Equirectangular projection in metres: x east, y north of (lat0, lon0)."""

    lat0: float
    lon0: float

    def to_xy(self, lat: ArrayLike, lon: ArrayLike) -> tuple[FloatArray, FloatArray]:
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        x = (lon - self.lon0) * _DEG * EARTH_RADIUS_M * np.cos(self.lat0 * _DEG)
        y = (lat - self.lat0) * _DEG * EARTH_RADIUS_M
        return x, y

    def to_latlon(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        lat = self.lat0 + y / (EARTH_RADIUS_M * _DEG)
        lon = self.lon0 + x / (EARTH_RADIUS_M * _DEG * np.cos(self.lat0 * _DEG))
        return lat, lon


def haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> FloatArray:
    """Great-circle distance in metres (element-wise)."""
    p1 = np.asarray(lat1, dtype=np.float64) * _DEG
    p2 = np.asarray(lat2, dtype=np.float64) * _DEG
    dp = p2 - p1
    dl = (np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64)) * _DEG
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    distance: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return distance


def points_in_rings(
    x: ArrayLike, y: ArrayLike, rings: Sequence[NDArray[np.float64]]
) -> NDArray[np.bool_]:
    """Even-odd rule over all rings (outer rings and holes alike), so a MultiPolygon whose
    parts do not overlap needs no special casing. Each ring is an (n, 2) array of (x, y)."""
    px = np.atleast_1d(np.asarray(x, dtype=np.float64)).ravel()
    py = np.atleast_1d(np.asarray(y, dtype=np.float64)).ravel()
    inside = np.zeros(px.shape, dtype=bool)
    # Chunked so that (points x ring edges) booleans stay within a few tens of MB.
    chunk = 20_000
    for ring in rings:
        x1, y1 = ring[:-1, 0], ring[:-1, 1]
        x2, y2 = ring[1:, 0], ring[1:, 1]
        for start in range(0, px.size, chunk):
            qx = px[start : start + chunk, None]
            qy = py[start : start + chunk, None]
            straddles = (y1 > qy) != (y2 > qy)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_cross = x1 + (qy - y1) * (x2 - x1) / (y2 - y1)
            crossings = np.count_nonzero(straddles & (qx < x_cross), axis=1)
            inside[start : start + chunk] ^= (crossings % 2).astype(bool)
    return inside


def segments_cross(
    ax: ArrayLike,
    ay: ArrayLike,
    bx: ArrayLike,
    by: ArrayLike,
    cx: ArrayLike,
    cy: ArrayLike,
    dx: ArrayLike,
    dy: ArrayLike,
) -> NDArray[np.bool_]:
    """Whether segment AB properly crosses segment CD (element-wise). Touching at an end
    point does not count: generated coordinates are jittered, so that case has measure 0."""

    def orient(
        px: FloatArray, py: FloatArray, qx: FloatArray, qy: FloatArray, rx: FloatArray, ry: FloatArray
    ) -> FloatArray:  # sign of the turn p -> q -> r
        return np.sign((qx - px) * (ry - py) - (qy - py) * (rx - px))

    xa, ya, xb, yb, xc, yc, xd, yd = (
        np.asarray(v, dtype=np.float64) for v in (ax, ay, bx, by, cx, cy, dx, dy)
    )
    o1 = orient(xa, ya, xb, yb, xc, yc)
    o2 = orient(xa, ya, xb, yb, xd, yd)
    o3 = orient(xc, yc, xd, yd, xa, ya)
    o4 = orient(xc, yc, xd, yd, xb, yb)
    crossing: NDArray[np.bool_] = (o1 * o2 < 0) & (o3 * o4 < 0)
    return crossing


def clip_to_halfplane(
    ring: NDArray[np.float64], normal: ArrayLike, offset: float
) -> NDArray[np.float64]:
    """Sutherland–Hodgman: the part of a closed ring where normal · p <= offset. A concave
    ring cut in two comes back as one ring joined along the cut line, which is harmless for
    drawing a map."""
    nx, ny = np.asarray(normal, dtype=np.float64)
    points = ring[:-1] if len(ring) > 1 and np.array_equal(ring[0], ring[-1]) else ring
    out: list[NDArray[np.float64]] = []
    for i in range(len(points)):
        p, q = points[i - 1], points[i]
        sp, sq = p[0] * nx + p[1] * ny - offset, q[0] * nx + q[1] * ny - offset
        if sq <= 0:
            if sp > 0:
                out.append(p + (q - p) * (sp / (sp - sq)))
            out.append(q)
        elif sp <= 0:
            out.append(p + (q - p) * (sp / (sp - sq)))
    if len(out) < 3:
        return np.empty((0, 2))
    return np.vstack([*out, out[0]])


def densify(points: NDArray[np.float64], step: float) -> NDArray[np.float64]:
    """The polyline resampled at about `step` along its length, keeping every vertex."""
    pieces = []
    for p, q in pairwise(points):
        n = max(1, int(np.ceil(np.hypot(*(q - p)) / step)))
        t = np.arange(n)[:, None] / n
        pieces.append(p + (q - p) * t)
    pieces.append(points[-1:])
    return np.vstack(pieces)
