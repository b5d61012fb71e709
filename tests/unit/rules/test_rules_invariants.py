"""Whatever the input — out of order, duplicated, flagged, with ticks in between — the rules
keep the contract: per alarm key, raises and clears alternate starting with a raise, the
state's raised alarms are exactly those whose last transition was a raise (a hazard's
"unheld" clear, for an alarm raised from the alert topic, aside), and every transition is
JSON-serialisable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.readings import HomeSensorEvent, WaterReading, WearableReading
from ingest.rules import (
    Action,
    PersonConfig,
    PersonState,
    WaterConfig,
    WaterState,
    evaluate_home_sensor,
    evaluate_water,
    evaluate_wearable,
    tick_person,
)

T0 = datetime(2025, 6, 3, 0, 0, tzinfo=UTC)
WATER = WaterConfig.from_mapping(
    {"raise_after": 2, "clear_after": 2, "anomaly": {"min_history": 3}}
)
PERSON = PersonConfig.from_mapping({"vitals_sustain_s": 20, "vitals_clear_s": 20})

offsets = st.integers(0, 24 * 3600)


def check_alternation(transitions, final_alarms):
    active: set = set()
    for t in transitions:
        json.dumps(t.to_json(), allow_nan=False)  # details must be storable as they are
        if t.unheld:
            # A hazard clear for an alarm the alert topic may have raised outside this state.
            assert t.action is Action.CLEAR and t.alarm_type not in active
            continue
        if t.action is Action.RAISE:
            assert t.alarm_type not in active, f"second raise of {t.alarm_type}"
            active.add(t.alarm_type)
        else:
            assert t.alarm_type in active, f"clear of {t.alarm_type} that is not raised"
            active.discard(t.alarm_type)
    assert active == set(final_alarms)


water_readings = st.builds(
    lambda minute, nh3n, cond, flag: WaterReading(
        "WS01", T0 + timedelta(minutes=minute), {"nh3n_mg_l": nh3n, "cond_us_cm": cond}, flag=flag
    ),
    st.integers(0, 600),
    st.sampled_from([0.3, 1.0, 1.3, 2.5]),
    st.sampled_from([400.0, 401.0, 900.0]),
    st.sampled_from(["N", "N", "N", "C"]),
)


@settings(max_examples=150)
@given(st.lists(water_readings, max_size=60))
def test_water_transitions_alternate_per_alarm(readings):
    state, transitions = WaterState("WS01"), []
    for r in readings:
        state, emitted = evaluate_water(state, WATER, r, r.ts)
        transitions.extend(emitted)
    check_alternation(transitions, state.alarms)


wearables = st.builds(
    lambda t, hr, spo2, steps, fall, cancel, sos: WearableReading(
        "P001",
        T0 + timedelta(seconds=t),
        hr_bpm=hr,
        spo2_pct=spo2,
        steps=steps,
        fall=fall,
        cancel=cancel,
        sos=sos,
    ),
    offsets,
    st.none() | st.sampled_from([30.0, 40.0, 70.0, 150.0]),
    st.none() | st.sampled_from([85.0, 97.0]),
    st.none() | st.integers(0, 50),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
home_events = st.builds(
    lambda t, kind, value, sensor: HomeSensorEvent(
        "P001", f"{kind}{sensor}", T0 + timedelta(seconds=t), kind, value
    ),
    offsets,
    st.sampled_from(["motion", "door", "bed", "smoke", "gas", "water_leak", "temperature"]),
    st.booleans(),
    st.integers(1, 2),
)
ticks = offsets.map(lambda t: T0 + timedelta(seconds=t))


@settings(max_examples=150)
@given(st.lists(wearables | home_events | ticks, max_size=60))
def test_person_transitions_alternate_per_alarm(steps):
    state, transitions = PersonState("P001"), []
    for step in steps:
        if isinstance(step, datetime):
            state, emitted = tick_person(state, PERSON, step)
        elif isinstance(step, WearableReading):
            state, emitted = evaluate_wearable(state, PERSON, step, step.ts)
        else:
            state, emitted = evaluate_home_sensor(state, PERSON, step, step.ts)
        transitions.extend(emitted)
    check_alternation(transitions, state.alarms)
