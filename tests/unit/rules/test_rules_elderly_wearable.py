from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.readings import WearableReading
from ingest.rules import (
    Action,
    AlarmType,
    PersonConfig,
    PersonState,
    Severity,
    SourceKind,
    evaluate_wearable,
    next_deadline,
    resolve_person_alarm,
    tick_person,
)

T0 = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Jiashan, inside the active window
CONFIG = PersonConfig()


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def wear(at: float, **fields) -> WearableReading:
    return WearableReading("P001", s(at), **fields)


def feed(*readings: WearableReading, state=None, config=CONFIG, lag: float = 0.5):
    """Evaluate readings as if each arrived `lag` seconds after it was measured."""
    state = state or PersonState("P001")
    transitions = []
    for r in readings:
        state, emitted = evaluate_wearable(state, config, r, r.ts + timedelta(seconds=lag))
        transitions.extend(emitted)
    return state, transitions


def kinds(transitions):
    return [(t.action.value, t.alarm_type.value) for t in transitions]


# SOS


def test_sos_raises_a_critical_emergency_immediately():
    _, [raised] = feed(wear(0, sos=True, lat=30.83, lon=120.92))
    assert raised.key == (SourceKind.PERSON, "P001", AlarmType.SOS)
    assert raised.action is Action.RAISE
    assert raised.severity is Severity.CRITICAL and raised.emergency is True
    assert raised.at == s(0)
    assert raised.detail == {"lat": 30.83, "lon": 120.92}


def test_a_second_sos_press_while_raised_raises_nothing():
    _, transitions = feed(wear(0, sos=True), wear(5, sos=True))
    assert kinds(transitions) == [("raise", "sos")]


def test_sos_stays_raised_until_an_operator_resolves_it_then_can_raise_again():
    state, _ = feed(wear(0, sos=True), wear(10, sos=False, hr_bpm=80))
    assert AlarmType.SOS in state.alarms
    state, [cleared] = resolve_person_alarm(state, AlarmType.SOS, s(60))
    assert cleared.action is Action.CLEAR and cleared.emergency is True
    _, transitions = feed(wear(120, sos=True), state=state)
    assert kinds(transitions) == [("raise", "sos")]


def test_a_redelivered_sos_after_resolution_raises_nothing():
    state, _ = feed(wear(0, sos=True))
    state, _ = resolve_person_alarm(state, AlarmType.SOS, s(60))
    _, transitions = feed(wear(0, sos=True), state=state)
    assert transitions == []


def test_a_delayed_sos_older_than_the_latest_vitals_is_still_raised():
    state, _ = feed(wear(100, hr_bpm=80))
    _, transitions = feed(wear(50, sos=True), state=state)
    assert kinds(transitions) == [("raise", "sos")]


def test_only_latched_alarms_can_be_resolved_by_an_operator():
    with pytest.raises(ValueError, match="clears itself"):
        resolve_person_alarm(PersonState("P001"), AlarmType.SMOKE, s(0))


# Falls


def test_a_fall_alerts_at_once_as_major_without_an_incident():
    state, [raised] = feed(wear(0, fall=True))
    assert raised.alarm_type is AlarmType.FALL
    assert raised.severity is Severity.MAJOR and raised.emergency is False
    assert next_deadline(state, CONFIG) == s(60.5)  # 60 s after the platform learnt of it


def test_fall_cancelled_within_window_raises_no_incident():
    state, transitions = feed(wear(0, fall=True), wear(20, cancel=True))
    assert kinds(transitions) == [("raise", "fall"), ("clear", "fall")]
    assert transitions[1].detail["reason"] == "cancelled"
    state, transitions = tick_person(state, CONFIG, s(120))
    assert transitions == []
    assert state.fall is None


