"""The elderly person model: routines as the home sensors and the wearable show them."""

from __future__ import annotations

import random
from datetime import datetime
from itertools import pairwise

import pytest

from simulators.county import Person
from simulators.elder import MOTION_HOLD_S, PersonModel
from simulators.routine import Activity
from simulators.simclock import LOCAL_TZ, local_time

MIDNIGHT = datetime(2026, 5, 10, 0, 0, tzinfo=LOCAL_TZ).timestamp()
H = 3600.0
ALL_SENSORS = (("motion-1", "motion"), ("door-1", "door"), ("bed-1", "bed"), ("smoke-1", "smoke"), ("gas-1", "gas"))


def person(sensors=ALL_SENSORS, **thresholds) -> Person:
    return Person("P-0001", 30.85, 120.90, "No. 1, Dongqiao village", 60.0, tuple(sensors), thresholds)


def run(model: PersonModel, start: float, hours: float) -> list[tuple[str, dict, bool]]:
    out, t = [], start
    while t < start + hours * H:
        out += model.wake(t)
        t = model.next_due(t)
    return out


def events(items, sensor: str) -> list[tuple[float, object]]:
    return [(p["ts"], p["value"]) for ch, p, _ in items if ch == sensor]


def wearables(items) -> list[dict]:
    return [p for ch, p, _ in items if ch == "wearable"]


def a_day(seed: int = 1, sensors=ALL_SENSORS):
    model = PersonModel(person(sensors), random.Random(seed), MIDNIGHT, f"test:{seed}")
    return model, run(model, MIDNIGHT, 24)


def test_the_same_seed_gives_the_same_day() -> None:
    assert a_day(3)[1] == a_day(3)[1]
    assert a_day(3)[1] != a_day(4)[1]


def test_the_person_sleeps_in_bed_at_night_and_gets_up_in_the_morning() -> None:
    model, items = a_day()
    bed = events(items, "bed-1")
    wake = next(ts for ts, value in bed if value is False and local_time(ts).hour >= 5)
    assert 5 <= local_time(wake).hour < 8
    # Whatever the bed said last before 01:00, and again just before getting up, is "in bed".
    before_one = [v for ts, v in bed if ts < MIDNIGHT + 1 * H]
    assert model._initial("bed") is True and all(before_one)
    assert [v for ts, v in bed if ts < wake][-1] is True
    bedtime = [ts for ts, v in bed if v is True and local_time(ts).hour >= 20]
    assert bedtime and 20 <= local_time(bedtime[0]).hour < 23


def test_a_night_trip_to_the_toilet_leaves_the_bed_for_minutes_not_half_an_hour() -> None:
    for seed in range(10):
        _, items = a_day(seed)
        bed = [(ts, v) for ts, v in events(items, "bed-1") if local_time(ts).hour < 5]
        changes = [(ts, v) for k, (ts, v) in enumerate(bed) if k == 0 or v != bed[k - 1][1]]
        for (left, v), (back, w) in pairwise(changes):
            if v is False and w is True:
                assert back - left < 30 * 60
                return
    pytest.fail("no night toilet trip in ten days")


def test_motion_is_seen_while_awake_at_home_and_never_while_asleep() -> None:
    model, items = a_day()
    check_in_phase = model.next_check_in["motion-1"] % H  # hourly check-ins repeat the state
    detections = [ts for ts, v in events(items, "motion-1") if v is True and abs(ts % H - check_in_phase) > 1e-6]
    assert len(detections) > 30
    assert not [ts for ts in detections if model.activity(ts) in (Activity.SLEEP, Activity.NAP, Activity.WALK)]
    # A PIR clears two minutes after its last detection.
    clears = {round(ts, 6) for ts, v in events(items, "motion-1") if v is False}
    last_of_a_burst = [d for d, nxt in pairwise(detections) if nxt - d > MOTION_HOLD_S]
    assert last_of_a_burst and all(round(d + MOTION_HOLD_S, 6) in clears for d in last_of_a_burst)


def test_the_afternoon_walk_opens_and_closes_the_front_door_and_takes_steps_away_from_home() -> None:
    model, items = a_day()
    opened = [ts for ts, v in events(items, "door-1") if v is True]
    assert len(opened) == 2  # out and back
    out_at, back_at = opened
    assert 14 <= local_time(out_at).hour < 18
    walking = [w for w in wearables(items) if out_at + 60 < w["ts"] < back_at - 60]
    assert walking
    home = model.person
    assert max(abs(w["lat"] - home.lat) + abs(w["lon"] - home.lon) for w in walking) > 0.001  # > ~100 m
    steps_before = max(w["steps"] for w in wearables(items) if w["ts"] < out_at)
    steps_after = min(w["steps"] for w in wearables(items) if w["ts"] > back_at)
    assert steps_after - steps_before > 1500


