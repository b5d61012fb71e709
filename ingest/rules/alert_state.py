"""What the alert lane remembers about a person, apart from the person's telemetry state:
the fall from the alert topic whose cancel window is open, its alarms, and the "I'm OK"
presses still waiting for the fall they answer.

Kept as a source of its own (`alert:{person_id}`), so an alert never waits for the person's
state, which an ingest batch holds locked until it commits (seconds under load). Only the
alert lane and the timer passes touch it, each for one short transaction. An SOS and a home
hazard need no memory at all (`sos_alarm`, `hazard_alarm`); a fall and its cancel need only
this. Telemetry `fall` and `cancel` flags keep their episodes in the person's state: a
device sends its falls on one path or the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.readings import WearableReading

from ._codec import check_source, dt_from_json_required, dt_to_json, require_aware
from ._evolve import evolve
from .alarms import AlarmLedger, AlarmTransition, AlarmType, RaisedAlarm, SourceKind, raised_from_json
from .falls import UNCANCELLED_SEVERITY, Cancels, cancel_fall, open_fall, uncancelled_deadline
from .person_config import PersonConfig
from .person_state import FallEpisode


@dataclass(frozen=True, slots=True)
class AlertState:
    """Immutable, like every rules state."""

    person_id: str
    alarms: dict[AlarmType, RaisedAlarm] = field(default_factory=dict)  # fall, fall_uncancelled
    fall: FallEpisode | None = None
    # Device times of "I'm OK" presses that cancelled nothing yet (newest last, bounded).
    recent_cancels: Cancels = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertState:
        fall = data["fall"]
        return cls(
            person_id=data["person_id"],
            alarms=raised_from_json(data["alarms"]),
            fall=None if fall is None else FallEpisode.from_json(fall),
            recent_cancels=tuple(dt_from_json_required(t) for t in data["recent_cancels"]),
        )


Result = tuple[AlertState, list[AlarmTransition]]


def evaluate_alert(state: AlertState, config: PersonConfig, reading: WearableReading, now: datetime) -> Result:
    """Apply one fall or "I'm OK" from the alert topic. Repeats of an event id never get
    here (the lane's `alerts` table answers them), so every call is a new event."""
    require_aware(now)
    check_source(state.person_id, reading.person_id, "person")
    ledger = AlarmLedger(SourceKind.PERSON, state.person_id, state.alarms)
    fall, cancels = state.fall, state.recent_cancels
    if reading.fall:
        fall, cancels = open_fall(fall, cancels, config, reading, now, ledger)
    if reading.cancel:
        fall, cancels = cancel_fall(fall, cancels, config, reading, now, ledger)
    return evolve(state, alarms=ledger.raised(), fall=fall, recent_cancels=cancels), ledger.transitions


def tick_alert(state: AlertState, config: PersonConfig, now: datetime) -> Result:
    """The fall's cancel window ran out: an uncancelled fall, an emergency."""
    require_aware(now)
    deadline = uncancelled_deadline(state.fall, state.alarms)
    if deadline is None or deadline > now or state.fall is None:
        return state, []
    ledger = AlarmLedger(SourceKind.PERSON, state.person_id, state.alarms)
    ledger.raise_(
        AlarmType.FALL_UNCANCELLED,
        UNCANCELLED_SEVERITY,
        now,
        emergency=True,
        detail={"due_at": dt_to_json(deadline), "fall_at": dt_to_json(state.fall.fall_ts)},
    )
    return evolve(state, alarms=ledger.raised()), ledger.transitions


def next_alert_deadline(state: AlertState, config: PersonConfig) -> datetime | None:
    return uncancelled_deadline(state.fall, state.alarms)