def test_fall_uncancelled_after_window_raises_a_critical_emergency():
    state, _ = feed(wear(0, fall=True))
    state, transitions = tick_person(state, CONFIG, s(60.4))
    assert transitions == []
    state, [raised] = tick_person(state, CONFIG, s(60.5))
    assert raised.alarm_type is AlarmType.FALL_UNCANCELLED
    assert raised.severity is Severity.CRITICAL and raised.emergency is True
    assert raised.at == s(60.5)
    assert AlarmType.FALL in state.alarms  # the family alert stays up too
    _, again = tick_person(state, CONFIG, s(90))
    assert again == []


def test_cancel_pressed_exactly_at_the_window_end_still_cancels():
    _, transitions = feed(wear(0, fall=True), wear(60, cancel=True), lag=5)
    assert kinds(transitions) == [("raise", "fall"), ("clear", "fall")]


def test_cancel_after_the_window_leaves_the_emergency_standing():
    state, _ = feed(wear(0, fall=True))
    state, _ = tick_person(state, CONFIG, s(61))
    state, transitions = feed(wear(75, cancel=True), state=state)
    assert transitions == []
    assert {AlarmType.FALL, AlarmType.FALL_UNCANCELLED} <= set(state.alarms)


def test_an_in_time_cancel_delivered_late_clears_the_uncancelled_fall():
    state, _ = feed(wear(0, fall=True))
    state, _ = tick_person(state, CONFIG, s(61))
    state, transitions = feed(wear(40, cancel=True), state=state, lag=30)
    assert kinds(transitions) == [("clear", "fall"), ("clear", "fall_uncancelled")]
    assert transitions[1].emergency is True


def test_a_cancel_received_in_time_counts_even_when_the_wearable_clock_is_behind():
    slow = timedelta(minutes=5)
    state, _ = evaluate_wearable(PersonState("P001"), CONFIG, wear(0, fall=True), s(0) + slow)
    state, transitions = evaluate_wearable(state, CONFIG, wear(90, cancel=True), s(50) + slow)
    assert kinds(transitions) == [("clear", "fall")]


def test_a_cancel_from_before_the_fall_cancels_nothing():
    state, _ = feed(wear(10, fall=True))
    _, transitions = feed(wear(5, cancel=True), state=state)
    assert transitions == []


def test_a_second_fall_during_an_open_episode_raises_nothing():
    state, transitions = feed(wear(0, fall=True), wear(30, fall=True))
    assert kinds(transitions) == [("raise", "fall")]
    assert state.fall is not None and state.fall.fall_ts == s(0)


def test_a_new_fall_after_a_cancelled_one_raises_again():
    _, transitions = feed(wear(0, fall=True), wear(10, cancel=True), wear(300, fall=True))
    assert kinds(transitions) == [("raise", "fall"), ("clear", "fall"), ("raise", "fall")]


def test_resolving_a_fall_ends_the_whole_episode():
    state, _ = feed(wear(0, fall=True))
    state, _ = tick_person(state, CONFIG, s(61))
    state, transitions = resolve_person_alarm(state, AlarmType.FALL_UNCANCELLED, s(300))
    assert kinds(transitions) == [("clear", "fall"), ("clear", "fall_uncancelled")]
    assert state.fall is None and next_deadline(state, CONFIG) != s(60.5)


# Heart rate and SpO2


def test_heart_rate_below_35_sustained_60_s_raises_a_critical_emergency():
    _, transitions = feed(*(wear(t, hr_bpm=32) for t in (0, 20, 40, 60)))
    [raised] = transitions
    assert raised.alarm_type is AlarmType.HEART_RATE_LOW
    assert raised.severity is Severity.CRITICAL and raised.emergency is True
    assert raised.at == s(60)
    assert raised.detail["threshold"] == 40.0


def test_heart_rate_held_for_59_s_raises_nothing():
    _, transitions = feed(wear(0, hr_bpm=35), wear(59, hr_bpm=35))
    assert transitions == []


def test_heart_rate_exactly_at_the_threshold_is_in_range():
    _, transitions = feed(*(wear(t, hr_bpm=40) for t in range(0, 300, 30)))
    assert transitions == []


