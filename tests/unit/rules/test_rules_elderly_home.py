from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ingest.readings import HomeSensorEvent, WearableReading
from ingest.rules.home import hazard_alarm, not_in_bed_deadline, not_up_deadline
from ingest.rules import (
    Action,
    AlarmType,
    PersonConfig,
    PersonState,
    Severity,
    evaluate_home_sensor,
    evaluate_wearable,
    next_deadline,
    tick_person,
)
from ingest.rules._codec import encode_state

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG = PersonConfig()


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


def home(ts: datetime, kind: str, value: bool | float, sensor: str | None = None):
    return HomeSensorEvent("P001", sensor or kind + "1", ts, kind, value)


def feed(*events, state=None, config=CONFIG):
    state = state or PersonState("P001")
    transitions = []
    for event in events:
        evaluate = evaluate_wearable if isinstance(event, WearableReading) else evaluate_home_sensor
        state, emitted = evaluate(state, config, event, event.ts)
        transitions.extend(emitted)
    return state, transitions


def kinds(transitions):
    return [(t.action.value, t.alarm_type.value) for t in transitions]


# Smoke, gas, water leak


def test_smoke_raises_a_critical_emergency_and_clears_when_the_sensor_reports_false():
    _, transitions = feed(home(local(3, 12), "smoke", True), home(local(3, 12, 5), "smoke", False))
    raised, cleared = transitions
    assert (raised.alarm_type, raised.severity, raised.emergency) == (
        AlarmType.SMOKE,
        Severity.CRITICAL,
        True,
    )
    assert raised.at == local(3, 12) and raised.detail["sensors"] == ["smoke1"]
    assert cleared.action is Action.CLEAR and cleared.at == local(3, 12, 5)


def test_gas_raises_a_critical_emergency_immediately():
    _, [raised] = feed(home(local(3, 12), "gas", True))
    assert raised.alarm_type is AlarmType.GAS and raised.emergency is True


def test_a_water_leak_is_major_but_not_an_emergency():
    _, [raised] = feed(home(local(3, 12), "water_leak", True))
    assert raised.severity is Severity.MAJOR and raised.emergency is False


def test_a_hazard_clears_only_when_every_sensor_of_its_kind_is_clear():
    _, transitions = feed(
        home(local(3, 12), "smoke", True, "kitchen"),
        home(local(3, 12, 1), "smoke", True, "hall"),
        home(local(3, 12, 2), "smoke", False, "kitchen"),
    )
    assert kinds(transitions) == [("raise", "smoke")]
    _, transitions = feed(home(local(3, 12, 3), "smoke", False, "hall"), state=_)
    assert kinds(transitions) == [("clear", "smoke")]


def test_a_stale_sensor_event_is_ignored():
    state, _ = feed(home(local(3, 12, 5), "smoke", False))
    _, transitions = feed(home(local(3, 12), "smoke", True), state=state)
    assert transitions == []


def test_a_duplicate_sensor_event_raises_nothing_twice():
    _, transitions = feed(home(local(3, 12), "gas", True), home(local(3, 12), "gas", True))
    assert kinds(transitions) == [("raise", "gas")]


# Front door at night


def test_a_door_open_two_minutes_at_night_raises_door_open_night():
    state, transitions = feed(home(local(3, 23), "door", True))
    assert transitions == []
    assert next_deadline(state, CONFIG) == local(3, 23, 2)
    _, none_yet = tick_person(state, CONFIG, local(3, 23, 1, 59))
    assert none_yet == []
    _, [raised] = tick_person(state, CONFIG, local(3, 23, 2))
    assert raised.alarm_type is AlarmType.DOOR_OPEN_NIGHT and raised.at == local(3, 23, 2)


def test_a_door_closed_within_two_minutes_raises_nothing():
    state, _ = feed(home(local(3, 23), "door", True), home(local(3, 23, 1), "door", False))
    _, transitions = tick_person(state, CONFIG, local(3, 23, 30))
    assert transitions == []


def test_a_door_open_by_day_raises_nothing_until_two_minutes_into_the_night():
    state, _ = feed(home(local(3, 15), "door", True), home(local(3, 21), "motion", True))
    _, transitions = tick_person(state, CONFIG, local(3, 21, 59))
    assert transitions == []
    assert next_deadline(state, CONFIG) == local(3, 22, 2)


def test_closing_the_door_clears_door_open_night():
    state, _ = feed(home(local(3, 23), "door", True))
    state, _ = tick_person(state, CONFIG, local(3, 23, 5))
    _, [cleared] = feed(home(local(3, 23, 6), "door", False), state=state)
    assert cleared.alarm_type is AlarmType.DOOR_OPEN_NIGHT and cleared.action is Action.CLEAR


# Bed at night


