"""The water station model: daily cycles, rain, drift, maintenance and pollution, checked
against GB 3838 with the platform's own classifier."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from ingest.rules.gb3838 import WaterBody, classify
from simulators.county import Station
from simulators.simclock import LOCAL_TZ
from simulators.water import PROBE_FOULING_PER_DAY, WaterStationModel, Weather, river_class

DAY = 86400.0


def station_class(values: dict[str, float], body: WaterBody) -> int:
    """The platform's own GB 3838 verdict."""
    return int(classify(values, body).water_class)
SUMMER = datetime(2026, 7, 20, 0, 0, tzinfo=LOCAL_TZ).timestamp()
WINTER = datetime(2026, 1, 20, 0, 0, tzinfo=LOCAL_TZ).timestamp()


def station(target_class: int = 3, partner: str | None = None) -> Station:
    return Station("WS-001", 30.95, 120.99, target_class, "river", partner, 60.0)


def model(start: float = SUMMER, seed: int = 1, target_class: int = 3, rain: bool = False) -> WaterStationModel:
    weather = Weather(random.Random(seed), start, start + 7 * DAY)
    if not rain:
        weather.episodes.clear()
    m = WaterStationModel(station(target_class), random.Random(seed), start, weather)
    m.maintenance.clear()
    return m


def at_hour(start: float, hour: float) -> float:
    return start + hour * 3600


def test_the_same_seed_gives_the_same_readings() -> None:
    a, b = model(seed=5), model(seed=5)
    assert [a.reading(SUMMER + k * 60) for k in range(100)] == [b.reading(SUMMER + k * 60) for k in range(100)]


def test_dissolved_oxygen_peaks_in_the_afternoon_and_bottoms_out_at_dawn() -> None:
    m = model()
    afternoon = sum(m.reading(at_hour(SUMMER, 16) + k * 60)["do_mg_l"] for k in range(10))
    dawn = sum(m.reading(at_hour(SUMMER, 4) + k * 60)["do_mg_l"] for k in range(10))
    assert afternoon > dawn + 5 * 0.6  # ten readings, ~0.8 mg/L apart on average


def test_water_is_warmer_in_summer_and_in_the_afternoon() -> None:
    assert model(SUMMER).reading(at_hour(SUMMER, 15))["temp_c"] > model(WINTER).reading(at_hour(WINTER, 15))["temp_c"] + 15
    m = model()
    assert m.reading(at_hour(SUMMER, 15))["temp_c"] > m.reading(at_hour(SUMMER, 5))["temp_c"] + 1.5


def test_rain_muddies_the_river_and_takes_oxygen_then_fades() -> None:
    m = model()
    before = m.reading(at_hour(SUMMER, 12))
    m.weather.add_rain(at_hour(SUMMER, 12), 3 * 3600, 1.0)
    during = m.reading(at_hour(SUMMER, 14.9))
    assert during["turbidity_ntu"] > 3 * before["turbidity_ntu"]
    assert during["cond_us_cm"] < before["cond_us_cm"]
    assert during["nh3n_mg_l"] > before["nh3n_mg_l"]
    assert m.reading(at_hour(SUMMER, 40))["turbidity_ntu"] < 1.3 * before["turbidity_ntu"]


@pytest.mark.parametrize("start", [SUMMER, WINTER])
@pytest.mark.parametrize("target", [2, 3])
def test_a_healthy_station_stays_within_its_target_class_through_a_rainy_week(start: float, target: int) -> None:
    for seed in range(5):
        m = model(start, seed, target, rain=True)
        m.weather.add_rain(start + 30 * 3600, 4 * 3600, 1.0)
        for k in range(0, int(7 * DAY), 1800):
            r = m.reading(start + k)
            values = {n: v for n, v in r.items() if n != "flag"}
            assert station_class(values, WaterBody.RIVER) <= target, (seed, k, values)


def test_probes_drift_between_maintenance_visits_and_visits_reset_them_with_flag_m() -> None:
    m = model()
    m.last_cleaned = SUMMER - 6 * DAY
    drifted = [m.reading(at_hour(SUMMER, 16) + k * 60)["do_mg_l"] for k in range(20)]
    m.add_maintenance(at_hour(SUMMER, 17), 3600)
    visit = [m.reading(at_hour(SUMMER, 17) + k * 300) for k in range(12)]
    assert {r["flag"] for r in visit} == {"M"}
    assert m.last_cleaned == at_hour(SUMMER, 18)
    assert m.reading(at_hour(SUMMER, 18) + 60)["flag"] == "N"
    fresh = [m.reading(at_hour(SUMMER + DAY, 16) + k * 60)["do_mg_l"] for k in range(20)]
    assert sum(fresh) / 20 - sum(drifted) / 20 == pytest.approx(6 * PROBE_FOULING_PER_DAY, abs=0.12)


def test_routine_maintenance_visits_come_about_weekly_in_the_late_morning() -> None:
    weather = Weather(random.Random(1), SUMMER, SUMMER + 30 * DAY)
    m = WaterStationModel(station(), random.Random(1), SUMMER, weather)
    visits = [v for v in m.maintenance if SUMMER <= v.start < SUMMER + 28 * DAY]
    assert 3 <= len(visits) <= 5
    assert all(9 <= datetime.fromtimestamp(v.start, LOCAL_TZ).hour < 11 and 3600 <= v.end - v.start <= 7200 for v in visits)


@pytest.mark.parametrize(("peak", "target"), [(5, 3), (6, 3), (4, 2)])
def test_pollution_pushes_the_nutrients_past_the_target_class_for_a_while(peak: int, target: int) -> None:
    m = model(target_class=target)
    start = at_hour(SUMMER, 10)
    m.add_pollution(start, 3600, peak)
    classes = [(k, river_class(m.reading(start + k * 60))) for k in range(-10, 80)]
    above = [k for k, c in classes if c > target]
    assert above and above[0] <= 8 and 40 <= len(above) <= 60  # the rise takes a quarter hour
    assert max(c for _, c in classes) >= peak
    assert all(c <= target for k, c in classes if k < 0 or k >= 60)
    plateau = m.reading(start + 30 * 60)
    values = {n: v for n, v in plateau.items() if n != "flag"}
    assert station_class(values, WaterBody.RIVER) == river_class(plateau)  # our table is the platform's
