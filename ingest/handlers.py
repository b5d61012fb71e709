"""Ingest's rule and escalation steps, with their storage passed in.

What happens to a batch of stored readings (rules evaluated, states saved, transitions
recorded) and on every timer pass (due sources ticked, due escalations advanced) is decided
here, against the small storage interfaces below. The worker runs these with the
TimescaleDB adapters (`ingest.rule_store`, `ingest.alarm_store`) inside its transactions;
the service tests run them with in-memory ones and a fake clock, so fall windows,
inactivity and escalation steps are exercised in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.readings import Reading, WearableReading
from ingest.rules import AlarmTransition
from ingest.rules.alert_state import AlertState, evaluate_alert
from ingest.rules.engine import ALERT, RuleConfigs, State, evaluate, source_keys, tick
from ingest.rules.escalation import Contact, EscalationStep, next_step

__all__ = [
    "AlarmRecorder",
    "DueEscalation",
    "EscalationStore",
    "RuleStateStore",
    "advance_due_escalations",
    "handle_alert",
    "handle_readings",
    "run_due_timers",
]


class RuleStateStore(Protocol):
    """The rule states of the sources, with their next deadlines."""

    def load(self, keys: Iterable[str], now: datetime) -> dict[str, State]:
        """The states of `keys`, held for this transaction; missing ones are created."""
        ...

    def due(self, now: datetime, limit: int, prefix: str = "") -> dict[str, State]:
        """At most `limit` states (with keys starting `prefix`) whose deadline has passed,
        held for this transaction."""
        ...

    def save(self, states: Mapping[str, State], configs: RuleConfigs, now: datetime) -> None:
        """Store `states` with the deadlines they now have under `configs`."""
        ...


class AlarmRecorder(Protocol):
    """Where alarm transitions go, and the escalation ticker."""

    def apply(self, transitions: Sequence[AlarmTransition], now: datetime) -> int:
        """Record the transitions; returns the number of events emitted."""
        ...

    def run_due_escalations(self, now: datetime) -> int:
        """Advance the escalations due at `now`; returns the number of events emitted."""
        ...


@dataclass(frozen=True, slots=True)
class DueEscalation:
    alarm_id: int
    person_id: str
    step: int


class EscalationStore(Protocol):
    def due(self, now: datetime, limit: int) -> list[DueEscalation]:
        """Escalations whose timeout passed by `now`, oldest deadline first, held for this
        transaction; acknowledged and finished ones are never due."""
        ...

    def family_chain(self, person_id: str) -> list[Contact]:
        ...

    def record(self, due: DueEscalation, step: EscalationStep, now: datetime) -> int:
        """Store the new step and announce it; returns the number of events emitted."""
        ...


def handle_readings(
    readings: Sequence[Reading], configs: RuleConfigs, states: RuleStateStore, alarms: AlarmRecorder, now: datetime
) -> list[AlarmTransition]:
    """Run the rules over readings just stored; returns the transitions recorded."""
    if not readings:
        return []
    current = states.load((k for r in readings for k in source_keys(r)), now)
    changed, transitions = evaluate(readings, current, configs, now)
    states.save({k: current[k] for k in changed}, configs, now)
    alarms.apply(transitions, now)
    return transitions


def handle_alert(
    reading: WearableReading, configs: RuleConfigs, states: RuleStateStore, alarms: AlarmRecorder, now: datetime
) -> list[AlarmTransition]:
    """A fall or an "I'm OK" from the alert topic, against the alert lane's own state of the
    person (`alert:{person_id}`), never the person's telemetry state; returns the transitions."""
    key = ALERT + reading.person_id
    state = states.load([key], now)[key]
    assert isinstance(state, AlertState)  # the engine gives `alert:` keys an AlertState
    state, transitions = evaluate_alert(state, configs.for_alert(key), reading, now)
    states.save({key: state}, configs, now)
    alarms.apply(transitions, now)
    return transitions


def run_due_timers(
    configs: RuleConfigs, states: RuleStateStore, alarms: AlarmRecorder, now: datetime, *, limit: int,
    prefix: str = "", escalations: bool = True,
) -> tuple[list[AlarmTransition], int]:
    """Tick every source (with keys starting `prefix`) whose deadline has passed (at most
    `limit`), then, with `escalations`, advance the due escalations. Returns the transitions
    and the number of events emitted."""
    ticked: dict[str, State] = {}
    transitions: list[AlarmTransition] = []
    for key, state in states.due(now, limit, prefix).items():
        ticked[key], out = tick(key, state, configs, now)
        transitions.extend(out)
    states.save(ticked, configs, now)
    emitted = alarms.apply(transitions, now)
    return transitions, emitted + (alarms.run_due_escalations(now) if escalations else 0)


def advance_due_escalations(store: EscalationStore, now: datetime, limit: int) -> int:
    """Move every escalation whose acknowledgement timeout has passed to its next step.
    Returns the number of events emitted."""
    emitted = 0
    for due in store.due(now, limit):
        emitted += store.record(due, next_step(store.family_chain(due.person_id), due.step, now), now)
    return emitted
