from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.readings import WaterReading
from ingest.rules import (
    Action,
    AlarmType,
    Severity,
    SourceKind,
    WaterClass,
    WaterConfig,
    WaterState,
    evaluate_water,
    next_deadline,
)

T0 = datetime(2025, 6, 3, 0, 0, tzinfo=UTC)
# No anomaly rule in these tests: they are about the class rule alone.
CLASS_ONLY = WaterConfig.from_mapping({"anomaly": {"parameters": []}})

GOOD = {"ph": 7.4, "do_mg_l": 6.5, "nh3n_mg_l": 0.4}  # class II
CLASS_IV = {"ph": 7.4, "do_mg_l": 6.5, "nh3n_mg_l": 1.3}
BELOW_V = {"ph": 7.4, "do_mg_l": 6.5, "nh3n_mg_l": 2.6}


def reading(minute: float, values: dict[str, float], flag: str = "N") -> WaterReading:
    return WaterReading("WS01", T0 + timedelta(minutes=minute), values, flag=flag)


def run(readings, config=CLASS_ONLY, state=None):
    state = state or WaterState("WS01")
    transitions = []
    for r in readings:
        state, emitted = evaluate_water(state, config, r, r.ts)
        transitions.extend(emitted)
    return state, transitions


def test_class_exceeded_raises_after_three_consecutive_readings_worse_than_target():
    state, transitions = run([reading(0, CLASS_IV), reading(1, CLASS_IV)])
    assert transitions == []
    state, transitions = run([reading(2, CLASS_IV)], state=state)
    [raised] = transitions
    assert raised.action is Action.RAISE
    assert raised.key == (SourceKind.STATION, "WS01", AlarmType.WATER_CLASS_EXCEEDED)
    assert raised.severity is Severity.MAJOR and raised.emergency is False
    assert raised.at == T0 + timedelta(minutes=2)


def test_class_exceeded_detail_names_class_parameter_value_and_threshold():
    _, [raised] = run([reading(m, CLASS_IV) for m in range(3)])
    assert raised.detail["class"] == "IV"
    assert raised.detail["target_class"] == "III"
    assert raised.detail["parameter"] == "nh3n_mg_l"
    assert raised.detail["value"] == 1.3
    assert raised.detail["threshold"] == 1.0
    assert raised.detail["consecutive"] == 3


def test_two_bad_readings_and_a_good_one_raise_nothing():
    _, transitions = run([reading(0, CLASS_IV), reading(1, CLASS_IV), reading(2, GOOD)])
    assert transitions == []


def test_a_reading_exactly_at_the_target_limit_meets_the_target():
    at_limit = {"nh3n_mg_l": 1.0}
    _, transitions = run([reading(m, at_limit) for m in range(5)])
    assert transitions == []


def test_no_second_raise_while_the_alarm_is_raised():
    _, transitions = run([reading(m, CLASS_IV) for m in range(10)])
    assert [t.action for t in transitions] == [Action.RAISE]


def test_clear_needs_three_consecutive_readings_at_or_better_than_target():
    state, _ = run([reading(m, CLASS_IV) for m in range(3)])
    state, transitions = run([reading(3, GOOD), reading(4, GOOD)], state=state)
    assert transitions == []
    _, [cleared] = run([reading(5, GOOD)], state=state)
    assert cleared.action is Action.CLEAR
    assert cleared.severity is Severity.MAJOR
    assert cleared.at == T0 + timedelta(minutes=5)


def test_a_bad_reading_between_good_ones_restarts_the_clear_count():
    state, _ = run([reading(m, CLASS_IV) for m in range(3)])
    _, transitions = run(
        [reading(3, GOOD), reading(4, GOOD), reading(5, CLASS_IV), reading(6, GOOD)], state=state
    )
    assert transitions == []


def test_a_run_reaching_below_v_makes_the_alarm_critical():
    _, [raised] = run([reading(0, CLASS_IV), reading(1, BELOW_V), reading(2, CLASS_IV)])
    assert raised.severity is Severity.CRITICAL
    assert raised.detail["worst_class_in_run"] == "劣V"


