"""Validation of device messages: pure, no broker or database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.devices import DeviceDirectory
from ingest.parse import Limits, Reason, RejectedMessage, parse_message
from ingest.readings import (
    DeviceKind,
    HomeSensorEvent,
    Presence,
    UnitStatusReport,
    WaterReading,
    WearableReading,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DEVICES = DeviceDirectory(
    stations=frozenset({"WS-001"}),
    persons=frozenset({"P-1"}),
    units=frozenset({"AMB-1"}),
    home_sensors={("P-1", "smoke-1"): "smoke", ("P-1", "t-1"): "temperature"},
)


def parse(topic: str, payload: object) -> list:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_message(f"jiashan/{topic}", raw, root="jiashan", devices=DEVICES, now=NOW, limits=Limits())


def rejection(topic: str, payload: object) -> Reason:
    with pytest.raises(RejectedMessage) as info:
        parse(topic, payload)
    assert info.value.detail  # always a sentence for the person reading dead letters
    return info.value.reason


def test_water_reading_with_rfc3339_time_is_stored_in_utc() -> None:
    [r] = parse("water/WS-001/telemetry", {"ts": "2026-11-29T19:30:00+08:00", "ph": 7.2, "do_mg_l": 6})
    assert r == WaterReading("WS-001", datetime(2026, 11, 29, 11, 30, tzinfo=UTC), {"ph": 7.2, "do_mg_l": 6.0})


def test_unix_seconds_are_accepted_as_time() -> None:
    [r] = parse("elder/P-1/wearable", {"ts": NOW.timestamp() - 5, "hr_bpm": 70, "fall": False, "seq": 3})
    assert isinstance(r, WearableReading) and r.ts == NOW - timedelta(seconds=5) and r.seq == 3 and r.fall is False


def test_home_sensor_event_must_match_its_registered_kind() -> None:
    [r] = parse("elder/P-1/home/smoke-1", {"ts": NOW.isoformat(), "kind": "smoke", "value": True})
    assert isinstance(r, HomeSensorEvent) and r.value is True
    assert rejection("elder/P-1/home/smoke-1", {"ts": NOW.isoformat(), "kind": "gas", "value": True}) == Reason.WRONG_TYPE
    assert rejection("elder/P-1/home/nope", {"ts": NOW.isoformat(), "kind": "smoke", "value": True}) == Reason.UNKNOWN_DEVICE


def test_unit_status_must_be_a_known_status() -> None:
    [r] = parse("unit/AMB-1/status", {"ts": NOW.isoformat(), "status": "on_scene", "incident_id": "I-1"})
    assert r == UnitStatusReport("AMB-1", NOW, "on_scene", "I-1")
    assert rejection("unit/AMB-1/status", {"ts": NOW.isoformat(), "status": "napping"}) == Reason.WRONG_TYPE


def test_online_flag_is_a_presence_at_receipt_time() -> None:
    [r] = parse("unit/AMB-1/online", b"0")
    assert r == Presence(DeviceKind.UNIT, "AMB-1", False, NOW)


def test_senml_pack_yields_one_reading_per_time() -> None:
    t = NOW.timestamp() - 60
    pack = [
        {"bn": "", "bt": t, "n": "ph", "v": 7.0},
        {"n": "do_mg_l", "v": 5.5},
        {"n": "ph", "v": 7.1, "t": 30},
    ]
    readings = parse("water/WS-001/telemetry", pack)
    assert [(r.ts, r.values) for r in readings] == [
        (NOW - timedelta(seconds=60), {"ph": 7.0, "do_mg_l": 5.5}),
        (NOW - timedelta(seconds=30), {"ph": 7.1}),
    ]


def test_senml_relative_time_counts_from_now() -> None:
    [r] = parse("water/WS-001/telemetry", [{"n": "ph", "v": 7.0, "t": -10}])
    assert r.ts == NOW - timedelta(seconds=10)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("water/WS-001/telemetry", b"\xff\x00", Reason.NOT_JSON),
        ("water/WS-001/telemetry", b"42", Reason.NOT_OBJECT),
        ("water/WS-001/telemetry", {"ph": 7}, Reason.MISSING_FIELD),
        ("water/WS-001/telemetry", {"ts": "2026-11-29T12:00:00", "ph": 7}, Reason.BAD_TIMESTAMP),
        ("water/WS-001/telemetry", {"ts": True, "ph": 7}, Reason.BAD_TIMESTAMP),
        ("water/WS-001/telemetry", {"ts": 1e300, "ph": 7}, Reason.BAD_TIMESTAMP),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp() + 301, "ph": 7}, Reason.TIME_IN_FUTURE),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp() - 31 * 86400, "ph": 7}, Reason.TIME_TOO_OLD),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp()}, Reason.EMPTY_READING),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp(), "ph": 14.5}, Reason.OUT_OF_RANGE),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp(), "ph": 7, "flag": "X"}, Reason.WRONG_TYPE),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp(), "pH": 7}, Reason.UNKNOWN_FIELD),
        ("water/WS-001/telemetry", {"ts": NOW.timestamp(), "ph": 7, "seq": -1}, Reason.WRONG_TYPE),
        ("water/WS-999/telemetry", {"ts": NOW.timestamp(), "ph": 7}, Reason.UNKNOWN_DEVICE),
        ("water/WS-001/readings", {"ts": NOW.timestamp(), "ph": 7}, Reason.UNKNOWN_TOPIC),
        ("boats/B-1/telemetry", {"ts": NOW.timestamp()}, Reason.UNKNOWN_TOPIC),
        ("elder/P-1/wearable", {"ts": NOW.timestamp(), "lat": 30.1}, Reason.MISSING_FIELD),
        ("elder/P-1/wearable", {"ts": NOW.timestamp(), "sos": 1}, Reason.WRONG_TYPE),
        ("unit/AMB-1/gps", {"ts": NOW.timestamp(), "speed_kmh": 30}, Reason.MISSING_FIELD),
        ("unit/AMB-1/online", b"maybe", Reason.WRONG_TYPE),
        ("water/WS-001/telemetry", [{"n": "ph"}], Reason.BAD_SENML),
        ("water/WS-001/telemetry", [], Reason.BAD_SENML),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(topic: str, payload: object, reason: Reason) -> None:
    assert rejection(topic, payload) == reason


def test_timestamp_exactly_at_the_future_tolerance_is_accepted() -> None:
    [r] = parse("water/WS-001/telemetry", {"ts": NOW.timestamp() + 300, "ph": 7})
    assert r.ts == NOW + timedelta(seconds=300)


def test_oversized_payload_is_rejected_before_parsing() -> None:
    big = b'{"ts": 1, "ph": 7, "x": "' + b"a" * 70_000 + b'"}'
    assert rejection("water/WS-001/telemetry", big) == Reason.OVERSIZED


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400)
@given(topic=st.sampled_from(["water/WS-001/telemetry", "elder/P-1/wearable", "elder/P-1/home/t-1", "unit/AMB-1/gps", "unit/AMB-1/status", "unit/AMB-1/online"]), payload=json_values)
def test_any_json_either_parses_or_is_rejected_with_a_reason(topic: str, payload: object) -> None:
    try:
        parse(topic, payload)
    except RejectedMessage as exc:
        assert isinstance(exc.reason, Reason)


@settings(max_examples=400)
@given(payload=st.binary(max_size=300), topic=st.text(max_size=40))
def test_arbitrary_bytes_on_any_topic_never_raise_anything_but_a_rejection(payload: bytes, topic: str) -> None:
    try:
        parse_message(topic, payload, root="jiashan", devices=DEVICES, now=NOW, limits=Limits())
    except RejectedMessage:
        pass


# --- a station's own averages --------------------------------------------------------------


def test_a_stations_hour_average_keeps_each_parameters_own_flag_and_extremes() -> None:
    from ingest.readings import AveragePeriod, AverageValue, StationAverage

    payload = {
        "period": "hour", "ts": "2026-11-29T18:00:00+08:00",
        "values": {"nh3n_mg_l": {"avg": 2.0, "flag": "T"}, "tp_mg_l": {"avg": 0.09, "min": 0.07, "max": 0.12, "flag": "M"},
                   "chla_ug_l": {"avg": 42.5}, "sd_m": {"avg": 0.6}},
    }
    [r] = parse("water/WS-001/averages", payload)
    assert r == StationAverage(
        "WS-001", AveragePeriod.HOUR, datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
        {"nh3n_mg_l": AverageValue(2.0, flag="T"), "tp_mg_l": AverageValue(0.09, 0.07, 0.12, "M"), "chla_ug_l": AverageValue(42.5),
         "sd_m": AverageValue(0.6)},
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"period": "week", "ts": "2026-11-29T18:00:00+08:00", "values": {"ph": {"avg": 7}}}, Reason.WRONG_TYPE),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"ph": 7}}, Reason.WRONG_TYPE),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"ph": {"avg": 7, "flag": "X"}}}, Reason.WRONG_TYPE),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"ph": {"avg": 17}}}, Reason.OUT_OF_RANGE),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"sd_m": {"avg": -0.2}}}, Reason.OUT_OF_RANGE),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"sd_m": {"avg": 80}}}, Reason.OUT_OF_RANGE),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"lead": {"avg": 1}}}, Reason.UNKNOWN_FIELD),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {}}, Reason.EMPTY_READING),
        ({"period": "hour", "ts": "2026-11-29T18:00:00+08:00", "values": {"ph": {"avg": 7}}, "x": 1}, Reason.UNKNOWN_FIELD),
        ({"period": "hour", "values": {"ph": {"avg": 7}}}, Reason.MISSING_FIELD),
    ],
)
def test_a_malformed_average_is_rejected_with_its_reason(payload: dict, reason: Reason) -> None:
    assert rejection("water/WS-001/averages", payload) == reason


def test_an_average_from_an_unknown_station_is_rejected() -> None:
    payload = {"period": "day", "ts": "2026-11-28T00:00:00+08:00", "values": {"ph": {"avg": 7}}}
    assert rejection("water/WS-404/averages", payload) == Reason.UNKNOWN_DEVICE


def test_a_retired_device_is_refused_with_that_reason_not_as_unknown() -> None:
    devices = DeviceDirectory(persons=frozenset({"P-1"}), retired=frozenset({"P-2", "AMB-9"}))
    for topic, payload in (("elder/P-2/wearable", {"ts": NOW.timestamp(), "hr_bpm": 70}),
                           ("unit/AMB-9/gps", {"ts": NOW.timestamp(), "lat": 30.8, "lon": 120.9}),
                           ("elder/P-2/online", b"1")):
        with pytest.raises(RejectedMessage) as info:
            parse_message(f"jiashan/{topic}", payload if isinstance(payload, bytes) else orjson.dumps(payload),
                          root="jiashan", devices=devices, now=NOW, limits=Limits())
        assert info.value.reason == Reason.RETIRED_DEVICE and "retired from the registry" in info.value.detail
    assert rejection("elder/P-3/wearable", {"ts": NOW.timestamp(), "hr_bpm": 70}) == Reason.UNKNOWN_DEVICE
