"""Sustained-vitals rules: heart rate low / high and SpO2 low.

One wrist reading out of range is usually motion artefact or a loose strap, so an alarm
needs `vitals_confirm_samples` consecutive out-of-range samples spanning `vitals_sustain_s`,
and clears once samples have stayed back in range for `vitals_clear_s`. Each rule keeps a
`Run`: the current stretch of consecutive samples on one side of its threshold. Samples are
consecutive when the gap between them is within `PersonConfig.vitals_gap`: two sampling
intervals for a wearable that spot-samples every few minutes, so that two spot samples ten
minutes apart, both at 35 bpm, are a sustained bradycardia and not two unrelated readings.

Late samples (older than the newest already processed: store-and-forward after a coverage
gap) never move the run of the newest samples, but they are not thrown away: each rule keeps
its last `VITAL_SAMPLES` samples in time order, and a late sample that completes an
out-of-range run there raises the alarm it would have raised on time — unless that alarm is
raised, or has been cleared at or after the run's start (a late sample never re-opens an
episode that was closed). If newer samples already show recovery, the late alarm is raised
and cleared at once, so the episode is on the record and reaches the family and the control
room, marked `late`.
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
    count: int = 1  # samples in the run

    @property
    def held(self) -> timedelta:
        return self.last - self.since

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        return cls(
            abnormal=bool(data["abnormal"]),
            since=dt_from_json_required(data["since"]),
            last=dt_from_json_required(data["last"]),
            mildest=float(data["mildest"]),
            count=int(data.get("count", 1)),  # absent from states saved before sparse rules
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

VITAL_ALARMS: frozenset[AlarmType] = frozenset(rule.alarm_type for rule in _RULES)


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
    return Run(abnormal=abnormal, since=run.since, last=ts, mildest=mildest, count=run.count + 1)


def sustained(run: Run, config: PersonConfig) -> bool:
    """An out-of-range run confirmed by enough samples over long enough."""
    return (
        run.abnormal
        and run.count >= config.vitals_confirm_samples
        and run.held >= timedelta(seconds=config.vitals_sustain_s)
    )


# Samples kept per vital for late ones to be judged against: a coverage gap of a few hours
# at one spot sample every 10 minutes, or a few minutes of continuous sampling.
VITAL_SAMPLES = 32
Sample = tuple[datetime, float]


def apply_vitals(
    runs: Mapping[AlarmType, Run],
    config: PersonConfig,
    reading: WearableReading,
    ledger: AlarmLedger,
) -> dict[AlarmType, Run]:
    """Advance each vitals rule whose value the reading carries. The caller passes only
    readings newer than every one processed; older ones go to `apply_late_vitals`."""
    runs = dict(runs)
    clear_after = timedelta(seconds=config.vitals_clear_s)
    gap = config.vitals_gap
    for rule in _RULES:
        value = getattr(reading, rule.field)
        if value is None:
            continue
        run = extend_run(runs.get(rule.alarm_type), rule.is_abnormal(config, value), reading.ts, value, gap, rule.milder)
        runs[rule.alarm_type] = run
        if sustained(run, config):
            _raise(ledger, rule, config, run, reading.ts, _detail(rule, value, run))
        elif not run.abnormal and run.held >= clear_after and ledger.is_raised(rule.alarm_type):
            ledger.clear(rule.alarm_type, reading.ts, detail=_detail(rule, value, run))
    return runs


def _detail(rule: _VitalRule, value: float, run: Run) -> dict[str, Any]:
    return {"parameter": rule.field, "value": value, "held_s": run.held.total_seconds()}


def record_samples(
    samples: Mapping[str, tuple[Sample, ...]], reading: WearableReading
) -> dict[str, tuple[Sample, ...]]:
    """The per-vital sample memory with this reading's values in time order (a duplicate
    time keeps the first value), bounded to the newest `VITAL_SAMPLES`."""
    out = dict(samples)
    for name in ("hr_bpm", "spo2_pct"):
        value = getattr(reading, name)
        if value is None:
            continue
        kept = out.get(name, ())
        if not kept or reading.ts > kept[-1][0]:  # the usual case: newer than every sample kept
            out[name] = (*kept, (reading.ts, float(value)))[-VITAL_SAMPLES:]
        elif all(ts != reading.ts for ts, _ in kept):
            out[name] = tuple(sorted((*kept, (reading.ts, float(value)))))[-VITAL_SAMPLES:]
    return out


def apply_late_vitals(
    runs: Mapping[AlarmType, Run],
    cleared: Mapping[AlarmType, datetime],
    samples: Mapping[str, tuple[Sample, ...]],
    config: PersonConfig,
    reading: WearableReading,
    ledger: AlarmLedger,
) -> list[AlarmType]:
    """Judge a late reading against the samples around it (already recorded in `samples`).
    Returns the alarm types it raised and cleared again (recovered since)."""
    recovered: list[AlarmType] = []
    clear_after = timedelta(seconds=config.vitals_clear_s)
    for rule in _RULES:
        value = getattr(reading, rule.field)
        if value is None or ledger.is_raised(rule.alarm_type):
            continue
        run = _run_around(samples.get(rule.field, ()), reading.ts, rule, config)
        if run is None or not sustained(run, config):
            continue
        last_clear = cleared.get(rule.alarm_type)
        if last_clear is not None and run.since <= last_clear:
            continue  # this episode, or an earlier one, was closed: history, not news
        detail = {
            "parameter": rule.field,
            "value": value,
            "held_s": run.held.total_seconds(),
            "late": True,
        }
        _raise(ledger, rule, config, run, run.last, detail)
        newest = runs.get(rule.alarm_type)
        if newest is not None and not newest.abnormal and newest.since > run.last:
            if newest.held >= clear_after:
                ledger.clear(rule.alarm_type, newest.last, detail={**detail, "recovered": True})
                recovered.append(rule.alarm_type)
    return recovered


def _run_around(
    samples: tuple[Sample, ...], ts: datetime, rule: _VitalRule, config: PersonConfig
) -> Run | None:
    """The run of same-side consecutive samples that contains the sample at `ts`."""
    index = next((i for i, (t, _) in enumerate(samples) if t == ts), None)
    if index is None:
        return None
    side = [rule.is_abnormal(config, v) for _, v in samples]
    if not side[index]:
        return None
    gap = config.vitals_gap
    first = index
    while first > 0 and side[first - 1] and samples[first][0] - samples[first - 1][0] <= gap:
        first -= 1
    last = index
    while (
        last + 1 < len(samples)
        and side[last + 1]
        and samples[last + 1][0] - samples[last][0] <= gap
    ):
        last += 1
    values = [v for _, v in samples[first : last + 1]]
    mildest = values[0]
    for v in values[1:]:
        mildest = rule.milder(mildest, v)
    return Run(True, samples[first][0], samples[last][0], mildest, count=last - first + 1)


def _raise(
    ledger: AlarmLedger,
    rule: _VitalRule,
    config: PersonConfig,
    run: Run,
    at: datetime,
    detail: dict[str, Any],
) -> None:
    emergency = _in_emergency_range(rule.alarm_type, run.mildest, config)
    ledger.raise_(
        rule.alarm_type,
        Severity.CRITICAL if emergency else Severity.MAJOR,
        at,
        emergency=emergency,
        detail={
            **detail,
            "threshold": _threshold(rule.alarm_type, config),
            "mildest": run.mildest,
            "samples": run.count,
            "since": dt_to_json(run.since),
        },
    )


def _threshold(alarm_type: AlarmType, config: PersonConfig) -> float:
    return {
        AlarmType.HEART_RATE_LOW: config.hr_low_bpm,
        AlarmType.HEART_RATE_HIGH: config.hr_high_bpm,
        AlarmType.SPO2_LOW: config.spo2_low_pct,
    }[alarm_type]


def _in_emergency_range(alarm_type: AlarmType, mildest: float, config: PersonConfig) -> bool:
    """Whether the whole run (even its mildest sample) lay in the emergency range."""
    if alarm_type is AlarmType.HEART_RATE_LOW:
        return mildest < config.hr_emergency_low_bpm
    if alarm_type is AlarmType.HEART_RATE_HIGH:
        return mildest > config.hr_emergency_high_bpm
    return mildest < config.spo2_emergency_low_pct