def test_flagged_readings_neither_count_nor_break_the_run():
    readings = [
        reading(0, CLASS_IV),
        reading(1, CLASS_IV),
        reading(2, GOOD, flag="C"),  # calibrating: would break the run if it counted
        reading(3, BELOW_V, flag="D"),  # fault: would count if it counted
        reading(4, CLASS_IV),
    ]
    _, transitions = run(readings)
    [raised] = transitions
    assert raised.at == T0 + timedelta(minutes=4)
    assert raised.severity is Severity.MAJOR


def test_flagged_readings_never_clear_a_raised_alarm():
    state, _ = run([reading(m, CLASS_IV) for m in range(3)])
    state, transitions = run([reading(3 + m, GOOD, flag="M") for m in range(5)], state=state)
    assert transitions == []
    assert AlarmType.WATER_CLASS_EXCEEDED in state.alarms


def test_an_out_of_order_reading_does_not_advance_the_run():
    state, _ = run([reading(10, CLASS_IV), reading(11, CLASS_IV)])
    state, transitions = run([reading(5, CLASS_IV)], state=state)
    assert transitions == []
    assert state.worse_run == 2


def test_a_duplicate_timestamp_does_not_advance_the_run():
    state, _ = run([reading(0, CLASS_IV), reading(1, CLASS_IV)])
    state, transitions = run([reading(1, CLASS_IV)], state=state)
    assert transitions == [] and state.worse_run == 2


def test_a_gap_longer_than_max_gap_starts_the_run_over():
    hours = 60
    state, transitions = run(
        [reading(0, CLASS_IV), reading(1, CLASS_IV), reading(7 * hours, CLASS_IV)]
    )
    assert transitions == [] and state.worse_run == 1


def test_a_gap_within_max_gap_keeps_the_run():
    _, transitions = run([reading(0, CLASS_IV), reading(60, CLASS_IV), reading(120, CLASS_IV)])
    assert [t.action for t in transitions] == [Action.RAISE]


def test_a_reading_with_no_graded_parameter_neither_counts_nor_breaks_the_run():
    _, transitions = run(
        [
            reading(0, CLASS_IV),
            reading(1, CLASS_IV),
            reading(2, {"temp_c": 20.0}),
            reading(3, CLASS_IV),
        ]
    )
    assert [t.at for t in transitions] == [T0 + timedelta(minutes=3)]


def test_target_class_and_run_lengths_are_configurable_per_station():
    strict = WaterConfig.from_mapping(
        {"target_class": "II", "raise_after": 1, "clear_after": 2, "anomaly": {"parameters": []}}
    )
    class_three = {"nh3n_mg_l": 0.9}
    _, [raised] = run([reading(0, class_three)], config=strict)
    assert raised.detail["target_class"] == "II" and raised.detail["threshold"] == 0.5


def test_a_lake_station_alarms_on_phosphorus_that_a_river_tolerates():
    tp = {"tp_mg_l": 0.15}  # river III, lake IV
    lake = WaterConfig.from_mapping({"water_body": "lake", "anomaly": {"parameters": []}})
    assert run([reading(m, tp) for m in range(3)])[1] == []
    assert len(run([reading(m, tp) for m in range(3)], config=lake)[1]) == 1


def test_the_given_state_is_not_modified():
    state = WaterState("WS01")
    evaluate_water(state, CLASS_ONLY, reading(0, CLASS_IV), T0)
    assert state == WaterState("WS01")


def test_a_reading_of_another_station_is_refused():
    with pytest.raises(ValueError, match="WS02"):
        evaluate_water(WaterState("WS01"), CLASS_ONLY, WaterReading("WS02", T0, GOOD), T0)


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_water(WaterState("WS01"), CLASS_ONLY, reading(0, GOOD), datetime(2025, 6, 3))


def test_water_rules_never_need_a_tick():
    state, _ = run([reading(m, CLASS_IV) for m in range(3)])
    assert next_deadline(state, CLASS_ONLY) is None
    assert state.run_worst is WaterClass.IV
