"""Alert parsing: named rejections, the clock policy, and the reading an alert becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.alerts import (
    AlertLimits,
    AlertReason,
    AlertType,
    RejectedAlert,
    parse_alert,
    reading_of,
    receipt_payload,
)
from ingest.devices import DeviceDirectory
from ingest.readings import HomeSensorEvent, WearableReading

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
DEVICES = DeviceDirectory(persons=frozenset({"P001"}), home_sensors={("P001", "smoke-1"): "smoke"})
LIMITS = AlertLimits()
TOPIC = "jiashan/elder/P001/alert"


def parse(payload: object, topic: str = TOPIC):
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_alert(topic, raw, root="jiashan", devices=DEVICES, now=NOW, limits=LIMITS)


def rejected(payload: object, topic: str = TOPIC) -> AlertReason:
    with pytest.raises(RejectedAlert) as info:
        parse(payload, topic)
    return info.value.reason


def sos(**fields):
    return {"event_id": "e-1", "type": "sos", "ts": NOW.isoformat(), **fields}


def test_an_sos_with_a_fix_becomes_a_wearable_reading_with_the_sos_flag():
    alert = parse(sos(lat=30.84, lon=120.92, acc_m=8))
    assert (alert.type, alert.clock_suspect, alert.ts) == (AlertType.SOS, False, NOW)
    reading = reading_of(alert)
    assert isinstance(reading, WearableReading)
    assert (reading.sos, reading.fall, reading.lat, reading.acc_m, reading.event_id) == (True, None, 30.84, 8.0, "e-1")


def test_unix_seconds_are_accepted():
    assert parse(sos(ts=NOW.timestamp() - 30)).ts == NOW - timedelta(seconds=30)


def test_a_smoke_alert_becomes_the_detector_event():
    reading = reading_of(parse({"event_id": "h-1", "type": "smoke", "ts": NOW.isoformat(), "sensor_id": "smoke-1"}))
    assert isinstance(reading, HomeSensorEvent)
    assert (reading.kind, reading.value, reading.sensor_id) == ("smoke", True, "smoke-1")


@pytest.mark.parametrize(
    "device_ts",
    [NOW + timedelta(minutes=10), NOW - timedelta(minutes=11), datetime(2000, 1, 1, tzinfo=UTC), None, "yesterday", True],
)
def test_a_clock_out_of_tolerance_takes_the_receive_time_and_is_marked(device_ts):
    raw = device_ts.isoformat() if isinstance(device_ts, datetime) else device_ts
    alert = parse(sos(ts=raw))
    assert alert.ts == NOW and alert.clock_suspect
    assert alert.device_ts == (device_ts if isinstance(device_ts, datetime) else None)
    assert alert.detail()["clock_suspect"] is True


@given(offset=st.floats(min_value=-1e9, max_value=1e9))
def test_an_alert_is_never_rejected_for_its_time(offset):
    alert = parse(sos(ts=NOW.timestamp() + offset))
    if -590 <= offset <= 290:
        assert not alert.clock_suspect and alert.ts == alert.device_ts
    elif offset < -610 or offset > 310:
        assert alert.clock_suspect and alert.ts == NOW


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (b"{not json", TOPIC, AlertReason.MALFORMED),
        ([1, 2], TOPIC, AlertReason.MALFORMED),
        (sos(), "jiashan/elder/P404/alert", AlertReason.UNKNOWN_PERSON),
        (sos(), "jiashan/elder/P001/x/alert", AlertReason.UNKNOWN_TOPIC),
        ({"type": "sos", "ts": 1}, TOPIC, AlertReason.MISSING_EVENT_ID),
        (sos(event_id="x" * 65), TOPIC, AlertReason.BAD_EVENT_ID),
        (sos(event_id=7), TOPIC, AlertReason.BAD_EVENT_ID),
        (sos(type="panic"), TOPIC, AlertReason.UNKNOWN_TYPE),
        (sos(type=None), TOPIC, AlertReason.UNKNOWN_TYPE),
        (sos(lat=91, lon=120), TOPIC, AlertReason.BAD_FIX),
        (sos(lat=30), TOPIC, AlertReason.BAD_FIX),
        (sos(colour="red"), TOPIC, AlertReason.UNKNOWN_FIELD),
        ({"event_id": "g", "type": "gas", "ts": 1}, TOPIC, AlertReason.UNKNOWN_SENSOR),
        ({"event_id": "g", "type": "gas", "ts": 1, "sensor_id": "smoke-1"}, TOPIC, AlertReason.UNKNOWN_SENSOR),
        (b"{}" + b" " * 5000, TOPIC, AlertReason.OVERSIZED),
    ],
)
def test_bad_alerts_are_rejected_with_a_named_reason(payload, topic, reason):
    assert rejected(payload, topic) is reason


@given(st.binary(max_size=300))
def test_any_payload_is_an_alert_or_a_named_rejection(payload):
    try:
        parse(payload)
    except RejectedAlert as exc:
        assert isinstance(exc.reason, AlertReason)


def test_the_receipt_names_the_event_and_the_alarm():
    assert orjson.loads(receipt_payload("e-1", 42, "received", NOW)) == {
        "event_id": "e-1", "alarm_id": 42, "state": "received", "ts": NOW.isoformat(),
    }
