"""Turns one MQTT message (topic + payload bytes) into validated readings, or rejects it.

Pure: no I/O, the clock comes in as `now`. Every rejection carries a machine-readable
reason code (stored with the dead letter and counted in metrics) and a sentence that says
what was wrong, for the person reading the dead-letter table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from ingest.devices import DeviceDirectory
from ingest.readings import (
    AVERAGE_PARAMETERS,
    CONSCIOUSNESS,
    DATA_FLAGS,
    HOME_SENSOR_KINDS,
    UNIT_STATUSES,
    WATER_PARAMETERS,
    AveragePeriod,
    AverageValue,
    DeviceKind,
    HomeSensorEvent,
    PatientReport,
    Presence,
    Reading,
    StationAverage,
    UnitPosition,
    UnitStatusReport,
    WaterReading,
    WearableReading,
)
from kernel.topics import Channel, Kind, parse_topic


class Reason(StrEnum):
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_SENML = "bad_senml"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_DEVICE = "unknown_device"
    RETIRED_DEVICE = "retired_device"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    EMPTY_READING = "empty_reading"


class RejectedMessage(Exception):
    """The message cannot be stored as a reading; it goes to the dead-letter store."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 65536
    max_senml_records: int = 512
    future_tolerance: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)


# Physical plausibility, not alarm thresholds: a value outside these ranges is a broken
# sensor or a forged message, never a real measurement.
_NUM = "number"
_INT = "integer"
_BOOL = "boolean"
_STR = "string"
FieldSpec = tuple[str, float, float]

WATER_FIELDS: dict[str, FieldSpec] = {
    "temp_c": (_NUM, -5, 50),
    "ph": (_NUM, 0, 14),
    "do_mg_l": (_NUM, 0, 30),
    "codmn_mg_l": (_NUM, 0, 200),
    "cod_mg_l": (_NUM, 0, 2000),
    "nh3n_mg_l": (_NUM, 0, 200),
    "tp_mg_l": (_NUM, 0, 100),
    "tn_mg_l": (_NUM, 0, 300),
    "turbidity_ntu": (_NUM, 0, 4000),
    "cond_us_cm": (_NUM, 0, 200000),
}
assert tuple(WATER_FIELDS) == WATER_PARAMETERS

# A station's own averages may also carry chlorophyll-a (µg/L) and transparency (SD, m: the
# clearest lakes reach some 40 m; Jiashan's shallow lakes and canals well under 2 m).
AVERAGE_FIELDS: dict[str, FieldSpec] = {**WATER_FIELDS, "chla_ug_l": (_NUM, 0, 5000), "sd_m": (_NUM, 0, 50)}
assert tuple(AVERAGE_FIELDS) == AVERAGE_PARAMETERS

WEARABLE_FIELDS: dict[str, FieldSpec] = {
    "hr_bpm": (_NUM, 0, 300),
    "spo2_pct": (_NUM, 0, 100),
    "skin_temp_c": (_NUM, 0, 50),
    "steps": (_INT, 0, 10_000_000),
    "battery_pct": (_NUM, 0, 100),
    "lat": (_NUM, -90, 90),
    "lon": (_NUM, -180, 180),
    "fall": (_BOOL, 0, 0),
    "sos": (_BOOL, 0, 0),
    "cancel": (_BOOL, 0, 0),
}

# A crew's patient report: vital signs in the ranges a monitor can show, GCS 3..15.
PATIENT_FIELDS: dict[str, FieldSpec] = {
    "hr_bpm": (_NUM, 0, 300),
    "spo2_pct": (_NUM, 0, 100),
    "resp_rate": (_NUM, 0, 80),
    "sys_bp": (_NUM, 0, 300),
    "dia_bp": (_NUM, 0, 250),
    "temp_c": (_NUM, 25, 45),
    "gcs": (_INT, 3, 15),
}
PATIENT_TEXT_MAX = {"suspected": 200, "note": 1000}

GPS_FIELDS: dict[str, FieldSpec] = {
    "lat": (_NUM, -90, 90),
    "lon": (_NUM, -180, 180),
    "speed_kmh": (_NUM, 0, 300),
    "heading_deg": (_NUM, 0, 360),
}

HOME_TEMPERATURE_RANGE = (-40.0, 90.0)
MAX_ID_LENGTH = 64
# Topic kinds whose messages are readings; partners' topics are not.
_DEVICE_KINDS = frozenset({Kind.WATER, Kind.ELDER, Kind.UNIT})
# SenML (RFC 8428): times below 2**28 are relative to now.
_SENML_RELATIVE_LIMIT = 2**28


