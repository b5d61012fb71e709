"""Device supervision: a device that stops reporting raises "device silent"; a low battery
raises a warning.

Silence is measured on the platform's clock (`now` when a reading is evaluated), never the
device's: a wearable whose clock is an hour off is still alive if we hear from it. An MQTT
last will (online = 0) is only a hint: it shortens the wait from `tolerance` intervals to
`offline_tolerance`, but silence must still last that long — brokers publish wills on
mere reconnects, and retained 0s are redelivered to every new subscriber.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingest.readings import (
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

from ._codec import check_source, dt_from_json, dt_to_json, require_aware
from ._evolve import evolve
from ._mapping import ConfigError, config_from_mapping
from .alarms import (
    AlarmLedger,
    AlarmTransition,
    AlarmType,
    RaisedAlarm,
    Severity,
    SourceKind,
    raised_from_json,
)


def device_key(kind: DeviceKind | str, device_id: str) -> str:
    """The source id of a device alarm: "elder:P001", "water:WS01", "unit:AMB01"."""
    return f"{kind}:{device_id}"


def device_key_of(reading: Reading) -> str:
    """The device a reading proves alive. A home sensor is a device of its own
    ("elder:P001/home/door1"): the wearable and each sensor fail independently, and
    "elder:P001" (whose `online` topic the wearable owns) is the wearable."""
    match reading:
        case WaterReading() | StationAverage():
            return device_key(DeviceKind.WATER, reading.station_id)
        case WearableReading():
            return device_key(DeviceKind.ELDER, reading.person_id)
        case HomeSensorEvent():
            return device_key(DeviceKind.ELDER, f"{reading.person_id}/home/{reading.sensor_id}")
        case UnitPosition() | UnitStatusReport() | PatientReport():
            return device_key(DeviceKind.UNIT, reading.unit_id)
        case Presence():
            return device_key(reading.kind, reading.device_id)
    raise TypeError(f"not a reading: {reading!r}")


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    interval_s: float = 60.0  # expected reporting interval
    tolerance: float = 3.0  # intervals of silence before "device silent"
    offline_tolerance: float = 1.0  # ... once the device's last will says it went offline
    battery_low_pct: float = 15.0  # warning below
    battery_clear_pct: float = 20.0  # cleared at or above: hysteresis against a flapping gauge

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.tolerance <= 0 or self.offline_tolerance <= 0:
            raise ConfigError(f"device: interval_s and tolerances must be > 0, got {self}")
        if self.offline_tolerance > self.tolerance:
            raise ConfigError("device: offline_tolerance may only shorten the wait (<= tolerance)")
        if self.battery_clear_pct < self.battery_low_pct:
            raise ConfigError("device: battery_clear_pct must be >= battery_low_pct")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DeviceConfig:
        return config_from_mapping(cls, data)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Immutable: the functions below return a new DeviceState.

    Supervision runs from `last_seen`; for a registered device that has never reported,
    create the state with `last_seen` = registration time (or tick it once) so that its
    silence is noticed too.
    """

    device_key: str
    last_seen: datetime | None = None  # platform time of the latest report
    offline_since: datetime | None = None  # a last will received after last_seen
    battery_ts: datetime | None = None  # device time of the latest battery level used
    alarms: dict[AlarmType, RaisedAlarm] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceState:
        return cls(
            device_key=data["device_key"],
            last_seen=dt_from_json(data["last_seen"]),
            offline_since=dt_from_json(data["offline_since"]),
            battery_ts=dt_from_json(data["battery_ts"]),
            alarms=raised_from_json(data["alarms"]),
        )


Result = tuple[DeviceState, list[AlarmTransition]]


def evaluate_device(
    state: DeviceState, config: DeviceConfig, reading: Reading, now: datetime
) -> Result:
    """Note that the device was heard from at `now` (any reading but Presence), or record
    its online flag (Presence); apply its battery level if the reading carries one."""
    require_aware(now)
    check_source(state.device_key, device_key_of(reading), "device")
    if isinstance(reading, Presence):
        # online=1 is not a report: a retained 1 is replayed on every resubscribe.
        offline_since = None if reading.online else reading.ts
        return evolve(state, offline_since=offline_since), []

    # Every reading of every device comes here: the common case (no alarm open, no battery
    # level) builds one new state and nothing else.
    last_seen = now if state.last_seen is None else max(state.last_seen, now)
    battery: float | None = getattr(reading, "battery_pct", None)
    if battery is not None and state.battery_ts is not None and reading.ts <= state.battery_ts:
        battery = None  # older than the level already used
    alarms = state.alarms
    transitions: list[AlarmTransition] = []
    if alarms or (battery is not None and battery < config.battery_low_pct):
        ledger = AlarmLedger(SourceKind.DEVICE, state.device_key, alarms)
        if AlarmType.DEVICE_SILENT in alarms:
            ledger.clear(AlarmType.DEVICE_SILENT, now, detail={"last_seen": dt_to_json(last_seen)})
        if battery is not None:
            detail = {"battery_pct": battery}
            if battery < config.battery_low_pct:
                ledger.raise_(
                    AlarmType.BATTERY_LOW,
                    Severity.WARNING,
                    reading.ts,
                    detail={**detail, "threshold": config.battery_low_pct},
                )
            elif battery >= config.battery_clear_pct:
                ledger.clear(AlarmType.BATTERY_LOW, reading.ts, detail=detail)
        alarms, transitions = ledger.raised(), ledger.transitions
    return DeviceState(
        device_key=state.device_key,
        last_seen=last_seen,
        offline_since=None,
        battery_ts=state.battery_ts if battery is None else reading.ts,
        alarms=alarms,
    ), transitions


def tick_device(state: DeviceState, config: DeviceConfig, now: datetime) -> Result:
    """Raise "device silent" if the device has been silent long enough at `now`. A device
    never heard from starts being supervised at its first tick."""
    require_aware(now)
    if state.last_seen is None:
        return evolve(state, last_seen=now), []
    deadline = next_device_deadline(state, config)
    if deadline is None or now < deadline:
        return state, []
    ledger = AlarmLedger(SourceKind.DEVICE, state.device_key, state.alarms)
    ledger.raise_(
        AlarmType.DEVICE_SILENT,
        Severity.MINOR,
        now,
        detail={
            "last_seen": dt_to_json(state.last_seen),
            "silent_s": (now - state.last_seen).total_seconds(),
            "limit_s": _silence_limit(state, config).total_seconds(),
            "offline_flag": state.offline_since is not None,
        },
    )
    return evolve(state, alarms=ledger.raised()), ledger.transitions


def next_device_deadline(state: DeviceState, config: DeviceConfig) -> datetime | None:
    if state.last_seen is None or AlarmType.DEVICE_SILENT in state.alarms:
        return None
    return state.last_seen + _silence_limit(state, config)


def _silence_limit(state: DeviceState, config: DeviceConfig) -> timedelta:
    intervals = config.tolerance if state.offline_since is None else config.offline_tolerance
    return timedelta(seconds=config.interval_s * intervals)
