"""Wearable profiles: spot samples, a confirming re-measure, store-and-forward after a
coverage gap, a drifting clock and its reset after a flat battery."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime

import pytest

from simulators.county import Person
from simulators.elder import PersonModel
from simulators.profiles import CLOCK_RESET_EPOCH, CONTINUOUS, spot_profile, wearable_profile
from simulators.simclock import LOCAL_TZ

MIDNIGHT = datetime(2026, 5, 10, 0, 0, tzinfo=LOCAL_TZ).timestamp()
H = 3600.0


def person(**thresholds) -> Person:
    return Person("P-0001", 30.85, 120.90, "嘉善县西塘镇东桥村1号", 60.0, (("motion-1", "motion"),), thresholds)


def run(model: PersonModel, start: float, hours: float) -> list[tuple[str, dict, bool]]:
    out, t = [], start
    while t < start + hours * H:
        out += model.wake(t)
        t = model.next_due(t)
    return out


def wearables(items) -> list[dict]:
    return [p for ch, p, _ in items if ch == "wearable"]


def quiet(every_s: float):
    return replace(spot_profile(every_s), gaps_per_day=0.0, drift_s=(0.0, 0.0))


def test_the_registry_decides_each_persons_wearable_unless_the_scenario_says_continuous() -> None:
    assert wearable_profile({"vitals_sample_interval_s": 600}, "registry").spot_every_s == 600
    assert wearable_profile({"vitals_sample_interval_s": 600}, "continuous") is CONTINUOUS
    assert wearable_profile({}, "registry") is CONTINUOUS
    with pytest.raises(ValueError, match="devices.wearables"):
        wearable_profile({}, "sometimes")


def test_a_spot_sampling_watch_measures_vitals_every_ten_minutes_at_home() -> None:
    model = PersonModel(person(), random.Random(1), MIDNIGHT + 9 * H, "t", quiet(600))
    sent = wearables(run(model, MIDNIGHT + 9 * H, 1))  # a morning at home, reports every minute
    with_vitals = [w for w in sent if "hr_bpm" in w]
    assert len(sent) >= 55 and 5 <= len(with_vitals) <= 7
    assert all("steps" in w and "battery_pct" in w for w in sent)


def test_an_out_of_range_sample_is_measured_again_a_minute_later() -> None:
    start = MIDNIGHT + 9 * H
    model = PersonModel(person(), random.Random(1), start, "t", quiet(1800))
    model.add_vitals("heart_rate_low", start + 600, 3600)
    sent = [w for w in wearables(run(model, start, 1.5)) if "hr_bpm" in w and w["hr_bpm"] < 40]
    assert len(sent) >= 2 and sent[1]["ts"] - sent[0]["ts"] <= 61


def test_a_coverage_gap_is_forwarded_late_in_a_shuffled_burst() -> None:
    profile = replace(spot_profile(600), gaps_per_day=24.0, gap_s=(1200.0, 1800.0), drift_s=(0.0, 0.0))
    model = PersonModel(person(), random.Random(2), MIDNIGHT + 8 * H, "t", profile)
    items = wearables(run(model, MIDNIGHT + 8 * H, 6))
    stored = [w for w in items if w.get("_stored")]
    assert stored, "some readings were stored and forwarded"
    order = [w["ts"] for w in items]
    assert any(b < a for a, b in zip(order, order[1:])), "they arrive out of order"


def test_a_watch_clock_drifts_by_minutes() -> None:
    model = PersonModel(person(), random.Random(3), MIDNIGHT + 9 * H, "seed", spot_profile(600))
    assert 0 < abs(model.drift) <= 240
    assert model.device_time(MIDNIGHT + 10 * H) == MIDNIGHT + 10 * H + model.drift


def test_after_a_flat_battery_the_clock_restarts_in_2000_until_network_time() -> None:
    start = MIDNIGHT + 9 * H
    model = PersonModel(person(), random.Random(4), start, "t", quiet(600))
    model.battery = 0.5  # runs flat within the first minutes
    items = run(model, start, 1)
    assert model.flat
    model.battery, model.charging = 50.0, False
    items = wearables(run(model, start + H, 0.5))
    reset = [w for w in items if w["ts"] < CLOCK_RESET_EPOCH + 86400]
    assert reset and all(w["_reason"] == "time_too_old" for w in reset)
    assert items[-1]["ts"] > start  # synchronised again after ten minutes
