"""Sustained-vitals rules: heart rate low / high and SpO2 low.

One wrist reading out of range is usually motion artefact or a loose strap, so an alarm
needs every reading over a span of `vitals_sustain_s` to be out of range, and clears once
readings have stayed back in range for `vitals_clear_s`. Each rule keeps a `Run`: the
current stretch of consecutive readings on one side of its threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingest.readings import WearableReading

from ._codec import dt_from_json_required, dt_to_json
from .alarms import AlarmLedger, AlarmType, Severity
from .person_config import PersonConfig


@dataclass(frozen=True, slots=True)
class Run:
    abnormal: bool
    since: datetime  # ts of the run's first reading
    last: datetime  # ts of its latest reading
    # For an abnormal run, the value closest to normal so far: if even that one is in the
    # cardiac range, the whole span was. For a normal run, the latest value.
    mildest: float

    @property
    def held(self) -> timedelta:
        return self.last - self.since

    def to_json(self) -> dict[str, Any]:
        return {
            "abnormal": self.abnormal,
            "since": dt_to_json(self.since),
            "last": dt_to_json(self.last),
            "mildest": self.mildest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        return cls(
            abnormal=bool(data["abnormal"]),
            since=dt_from_json_required(data["since"]),
            last=dt_from_json_required(data["last"]),
            mildest=float(data["mildest"]),
        )


@dataclass(frozen=True, slots=True)
class _VitalRule:
    alarm_type: AlarmType
    field: str  # the WearableReading attribute
    is_abnormal: Callable[[PersonConfig, float], bool]
    milder: Callable[[float, float], float]  # of two abnormal values, the one nearer normal


_RULES: tuple[_VitalRule, ...] = (
    _VitalRule(AlarmType.HEART_RATE_LOW, "hr_bpm", lambda c, v: v < c.hr_low_bpm, max),
    _VitalRule(AlarmType.HEART_RATE_HIGH, "hr_bpm", lambda c, v: v > c.hr_high_bpm, min),
    _VitalRule(AlarmType.SPO2_LOW, "spo2_pct", lambda c, v: v < c.spo2_low_pct, max),
)


def extend_run(
    run: Run | None,
    abnormal: bool,
    ts: datetime,
    value: float,
    max_gap: timedelta,
    milder: Callable[[float, float], float],
) -> Run:
    """The run after one more reading: continued if on the same side and close enough in
    time, otherwise a new run starting at this reading."""
    if run is None or run.abnormal != abnormal or ts - run.last > max_gap:
        return Run(abnormal=abnormal, since=ts, last=ts, mildest=value)
    mildest = milder(run.mildest, value) if abnormal else value
    return Run(abnormal=abnormal, since=run.since, last=ts, mildest=mildest)


def apply_vitals(
    runs: Mapping[AlarmType, Run],
    config: PersonConfig,
    reading: WearableReading,
    ledger: AlarmLedger,
) -> dict[AlarmType, Run]:
    """Advance each vitals rule whose value the reading carries. The caller has already
    dropped out-of-order and duplicate readings."""
    runs = dict(runs)
    sustain = timedelta(seconds=config.vitals_sustain_s)
    clear_after = timedelta(seconds=config.vitals_clear_s)
    max_gap = timedelta(seconds=config.vitals_max_gap_s)
    for rule in _RULES:
        value = getattr(reading, rule.field)
        if value is None:
            continue
        run = extend_run(
            runs.get(rule.alarm_type),
            rule.is_abnormal(config, value),
            reading.ts,
            value,
            max_gap,
            rule.milder,
        )
        runs[rule.alarm_type] = run
        detail = {
            "parameter": rule.field,
            "value": value,
            "held_s": run.held.total_seconds(),
        }
        if run.abnormal and run.held >= sustain:
            emergency = _in_cardiac_range(rule.alarm_type, run.mildest, config)
            ledger.raise_(
                rule.alarm_type,
                Severity.CRITICAL if emergency else Severity.MAJOR,
                reading.ts,
                emergency=emergency,
                detail={
                    **detail,
                    "threshold": _threshold(rule.alarm_type, config),
                    "mildest": run.mildest,
                    "since": dt_to_json(run.since),
                },
            )
        elif not run.abnormal and run.held >= clear_after:
            ledger.clear(rule.alarm_type, reading.ts, detail=detail)
    return runs


def _threshold(alarm_type: AlarmType, config: PersonConfig) -> float:
    return {
        AlarmType.HEART_RATE_LOW: config.hr_low_bpm,
        AlarmType.HEART_RATE_HIGH: config.hr_high_bpm,
        AlarmType.SPO2_LOW: config.spo2_low_pct,
    }[alarm_type]


def _in_cardiac_range(alarm_type: AlarmType, mildest: float, config: PersonConfig) -> bool:
    if alarm_type is AlarmType.HEART_RATE_LOW:
        return mildest < config.hr_emergency_low_bpm
    if alarm_type is AlarmType.HEART_RATE_HIGH:
        return mildest > config.hr_emergency_high_bpm
    return False  # low SpO2 alone is major, not an emergency incident
