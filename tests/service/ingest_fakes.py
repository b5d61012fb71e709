"""In-memory stand-ins for ingest's storage, and a harness that drives ingest's handlers
(`ingest.handlers`) the way the worker does: readings as they arrive, a timer pass every
`timer_interval_s`, all on a `FakeClock`.

The fakes keep only what timing and policy need: rule states with their deadlines, alarms
with their state, escalations with their step and deadline, and who was told what, when.
The escalation steps themselves come from `ingest.rules.escalation`, as in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ingest.handlers import DueEscalation, advance_due_escalations, handle_alert, handle_readings, run_due_timers
from ingest.readings import Reading, WearableReading
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from ingest.rules.engine import RuleConfigs, State, deadline_of, new_state
from ingest.rules.escalation import Contact, EscalationStep, first_step, is_due
from kernel.clock import FakeClock


class FakeIngestRuleStates:
    """Rule states and their next deadlines, as the `rule_state` table keeps them."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.deadlines: dict[str, datetime | None] = {}

    def load(self, keys: Iterable[str], now: datetime) -> dict[str, State]:
        keys = sorted(set(keys))
        for key in keys:
            if key not in self.states:
                self.states[key], self.deadlines[key] = new_state(key, now), None
        return {k: self.states[k] for k in keys}

    def due(self, now: datetime, limit: int, prefix: str = "") -> dict[str, State]:
        due = sorted((d, k) for k, d in self.deadlines.items() if d is not None and d <= now and k.startswith(prefix))
        return {k: self.states[k] for _, k in due[:limit]}

    def save(self, states: Mapping[str, State], configs: RuleConfigs, now: datetime) -> None:
        for key, state in states.items():
            self.states[key] = state
            self.deadlines[key] = deadline_of(key, state, configs)


@dataclass
class FakeIngestAlarm:
    alarm_id: int
    alarm_type: AlarmType
    source: tuple[SourceKind, str]
    severity: Severity
    emergency: bool
    state: str = "active"
    control_room: bool = False


@dataclass
class FakeIngestEscalation:
    person_id: str
    step: int
    notified: str
    next_at: datetime | None
    acked_by: str | None = None


@dataclass(frozen=True)
class Notice:
    """Someone told about an alarm: when, which alarm, who."""

    at: datetime
    alarm_type: AlarmType
    notify: tuple[str, ...]


@dataclass(frozen=True)
class Queued:
    """A message a step queued for the notifier: which alarm, to whom, how, from when."""

    alarm_type: AlarmType
    username: str
    channel: str
    due_at: datetime
    expires_at: datetime | None