def parse_message(
    topic: str,
    payload: bytes,
    *,
    root: str,
    devices: DeviceDirectory,
    now: datetime,
    limits: Limits,
) -> list[Reading]:
    """Validate one message. Returns one reading per measurement time (a plain JSON object
    is one; a SenML pack may be several). Raises RejectedMessage."""
    if len(payload) > limits.max_payload_bytes:
        raise RejectedMessage(
            Reason.OVERSIZED, f"payload is {len(payload)} bytes, the limit is {limits.max_payload_bytes}"
        )
    kind, device_id, channel, sub_id = _split_topic(topic, root)
    if channel == Channel.ONLINE:
        return [_presence(kind, device_id, payload, devices, now)]
    build = _builder(kind, device_id, channel, sub_id, devices)
    return [build(obj, _timestamp(obj, now, limits)) for obj in _objects(payload, now, limits)]


def _split_topic(topic: str, root: str) -> tuple[DeviceKind, str, str, str | None]:
    if not topic.startswith(root + "/"):
        raise RejectedMessage(Reason.UNKNOWN_TOPIC, f"topic {topic!r} is outside the root {root!r}")
    address = parse_topic(topic, root)
    if address is None or address.from_platform or address.kind not in _DEVICE_KINDS:
        raise RejectedMessage(Reason.UNKNOWN_TOPIC, f"topic {topic!r} is not a device topic of the contract")
    for ident in (address.id, address.sensor_id):
        if ident is not None and not (0 < len(ident) <= MAX_ID_LENGTH):
            raise RejectedMessage(Reason.UNKNOWN_TOPIC, f"device id of {len(ident)} characters in {topic!r}")
    return DeviceKind(address.kind), address.id, address.channel, address.sensor_id


def _require_known(known: frozenset[str], device_id: str, what: str, retired: frozenset[str] = frozenset()) -> None:
    if device_id in retired and device_id not in known:
        raise RejectedMessage(Reason.RETIRED_DEVICE, f"{what} {device_id!r} was retired from the registry")
    if device_id not in known:
        raise RejectedMessage(Reason.UNKNOWN_DEVICE, f"{what} {device_id!r} is not in the registry")


def _builder(
    kind: DeviceKind, device_id: str, channel: str, sub_id: str | None, devices: DeviceDirectory
) -> Callable[[Mapping[str, Any], datetime], Reading]:
    if kind is DeviceKind.WATER and channel == Channel.TELEMETRY and sub_id is None:
        _require_known(devices.stations, device_id, "station", devices.retired)
        return lambda obj, ts: _water(device_id, obj, ts)
    if kind is DeviceKind.WATER and channel == Channel.AVERAGES and sub_id is None:
        _require_known(devices.stations, device_id, "station", devices.retired)
        return lambda obj, ts: _average(device_id, obj, ts)
    if kind is DeviceKind.ELDER and channel == Channel.WEARABLE and sub_id is None:
        _require_known(devices.persons, device_id, "person", devices.retired)
        return lambda obj, ts: _wearable(device_id, obj, ts)
    if kind is DeviceKind.ELDER and channel == Channel.HOME and sub_id is not None:
        _require_known(devices.persons, device_id, "person", devices.retired)
        registered_kind = devices.home_sensors.get((device_id, sub_id))
        if registered_kind is None:
            raise RejectedMessage(
                Reason.UNKNOWN_DEVICE, f"sensor {sub_id!r} is not registered in the home of {device_id!r}"
            )
        return lambda obj, ts: _home(device_id, sub_id, registered_kind, obj, ts)
    if kind is DeviceKind.UNIT and channel == Channel.GPS and sub_id is None:
        _require_known(devices.units, device_id, "unit", devices.retired)
        return lambda obj, ts: _gps(device_id, obj, ts)
    if kind is DeviceKind.UNIT and channel == Channel.STATUS and sub_id is None:
        _require_known(devices.units, device_id, "unit", devices.retired)
        return lambda obj, ts: _status(device_id, obj, ts)
    if kind is DeviceKind.UNIT and channel == Channel.PATIENT and sub_id is None:
        _require_known(devices.units, device_id, "unit", devices.retired)
        return lambda obj, ts: _patient(device_id, obj, ts)
    raise RejectedMessage(Reason.UNKNOWN_TOPIC, f"no channel {channel!r} for {kind} devices")


# --- payload shapes ----------------------------------------------------------------------


def _objects(payload: bytes, now: datetime, limits: Limits) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise RejectedMessage(Reason.NOT_JSON, f"payload is not JSON: {exc}") from None
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return _senml_objects(doc, now, limits)
    raise RejectedMessage(Reason.NOT_OBJECT, f"payload must be a JSON object or a SenML array, got {type(doc).__name__}")


