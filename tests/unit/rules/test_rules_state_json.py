"""Every rules state must survive the database: encode_state -> JSON text -> from_json is
the identity, for any state the types allow (not just the ones the rules happen to build),
and states stored by earlier versions still load."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ingest.readings import WATER_PARAMETERS
from ingest.rules import AlarmType, DeviceState, PersonState, Severity, WaterClass, WaterState
from ingest.rules._codec import encode_state
from ingest.rules.alarms import RaisedAlarm
from ingest.rules.alert_state import AlertState
from ingest.rules.anomaly import ParameterHistory
from ingest.rules.person_state import FallEpisode, SensorState
from ingest.rules.vitals import Run

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
maybe_instants = st.none() | instants
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
ids = st.text(min_size=1, max_size=12)

raised = st.dictionaries(
    st.sampled_from(list(AlarmType)),
    st.builds(RaisedAlarm, st.sampled_from(list(Severity)), st.booleans(), instants),
    max_size=5,
)
histories = st.builds(
    ParameterHistory,
    st.lists(finite, max_size=30).map(tuple),
    st.lists(st.booleans(), max_size=8).map(tuple),
    st.booleans(),
)
water_states = st.builds(
    WaterState,
    station_id=ids,
    last_ts=maybe_instants,
    worse_run=st.integers(0, 10**6),
    better_run=st.integers(0, 10**6),
    run_worst=st.none() | st.sampled_from(list(WaterClass)),
    histories=st.dictionaries(st.sampled_from(WATER_PARAMETERS), histories, max_size=4),
    alarms=raised,
)
runs = st.builds(Run, st.booleans(), instants, instants, finite)
sensors = st.builds(
    SensorState,
    st.sampled_from(["door", "bed", "smoke", "gas", "water_leak"]),
    st.booleans(),
    instants,
    instants,
)
person_states = st.builds(
    PersonState,
    person_id=ids,
    alarms=raised,
    last_sos_ts=maybe_instants,
    last_fall_ts=maybe_instants,
    fall=st.none() | st.builds(FallEpisode, instants, instants),
    last_wearable_ts=maybe_instants,
    vitals=st.dictionaries(
        st.sampled_from([AlarmType.HEART_RATE_LOW, AlarmType.HEART_RATE_HIGH, AlarmType.SPO2_LOW]),
        runs,
    ),
    vital_samples=st.dictionaries(
        st.sampled_from(["hr_bpm", "spo2_pct"]), st.lists(st.tuples(instants, finite), max_size=32).map(tuple)
    ),
    vitals_cleared=st.dictionaries(st.sampled_from([AlarmType.HEART_RATE_LOW, AlarmType.SPO2_LOW]), instants),
    steps=st.none() | st.integers(0, 10**7),
    inactive_since=maybe_instants,
    sensors=st.dictionaries(ids, sensors, max_size=4),
    recent_events=st.lists(ids, max_size=32).map(tuple),
    recent_cancels=st.lists(instants, max_size=8).map(tuple),
)
device_states = st.builds(
    DeviceState,
    device_key=ids,
    last_seen=maybe_instants,
    offline_since=maybe_instants,
    battery_ts=maybe_instants,
    alarms=raised,
)


def through_json(state: object) -> dict:
    """As the database gives it back, read by another JSON library than the one that wrote it."""
    return json.loads(encode_state(state))


@given(water_states)
def test_water_state_round_trips_through_json(state):
    assert WaterState.from_json(through_json(state)) == state


@given(person_states)
def test_person_state_round_trips_through_json(state):
    assert PersonState.from_json(through_json(state)) == state


@given(device_states)
def test_device_state_round_trips_through_json(state):
    assert DeviceState.from_json(through_json(state)) == state


def test_a_stored_datetime_keeps_its_instant_in_utc():
    state = DeviceState("unit:AMB01", last_seen=datetime(2025, 6, 3, 1, 2, 3, 456789, tzinfo=UTC))
    assert through_json(state)["last_seen"] == "2025-06-03T01:02:03.456789+00:00"


def test_a_water_state_stored_by_the_earlier_encoder_still_loads():
    # Outlier flags were stored as 0 and 1, the keys sorted; both read as before.
    stored = {
        "station_id": "WS-001", "last_ts": "2026-11-30T08:00:00+00:00", "worse_run": 2, "better_run": 0, "run_worst": 4,
        "histories": {"ph": {"values": [7.1, 7.2], "outliers": [0, 1], "in_event": False}},
        "alarms": {"water_class_exceeded": {"severity": "major", "emergency": False, "since": "2026-11-30T07:00:00+00:00"}},
        "hour_last": None, "hours_worse_since": None, "hours_better_since": None,
    }
    state = WaterState.from_json(stored)
    assert state.histories["ph"].outliers == (False, True) and state.run_worst is WaterClass.IV
    assert WaterState.from_json(through_json(state)) == state


def test_the_alert_lanes_state_survives_the_database():
    state = AlertState(
        "P-1",
        alarms={AlarmType.FALL: RaisedAlarm(Severity.MAJOR, False, datetime(2026, 12, 1, tzinfo=UTC))},
        fall=FallEpisode(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, 0, 1, tzinfo=UTC)),
        recent_cancels=(datetime(2026, 11, 30, 23, 59, tzinfo=UTC),),
    )
    assert AlertState.from_json(through_json(state)) == state
