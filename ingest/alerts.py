"""Life-safety alerts: one message on `{root}/elder/{person_id}/alert` into a validated
`Alert`, or a named rejection; and the alert as the reading the rules already understand.

Pure: no I/O, the clock comes in as `now`. An alert is never rejected for its time: a device
clock outside the tolerance (minutes off, or reset to 2000-01-01 after a flat battery) gives
the platform's receive time and marks the alert `clock_suspect`, keeping the device's time
for the record. Everything else that is wrong about an alert is a rejection with a reason,
stored with the dead letter and counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from ingest.devices import DeviceDirectory
from ingest.readings import HomeSensorEvent, WearableReading
from kernel.topics import Channel, Kind, parse_topic

MAX_EVENT_ID_LENGTH = 64
MAX_ID_LENGTH = 64
# Before this no wearable of the platform existed: a time earlier than it is a reset clock.
EARLIEST_PLAUSIBLE = datetime(2020, 1, 1, tzinfo=UTC)


class AlertType(StrEnum):
    SOS = "sos"
    FALL = "fall"
    CANCEL = "cancel"
    SMOKE = "smoke"
    GAS = "gas"
    WATER_LEAK = "water_leak"


# Home-hub alerts: the hazard detector's kind as registered for the sensor.
HOME_ALERT_TYPES: frozenset[AlertType] = frozenset({AlertType.SMOKE, AlertType.GAS, AlertType.WATER_LEAK})


class AlertReason(StrEnum):
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_PERSON = "unknown_person"
    MISSING_EVENT_ID = "missing_event_id"
    BAD_EVENT_ID = "bad_event_id"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_FIELD = "unknown_field"
    BAD_FIX = "bad_fix"
    UNKNOWN_SENSOR = "unknown_sensor"


class RejectedAlert(Exception):
    """The alert cannot be acted on; it goes to the dead-letter store with its reason."""

    def __init__(self, reason: AlertReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AlertLimits:
    max_payload_bytes: int = 4096
    # The same drift ordinary telemetry is allowed ahead of the platform clock…
    future_tolerance: timedelta = timedelta(minutes=5)
    # …and how old an alert's own time may be before the platform distrusts it. A device
    # retries an unanswered alert for minutes, not hours: older means a wrong clock.
    max_age: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Alert:
    person_id: str
    event_id: str
    type: AlertType
    ts: datetime  # the time in force: the device's, or the receive time if clock_suspect
    received_at: datetime
    device_ts: datetime | None  # what the device said (None if it sent no usable time)
    clock_suspect: bool
    lat: float | None = None
    lon: float | None = None
    acc_m: float | None = None
    sensor_id: str | None = None

    def detail(self) -> dict[str, Any]:
        """What the alarm records about the alert (JSON types only)."""
        out: dict[str, Any] = {"event_id": self.event_id, "clock_suspect": self.clock_suspect}
        if self.clock_suspect:
            out["device_ts"] = None if self.device_ts is None else self.device_ts.isoformat()
        if self.lat is not None and self.lon is not None:
            out["fix"] = {"lat": self.lat, "lon": self.lon, "acc_m": self.acc_m}
        return out


# --- topics ------------------------------------------------------------------------------


def person_of_alert_topic(topic: str, root: str) -> str:
    address = parse_topic(topic, root)
    if address is None or address.kind is not Kind.ELDER or address.channel is not Channel.ALERT:
        raise RejectedAlert(AlertReason.UNKNOWN_TOPIC, f"topic {topic[:120]!r} is not an alert topic")
    if len(address.id) > MAX_ID_LENGTH:
        raise RejectedAlert(AlertReason.UNKNOWN_TOPIC, f"topic {topic[:120]!r} does not name one person")
    return address.id


# --- parsing -----------------------------------------------------------------------------

_FIELDS = frozenset({"event_id", "type", "ts", "lat", "lon", "acc_m", "sensor_id"})


def parse_alert(
    topic: str, payload: bytes, *, root: str, devices: DeviceDirectory, now: datetime, limits: AlertLimits
) -> Alert:
    """Validate one alert message received at `now`. Raises RejectedAlert."""
    if len(payload) > limits.max_payload_bytes:
        raise RejectedAlert(AlertReason.OVERSIZED, f"payload is {len(payload)} bytes, the limit is {limits.max_payload_bytes}")
    person_id = person_of_alert_topic(topic, root)
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise RejectedAlert(AlertReason.MALFORMED, f"payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RejectedAlert(AlertReason.MALFORMED, f"an alert is a JSON object, got {type(obj).__name__}")
    if person_id not in devices.persons:
        raise RejectedAlert(AlertReason.UNKNOWN_PERSON, f"person {person_id!r} is not in the registry")
    unknown = sorted(str(k) for k in set(obj) - _FIELDS)
    if unknown:
        raise RejectedAlert(AlertReason.UNKNOWN_FIELD, f"field {unknown[0][:40]!r} is not part of an alert")
    event_id = _event_id(obj)
    alert_type = _type(obj)
    device_ts = _device_time(obj.get("ts"))
    suspect = device_ts is None or not _in_tolerance(device_ts, now, limits)
    lat, lon, acc_m = _fix(obj)
    sensor_id = _sensor(obj, person_id, alert_type, devices)
    return Alert(
        person_id=person_id,
        event_id=event_id,
        type=alert_type,
        ts=now if suspect else device_ts,  # type: ignore[arg-type]  # device_ts is set when not suspect
        received_at=now,
        device_ts=device_ts,
        clock_suspect=suspect,
        lat=lat,
        lon=lon,
        acc_m=acc_m,
        sensor_id=sensor_id,
    )


def _event_id(obj: Mapping[str, Any]) -> str:
    raw = obj.get("event_id")
    if raw is None or raw == "":
        raise RejectedAlert(AlertReason.MISSING_EVENT_ID, "event_id is required: the device's own id of this event")
    if not isinstance(raw, str) or len(raw) > MAX_EVENT_ID_LENGTH:
        raise RejectedAlert(AlertReason.BAD_EVENT_ID, f"event_id must be a string of 1..{MAX_EVENT_ID_LENGTH} characters")
    return raw


def _type(obj: Mapping[str, Any]) -> AlertType:
    raw = obj.get("type")
    try:
        return AlertType(str(raw))
    except ValueError:
        allowed = ", ".join(t.value for t in AlertType)
        raise RejectedAlert(AlertReason.UNKNOWN_TYPE, f"type must be one of {allowed}, got {str(raw)[:40]!r}") from None


def _device_time(raw: Any) -> datetime | None:
    """The device's time, or None when it sent none or nothing readable: an alert is acted
    on whatever its time says."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            return None
        try:
            return datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            return None
        return ts.astimezone(UTC) if ts.tzinfo is not None else None
    return None


