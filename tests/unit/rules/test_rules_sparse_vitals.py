"""Vitals rules against a wearable that spot-samples every 10 minutes and forwards what it
stored during a coverage gap late and out of order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.readings import WearableReading
from ingest.rules import Action, AlarmType, ConfigError, PersonConfig, PersonState, evaluate_wearable
from ingest.rules._codec import encode_state

T0 = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)
SPOT = PersonConfig(vitals_sample_interval_s=600)  # one sample every 10 minutes


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def wear(minute: float, **fields) -> WearableReading:
    return WearableReading("P001", m(minute), **fields)


def feed(*readings: WearableReading, state=None, config=SPOT):
    state = state or PersonState("P001")
    transitions = []
    for r in readings:
        state, emitted = evaluate_wearable(state, config, r, r.ts)
        transitions.extend(emitted)
    return state, transitions


def kinds(transitions):
    return [(t.action.value, t.alarm_type.value) for t in transitions]


def test_two_spot_samples_ten_minutes_apart_both_low_raise_heart_rate_low():
    _, [raised] = feed(wear(0, hr_bpm=36), wear(10, hr_bpm=37))
    assert raised.alarm_type is AlarmType.HEART_RATE_LOW and raised.at == m(10)
    assert raised.detail["samples"] == 2 and raised.emergency is False


def test_a_single_abnormal_spot_sample_raises_nothing():
    _, transitions = feed(wear(0, hr_bpm=75), wear(10, hr_bpm=36), wear(20, hr_bpm=74))
    assert transitions == []


def test_a_continuous_sensor_would_not_join_samples_ten_minutes_apart():
    _, transitions = feed(wear(0, hr_bpm=36), wear(10, hr_bpm=37), config=PersonConfig())
    assert transitions == []


def test_a_missed_sample_still_joins_but_two_missed_do_not():
    _, [raised] = feed(wear(0, spo2_pct=86), wear(20, spo2_pct=87))
    assert raised.alarm_type is AlarmType.SPO2_LOW
    _, transitions = feed(wear(0, spo2_pct=86), wear(21, spo2_pct=87))
    assert transitions == []


def test_spo2_below_85_on_every_sample_is_an_emergency():
    _, [raised] = feed(wear(0, spo2_pct=82), wear(10, spo2_pct=84))
    assert raised.emergency is True
    _, [raised] = feed(wear(0, spo2_pct=82), wear(10, spo2_pct=88))
    assert raised.emergency is False  # the milder sample decides


def test_three_confirming_samples_when_the_person_needs_them():
    config = PersonConfig(vitals_sample_interval_s=600, vitals_confirm_samples=3)
    _, transitions = feed(wear(0, hr_bpm=36), wear(10, hr_bpm=36), config=config)
    assert transitions == []
    _, [raised] = feed(wear(0, hr_bpm=36), wear(10, hr_bpm=36), wear(20, hr_bpm=36), config=config)
    assert raised.detail["samples"] == 3


# Late and out-of-order samples (store-and-forward)


def test_a_late_sample_completing_a_run_raises_with_its_own_time():
    state, transitions = feed(wear(10, hr_bpm=36))
    assert transitions == []
    _, [raised] = feed(wear(0, hr_bpm=35), state=state)
    assert raised.alarm_type is AlarmType.HEART_RATE_LOW
    assert raised.at == m(10) and raised.detail["late"] is True


def test_a_burst_of_old_abnormal_samples_after_recovery_raises_and_clears_the_episode():
    state, _ = feed(wear(60, hr_bpm=72), wear(70, hr_bpm=70))  # newest first: back in range
    _, transitions = feed(wear(30, hr_bpm=34), wear(20, hr_bpm=33), wear(40, hr_bpm=34), state=state)
    assert kinds(transitions) == [("raise", "heart_rate_low"), ("clear", "heart_rate_low")]
    raised, cleared = transitions
    assert raised.at == m(30) and raised.emergency is True
    assert cleared.detail["recovered"] is True


def test_a_late_sample_never_reopens_an_episode_that_closed():
    state, transitions = feed(
        wear(0, hr_bpm=36), wear(10, hr_bpm=36), wear(20, hr_bpm=70), wear(30, hr_bpm=71)
    )
    assert kinds(transitions) == [("raise", "heart_rate_low"), ("clear", "heart_rate_low")]
    _, transitions = feed(wear(5, hr_bpm=35), wear(15, hr_bpm=35), state=state)
    assert transitions == []


def test_a_late_normal_sample_never_clears_an_open_alarm():
    state, [raised] = feed(wear(10, hr_bpm=36), wear(20, hr_bpm=36))
    _, transitions = feed(wear(0, hr_bpm=70), wear(5, hr_bpm=70), state=state)
    assert transitions == []


def test_the_sample_memory_survives_a_restart():
    state, _ = feed(wear(10, hr_bpm=36))
    state = PersonState.from_json(json.loads(encode_state(state)))
    _, [raised] = feed(wear(0, hr_bpm=35), state=state)
    assert raised.detail["late"] is True


# Whatever order the wearable forwards its samples in, the episode is raised exactly once.

episode = st.lists(st.integers(30, 39), min_size=2, max_size=6)


@settings(max_examples=200, deadline=None)
@given(episode, st.randoms(use_true_random=False), st.integers(0, 5))
def test_an_abnormal_episode_is_raised_once_in_any_delivery_order(values, rnd, normal_after):
    readings = [wear(10 * i, hr_bpm=v) for i, v in enumerate(values)]
    readings += [wear(10 * (len(values) + j), hr_bpm=72) for j in range(normal_after)]
    rnd.shuffle(readings)
    _, transitions = feed(*readings)
    raises = [t for t in transitions if t.action is Action.RAISE]
    assert [t.alarm_type for t in raises] == [AlarmType.HEART_RATE_LOW]


# Configuration


def test_emergency_thresholds_looser_than_the_alarm_thresholds_are_refused_by_name():
    with pytest.raises(ConfigError, match="hr_emergency_low_bpm: 45.0 must be at most hr_low_bpm"):
        PersonConfig.from_mapping({"hr_emergency_low_bpm": 45})
    with pytest.raises(ConfigError, match="spo2_emergency_low_pct"):
        PersonConfig.from_mapping({"spo2_low_pct": 88, "spo2_emergency_low_pct": 89})


def test_a_chronic_lung_patient_alarms_below_88_only():
    config = PersonConfig.from_mapping(
        {"spo2_low_pct": 88, "spo2_emergency_low_pct": 83, "vitals_sample_interval_s": 600}
    )
    _, transitions = feed(wear(0, spo2_pct=89), wear(10, spo2_pct=89), config=config)
    assert transitions == []
    raised = feed(wear(0, spo2_pct=86), wear(10, spo2_pct=87), config=config)[1][0]
    assert json.dumps(raised.to_json())
