"""What the rules emit: alarm transitions, and the ledger that keeps one source's alarms.

Every rule raises and clears through an `AlarmLedger`, the single place that enforces the
invariant the rest of the platform relies on: at most one active alarm per
(source_kind, source_id, alarm_type) — a "raise" only for an alarm that is not raised, a
"clear" only for one that is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ._codec import dt_from_json_required, dt_to_json


class AlarmType(StrEnum):
    WATER_CLASS_EXCEEDED = "water_class_exceeded"
    WATER_ANOMALY = "water_anomaly"
    WATER_HOURLY_EXCEEDED = "water_hourly_exceeded"  # graded from the station's own hourly averages
    SOS = "sos"
    FALL = "fall"
    FALL_UNCANCELLED = "fall_uncancelled"
    HEART_RATE_LOW = "heart_rate_low"
    HEART_RATE_HIGH = "heart_rate_high"
    SPO2_LOW = "spo2_low"
    INACTIVITY = "inactivity"
    BED_EXIT_NIGHT = "bed_exit_night"
    DOOR_OPEN_NIGHT = "door_open_night"
    NOT_IN_BED = "not_in_bed"
    NOT_UP = "not_up"
    SMOKE = "smoke"
    GAS = "gas"
    WATER_LEAK = "water_leak"
    BATTERY_LOW = "battery_low"
    DEVICE_SILENT = "device_silent"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class Action(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"


class SourceKind(StrEnum):
    STATION = "station"
    PERSON = "person"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    action: Action
    source_kind: SourceKind
    source_id: str
    alarm_type: AlarmType
    severity: Severity
    at: datetime  # when the condition was established: a reading's ts, or `now` for timers
    # The dispatcher must open an emergency incident (SOS, uncancelled fall, smoke, gas,
    # heart rate or SpO2 in the emergency range). A clear repeats the flag of the raise it ends.
    emergency: bool = False
    detail: dict[str, Any] = field(default_factory=dict)  # JSON types only
    # A clear of an alarm this source's state did not raise (a home hazard raised from the
    # alert topic, straight into the alarm store): the store clears it only if it was raised
    # at or before `at`, so a stale "all clear" never ends a newer alarm.
    unheld: bool = False

    @property
    def key(self) -> tuple[SourceKind, str, AlarmType]:
        return (self.source_kind, self.source_id, self.alarm_type)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "source_kind": str(self.source_kind),
            "source_id": self.source_id,
            "alarm_type": str(self.alarm_type),
            "severity": str(self.severity),
            "at": dt_to_json(self.at),
            "emergency": self.emergency,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    """An alarm that is active for a source; kept in the source's state so that a clear can
    repeat the raise's severity and emergency flag, and so that a restart remembers it."""

    severity: Severity
    emergency: bool
    since: datetime


def raised_from_json(data: Mapping[str, Any]) -> dict[AlarmType, RaisedAlarm]:
    return {
        AlarmType(name): RaisedAlarm(
            severity=Severity(item["severity"]),
            emergency=bool(item["emergency"]),
            since=dt_from_json_required(item["since"]),
        )
        for name, item in data.items()
    }


class AlarmLedger:
    """Collects one evaluation's transitions for one source.

    A short-lived builder used inside a single pure function call: it starts from a copy of
    the state's raised alarms and never touches the state object it was built from.
    """

    def __init__(
        self,
        source_kind: SourceKind,
        source_id: str,
        raised: Mapping[AlarmType, RaisedAlarm],
    ) -> None:
        self._source_kind = source_kind
        self._source_id = source_id
        self._raised = dict(raised)
        self.transitions: list[AlarmTransition] = []

    def is_raised(self, alarm_type: AlarmType) -> bool:
        return alarm_type in self._raised

    def raised(self) -> dict[AlarmType, RaisedAlarm]:
        return dict(self._raised)

    def raise_(
        self,
        alarm_type: AlarmType,
        severity: Severity,
        at: datetime,
        *,
        emergency: bool = False,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Raise unless already raised; returns whether a transition was emitted."""
        if alarm_type in self._raised:
            return False
        self._raised[alarm_type] = RaisedAlarm(severity=severity, emergency=emergency, since=at)
        self._emit(Action.RAISE, alarm_type, severity, at, emergency, detail)
        return True

    def repeat(
        self, alarm_type: AlarmType, at: datetime, *, detail: dict[str, Any] | None = None
    ) -> bool:
        """Raise an alarm that is raised already again, for a new event of the same kind (a
        second SOS press): the store counts it on the open alarm and re-notifies. Returns
        whether a transition was emitted (not if the alarm is not raised)."""
        alarm = self._raised.get(alarm_type)
        if alarm is None:
            return False
        self._emit(Action.RAISE, alarm_type, alarm.severity, at, alarm.emergency, detail)
        return True

    def clear(
        self, alarm_type: AlarmType, at: datetime, *, detail: dict[str, Any] | None = None
    ) -> bool:
        """Clear if raised; returns whether a transition was emitted."""
        alarm = self._raised.pop(alarm_type, None)
        if alarm is None:
            return False
        self._emit(Action.CLEAR, alarm_type, alarm.severity, at, alarm.emergency, detail)
        return True

    def clear_unheld(
        self, alarm_type: AlarmType, severity: Severity, at: datetime, *, emergency: bool = False,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Clear an alarm that may be open without this ledger knowing (see `unheld`)."""
        self._raised.pop(alarm_type, None)
        self._emit(Action.CLEAR, alarm_type, severity, at, emergency, detail, unheld=True)

    def _emit(
        self,
        action: Action,
        alarm_type: AlarmType,
        severity: Severity,
        at: datetime,
        emergency: bool,
        detail: dict[str, Any] | None,
        *,
        unheld: bool = False,
    ) -> None:
        self.transitions.append(
            AlarmTransition(
                action=action,
                source_kind=self._source_kind,
                source_id=self._source_id,
                alarm_type=alarm_type,
                severity=severity,
                at=at,
                emergency=emergency,
                detail=dict(detail or {}),
                unheld=unheld,
            )
        )