def test_the_wearable_reports_every_interval_with_vitals_in_range() -> None:
    _, items = a_day()
    reports = [w for w in wearables(items) if not ({"fall", "sos", "cancel"} & set(w))]
    assert len(reports) == pytest.approx(1440, abs=2)
    gaps = {round(b["ts"] - a["ts"], 6) for a, b in pairwise(reports)}
    assert gaps == {60.0}
    vitals = [w for w in reports if "hr_bpm" in w]
    assert all(40 < w["hr_bpm"] < 120 and 90 <= w["spo2_pct"] <= 100 and 32 < w["skin_temp_c"] < 36 for w in vitals)


def test_the_battery_drains_on_the_wrist_and_charges_in_the_evening_off_the_wrist() -> None:
    for seed in range(20):
        _, items = a_day(seed)
        charging = [w for w in wearables(items) if "hr_bpm" not in w]
        if charging:
            assert all(19 <= local_time(w["ts"]).hour < 22 for w in charging)
            levels = [w["battery_pct"] for w in charging]
            assert levels[-1] > levels[0]
            morning = [w["battery_pct"] for w in wearables(items) if local_time(w["ts"]).hour < 12]
            assert morning == sorted(morning, reverse=True)
            return
    pytest.fail("nobody charged their wearable in twenty days")


def test_the_steps_counter_starts_again_at_local_midnight() -> None:
    model = PersonModel(person(), random.Random(1), MIDNIGHT + 20 * H, "test:1")
    items = run(model, MIDNIGHT + 20 * H, 6)
    after = [w["steps"] for w in wearables(items) if w["ts"] >= MIDNIGHT + 24 * H]
    before = [w["steps"] for w in wearables(items) if w["ts"] < MIDNIGHT + 24 * H]
    assert before[-1] > 1000 and after[0] < 100


def test_only_the_sensors_the_person_has_report() -> None:
    _, items = a_day(sensors=(("motion-1", "motion"), ("smoke-1", "smoke")))
    assert {ch for ch, _, _ in items} == {"wearable", "motion-1", "smoke-1"}


def test_every_home_sensor_checks_in_at_least_hourly() -> None:
    _, items = a_day()
    for sensor, _ in ALL_SENSORS:
        stamps = [MIDNIGHT] + [ts for ts, _ in events(items, sensor)]
        assert max(b - a for a, b in pairwise(stamps)) <= H + 1


# --- scripted events ---------------------------------------------------------------------


def scripted(seed: int = 1, start_h: float = 10, hours: float = 2):
    model = PersonModel(person(), random.Random(seed), MIDNIGHT + start_h * H, "test")
    return model


def test_a_cancelled_fall_sends_fall_then_cancel_within_a_minute_and_the_person_moves_again() -> None:
    model = scripted()
    at = MIDNIGHT + 10.5 * H
    model.add_fall(at, cancel_after_s=25, lying_s=0)
    items = run(model, MIDNIGHT + 10 * H, 2)
    alerts = [(p["ts"], p["type"]) for ch, p, crit in items if ch == "alert" and crit]
    assert alerts == [(at, "fall"), (at + 25, "cancel")]
    assert all(crit for ch, p, crit in items if ch == "alert")
    assert len({p["event_id"] for ch, p, _ in items if ch == "alert"}) == 2
    assert model.activity(at + 10) is Activity.FALLEN and model.activity(at + 120) is not Activity.FALLEN


def test_an_uncancelled_fall_is_followed_by_no_motion_and_no_steps_while_the_person_lies() -> None:
    model = scripted()
    at = MIDNIGHT + 10.5 * H
    model.add_fall(at, cancel_after_s=None, lying_s=40 * 60)
    items = run(model, MIDNIGHT + 10 * H, 2)
    assert not [p for ch, p, _ in items if ch == "alert" and p["type"] == "cancel"]
    lying = range(int(at) + 1, int(at + 40 * 60))
    assert not [ts for ts, v in events(items, "motion-1") if v is True and int(ts) in lying]
    steps = [w["steps"] for w in wearables(items) if at <= w["ts"] < at + 40 * 60]
    assert len(set(steps)) == 1
    assert [ts for ts, v in events(items, "motion-1") if v is True and ts > at + 40 * 60]


def test_an_sos_press_is_one_critical_alert() -> None:
    model = scripted()
    model.add_sos(MIDNIGHT + 11 * H)
    items = run(model, MIDNIGHT + 10 * H, 2)
    assert [(p["ts"], p["type"], crit) for ch, p, crit in items if ch == "alert"] == [(MIDNIGHT + 11 * H, "sos", True)]


def test_an_alert_carries_the_fix_when_the_wearer_is_out() -> None:
    model = scripted()
    model.at_home = False
    [(_, alert, _)] = model._alert(MIDNIGHT + 11 * H, "sos")
    assert {"lat", "lon", "acc_m"} <= set(alert) and alert["event_id"].startswith("sos-")