def _senml_objects(pack: list[Any], now: datetime, limits: Limits) -> list[dict[str, Any]]:
    """Resolve a SenML pack (RFC 8428) into one object per distinct record time, keyed by
    field name, with the resolved time as `ts` (Unix seconds)."""
    if not pack:
        raise RejectedMessage(Reason.BAD_SENML, "SenML pack is empty")
    if len(pack) > limits.max_senml_records:
        raise RejectedMessage(Reason.BAD_SENML, f"SenML pack has {len(pack)} records, the limit is {limits.max_senml_records}")
    base_name, base_time = "", 0.0
    by_time: dict[float, dict[str, Any]] = {}
    for i, record in enumerate(pack):
        if not isinstance(record, dict):
            raise RejectedMessage(Reason.BAD_SENML, f"SenML record {i} is not an object")
        if "bn" in record:
            base_name = _senml_str(record, "bn", i)
        if "bt" in record:
            base_time = _senml_num(record, "bt", i)
        name = base_name + (_senml_str(record, "n", i) if "n" in record else "")
        t = base_time + (_senml_num(record, "t", i) if "t" in record else 0.0)
        if abs(t) < _SENML_RELATIVE_LIMIT:
            t += now.timestamp()
        values = [record[k] for k in ("v", "vb", "vs") if k in record]
        if not name or len(values) != 1:
            raise RejectedMessage(Reason.BAD_SENML, f"SenML record {i} needs a name and exactly one of v, vb, vs")
        fields = by_time.setdefault(t, {"ts": t})
        if name in fields:
            raise RejectedMessage(Reason.BAD_SENML, f"SenML pack has two values for {name!r} at one time")
        fields[name] = values[0]
    return list(by_time.values())


def _senml_str(record: Mapping[str, Any], key: str, i: int) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise RejectedMessage(Reason.BAD_SENML, f"SenML record {i}: {key} must be a string")
    return value


def _senml_num(record: Mapping[str, Any], key: str, i: int) -> float:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RejectedMessage(Reason.BAD_SENML, f"SenML record {i}: {key} must be a finite number")
    return float(value)