def test_heart_rate_between_35_and_40_sustained_alarms_as_major_without_an_incident():
    _, [raised] = feed(*(wear(t, hr_bpm=38) for t in (0, 30, 60)))
    assert raised.alarm_type is AlarmType.HEART_RATE_LOW
    assert (raised.severity, raised.emergency) == (Severity.MAJOR, False)


def test_heart_rate_above_130_sustained_raises_heart_rate_high():
    _, [raised] = feed(wear(0, hr_bpm=150), wear(30, hr_bpm=140), wear(60, hr_bpm=135))
    assert raised.alarm_type is AlarmType.HEART_RATE_HIGH and raised.emergency is False
    assert raised.detail["mildest"] == 135


def test_heart_rate_above_150_sustained_is_an_emergency():
    _, [raised] = feed(wear(0, hr_bpm=170), wear(30, hr_bpm=160), wear(60, hr_bpm=155))
    assert raised.alarm_type is AlarmType.HEART_RATE_HIGH and raised.emergency is True


def test_one_in_range_reading_restarts_the_sustain_span():
    readings = [wear(0, hr_bpm=35), wear(30, hr_bpm=55), wear(60, hr_bpm=35), wear(100, hr_bpm=35)]
    _, transitions = feed(*readings)
    assert transitions == []


def test_a_gap_longer_than_twice_the_sustain_window_restarts_the_span():
    _, transitions = feed(wear(0, hr_bpm=35), wear(121, hr_bpm=35))
    assert transitions == []
    _, transitions = feed(wear(0, hr_bpm=35), wear(120, hr_bpm=35))
    assert kinds(transitions) == [("raise", "heart_rate_low")]


def test_an_out_of_order_reading_does_not_extend_the_span():
    state, _ = feed(wear(50, hr_bpm=35))
    _, transitions = feed(wear(0, hr_bpm=35), wear(50, hr_bpm=35), state=state)
    assert transitions == []
    assert state.vitals[AlarmType.HEART_RATE_LOW].since == s(50)


def test_a_personal_threshold_outside_the_cardiac_range_alarms_as_major():
    config = PersonConfig.from_mapping({"hr_low_bpm": 50})
    _, [raised] = feed(wear(0, hr_bpm=45), wear(60, hr_bpm=38), config=config)
    assert raised.severity is Severity.MAJOR and raised.emergency is False


def test_spo2_below_90_sustained_is_major_but_not_an_emergency():
    _, [raised] = feed(wear(0, spo2_pct=86), wear(30, spo2_pct=88), wear(60, spo2_pct=89.9))
    assert raised.alarm_type is AlarmType.SPO2_LOW
    assert raised.severity is Severity.MAJOR and raised.emergency is False


def test_spo2_exactly_90_is_in_range():
    _, transitions = feed(*(wear(t, spo2_pct=90) for t in range(0, 300, 30)))
    assert transitions == []


def test_a_vitals_alarm_clears_once_readings_stay_back_in_range_for_60_s():
    state, _ = feed(*(wear(t, hr_bpm=32) for t in (0, 30, 60)))
    state, transitions = feed(wear(90, hr_bpm=70), wear(120, hr_bpm=72), state=state)
    assert transitions == []
    _, [cleared] = feed(wear(150, hr_bpm=71), state=state)
    assert cleared.action is Action.CLEAR and cleared.alarm_type is AlarmType.HEART_RATE_LOW
    assert cleared.at == s(150) and cleared.emergency is True


def test_readings_without_a_value_do_not_break_a_span():
    _, transitions = feed(wear(0, hr_bpm=35), wear(30, steps=10), wear(60, hr_bpm=35))
    assert kinds(transitions) == [("raise", "heart_rate_low")]


def test_a_reading_of_another_person_is_refused():
    with pytest.raises(ValueError, match="P002"):
        evaluate_wearable(PersonState("P001"), CONFIG, WearableReading("P002", T0), T0)