def test_out_of_bed_for_30_minutes_at_night_raises_bed_exit_night():
    state, _ = feed(home(local(3, 22, 30), "bed", True), home(local(4, 2), "bed", False))
    assert next_deadline(state, CONFIG) == local(4, 2, 30)
    state, [raised] = tick_person(state, CONFIG, local(4, 2, 30))
    assert raised.alarm_type is AlarmType.BED_EXIT_NIGHT and raised.severity is Severity.MAJOR
    _, [cleared] = feed(home(local(4, 2, 45), "bed", True), state=state)
    assert cleared.action is Action.CLEAR


def test_back_in_bed_within_30_minutes_raises_nothing():
    state, _ = feed(home(local(4, 2), "bed", False), home(local(4, 2, 20), "bed", True))
    _, transitions = tick_person(state, CONFIG, local(4, 3))
    assert transitions == []


def test_a_bed_exit_just_before_midnight_is_timed_across_midnight():
    state, _ = feed(home(local(3, 23, 50), "bed", False))
    assert next_deadline(state, CONFIG) == local(4, 0, 20)


def test_getting_up_and_moving_about_just_before_night_ends_raises_nothing():
    state, _ = feed(home(local(4, 5, 50), "bed", False), home(local(4, 5, 55), "motion", True))
    _, transitions = tick_person(state, CONFIG, local(4, 9))
    assert transitions == []


def test_leaving_the_bed_just_before_night_ends_and_not_moving_raises_bed_exit():
    state, _ = feed(home(local(4, 5, 50), "bed", False))
    assert next_deadline(state, CONFIG) == local(4, 6, 20)
    _, [raised] = tick_person(state, CONFIG, local(4, 6, 20))
    assert raised.alarm_type is AlarmType.BED_EXIT_NIGHT


# Not in bed by, not up by


def test_someone_who_collapses_in_the_evening_is_looked_for_at_bed_by():
    # Up at 07:00, moving until 19:30, then nothing: not in bed at 23:30, not next morning.
    state, _ = feed(home(local(3, 7), "bed", False), home(local(3, 19, 30), "motion", True))
    assert next_deadline(state, CONFIG) == local(3, 23, 30)
    _, [raised] = tick_person(state, CONFIG, local(3, 23, 30))
    assert (raised.alarm_type, raised.severity) == (AlarmType.NOT_IN_BED, Severity.MAJOR)


def test_an_earlier_bed_by_finds_them_earlier():
    config = PersonConfig.from_mapping({"bed_by": "21:00"})
    state, _ = feed(home(local(3, 7), "bed", False), home(local(3, 19), "motion", True), config=config)
    assert not_in_bed_deadline(state, config) == local(3, 21)


def test_going_to_bed_clears_not_in_bed():
    state, _ = feed(home(local(3, 7), "bed", False))
    state, _ = tick_person(state, CONFIG, local(3, 23, 30))
    _, [cleared] = feed(home(local(3, 23, 40), "bed", True), state=state)
    assert (cleared.action, cleared.alarm_type) == (Action.CLEAR, AlarmType.NOT_IN_BED)


def test_a_bed_left_during_the_night_is_the_bed_exit_rule_alone():
    state, _ = feed(home(local(3, 22, 10), "bed", True), home(local(3, 23), "bed", False))
    state, [raised] = tick_person(state, CONFIG, local(3, 23, 30))
    assert raised.alarm_type is AlarmType.BED_EXIT_NIGHT
    assert not_in_bed_deadline(state, CONFIG) == local(4, 23, 30)  # the next evening's


def test_still_in_bed_at_up_by_raises_not_up_and_getting_up_clears_it():
    state, _ = feed(home(local(3, 22), "bed", True))
    assert next_deadline(state, CONFIG) == local(4, 9)
    state, [raised] = tick_person(state, CONFIG, local(4, 9))
    assert raised.alarm_type is AlarmType.NOT_UP
    _, [cleared] = feed(home(local(4, 9, 20), "bed", False), state=state)
    assert (cleared.action, cleared.alarm_type) == (Action.CLEAR, AlarmType.NOT_UP)


def test_a_late_bed_event_moves_the_timers_to_its_own_time():
    # The hub forwarded "in bed at 22:00" only at 09:30: nothing fired in between, and the
    # not-up timer is already due, by the event's own time.
    config = PersonConfig.from_mapping({"up_by": "08:00"})
    state, _ = feed(home(local(3, 7), "bed", False), config=config)
    state, _ = evaluate_home_sensor(state, config, home(local(3, 22), "bed", True), local(4, 9, 30))
    assert not_up_deadline(state, config) == local(4, 8)


def test_bed_by_and_up_by_can_be_turned_off():
    config = PersonConfig.from_mapping({"bed_by": None, "up_by": None})
    state, _ = feed(home(local(3, 7), "bed", False), config=config)
    assert next_deadline(state, config) is not None  # inactivity still runs
    _, transitions = tick_person(state, config, local(3, 23, 59))
    assert [t.alarm_type for t in transitions] == [AlarmType.INACTIVITY]


