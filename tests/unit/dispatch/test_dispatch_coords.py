"""GCJ-02 and WGS84: converted at the edges, where the input says which it is."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.coords import CoordinateError, gcj02_to_wgs84, geojson_to_wgs84, positions, to_wgs84, wgs84_to_gcj02
from dispatch.geometry import haversine_m


def test_around_jiashan_gcj02_is_a_few_hundred_metres_off_wgs84():
    lat, lon = wgs84_to_gcj02(30.83, 120.92)
    offset = float(haversine_m(30.83, 120.92, lat, lon))
    assert 300 < offset < 700


def test_the_inverse_returns_the_wgs84_point_to_a_centimetre():
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(30.7, 31.1, 200), rng.uniform(120.7, 121.1, 200)
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
    assert float(haversine_m(lat, lon, *back).max()) < 0.01


def test_outside_china_nothing_is_shifted():
    assert wgs84_to_gcj02(51.5, -0.12) == pytest.approx((51.5, -0.12))


def test_wgs84_input_is_left_alone_and_an_unknown_system_is_refused():
    assert to_wgs84(30.83, 120.92, "WGS84") == pytest.approx((30.83, 120.92))
    with pytest.raises(CoordinateError, match="wgs84, gcj02"):
        to_wgs84(30.83, 120.92, "bd09")


def test_a_geojson_file_in_gcj02_is_converted_position_by_position():
    gcj_lat, gcj_lon = wgs84_to_gcj02(30.83, 120.92)
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x"}, "geometry": {"type": "Point", "coordinates": [float(gcj_lon), float(gcj_lat)]}},
    ]}
    out = geojson_to_wgs84(doc, "gcj02")
    [(lon, lat)] = list(positions(out))
    assert float(haversine_m(lat, lon, 30.83, 120.92)) < 0.05
    assert out["features"][0]["properties"] == {"name": "x"}
    assert list(positions(doc)) == [(float(gcj_lon), float(gcj_lat))]  # the input is unchanged
