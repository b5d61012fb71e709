"""The crew model: an order becomes the status sequence and a GPS track along the road route."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from dispatch.eta import route, route_travel_s
from dispatch.geometry import LocalProjection
from simulators.crew import CrewTimes, Order, OrderError, Roads, UnitModel

T0 = 1_780_000_000.0
TIMES = CrewTimes(turnout_s=(30, 30), on_scene_s=(300, 300), handover_s=(600, 600))
SCENE = (30.905, 120.960)  # a village east of Xitang


def ambulance(county, roads: Roads, seed: int = 1) -> UnitModel:
    unit = next(u for u in county.units if u.unit_id == "AMB-01")
    return UnitModel(unit, random.Random(seed), T0, roads, dict(county.facilities), TIMES)


def order(hospital: str | None = "HOSP-FIRST", incident: str = "INC-1", at=SCENE) -> Order:
    doc = {"incident_id": incident, "priority": 1, "lat": at[0], "lon": at[1], "address": "x", "eta_s": 600.0, "hospital_id": hospital, "first_aid_post_id": None}
    return Order.parse(orjson.dumps(doc))


def run(model: UnitModel, until: float, start: float = T0) -> list[tuple[str, dict, bool]]:
    out, t = [], start
    while t <= until:
        out += model.wake(t)
        t = model.next_due()
    return out


def statuses(items) -> list[tuple[float, str]]:
    return [(p["ts"], p["status"]) for ch, p, _ in items if ch == "status"]


def test_a_parked_unit_reports_its_base_every_interval(county, roads) -> None:
    model = ambulance(county, roads)
    fixes = [p for ch, p, _ in run(model, T0 + 60) if ch == "gps"]
    assert len(fixes) == 12
    assert {(f["lat"], f["lon"], f["speed_kmh"]) for f in fixes} == {(round(model.unit.base_lat, 6), round(model.unit.base_lon, 6), 0.0)}
    assert np.allclose(np.diff([f["ts"] for f in fixes]), 5.0)


def test_an_order_runs_the_whole_call_in_order(county, roads) -> None:
    model = ambulance(county, roads)
    run(model, T0 + 100)
    assert model.receive(order(), T0 + 100)
    items = run(model, T0 + 4 * 3600, start=T0 + 100)
    reported = statuses(items)
    assert [s for _, s in reported] == ["en_route", "on_scene", "transporting", "at_hospital", "returning", "available"]
    assert reported[0][0] == pytest.approx(T0 + 130)  # turnout
    assert [t for t, _ in reported] == sorted(t for t, _ in reported)
    with_incident = [p for ch, p, _ in items if ch == "status" and p["status"] != "available"]
    assert all(p["incident_id"] == "INC-1" for p in with_incident)
    assert model.status == "available" and model.position(T0 + 4 * 3600)[:2] == pytest.approx((model.unit.base_lat, model.unit.base_lon), abs=1e-3)


def test_the_drive_follows_consecutive_road_nodes_at_edge_speeds_with_a_fix_every_5_s(county, roads) -> None:
    model = ambulance(county, roads)
    model.receive(order(), T0)
    items = run(model, T0 + 4 * 3600)
    reported = {s: t for t, s in statuses(items)}
    g = roads.graph
    start_node = g.snap(model.unit.base_lat, model.unit.base_lon).node
    path = route(g, start_node, g.snap(*SCENE).node)
    access = model.drives[0].times[1] - model.drives[0].times[0]
    assert reported["on_scene"] - reported["en_route"] == pytest.approx(access + sum(route_travel_s(g, path)), abs=1e-6)

    fixes = [p for ch, p, _ in items if ch == "gps" and reported["en_route"] + access <= p["ts"] <= reported["on_scene"]]
    assert len(fixes) > 20 and np.allclose(np.diff([f["ts"] for f in fixes]), 5.0)
    plane = LocalProjection(*SCENE)
    nx, ny = plane.to_xy(g.lat[path], g.lon[path])
    segment_of = []
    for f in fixes:
        x, y = plane.to_xy(f["lat"], f["lon"])
        # Distance from the fix to each leg between consecutive route nodes.
        ax, ay, bx, by = nx[:-1], ny[:-1], nx[1:], ny[1:]
        length2 = np.maximum((bx - ax) ** 2 + (by - ay) ** 2, 1e-9)
        u = np.clip(((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2, 0, 1)
        d = np.hypot(ax + u * (bx - ax) - x, ay + u * (by - ay) - y)
        assert d.min() < 2.0, f"fix at {f['ts']} is {d.min():.1f} m off the route"
        segment_of.append(int(d.argmin()))
        assert 0 <= f["speed_kmh"] <= 100 and 0 <= f["heading_deg"] <= 360
    assert segment_of == sorted(segment_of)  # never backwards along the route
    moving = [f["speed_kmh"] for f in fixes]
    assert 25 < float(np.median(moving)) < 80


def test_on_scene_is_at_the_road_node_nearest_the_incident(county, roads) -> None:
    model = ambulance(county, roads)
    model.receive(order(), T0)
    items = run(model, T0 + 4 * 3600)
    on_scene = {s: t for t, s in statuses(items)}["on_scene"]
    node = roads.graph.snap(*SCENE).node
    assert model.position(on_scene + 60)[:2] == pytest.approx((roads.graph.lat[node], roads.graph.lon[node]))
    still = [p for ch, p, _ in items if ch == "gps" and on_scene < p["ts"] < on_scene + 290]
    assert still and all(p["speed_kmh"] == 0 for p in still)


def test_without_a_hospital_the_crew_returns_from_the_scene(county, roads) -> None:
    model = ambulance(county, roads)
    model.receive(order(hospital=None), T0)
    assert [s for _, s in statuses(run(model, T0 + 4 * 3600))] == ["en_route", "on_scene", "returning", "available"]


def test_a_repeated_order_is_ignored(county, roads) -> None:
    model = ambulance(county, roads)
    assert model.receive(order(), T0)
    assert not model.receive(order(), T0 + 10)
    assert [s for _, s in statuses(run(model, T0 + 4 * 3600))].count("en_route") == 1


def test_a_new_order_while_returning_turns_the_unit_round_from_where_it_is(county, roads) -> None:
    model = ambulance(county, roads)
    model.receive(order(hospital=None), T0)
    returning = next(t for t, s in statuses(run(model, T0 + 4 * 3600)) if s == "returning")
    model2 = ambulance(county, roads)
    model2.receive(order(hospital=None), T0)
    run(model2, returning + 120)
    where = model2.position(returning + 120)
    second = (30.85, 120.90)
    assert model2.receive(order(hospital=None, incident="INC-2", at=second), returning + 120)
    items = run(model2, T0 + 6 * 3600, start=returning + 121)
    reported = statuses(items)
    assert reported[0][1] == "en_route" and reported[0][0] - (returning + 120) < 5
    first_fix = next(p for ch, p, _ in items if ch == "gps")
    assert abs(first_fix["lat"] - where[0]) + abs(first_fix["lon"] - where[1]) < 0.002  # no jump back to base
    assert [s for _, s in reported] == ["en_route", "on_scene", "returning", "available"]
    assert all(p.get("incident_id") in ("INC-2", None) for ch, p, _ in items if ch == "status")


def test_an_order_without_incident_or_place_is_refused_with_a_reason() -> None:
    with pytest.raises(OrderError, match="incident_id"):
        Order.parse(b'{"lat": 30.8, "lon": 120.9}')
    with pytest.raises(OrderError):
        Order.parse(b'{"incident_id": "INC-1"}')
    with pytest.raises(OrderError):
        Order.parse(b"not json")


def test_a_terminal_with_the_ignition_off_reports_every_few_minutes_and_every_5_s_once_called(county, roads) -> None:
    unit = next(u for u in county.units if u.unit_id == "AMB-01")
    model = UnitModel(unit, random.Random(1), T0, roads, dict(county.facilities), TIMES, ignition=True)
    parked = [p["ts"] for ch, p, _ in run(model, T0 + 1800) if ch == "gps"]
    assert 5 <= len(parked) <= 8 and min(np.diff(parked)) >= 299
    now = T0 + 1800.5
    model.receive(order(), now)
    fixes = [p["ts"] for ch, p, _ in run(model, now + 300, start=now) if ch == "gps"]
    assert len(fixes) >= 55 and np.allclose(np.diff(fixes), 5.0)
