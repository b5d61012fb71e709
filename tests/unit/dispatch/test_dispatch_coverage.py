"""Dynamic coverage from the available units, and the move-up that restores it."""

from __future__ import annotations

import math

import pytest

from dispatch.coverage import BANDS_S, Site, coverage, from_units, recommend_move_up
from dispatch.snapping import snap_to_edge

KMH = 30 / 3.6  # residential roads


def latlon(plane, x, y):
    lat, lon = plane.to_latlon([float(x)], [float(y)])
    return float(lat[0]), float(lon[0])


@pytest.fixture
def line(make_graph, plane):
    """A 14 km road west to east, junctions every 1 km: two towns, West (0–5 km) and East (8–13 km)."""
    points = {f"n{k}": (1000.0 * k, 0.0) for k in range(15)}
    graph, at = make_graph(points, [(f"n{k}", f"n{k + 1}", "residential") for k in range(14)])

    def snap(x):
        return snap_to_edge(graph, *latlon(plane, x, 0))

    sites = [Site(f"W{k}", "West", snap(1000.0 * k + 500)) for k in range(5)]
    sites += [Site(f"E{k}", "East", snap(8000.0 + 1000.0 * k + 500)) for k in range(5)]
    return graph, snap, sites


def test_one_search_gives_the_time_from_the_nearest_unit_to_every_node(line):
    graph, snap, _ = line
    seconds = from_units(graph, [snap(0.0), snap(12000.0)])
    assert seconds[3] == pytest.approx(3000 / KMH, rel=1e-3)
    assert seconds[10] == pytest.approx(2000 / KMH, rel=1e-3)
    alone = from_units(graph, [snap(0.0)])
    assert math.isinf(alone[12])  # 12 km at 30 km/h is 24 min: beyond the widest band


def test_villages_fall_into_the_8_12_15_minute_bands(line):
    graph, snap, sites = line
    c = coverage(graph, [snap(0.0)], sites)
    # W0 at 0.5 km is 1 min away; W4 at 4.5 km is 9 min; nothing in the East within 15 min.
    assert c.band["W0"] == 0 and c.band["W4"] == 1
    assert all(c.band[f"E{k}"] == len(BANDS_S) for k in range(5))
    assert c.town_share == {"East": 0.0, "West": 1.0}
    assert c.uncovered_towns == ("East",)
    assert c.share_within == (0.4, 0.5, 0.5)


def test_an_uncovered_town_gets_a_move_up_of_a_unit_from_a_town_that_keeps_one(line):
    graph, snap, sites = line
    available = {"AMB-01": snap(500.0), "AMB-02": snap(1500.0)}
    current = coverage(graph, list(available.values()), sites)
    stations = {"West": ("ST-WEST", snap(1000.0)), "East": ("ST-EAST", snap(10500.0))}
    move = recommend_move_up(graph, available, sites, stations, current)
    assert move is not None and move.town == "East" and move.facility_id == "ST-EAST"
    assert move.unit_id == "AMB-02"  # the nearer of the two; West stays covered by AMB-01
    assert move.uncovered_after == () and move.covered_share_after == 1.0
    assert move.drive_s == pytest.approx(9000 / KMH, rel=1e-2)


def test_no_move_up_when_every_town_is_covered_or_no_move_helps(line):
    graph, snap, sites = line
    available = {"AMB-01": snap(2500.0), "AMB-02": snap(10500.0)}
    current = coverage(graph, list(available.values()), sites)
    stations = {"West": ("ST-WEST", snap(1000.0)), "East": ("ST-EAST", snap(10500.0))}
    assert current.uncovered_towns == ()
    assert recommend_move_up(graph, available, sites, stations, current) is None
    only = {"AMB-01": snap(2500.0)}  # moving the only unit east would uncover the west
    assert recommend_move_up(graph, only, sites, stations, coverage(graph, list(only.values()), sites)) is None


def test_with_no_available_unit_nothing_is_covered(line):
    graph, _, sites = line
    c = coverage(graph, [], sites)
    assert c.uncovered_towns == ("East", "West")
    assert c.to_json()["sites"]["W0"] == {"band": 3, "seconds": None}
