from __future__ import annotations

from datetime import time

import pytest

from ingest.rules import (
    ConfigError,
    DailyWindow,
    DeviceConfig,
    PersonConfig,
    WaterBody,
    WaterClass,
    WaterConfig,
)


def test_defaults_follow_the_domain_document():
    person = PersonConfig()
    assert (person.hr_low_bpm, person.hr_high_bpm, person.spo2_low_pct) == (40, 130, 90)
    assert person.fall_cancel_window_s == 60 and person.inactivity_s == 4 * 3600
    assert person.active_window == DailyWindow(time(7), time(22))
    assert person.night_window == DailyWindow(time(22), time(6))
    assert (person.bed_exit_s, person.door_open_s) == (1800, 120)
    water = WaterConfig()
    assert water.target_class is WaterClass.III and water.water_body is WaterBody.RIVER
    assert (water.raise_after, water.clear_after) == (3, 3)
    assert (water.anomaly.window, water.anomaly.k, water.anomaly.binomial_window) == (30, 3.0, 8)
    assert water.anomaly.raise_probability == 0.95
    device = DeviceConfig()
    assert (device.tolerance, device.battery_low_pct, device.battery_clear_pct) == (3, 15, 20)


def test_any_field_can_be_overridden_from_a_plain_mapping():
    person = PersonConfig.from_mapping(
        {
            "spo2_low_pct": 88,
            "night_window": {"start": "23:00", "end": "05:30"},
            "timezone": "+08:00",
        }
    )
    assert person.spo2_low_pct == 88.0
    assert person.night_window == DailyWindow(time(23), time(5, 30))
    water = WaterConfig.from_mapping({"target_class": 2, "max_gap_s": None, "anomaly": {"k": 4}})
    assert water.target_class is WaterClass.II and water.max_gap_s is None
    assert water.anomaly.k == 4.0


def test_an_unknown_field_is_refused_with_the_fields_that_exist():
    with pytest.raises(ConfigError, match=r"unknown field.*hr_low.*expected.*hr_low_bpm"):
        PersonConfig.from_mapping({"hr_low": 45})


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (PersonConfig, {"hr_low_bpm": "forty"}, "hr_low_bpm: expected a number"),
        (PersonConfig, {"hr_low_bpm": True}, "hr_low_bpm: expected a number"),
        (PersonConfig, {"timezone": "Asia/Nowhere"}, "timezone"),
        (PersonConfig, {"night_window": "late"}, "HH:MM-HH:MM"),
        (PersonConfig, {"hr_low_bpm": 140}, "must be below"),
        (WaterConfig, {"target_class": "VII"}, "target_class: expected one of"),
        (WaterConfig, {"target_class": "劣V"}, "I..V"),
        (WaterConfig, {"raise_after": 2.5}, "raise_after: expected an integer"),
        (WaterConfig, {"anomaly": {"min_history": 1}}, "min_history"),
        (DeviceConfig, {"battery_clear_pct": 10}, "battery_clear_pct"),
    ],
)
def test_an_invalid_value_is_refused_naming_the_field(cls, data, message):
    with pytest.raises(ConfigError, match=message):
        cls.from_mapping(data)


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        PersonConfig().hr_low_bpm = 10  # type: ignore[misc]