@dataclass
class FakeIngestAlarms:
    """Alarms and their escalations, as `ingest.alarm_store` keeps them: one open alarm per
    source and type, a person's alarm escalated along their family chain."""

    family: dict[str, list[Contact]] = field(default_factory=dict)
    alarms: dict[int, FakeIngestAlarm] = field(default_factory=dict)
    escalations: dict[int, FakeIngestEscalation] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    queued: list[Queued] = field(default_factory=list)

    # --- the alarm recorder -----------------------------------------------------------

    def apply(self, transitions: Sequence[AlarmTransition], now: datetime) -> int:
        emitted = 0
        for t in transitions:
            if t.action is Action.RAISE:
                emitted += self._raise(t, now)
            else:
                emitted += self._clear(t)
        return emitted

    def run_due_escalations(self, now: datetime) -> int:
        return advance_due_escalations(self, now, limit=500)

    def acknowledge(self, alarm_id: int, actor: str) -> bool:
        alarm = self.alarms[alarm_id]
        if alarm.state != "active":
            return False
        alarm.state = "acked"
        if alarm_id in self.escalations:
            self.escalations[alarm_id].next_at = None
            self.escalations[alarm_id].acked_by = actor
        return True

    # --- the escalation store ---------------------------------------------------------

    def due(self, now: datetime, limit: int) -> list[DueEscalation]:
        due = sorted((e.next_at, a) for a, e in self.escalations.items() if is_due(e.next_at, now))
        return [DueEscalation(a, self.escalations[a].person_id, self.escalations[a].step) for _, a in due[:limit]]

    def family_chain(self, person_id: str) -> list[Contact]:
        return list(self.family.get(person_id, []))

    def record(self, due: DueEscalation, step: EscalationStep, now: datetime) -> int:
        self.escalations[due.alarm_id] = FakeIngestEscalation(due.person_id, step.step, step.notified, step.next_at)
        self._told(self.alarms[due.alarm_id], step, now)
        return 1

    # --- looking -----------------------------------------------------------------------

    def open(self, alarm_type: AlarmType) -> FakeIngestAlarm | None:
        return next((a for a in self.alarms.values() if a.alarm_type is alarm_type and a.state != "cleared"), None)

    def raised(self) -> list[AlarmType]:
        return [a.alarm_type for a in self.alarms.values()]

    def told(self, alarm_type: AlarmType) -> list[tuple[datetime, tuple[str, ...]]]:
        return [(n.at, n.notify) for n in self.notices if n.alarm_type is alarm_type]

    # --- inside ------------------------------------------------------------------------

    def _raise(self, t: AlarmTransition, now: datetime) -> int:
        existing = next(
            (a for a in self.alarms.values()
             if a.source == (t.source_kind, t.source_id) and a.alarm_type is t.alarm_type and a.state != "cleared"),
            None,
        )
        if existing is not None:
            return 1  # a repeat
        alarm = FakeIngestAlarm(len(self.alarms) + 1, t.alarm_type, (t.source_kind, t.source_id), t.severity, t.emergency)
        alarm.control_room = t.source_kind != SourceKind.PERSON
        self.alarms[alarm.alarm_id] = alarm
        if t.source_kind == SourceKind.PERSON:
            step = first_step(self.family_chain(t.source_id), severe=t.emergency or t.severity == "critical", now=now)
            self.escalations[alarm.alarm_id] = FakeIngestEscalation(t.source_id, step.step, step.notified, step.next_at)
            self._told(alarm, step, now)
        return 1

    def _clear(self, t: AlarmTransition) -> int:
        alarm = self.open(t.alarm_type)
        if alarm is None or alarm.source != (t.source_kind, t.source_id):
            return 0
        alarm.state = "cleared"
        if alarm.alarm_id in self.escalations:
            self.escalations[alarm.alarm_id].next_at = None
        return 1

    def _told(self, alarm: FakeIngestAlarm, step: EscalationStep, now: datetime) -> None:
        if step.reaches_control_room:
            alarm.control_room = True
        self.notices.append(Notice(now, alarm.alarm_type, step.notify))
        self.queued.extend(Queued(alarm.alarm_type, n.username, n.channel.value, n.due_at, n.expires_at) for n in step.notifications)


class FakeIngestService:
    """Ingest's rules and timers on in-memory storage and a fake clock."""

    def __init__(self, clock: FakeClock, *, configs: RuleConfigs | None = None, timer_interval_s: float = 1.0,
                 family: dict[str, list[Contact]] | None = None) -> None:
        self.clock = clock
        self.configs = configs or RuleConfigs()
        self.states = FakeIngestRuleStates()
        self.alarms = FakeIngestAlarms(family=family or {})
        self.timer_interval_s = timer_interval_s

    def receive(self, *readings: Reading) -> list[AlarmTransition]:
        """Readings arrive and are stored now (the worker's batch commit)."""
        return handle_readings(list(readings), self.configs, self.states, self.alarms, self.clock.now())

    def receive_alert(self, reading: WearableReading) -> list[AlarmTransition]:
        """A fall or an "I'm OK" from the alert topic, committed now (the alert lane)."""
        return handle_alert(reading, self.configs, self.states, self.alarms, self.clock.now())

    def tick(self) -> list[AlarmTransition]:
        """One timer pass at the clock's time."""
        transitions, _ = run_due_timers(self.configs, self.states, self.alarms, self.clock.now(), limit=500)
        return transitions

    def run_for(self, seconds: float) -> list[AlarmTransition]:
        """Let `seconds` pass, with a timer pass every `timer_interval_s`, as the worker does."""
        transitions: list[AlarmTransition] = []
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            self.clock.advance(min(self.timer_interval_s, end - self.clock.monotonic()))
            transitions.extend(self.tick())
        return transitions
