"""Everything the elderly rules remember about one person, as a small JSON-able value.

Ingest persists it with the person's readings in one transaction; every timer the rules
need (fall cancel window, inactivity, night bed/door) is derived from these fields, so a
restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._codec import dt_from_json, dt_from_json_required
from .alarms import AlarmType, RaisedAlarm, raised_from_json
from .vitals import Run, Sample


# Bounds of the small memories below: enough for every retry and press of a few minutes.
RECENT_EVENTS = 32
RECENT_CANCELS = 8


@dataclass(frozen=True, slots=True)
class FallEpisode:
    fall_ts: datetime  # device time of the fall
    # Platform time by which "I'm OK" must arrive: counted from when the platform learnt of
    # the fall, so a wearable with a slow clock or a delayed message still gets its window.
    deadline: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FallEpisode:
        return cls(
            fall_ts=dt_from_json_required(data["fall_ts"]),
            deadline=dt_from_json_required(data["deadline"]),
        )


@dataclass(frozen=True, slots=True)
class SensorState:
    """The latest state of one stateful home sensor (door, bed, smoke, gas, water leak)."""

    kind: str
    value: bool
    since: datetime  # ts at which it took this value
    last_ts: datetime  # ts of its latest event, to drop stale and duplicate ones

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SensorState:
        return cls(
            kind=data["kind"],
            value=bool(data["value"]),
            since=dt_from_json_required(data["since"]),
            last_ts=dt_from_json_required(data["last_ts"]),
        )


@dataclass(frozen=True, slots=True)
class PersonState:
    """Immutable: the rules return a new PersonState and never modify the one given."""

    person_id: str
    alarms: dict[AlarmType, RaisedAlarm] = field(default_factory=dict)
    last_sos_ts: datetime | None = None  # newest SOS press handled
    last_fall_ts: datetime | None = None  # newest fall event handled
    fall: FallEpisode | None = None  # the fall whose cancel window is open or expired
    last_wearable_ts: datetime | None = None  # newest wearable reading for vitals and steps
    vitals: dict[AlarmType, Run] = field(default_factory=dict)
    # The latest samples of each vital in time order, for late ones to be judged against,
    # and when each vitals alarm last cleared (by its readings' time): a late sample never
    # re-opens an episode that closed.
    vital_samples: dict[str, tuple[Sample, ...]] = field(default_factory=dict)
    vitals_cleared: dict[AlarmType, datetime] = field(default_factory=dict)
    steps: int | None = None  # latest step counter
    # Last sign of motion, or when monitoring began: the inactivity clock runs from here.
    inactive_since: datetime | None = None
    sensors: dict[str, SensorState] = field(default_factory=dict)
    # Alert-lane event ids already handled (newest last, at most RECENT_EVENTS): a device
    # tells its presses apart by id, so a clock that went backwards cannot merge two.
    recent_events: tuple[str, ...] = ()
    # Device times of "I'm OK" presses that cancelled nothing yet (newest last, at most
    # RECENT_CANCELS): the fall they answer may still be on its way.
    recent_cancels: tuple[datetime, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PersonState:
        fall = data["fall"]
        steps = data["steps"]
        return cls(
            person_id=data["person_id"],
            alarms=raised_from_json(data["alarms"]),
            last_sos_ts=dt_from_json(data["last_sos_ts"]),
            last_fall_ts=dt_from_json(data["last_fall_ts"]),
            fall=None if fall is None else FallEpisode.from_json(fall),
            last_wearable_ts=dt_from_json(data["last_wearable_ts"]),
            vitals={AlarmType(k): Run.from_json(v) for k, v in data["vitals"].items()},
            # Both absent from states saved before the sparse-sample rules.
            vital_samples={
                k: tuple((dt_from_json_required(ts), float(v)) for ts, v in samples)
                for k, samples in data.get("vital_samples", {}).items()
            },
            vitals_cleared={
                AlarmType(k): dt_from_json_required(t)
                for k, t in data.get("vitals_cleared", {}).items()
            },
            steps=None if steps is None else int(steps),
            inactive_since=dt_from_json(data["inactive_since"]),
            sensors={k: SensorState.from_json(v) for k, v in data["sensors"].items()},
            # Absent from states saved before the alert lane existed.
            recent_events=tuple(data.get("recent_events", ())),
            recent_cancels=tuple(dt_from_json_required(t) for t in data.get("recent_cancels", ())),
        )
