"""The validated readings that ingest stores and the rules evaluate.

Plain frozen dataclasses: no I/O, no library beyond the standard one. One class per
telemetry stream of the MQTT contract; a SenML pack can yield several of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DeviceKind(StrEnum):
    """The second level of every device topic: `{root}/{kind}/{id}/...`."""

    WATER = "water"
    ELDER = "elder"
    UNIT = "unit"


WATER_PARAMETERS: tuple[str, ...] = (
    "temp_c",
    "ph",
    "do_mg_l",
    "codmn_mg_l",
    "cod_mg_l",
    "nh3n_mg_l",
    "tp_mg_l",
    "tn_mg_l",
    "turbidity_ntu",
    "cond_us_cm",
)

# What a station's own averages (HJ 212 minute, hour and day data) may carry: the telemetry
# fields, chlorophyll-a (µg/L, HJ 212 w01016) and transparency (Secchi depth SD, m), which
# lakes need for their trophic state index and which real-time telemetry does not carry.
AVERAGE_PARAMETERS: tuple[str, ...] = (*WATER_PARAMETERS, "chla_ug_l", "sd_m")


class AveragePeriod(StrEnum):
    """The interval a station's average covers (HJ 212 CN 2051 / 2061 / 2031)."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


# HJ 212 data flags. Only N (normal) data may raise a quality alarm or enter the hourly
# averages; flagged data is stored so that the record is complete.
DATA_FLAGS: frozenset[str] = frozenset("NFMSDCTB")

HOME_SENSOR_KINDS: frozenset[str] = frozenset(
    {"motion", "door", "smoke", "gas", "water_leak", "bed", "temperature"}
)

UNIT_STATUSES: frozenset[str] = frozenset(
    {
        "en_route",
        "on_scene",
        "transporting",
        "at_hospital",
        "returning",
        "available",
        "out_of_service",
    }
)


@dataclass(frozen=True, slots=True)
class WaterReading:
    station_id: str
    ts: datetime
    values: dict[str, float]  # subset of WATER_PARAMETERS
    flag: str = "N"
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class WearableReading:
    person_id: str
    ts: datetime
    hr_bpm: float | None = None
    spo2_pct: float | None = None
    skin_temp_c: float | None = None
    steps: int | None = None
    battery_pct: float | None = None
    lat: float | None = None
    lon: float | None = None
    fall: bool | None = None
    sos: bool | None = None
    cancel: bool | None = None
    seq: int | None = None
    # Set when the reading came from the alert lane: the device's own id of the event (its
    # presses are told apart by it, not by time), whether the device clock was out of
    # tolerance (then `ts` is the platform's receive time and `device_ts` the device's), and
    # the fix's accuracy.
    event_id: str | None = None
    clock_suspect: bool = False
    device_ts: datetime | None = None
    acc_m: float | None = None


@dataclass(frozen=True, slots=True)
class HomeSensorEvent:
    person_id: str
    sensor_id: str
    ts: datetime
    kind: str  # one of HOME_SENSOR_KINDS
    value: float | bool
    seq: int | None = None
    # As for WearableReading: set when the event came from the alert lane.
    event_id: str | None = None
    clock_suspect: bool = False
    device_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class UnitPosition:
    unit_id: str
    ts: datetime
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: float | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class UnitStatusReport:
    unit_id: str
    ts: datetime
    status: str  # one of UNIT_STATUSES
    incident_id: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class PatientReport:
    """A crew's observations of their patient (`{root}/unit/{unit_id}/patient`), for the
    receiving hospital's board. Every field but the time is optional."""

    unit_id: str
    ts: datetime
    incident_id: str | None = None
    hr_bpm: float | None = None
    spo2_pct: float | None = None
    resp_rate: float | None = None
    sys_bp: float | None = None
    dia_bp: float | None = None
    temp_c: float | None = None
    gcs: int | None = None  # Glasgow Coma Scale, 3..15
    consciousness: str | None = None  # AVPU: one of CONSCIOUSNESS
    suspected: str | None = None  # the crew's working diagnosis
    note: str | None = None


CONSCIOUSNESS: frozenset[str] = frozenset({"alert", "voice", "pain", "unresponsive"})


@dataclass(frozen=True, slots=True)
class Presence:
    """A device's retained online flag; `ts` is when the platform received it (the flag
    carries no time of its own)."""

    kind: DeviceKind
    device_id: str
    online: bool
    ts: datetime


@dataclass(frozen=True, slots=True)
class AverageValue:
    """One parameter of a station's average: the mean over the period, the extremes where the
    station sent them, and the parameter's own HJ 212 data flag."""

    avg: float
    min: float | None = None
    max: float | None = None
    flag: str = "N"


@dataclass(frozen=True, slots=True)
class StationAverage:
    """A station's own average over one period, as it uploaded it. `ts` is the period's
    start; (station_id, period, ts) is its key, apart from real-time readings."""

    station_id: str
    period: AveragePeriod
    ts: datetime
    values: dict[str, AverageValue]  # keys from AVERAGE_PARAMETERS


Reading = (
    StationAverage | WaterReading | WearableReading | HomeSensorEvent | UnitPosition | UnitStatusReport | PatientReport | Presence
)