def _in_tolerance(ts: datetime, now: datetime, limits: AlertLimits) -> bool:
    return ts >= EARLIEST_PLAUSIBLE and now - limits.max_age <= ts <= now + limits.future_tolerance


def _number(obj: Mapping[str, Any], name: str, lo: float, hi: float) -> float | None:
    raw = obj.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or not lo <= raw <= hi:
        raise RejectedAlert(AlertReason.BAD_FIX, f"{name} must be a number in {lo:g}..{hi:g}, got {str(raw)[:40]}")
    return float(raw)


def _fix(obj: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    lat = _number(obj, "lat", -90, 90)
    lon = _number(obj, "lon", -180, 180)
    if (lat is None) != (lon is None):
        raise RejectedAlert(AlertReason.BAD_FIX, "lat and lon come together")
    acc_m = _number(obj, "acc_m", 0, 100_000)
    return lat, lon, acc_m


def _sensor(obj: Mapping[str, Any], person_id: str, alert_type: AlertType, devices: DeviceDirectory) -> str | None:
    raw = obj.get("sensor_id")
    if raw is not None and (not isinstance(raw, str) or not 0 < len(raw) <= MAX_ID_LENGTH):
        raise RejectedAlert(AlertReason.MALFORMED, f"sensor_id must be a string of 1..{MAX_ID_LENGTH} characters")
    if alert_type not in HOME_ALERT_TYPES:
        return raw
    if raw is None:
        raise RejectedAlert(AlertReason.UNKNOWN_SENSOR, f"a {alert_type} alert names the home sensor (sensor_id) that detected it")
    registered = devices.home_sensors.get((person_id, raw))
    if registered != alert_type.value:
        what = "is not registered" if registered is None else f"is registered as {registered}"
        raise RejectedAlert(AlertReason.UNKNOWN_SENSOR, f"sensor {raw!r} in the home of {person_id!r} {what}, not as {alert_type}")
    return raw


# --- the alert as a reading ----------------------------------------------------------------


def reading_of(alert: Alert) -> WearableReading | HomeSensorEvent:
    """The reading the rules already understand: a wearable reading with its sos, fall or
    cancel flag, or a home-sensor event of the detector that went off."""
    common: dict[str, Any] = {
        "event_id": alert.event_id,
        "clock_suspect": alert.clock_suspect,
        "device_ts": alert.device_ts,
    }
    if alert.type in HOME_ALERT_TYPES:
        assert alert.sensor_id is not None  # parse_alert requires it
        return HomeSensorEvent(
            person_id=alert.person_id, sensor_id=alert.sensor_id, ts=alert.ts, kind=alert.type.value, value=True, **common
        )
    return WearableReading(
        person_id=alert.person_id,
        ts=alert.ts,
        lat=alert.lat,
        lon=alert.lon,
        acc_m=alert.acc_m,
        sos=True if alert.type is AlertType.SOS else None,
        fall=True if alert.type is AlertType.FALL else None,
        cancel=True if alert.type is AlertType.CANCEL else None,
        **common,
    )


def receipt_payload(event_id: str, alarm_id: int | None, state: str, now: datetime) -> bytes:
    """The platform → device receipt of the contract."""
    return orjson.dumps({"event_id": event_id, "alarm_id": alarm_id, "state": state, "ts": now.isoformat()})