def test_an_empty_bed_in_the_evening_raises_nothing_all_night():
    state, _ = feed(home(local(3, 7), "bed", False))
    _, transitions = tick_person(state, CONFIG, local(3, 23, 30))
    assert [t for t in transitions if t.alarm_type is AlarmType.BED_EXIT_NIGHT] == []


# Inactivity


def test_no_motion_for_four_hours_in_the_active_window_raises_inactivity():
    state, _ = feed(home(local(3, 8), "motion", True))
    assert next_deadline(state, CONFIG) == local(3, 12)
    _, early = tick_person(state, CONFIG, local(3, 11, 59, 59))
    assert early == []
    _, [raised] = tick_person(state, CONFIG, local(3, 12))
    assert raised.alarm_type is AlarmType.INACTIVITY and raised.severity is Severity.MAJOR
    assert raised.emergency is False and raised.at == local(3, 12)


def test_quiet_hours_pause_the_inactivity_clock_rather_than_reset_it():
    state, _ = feed(home(local(3, 21), "motion", True))
    assert next_deadline(state, CONFIG) == local(4, 10)
    _, transitions = tick_person(state, CONFIG, local(4, 6))
    assert transitions == []


def test_motion_clears_inactivity_and_restarts_the_clock():
    state, _ = feed(home(local(3, 8), "motion", True))
    state, _ = tick_person(state, CONFIG, local(3, 12, 30))
    state, [cleared] = feed(home(local(3, 12, 40), "motion", True), state=state)
    assert cleared.alarm_type is AlarmType.INACTIVITY and cleared.action is Action.CLEAR
    assert next_deadline(state, CONFIG) == local(3, 16, 40)


def test_a_motion_sensor_reporting_false_is_not_motion():
    state, _ = feed(home(local(3, 8), "motion", True), home(local(3, 9), "motion", False))
    assert next_deadline(state, CONFIG) == local(3, 12)


def test_a_rising_step_counter_counts_as_motion():
    state, _ = feed(
        WearableReading("P001", local(3, 8), steps=100),
        WearableReading("P001", local(3, 9), steps=100),
        WearableReading("P001", local(3, 10), steps=130),
    )
    assert next_deadline(state, CONFIG) == local(3, 14)


def test_a_step_counter_reset_with_new_steps_counts_as_motion():
    state, _ = feed(
        WearableReading("P001", local(3, 8), steps=5000),
        WearableReading("P001", local(3, 9), steps=12),
    )
    assert state.inactive_since == local(3, 9)


def test_an_active_window_across_midnight_works_for_a_night_owl():
    night_owl = PersonConfig.from_mapping(
        {"active_window": "20:00-04:00", "night_window": "06:00-12:00"}
    )
    state, _ = feed(home(local(3, 23), "motion", True), config=night_owl)
    assert next_deadline(state, night_owl) == local(4, 3)


def test_monitoring_begins_at_the_first_tick_when_nothing_was_heard():
    state, transitions = tick_person(PersonState("P001"), CONFIG, local(3, 8))
    assert transitions == [] and state.inactive_since == local(3, 8)


def test_timers_survive_a_restart_through_the_json_state():
    state, _ = feed(home(local(3, 23), "door", True), home(local(3, 23), "bed", False, "bed1"))
    restored = PersonState.from_json(json.loads(encode_state(state)))
    assert restored == state
    assert next_deadline(restored, CONFIG) == local(3, 23, 2)
    _, transitions = tick_person(restored, CONFIG, local(3, 23, 31))
    assert sorted(t.alarm_type for t in transitions) == [
        AlarmType.BED_EXIT_NIGHT,
        AlarmType.DOOR_OPEN_NIGHT,
    ]


def test_a_detector_reporting_clear_clears_a_hazard_its_state_never_raised():
    # Raised from the alert topic straight into the alarm store: this state never saw it.
    _, [cleared] = feed(home(local(3, 12, 5), "smoke", False))
    assert (cleared.action, cleared.alarm_type, cleared.unheld) == (Action.CLEAR, AlarmType.SMOKE, True)
    assert cleared.at == local(3, 12, 5)  # the store clears only an alarm raised before it


def test_the_alert_lanes_hazard_alarm_needs_no_state():
    event = HomeSensorEvent("P001", "smoke1", local(3, 12), "smoke", True, event_id="s1")
    raised = hazard_alarm(event)
    assert (raised.action, raised.alarm_type, raised.emergency) == (Action.RAISE, AlarmType.SMOKE, True)
    assert raised.detail["event_id"] == "s1" and raised.detail["sensors"] == ["smoke1"]