@pytest.mark.parametrize(("kind", "field", "check"), [
    ("heart_rate_high", "hr_bpm", lambda v: v > 130),
    ("heart_rate_low", "hr_bpm", lambda v: v < 40),
    ("spo2_low", "spo2_pct", lambda v: v < 90),
])
def test_abnormal_vitals_last_for_the_scripted_minutes_and_then_recover(kind, field, check) -> None:
    model = scripted()
    at = MIDNIGHT + 10.5 * H
    model.add_vitals(kind, at, 5 * 60)
    readings = [w for w in wearables(run(model, MIDNIGHT + 10 * H, 2)) if field in w]
    during = [w[field] for w in readings if at <= w["ts"] < at + 300]
    assert len(during) == 5 and all(check(v) for v in during)
    assert not [w for w in readings if check(w[field]) and not at <= w["ts"] < at + 300]


def test_long_inactivity_means_no_motion_and_no_steps_for_hours() -> None:
    model = scripted(start_h=8, hours=8)
    at = MIDNIGHT + 9 * H
    model.add_inactivity(at, 5 * H)
    items = run(model, MIDNIGHT + 8 * H, 8)
    assert not [ts for ts, v in events(items, "motion-1") if v is True and at + 1 < ts < at + 5 * H]
    assert len({w["steps"] for w in wearables(items) if at + 60 <= w["ts"] < at + 5 * H}) == 1


def test_smoke_trips_the_detector_for_the_scripted_time_and_clears() -> None:
    model = scripted()
    at = MIDNIGHT + 10.5 * H
    model.add_hazard("smoke", at, 600)
    changes = [(ts, v, crit) for ch, p, crit in run(model, MIDNIGHT + 10 * H, 2) if ch == "smoke-1" for ts, v in [(p["ts"], p["value"])]]
    assert (at, True, True) in changes and (at + 600, False, True) in changes
    assert all(v is False for ts, v, _ in changes if not at <= ts < at + 600)


def test_a_hazard_needs_the_sensor_for_it() -> None:
    model = PersonModel(person((("motion-1", "motion"),)), random.Random(1), MIDNIGHT, "test")
    with pytest.raises(ValueError, match="no gas sensor"):
        model.add_hazard("gas", MIDNIGHT + H, 600)


def test_a_person_with_chronic_lung_disease_lives_at_a_lower_spo2() -> None:
    model = PersonModel(person(spo2_low_pct=88.0), random.Random(1), MIDNIGHT, "test")
    spo2 = [w["spo2_pct"] for w in wearables(run(model, MIDNIGHT + 10 * H, 1)) if "spo2_pct" in w]
    assert 90 < sum(spo2) / len(spo2) < 94


def test_scripted_vitals_are_measured_even_in_the_hour_the_watch_would_be_charging() -> None:
    for seed in range(20):
        model, items = a_day(seed)
        charging = [w["ts"] for w in wearables(items) if "hr_bpm" not in w]
        if charging:
            break
    at = charging[0]
    model = PersonModel(person(), random.Random(seed), MIDNIGHT, f"test:{seed}")
    model.add_vitals("heart_rate_high", at, 300)
    during = [w for w in wearables(run(model, MIDNIGHT, 24)) if at <= w["ts"] < at + 300]
    assert during and all(w.get("hr_bpm", 0) > 130 for w in during)


def test_errands_take_people_out_of_the_house_to_the_market_the_clinic_and_relatives() -> None:
    from simulators.routine import draw_habits, plan_day

    outs = 0
    for seed in range(40):
        habits = draw_habits(random.Random(seed))
        plan = plan_day(habits, MIDNIGHT, random.Random(seed))
        assert list(plan.starts) == sorted(plan.starts)
        outs += plan.kinds.count(Activity.OUT)
    assert 15 <= outs <= 40  # a market morning every other day, now and then the clinic or family


def test_out_on_an_errand_the_front_door_opens_and_the_watch_is_away_from_home() -> None:
    for seed in range(40):
        model = PersonModel(person(), random.Random(seed), MIDNIGHT, f"errand-{seed}")
        plan = model._plan_for(MIDNIGHT + 8 * H)
        if Activity.OUT in plan.kinds:
            break
    i = plan.kinds.index(Activity.OUT)
    begin, end = plan.starts[i], plan.starts[i + 1]
    items = run(model, MIDNIGHT, (end - MIDNIGHT) / H + 0.2)
    assert any(begin <= ts <= begin + 30 and value for ts, value in events(items, "door-1"))
    away = [w for w in wearables(items) if begin + 120 < w["ts"] < end - 120]
    assert away and all(abs(w["lat"] - 30.85) > 0.004 or abs(w["lon"] - 120.90) > 0.004 for w in away)
