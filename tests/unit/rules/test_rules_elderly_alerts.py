"""The elderly rules on alert-lane events: presses told apart by event id, repeats counted,
cancel-before-fall, and the cancel window of a late fall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ingest.readings import WearableReading
from ingest.rules import AlarmType, PersonConfig, PersonState, evaluate_wearable, next_deadline, tick_person
from ingest.rules._codec import encode_state

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CONFIG = PersonConfig()
WINDOW = CONFIG.fall_cancel_window


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(at: float, event_id: str, *, clock_suspect: bool = False, **flags) -> WearableReading:
    return WearableReading("P001", s(at), event_id=event_id, clock_suspect=clock_suspect, **flags)


def feed(*readings: WearableReading, state=None, received: float | None = None):
    """Evaluate readings; each is received at `received` (seconds) or 0.5 s after its ts."""
    state = state or PersonState("P001")
    out = []
    for r in readings:
        now = s(received) if received is not None else r.ts + timedelta(seconds=0.5)
        state, transitions = evaluate_wearable(state, CONFIG, r, now)
        out.extend(transitions)
    return state, out


def kinds(transitions):
    return [(t.action.value, t.alarm_type.value) for t in transitions]


def test_a_retried_sos_with_the_same_event_id_raises_once():
    _, transitions = feed(alert(0, "e1", sos=True), alert(0, "e1", sos=True))
    assert kinds(transitions) == [("raise", "sos")]


def test_a_second_sos_press_on_an_open_alarm_is_a_repeat_the_store_counts():
    _, transitions = feed(alert(0, "e1", sos=True), alert(30, "e2", sos=True))
    assert kinds(transitions) == [("raise", "sos"), ("raise", "sos")]
    assert transitions[1].detail["event_id"] == "e2"


def test_two_sos_presses_from_a_clock_that_went_backwards_are_two_presses():
    _, transitions = feed(alert(100, "e1", sos=True), alert(40, "e2", sos=True))
    assert len(transitions) == 2


def test_the_sos_alarm_records_the_event_the_fix_and_a_suspect_clock():
    reading = WearableReading(
        "P001", s(0), sos=True, lat=30.8, lon=120.9, acc_m=12.0, event_id="e1", clock_suspect=True,
        device_ts=datetime(2000, 1, 1, tzinfo=UTC),
    )
    _, [raised] = feed(reading)
    assert raised.detail == {
        "lat": 30.8, "lon": 120.9, "acc_m": 12.0, "event_id": "e1", "clock_suspect": True,
        "device_ts": "2000-01-01T00:00:00+00:00",
    }


def test_a_late_fall_with_a_sane_clock_counts_its_window_from_its_own_time():
    state, _ = feed(alert(0, "f1", fall=True), received=45)
    assert state.fall is not None and state.fall.deadline == s(0) + WINDOW


def test_a_fall_with_a_suspect_clock_counts_its_window_from_its_receive_time():
    # The alert lane gives a suspect alert its receive time as ts.
    state, _ = feed(alert(45, "f1", fall=True, clock_suspect=True), received=45)
    assert state.fall is not None and state.fall.deadline == s(45) + WINDOW


def test_a_fall_flag_in_telemetry_keeps_the_platform_time_window():
    state, _ = feed(WearableReading("P001", s(0), fall=True), received=45)
    assert state.fall is not None and state.fall.deadline == s(45) + WINDOW


def test_a_cancel_that_arrives_before_its_fall_cancels_it():
    state, transitions = feed(alert(20, "c1", cancel=True), alert(0, "f1", fall=True), received=25)
    assert transitions == []
    assert state.fall is None
    state, fired = tick_person(state, CONFIG, s(3600))
    assert AlarmType.FALL_UNCANCELLED not in {t.alarm_type for t in fired}


def test_a_cancel_before_a_fall_it_cannot_answer_does_not_cancel_it():
    state, transitions = feed(alert(0, "c1", cancel=True), alert(10, "f1", fall=True), received=12)
    assert kinds(transitions) == [("raise", "fall")]
    assert state.fall is not None


def test_a_cancel_pressed_after_the_window_does_not_cancel_a_later_arriving_fall():
    _, transitions = feed(alert(WINDOW.total_seconds() + 5, "c1", cancel=True), alert(0, "f1", fall=True), received=90)
    assert kinds(transitions) == [("raise", "fall")]


def test_states_without_the_alert_memories_still_load():
    data = orjson.loads(encode_state(PersonState("P001")))
    del data["recent_events"], data["recent_cancels"]
    assert PersonState.from_json(data) == PersonState("P001")


def test_the_alert_memories_survive_a_restart():
    state, _ = feed(alert(0, "c1", cancel=True), alert(5, "s1", sos=True))
    assert PersonState.from_json(orjson.loads(encode_state(state))) == state


@given(
    fall_at=st.floats(min_value=0, max_value=600),
    cancel_after=st.floats(min_value=0, max_value=WINDOW.total_seconds()),
    cancel_first=st.booleans(),
    lag=st.floats(min_value=0, max_value=900),
)
def test_an_in_time_cancel_in_either_order_never_leaves_an_uncancelled_fall(fall_at, cancel_after, cancel_first, lag):
    fall = alert(fall_at, "f1", fall=True)
    cancel = alert(fall_at + cancel_after, "c1", cancel=True)
    order = (cancel, fall) if cancel_first else (fall, cancel)
    received = fall_at + cancel_after + lag
    state, transitions = feed(*order, received=received)
    state, fired = tick_person(state, CONFIG, s(received + 3600))
    raised = {t.alarm_type for t in transitions + fired if t.action.value == "raise"}
    assert AlarmType.FALL_UNCANCELLED not in raised
    assert state.fall is None


@given(presses=st.lists(st.floats(min_value=0, max_value=3600), min_size=1, max_size=20))
def test_every_distinct_press_reaches_the_store_whatever_its_time(presses):
    readings = [alert(at, f"e{i}", sos=True) for i, at in enumerate(presses)]
    _, transitions = feed(*readings, *readings)  # every press retried once
    assert len(transitions) == len(presses)


@given(delay=st.floats(min_value=0, max_value=1800))
def test_a_sane_late_fall_is_due_at_its_own_time_plus_the_window(delay):
    state, _ = feed(alert(0, "f1", fall=True), received=delay)
    assert next_deadline(state, CONFIG) == s(0) + WINDOW


def test_an_sos_alarm_needs_no_state_and_records_the_alert():
    from ingest.rules.elderly import sos_alarm

    t = sos_alarm(alert(0, "e9", sos=True, lat=30.8, lon=120.9))
    assert (t.action.value, t.alarm_type, t.severity.value, t.emergency) == ("raise", AlarmType.SOS, "critical", True)
    assert t.detail == {"lat": 30.8, "lon": 120.9, "event_id": "e9", "clock_suspect": False}