def _timestamp(obj: Mapping[str, Any], now: datetime, limits: Limits) -> datetime:
    raw = obj.get("ts")
    if raw is None:
        raise RejectedMessage(Reason.MISSING_FIELD, "ts (measurement time) is required")
    if isinstance(raw, bool):
        raise RejectedMessage(Reason.BAD_TIMESTAMP, "ts must be RFC 3339 text or Unix seconds, got a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise RejectedMessage(Reason.BAD_TIMESTAMP, "ts must be finite")
        try:
            ts = datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {raw!r} is not a representable time") from None
    elif isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {raw[:40]!r} is not RFC 3339") from None
        if ts.tzinfo is None:
            raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {raw[:40]!r} has no UTC offset")
        ts = ts.astimezone(UTC)
    else:
        raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts must be RFC 3339 text or Unix seconds, got {type(raw).__name__}")
    if ts > now + limits.future_tolerance:
        raise RejectedMessage(Reason.TIME_IN_FUTURE, f"ts {ts.isoformat()} is ahead of the platform clock {now.isoformat()}")
    if ts < now - limits.max_age:
        raise RejectedMessage(Reason.TIME_TOO_OLD, f"ts {ts.isoformat()} is older than {limits.max_age}")
    return ts


def _seq(obj: Mapping[str, Any]) -> int | None:
    raw = obj.get("seq")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw or raw < 0 or raw != int(raw) or raw >= 2**63:
        raise RejectedMessage(Reason.WRONG_TYPE, f"seq must be a non-negative integer, got {raw!r}")
    return int(raw)


def _checked(obj: Mapping[str, Any], specs: Mapping[str, FieldSpec], extra: frozenset[str]) -> dict[str, Any]:
    """The object's fields validated against `specs`; `extra` names other allowed keys."""
    out: dict[str, Any] = {}
    for name, value in obj.items():
        spec = specs.get(name)
        if spec is None:
            if name in extra:
                continue
            raise RejectedMessage(Reason.UNKNOWN_FIELD, f"field {str(name)[:40]!r} is not part of this message")
        out[name] = _checked_value(name, value, spec)
    return out


def _checked_value(name: str, value: Any, spec: FieldSpec) -> Any:
    kind, lo, hi = spec
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise RejectedMessage(Reason.WRONG_TYPE, f"{name} must be true or false, got {_show(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RejectedMessage(Reason.WRONG_TYPE, f"{name} must be a {kind}, got {_show(value)}")
    if not math.isfinite(value):
        raise RejectedMessage(Reason.NOT_FINITE, f"{name} must be finite, got {value}")
    if kind == _INT and value != int(value):
        raise RejectedMessage(Reason.WRONG_TYPE, f"{name} must be an integer, got {value}")
    if not lo <= value <= hi:
        raise RejectedMessage(Reason.OUT_OF_RANGE, f"{name} = {value} is outside the physical range {lo}..{hi}")
    return int(value) if kind == _INT else float(value)


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}"


_COMMON = frozenset({"ts", "seq"})


def _water(station_id: str, obj: Mapping[str, Any], ts: datetime) -> WaterReading:
    values = _checked(obj, WATER_FIELDS, _COMMON | {"flag"})
    flag = obj.get("flag", "N")
    if flag not in DATA_FLAGS:
        raise RejectedMessage(Reason.WRONG_TYPE, f"flag must be one of the HJ 212 data flags {''.join(sorted(DATA_FLAGS))}, got {_show(flag)}")
    if not values:
        raise RejectedMessage(Reason.EMPTY_READING, "a water reading needs at least one parameter")
    return WaterReading(station_id=station_id, ts=ts, values=values, flag=flag, seq=_seq(obj))


_AVERAGE_KEYS = frozenset({"ts", "period", "values"})
_AVERAGE_VALUE_KEYS = frozenset({"avg", "min", "max", "flag"})


def _average(station_id: str, obj: Mapping[str, Any], ts: datetime) -> StationAverage:
    """`{"period": "hour", "ts": <period start>, "values": {"nh3n_mg_l": {"avg": 0.31,
    "min": 0.2, "max": 0.4, "flag": "N"}, …}}`: a station's own average, one flag per
    parameter."""
    unknown = set(obj) - _AVERAGE_KEYS
    if unknown:
        raise RejectedMessage(Reason.UNKNOWN_FIELD, f"field {str(sorted(unknown)[0])[:40]!r} is not part of an average")
    try:
        period = AveragePeriod(str(obj.get("period")))
    except ValueError:
        raise RejectedMessage(
            Reason.WRONG_TYPE, f"period must be one of {', '.join(AveragePeriod)}, got {_show(obj.get('period'))}"
        ) from None
    raw = obj.get("values")
    if not isinstance(raw, dict):
        raise RejectedMessage(Reason.WRONG_TYPE, f"values must be an object of parameters, got {_show(raw)}")
    values: dict[str, AverageValue] = {}
    for name, item in raw.items():
        spec = AVERAGE_FIELDS.get(name)
        if spec is None:
            raise RejectedMessage(Reason.UNKNOWN_FIELD, f"parameter {str(name)[:40]!r} is not a water parameter")
        if not isinstance(item, dict) or "avg" not in item or set(item) - _AVERAGE_VALUE_KEYS:
            raise RejectedMessage(Reason.WRONG_TYPE, f"{name} must be an object with avg (and min, max, flag), got {_show(item)}")
        flag = item.get("flag", "N")
        if flag not in DATA_FLAGS:
            raise RejectedMessage(Reason.WRONG_TYPE, f"{name}.flag must be one of the HJ 212 data flags, got {_show(flag)}")
        extremes = {k: _checked_value(f"{name}.{k}", item[k], spec) for k in ("min", "max") if item.get(k) is not None}
        values[name] = AverageValue(avg=_checked_value(f"{name}.avg", item["avg"], spec), flag=flag, **extremes)
    if not values:
        raise RejectedMessage(Reason.EMPTY_READING, "an average needs at least one parameter")
    return StationAverage(station_id=station_id, period=period, ts=ts, values=values)


def _wearable(person_id: str, obj: Mapping[str, Any], ts: datetime) -> WearableReading:
    values = _checked(obj, WEARABLE_FIELDS, _COMMON)
    if not values:
        raise RejectedMessage(Reason.EMPTY_READING, "a wearable reading needs at least one field")
    if ("lat" in values) != ("lon" in values):
        raise RejectedMessage(Reason.MISSING_FIELD, "lat and lon come together")
    return WearableReading(person_id=person_id, ts=ts, seq=_seq(obj), **values)


def _home(person_id: str, sensor_id: str, registered_kind: str, obj: Mapping[str, Any], ts: datetime) -> HomeSensorEvent:
    unknown = set(obj) - {"kind", "value", "ts", "seq"}
    if unknown:
        raise RejectedMessage(Reason.UNKNOWN_FIELD, f"field {str(sorted(unknown)[0])[:40]!r} is not part of a home sensor event")
    kind = obj.get("kind")
    if kind is None or "value" not in obj:
        raise RejectedMessage(Reason.MISSING_FIELD, "a home sensor event needs kind and value")
    if kind not in HOME_SENSOR_KINDS:
        raise RejectedMessage(Reason.WRONG_TYPE, f"kind must be one of {', '.join(sorted(HOME_SENSOR_KINDS))}, got {_show(kind)}")
    if kind != registered_kind:
        raise RejectedMessage(Reason.WRONG_TYPE, f"sensor {sensor_id!r} is registered as {registered_kind}, not {kind}")
    value = obj["value"]
    if kind == "temperature":
        value = _checked_value("value", value, (_NUM, *HOME_TEMPERATURE_RANGE))
    else:
        value = _checked_value("value", value, (_BOOL, 0, 0))
    return HomeSensorEvent(person_id=person_id, sensor_id=sensor_id, ts=ts, kind=kind, value=value, seq=_seq(obj))


def _gps(unit_id: str, obj: Mapping[str, Any], ts: datetime) -> UnitPosition:
    values = _checked(obj, GPS_FIELDS, _COMMON)
    if "lat" not in values or "lon" not in values:
        raise RejectedMessage(Reason.MISSING_FIELD, "a GPS fix needs lat and lon")
    return UnitPosition(unit_id=unit_id, ts=ts, seq=_seq(obj), **values)


def _status(unit_id: str, obj: Mapping[str, Any], ts: datetime) -> UnitStatusReport:
    unknown = set(obj) - {"status", "incident_id", "ts", "seq"}
    if unknown:
        raise RejectedMessage(Reason.UNKNOWN_FIELD, f"field {str(sorted(unknown)[0])[:40]!r} is not part of a unit status")
    status = obj.get("status")
    if status is None:
        raise RejectedMessage(Reason.MISSING_FIELD, "status is required")
    if status not in UNIT_STATUSES:
        raise RejectedMessage(Reason.WRONG_TYPE, f"status must be one of {', '.join(sorted(UNIT_STATUSES))}, got {_show(status)}")
    incident_id = obj.get("incident_id")
    if incident_id is not None and (not isinstance(incident_id, str) or not 0 < len(incident_id) <= MAX_ID_LENGTH):
        raise RejectedMessage(Reason.WRONG_TYPE, f"incident_id must be a string of 1..{MAX_ID_LENGTH} characters")
    return UnitStatusReport(unit_id=unit_id, ts=ts, status=status, incident_id=incident_id, seq=_seq(obj))


def _patient(unit_id: str, obj: Mapping[str, Any], ts: datetime) -> PatientReport:
    values = _checked(obj, PATIENT_FIELDS, _COMMON | {"incident_id", "consciousness", *PATIENT_TEXT_MAX})
    text: dict[str, str] = {}
    for name, limit in PATIENT_TEXT_MAX.items():
        value = obj.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise RejectedMessage(Reason.WRONG_TYPE, f"{name} must be a string of at most {limit} characters")
        if value:
            text[name] = value
    consciousness = obj.get("consciousness")
    if consciousness is not None and consciousness not in CONSCIOUSNESS:
        raise RejectedMessage(Reason.WRONG_TYPE, f"consciousness must be one of {', '.join(sorted(CONSCIOUSNESS))}, got {_show(consciousness)}")
    incident_id = obj.get("incident_id")
    if incident_id is not None and (not isinstance(incident_id, str) or not 0 < len(incident_id) <= MAX_ID_LENGTH):
        raise RejectedMessage(Reason.WRONG_TYPE, f"incident_id must be a string of 1..{MAX_ID_LENGTH} characters")
    if not values and not text and consciousness is None:
        raise RejectedMessage(Reason.MISSING_FIELD, "a patient report needs at least one observation")
    return PatientReport(unit_id=unit_id, ts=ts, incident_id=incident_id, consciousness=consciousness,
                         suspected=text.get("suspected"), note=text.get("note"), **values)


def _presence(kind: DeviceKind, device_id: str, payload: bytes, devices: DeviceDirectory, now: datetime) -> Presence:
    known = {DeviceKind.WATER: devices.stations, DeviceKind.ELDER: devices.persons, DeviceKind.UNIT: devices.units}[kind]
    _require_known(known, device_id, kind.value, devices.retired)
    flag = payload.strip()
    if flag not in (b"0", b"1"):
        raise RejectedMessage(Reason.WRONG_TYPE, f"an online flag is 1 or 0, got {flag[:20]!r}")
    return Presence(kind=kind, device_id=device_id, online=flag == b"1", ts=now)
