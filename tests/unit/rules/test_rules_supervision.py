from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.readings import (
    DeviceKind,
    HomeSensorEvent,
    Presence,
    UnitPosition,
    WaterReading,
    WearableReading,
)
from ingest.rules import (
    Action,
    AlarmType,
    DeviceConfig,
    DeviceState,
    Severity,
    SourceKind,
    device_key_of,
    evaluate_device,
    next_deadline,
    tick_device,
)

T0 = datetime(2025, 6, 3, 0, 0, tzinfo=UTC)
CONFIG = DeviceConfig(interval_s=60)
KEY = "elder:P001"


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def heard(state: DeviceState, at: float, **fields):
    return evaluate_device(state, CONFIG, WearableReading("P001", s(at), **fields), s(at))


def seen_at_zero() -> DeviceState:
    state, _ = heard(DeviceState(KEY), 0)
    return state


def test_a_device_silent_for_three_intervals_raises_device_silent():
    state = seen_at_zero()
    assert next_deadline(state, CONFIG) == s(180)
    _, early = tick_device(state, CONFIG, s(179.999))
    assert early == []
    state, [raised] = tick_device(state, CONFIG, s(180))
    assert raised.key == (SourceKind.DEVICE, KEY, AlarmType.DEVICE_SILENT)
    assert raised.severity is Severity.MINOR and raised.at == s(180)
    assert raised.detail["limit_s"] == 180.0
    _, again = tick_device(state, CONFIG, s(500))
    assert again == []
    assert next_deadline(state, CONFIG) is None


def test_reporting_again_clears_device_silent():
    state, _ = tick_device(seen_at_zero(), CONFIG, s(200))
    state, [cleared] = heard(state, 250, hr_bpm=70)
    assert cleared.action is Action.CLEAR and cleared.at == s(250)
    assert next_deadline(state, CONFIG) == s(430)


def test_silence_is_measured_on_the_platform_clock_not_the_device_clock():
    # The wearable's clock is an hour behind; it is reporting, so it is not silent.
    reading = WearableReading("P001", s(-3600), hr_bpm=70)
    state, _ = evaluate_device(DeviceState(KEY), CONFIG, reading, s(0))
    assert state.last_seen == s(0)


def test_a_last_will_shortens_the_wait_to_one_interval():
    state = seen_at_zero()
    state, transitions = evaluate_device(
        state, CONFIG, Presence(DeviceKind.ELDER, "P001", False, s(10)), s(10)
    )
    assert transitions == []
    assert next_deadline(state, CONFIG) == s(60)
    _, [raised] = tick_device(state, CONFIG, s(60))
    assert raised.detail["offline_flag"] is True


def test_a_last_will_alone_never_raises():
    state = seen_at_zero()
    state, _ = evaluate_device(state, CONFIG, Presence(DeviceKind.ELDER, "P001", False, s(1)), s(1))
    _, transitions = tick_device(state, CONFIG, s(2))
    assert transitions == []


def test_online_again_withdraws_the_hint_but_is_not_a_report():
    state = seen_at_zero()
    for online, at in ((False, 5), (True, 30)):
        state, _ = evaluate_device(
            state, CONFIG, Presence(DeviceKind.ELDER, "P001", online, s(at)), s(at)
        )
    assert state.last_seen == s(0)
    assert next_deadline(state, CONFIG) == s(180)


def test_a_report_after_the_last_will_withdraws_the_hint():
    state = seen_at_zero()
    state, _ = evaluate_device(state, CONFIG, Presence(DeviceKind.ELDER, "P001", False, s(5)), s(5))
    state, _ = heard(state, 20)
    assert next_deadline(state, CONFIG) == s(200)


def test_a_device_never_heard_from_is_supervised_from_its_first_tick():
    state, transitions = tick_device(DeviceState(KEY), CONFIG, s(0))
    assert transitions == [] and next_deadline(state, CONFIG) == s(180)


def test_battery_below_15_percent_raises_a_warning_that_clears_at_20():
    state, [raised] = heard(DeviceState(KEY), 0, battery_pct=14)
    assert raised.alarm_type is AlarmType.BATTERY_LOW and raised.severity is Severity.WARNING
    state, transitions = heard(state, 60, battery_pct=19.9)
    assert transitions == []
    state, transitions = heard(state, 120, battery_pct=12)
    assert transitions == []
    _, [cleared] = heard(state, 180, battery_pct=20)
    assert cleared.action is Action.CLEAR


def test_battery_at_exactly_15_percent_is_not_low():
    _, transitions = heard(DeviceState(KEY), 0, battery_pct=15)
    assert transitions == []


def test_an_out_of_order_battery_level_is_ignored():
    state, _ = heard(DeviceState(KEY), 100, battery_pct=80)
    reading = WearableReading("P001", s(50), battery_pct=5)
    _, transitions = evaluate_device(state, CONFIG, reading, s(101))
    assert transitions == []


def test_readings_name_the_device_they_prove_alive():
    assert device_key_of(WaterReading("WS01", T0, {})) == "water:WS01"
    assert device_key_of(WearableReading("P001", T0)) == "elder:P001"
    assert (
        device_key_of(HomeSensorEvent("P001", "door1", T0, "door", True)) == "elder:P001/home/door1"
    )
    assert device_key_of(UnitPosition("AMB01", T0, 30.8, 120.9)) == "unit:AMB01"
    assert device_key_of(Presence(DeviceKind.UNIT, "AMB01", True, T0)) == "unit:AMB01"


def test_a_reading_of_another_device_is_refused():
    with pytest.raises(ValueError, match="water:WS01"):
        evaluate_device(DeviceState(KEY), CONFIG, WaterReading("WS01", T0, {}), T0)


def test_a_last_will_may_only_shorten_the_wait():
    with pytest.raises(ValueError, match="offline_tolerance"):
        DeviceConfig.from_mapping({"tolerance": 2, "offline_tolerance": 3})
