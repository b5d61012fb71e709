"""Water-quality rules for one station: class exceeded (persistent) and anomaly (CANARY-like)
on real-time readings, and class exceeded on the station's own hourly averages.

Spikes are common at automatic stations (fouling, calibration, transmission), so the class
alarm needs N consecutive readings worse than the target class to raise and M at or better
than it to clear. Only HJ 212 flag "N" data counts: flagged readings are stored by ingest
but leave this state untouched — they neither count nor break a run.

The hourly rule grades each hour the station uploads (CN 2061) by the evaluation method
(`evaluation.grade`: per-parameter flags, T as "at least", lake TN apart) and raises
`water_hourly_exceeded` once the class has been worse than the target for
`hourly_raise_hours` of uploads, and clears it after `hourly_clear_hours` shown compliant.
It runs by hours, not by readings: the wet-chemistry analysers behind CODMn, NH3-N, TP and TN
give a result every 4 hours, so consecutive hourly values are not what a station has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingest.readings import AveragePeriod, StationAverage, WaterReading

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
from .anomaly import AnomalyConfig, ParameterHistory, observe
from .evaluation import Grade, grade
from .gb3838 import Classification, WaterBody, WaterClass, class_limit, classify

NORMAL_FLAG = "N"


@dataclass(frozen=True, slots=True)
class WaterConfig:
    water_body: WaterBody = WaterBody.RIVER
    target_class: WaterClass = WaterClass.III
    raise_after: int = 3  # consecutive readings worse than the target
    clear_after: int = 3  # consecutive readings at or better than the target
    # Readings further apart than this are not "consecutive": a station back from a long
    # outage starts its runs over. None disables the reset.
    max_gap_s: float | None = 6 * 3600.0
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    # The hourly rule: hours of uploads worse than the target before it raises (from the start
    # of the first such hour to the end of the latest), and hours shown compliant to clear.
    hourly_raise_hours: float = 3.0
    hourly_clear_hours: float = 3.0

    def __post_init__(self) -> None:
        if self.raise_after < 1 or self.clear_after < 1:
            raise ConfigError(f"water: raise_after and clear_after must be >= 1, got {self}")
        if self.hourly_raise_hours < 1 or self.hourly_clear_hours < 1:
            raise ConfigError(f"water: hourly_raise_hours and hourly_clear_hours must be >= 1, got {self}")
        if self.target_class is WaterClass.BELOW_V:
            raise ConfigError("water: target_class must be one of I..V")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WaterConfig:
        return config_from_mapping(cls, data)


@dataclass(frozen=True, slots=True)
class WaterState:
    station_id: str
    last_ts: datetime | None = None  # newest flag-N reading processed
    worse_run: int = 0
    better_run: int = 0
    run_worst: WaterClass | None = None  # worst class seen in the current worse run
    histories: dict[str, ParameterHistory] = field(default_factory=dict)
    alarms: dict[AlarmType, RaisedAlarm] = field(default_factory=dict)
    # The hourly rule: the newest hour graded, and since when the hours have been worse than
    # the target (or shown compliant).
    hour_last: datetime | None = None
    hours_worse_since: datetime | None = None
    hours_better_since: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WaterState:
        run_worst = data["run_worst"]
        return cls(
            station_id=data["station_id"],
            last_ts=dt_from_json(data["last_ts"]),
            worse_run=int(data["worse_run"]),
            better_run=int(data["better_run"]),
            run_worst=None if run_worst is None else WaterClass(run_worst),
            histories={k: ParameterHistory.from_json(v) for k, v in data["histories"].items()},
            alarms=raised_from_json(data["alarms"]),
            # Absent in states stored before the hourly rule.
            hour_last=dt_from_json(data.get("hour_last")),
            hours_worse_since=dt_from_json(data.get("hours_worse_since")),
            hours_better_since=dt_from_json(data.get("hours_better_since")),
        )


def evaluate_water(
    state: WaterState, config: WaterConfig, reading: WaterReading, now: datetime
) -> tuple[WaterState, list[AlarmTransition]]:
    """Apply one reading; returns the new state (the given one is not modified) and the
    alarm transitions it causes. Out-of-order and duplicate timestamps change nothing."""
    require_aware(now)
    check_source(state.station_id, reading.station_id, "station")
    if reading.flag != NORMAL_FLAG:
        return state, []
    if state.last_ts is not None and reading.ts <= state.last_ts:
        return state, []

    ledger = AlarmLedger(SourceKind.STATION, state.station_id, state.alarms)
    if _is_gap(state, config, reading.ts):
        state = evolve(state, worse_run=0, better_run=0, run_worst=None)
    state = _apply_class_rule(state, config, reading, ledger)
    state = _apply_anomaly_rule(state, config, reading, ledger)
    return evolve(state, last_ts=reading.ts, alarms=ledger.raised()), ledger.transitions


_HOUR = timedelta(hours=1)


def evaluate_average(
    state: WaterState, config: WaterConfig, average: StationAverage, now: datetime
) -> tuple[WaterState, list[AlarmTransition]]:
    """Apply one of the station's own averages. Hours are graded; minute and day averages
    are stored and shown, and raise nothing here. Out-of-order and repeated hours change
    nothing."""
    require_aware(now)
    check_source(state.station_id, average.station_id, "station")
    if average.period is not AveragePeriod.HOUR:
        return state, []
    if state.hour_last is not None and average.ts <= state.hour_last:
        return state, []
    graded = grade(average.values, config.water_body)
    if graded.water_class is None:
        return state, []  # nothing gradable this hour: it neither counts nor breaks a run
    if _is_hour_gap(state, config, average.ts):
        state = evolve(state, hours_worse_since=None, hours_better_since=None)
    ledger = AlarmLedger(SourceKind.STATION, state.station_id, state.alarms)
    end = average.ts + _HOUR
    if graded.water_class > config.target_class:
        since = state.hours_worse_since or average.ts
        state = evolve(state, hours_worse_since=since, hours_better_since=None)
        hours = (end - since) / _HOUR
        if hours >= config.hourly_raise_hours:
            severity = Severity.CRITICAL if graded.water_class is WaterClass.BELOW_V else Severity.MAJOR
            ledger.raise_(AlarmType.WATER_HOURLY_EXCEEDED, severity, average.ts,
                          detail=_hourly_detail(graded, config, since, hours))
    elif not graded.at_least:
        since = state.hours_better_since or average.ts
        state = evolve(state, hours_better_since=since, hours_worse_since=None)
        hours = (end - since) / _HOUR
        if hours >= config.hourly_clear_hours:
            ledger.clear(AlarmType.WATER_HOURLY_EXCEEDED, average.ts, detail=_hourly_detail(graded, config, since, hours))
    # else: compliant only as far as an over-range lower bound shows — neither way.
    return evolve(state, hour_last=average.ts, alarms=ledger.raised()), ledger.transitions


def _is_hour_gap(state: WaterState, config: WaterConfig, ts: datetime) -> bool:
    if state.hour_last is None or config.max_gap_s is None:
        return False
    return ts - state.hour_last > timedelta(seconds=config.max_gap_s)


def _hourly_detail(graded: Grade, config: WaterConfig, since: datetime, hours: float) -> dict[str, Any]:
    parameter = graded.worst_parameter
    assert parameter is not None and graded.water_class is not None
    return {
        "class": graded.water_class.label,
        "class_number": int(graded.water_class),
        "target_class": config.target_class.label,
        "parameter": parameter,
        "value": graded.value,
        "at_least": graded.at_least,
        "threshold": class_limit(parameter, config.target_class, config.water_body),
        "covers": list(graded.covers),
        "left_out": dict(graded.left_out),
        "since": dt_to_json(since),
        "hours": hours,
        "period": "hour",
        "water_body": str(config.water_body),
    }


def next_water_deadline(state: WaterState, config: WaterConfig) -> datetime | None:
    """Water rules are driven by readings alone; there is never a timer to wait for."""
    return None


def _is_gap(state: WaterState, config: WaterConfig, ts: datetime) -> bool:
    if state.last_ts is None or config.max_gap_s is None:
        return False
    return ts - state.last_ts > timedelta(seconds=config.max_gap_s)


def _apply_class_rule(
    state: WaterState, config: WaterConfig, reading: WaterReading, ledger: AlarmLedger
) -> WaterState:
    graded = classify(reading.values, config.water_body)
    if graded is None:
        return state  # nothing graded in this reading: it neither counts nor breaks a run
    if graded.water_class > config.target_class:
        run_worst = max(graded.water_class, state.run_worst or graded.water_class)
        state = evolve(state, worse_run=state.worse_run + 1, better_run=0, run_worst=run_worst)
        if state.worse_run >= config.raise_after:
            severity = Severity.CRITICAL if run_worst is WaterClass.BELOW_V else Severity.MAJOR
            ledger.raise_(
                AlarmType.WATER_CLASS_EXCEEDED,
                severity,
                reading.ts,
                detail=_class_detail(graded, state, config),
            )
        return state
    state = evolve(state, worse_run=0, better_run=state.better_run + 1, run_worst=None)
    if state.better_run >= config.clear_after:
        ledger.clear(
            AlarmType.WATER_CLASS_EXCEEDED,
            reading.ts,
            detail=_class_detail(graded, state, config),
        )
    return state


def _class_detail(graded: Classification, state: WaterState, config: WaterConfig) -> dict[str, Any]:
    return {
        "class": graded.water_class.label,
        "class_number": int(graded.water_class),
        "target_class": config.target_class.label,
        "worst_class_in_run": None if state.run_worst is None else state.run_worst.label,
        "parameter": graded.worst_parameter,
        "value": graded.value,
        "threshold": class_limit(graded.worst_parameter, config.target_class, config.water_body),
        "consecutive": max(state.worse_run, state.better_run),
        "water_body": str(config.water_body),
    }


def _apply_anomaly_rule(
    state: WaterState, config: WaterConfig, reading: WaterReading, ledger: AlarmLedger
) -> WaterState:
    # A parameter dropped from the config drops its history (and any event it was in).
    wanted = set(config.anomaly.parameters)
    histories = {name: h for name, h in state.histories.items() if name in wanted}
    triggered: list[dict[str, Any]] = []
    for parameter in config.anomaly.parameters:
        if parameter not in reading.values:
            continue
        before = histories.get(parameter, ParameterHistory())
        value = reading.values[parameter]
        after, judgement = observe(before, parameter, value, config.anomaly)
        histories[parameter] = after
        if after.in_event and not before.in_event:
            triggered.append(
                {
                    "parameter": parameter,
                    "value": value,
                    "mean": judgement.mean,
                    "std": judgement.std,
                    "probability": judgement.probability,
                }
            )
    in_event = sorted(name for name, h in histories.items() if h.in_event)
    if in_event:
        # One alarm per station however many parameters are in an event at once.
        ledger.raise_(
            AlarmType.WATER_ANOMALY,
            Severity.MINOR,
            reading.ts,
            detail={"parameters": in_event, "triggered": triggered},
        )
    else:
        ledger.clear(AlarmType.WATER_ANOMALY, reading.ts, detail={"parameters": []})
    return evolve(state, histories=histories)
