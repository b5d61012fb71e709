"""Rules for an elderly person living alone: the entry points for wearable readings, home
sensor events and timers, plus the SOS and fall rules.

Ordering: continuous values (vitals, steps, sensor states) from a reading older than one
already processed are dropped, because a newer value supersedes them. SOS and fall are
events, not values: a delayed press is still a press, so they are handled whatever their
order. Telemetry flags are deduplicated by their timestamps; alert-lane events by their
`event_id`, so two presses of a watch whose clock went backwards are still two presses, and
a new SOS press on an open SOS alarm is counted on it and re-notified.

An "I'm OK" that arrives before the fall it answers (redelivery, two consumers) is
remembered and cancels that fall when it comes (`falls.py`, shared with the alert lane's own
state of alert-topic falls, `alert_state.py`). A fall from the alert lane with a sane
clock has its cancel window counted from its own time, so a backlog adds no minutes before
help is sent; with a suspect clock (or a telemetry flag) from when the platform learnt of it.

Timers (fall cancel window, inactivity, night bed/door, not in bed by / not up by) are derived from the state: the
caller asks `next_person_deadline` when to call `tick_person` next, so they survive a
restart. Evaluating a reading never fires a timer; the caller ticks after a batch, so that a
fall and the "I'm OK" right behind it in the same backlog never raise an emergency.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.readings import HomeSensorEvent, WearableReading

from ._codec import check_source, dt_to_json, require_aware
from ._evolve import evolve
from .alarms import Action, AlarmLedger, AlarmTransition, AlarmType, Severity, SourceKind
from .falls import UNCANCELLED_SEVERITY, cancel_fall, open_fall, uncancelled_deadline, where
from .home import (
    apply_home_event,
    bed_deadline,
    door_deadline,
    not_in_bed_deadline,
    not_up_deadline,
)
from .inactivity import begin_monitoring, inactivity_deadline, record_motion
from .person_config import PersonConfig
from .person_state import RECENT_EVENTS, PersonState
from .vitals import VITAL_ALARMS, apply_late_vitals, apply_vitals, record_samples

# Timer-driven alarms: (severity, emergency incident).
_TIMED: dict[AlarmType, tuple[Severity, bool]] = {
    AlarmType.FALL_UNCANCELLED: (UNCANCELLED_SEVERITY, True),
    AlarmType.INACTIVITY: (Severity.MAJOR, False),
    AlarmType.BED_EXIT_NIGHT: (Severity.MAJOR, False),
    AlarmType.DOOR_OPEN_NIGHT: (Severity.MINOR, False),
    AlarmType.NOT_IN_BED: (Severity.MAJOR, False),
    AlarmType.NOT_UP: (Severity.MAJOR, False),
}
# Alarms no later reading can clear: a person is safe when someone has checked, so only
# an operator (or the wearer's "I'm OK", for a fall) ends them.
LATCHED: frozenset[AlarmType] = frozenset(
    {AlarmType.SOS, AlarmType.FALL, AlarmType.FALL_UNCANCELLED}
)

Result = tuple[PersonState, list[AlarmTransition]]


def evaluate_wearable(
    state: PersonState, config: PersonConfig, reading: WearableReading, now: datetime
) -> Result:
    """Apply one wearable reading. Returns a new state and the transitions it causes."""
    require_aware(now)
    check_source(state.person_id, reading.person_id, "person")
    ledger = AlarmLedger(SourceKind.PERSON, state.person_id, state.alarms)
    state = begin_monitoring(state, reading.ts)
    state = _apply_sos(state, reading, ledger)
    state = _apply_fall(state, config, reading, now, ledger)
    state = _apply_cancel(state, config, reading, now, ledger)
    samples = record_samples(state.vital_samples, reading)
    if state.last_wearable_ts is None or reading.ts > state.last_wearable_ts:
        state = evolve(
            state,
            vitals=apply_vitals(state.vitals, config, reading, ledger),
            vital_samples=samples,
            last_wearable_ts=reading.ts,
        )
        state = _apply_steps(state, reading, ledger)
    elif reading.ts < state.last_wearable_ts:
        # Store-and-forward: judged by its own time against the samples around it.
        apply_late_vitals(state.vitals, state.vitals_cleared, samples, config, reading, ledger)
        state = evolve(state, vital_samples=samples)
    cleared = {
        t.alarm_type: t.at
        for t in ledger.transitions
        if t.action is Action.CLEAR and t.alarm_type in VITAL_ALARMS
    }
    if cleared:
        state = evolve(state, vitals_cleared={**state.vitals_cleared, **cleared})
    return evolve(state, alarms=ledger.raised()), ledger.transitions


def evaluate_home_sensor(
    state: PersonState, config: PersonConfig, event: HomeSensorEvent, now: datetime
) -> Result:
    """Apply one home-sensor event. Returns a new state and the transitions it causes."""
    require_aware(now)
    check_source(state.person_id, event.person_id, "person")
    ledger = AlarmLedger(SourceKind.PERSON, state.person_id, state.alarms)
    state = begin_monitoring(state, event.ts)
    state = apply_home_event(state, event, ledger)
    return evolve(state, alarms=ledger.raised()), ledger.transitions


def tick_person(state: PersonState, config: PersonConfig, now: datetime) -> Result:
    """Fire every timer that is due at `now` (deadline <= now)."""
    require_aware(now)
    state = begin_monitoring(state, now)
    ledger = AlarmLedger(SourceKind.PERSON, state.person_id, state.alarms)
    for alarm_type, deadline in sorted(_deadlines(state, config).items()):
        if deadline <= now:
            severity, emergency = _TIMED[alarm_type]
            ledger.raise_(
                alarm_type,
                severity,
                now,
                emergency=emergency,
                detail=_timer_detail(alarm_type, state, deadline),
            )
    return evolve(state, alarms=ledger.raised()), ledger.transitions


def next_person_deadline(state: PersonState, config: PersonConfig) -> datetime | None:
    """When `tick_person` must next be called, or None if no timer is running."""
    return min(_deadlines(state, config).values(), default=None)


def resolve_person_alarm(state: PersonState, alarm_type: AlarmType, now: datetime) -> Result:
    """An operator closed a latched alarm (SOS, fall): clear it so a new press or fall can
    raise again. Resolving either fall alarm ends the whole fall episode."""
    require_aware(now)
    if alarm_type not in LATCHED:
        raise ValueError(
            f"only latched alarms ({', '.join(sorted(LATCHED))}) are resolved by an operator; "
            f"{alarm_type} clears itself when its condition ends"
        )
    ledger = AlarmLedger(SourceKind.PERSON, state.person_id, state.alarms)
    detail = {"reason": "resolved"}
    if alarm_type is AlarmType.SOS:
        ledger.clear(AlarmType.SOS, now, detail=detail)
    else:
        ledger.clear(AlarmType.FALL, now, detail=detail)
        ledger.clear(AlarmType.FALL_UNCANCELLED, now, detail=detail)
        state = evolve(state, fall=None)
    return evolve(state, alarms=ledger.raised()), ledger.transitions


def sos_alarm(reading: WearableReading) -> AlarmTransition:
    """The alarm of one SOS press, without the person's state: a press needs no memory.
    The alert lane raises it this way, so that it never waits for the person's state while
    an ingest batch holds it: its `alerts` table drops a repeated event id, and the alarm
    store joins a new press to an open SOS alarm as a repeat (counted, re-notified)."""
    return AlarmTransition(
        action=Action.RAISE,
        source_kind=SourceKind.PERSON,
        source_id=reading.person_id,
        alarm_type=AlarmType.SOS,
        severity=Severity.CRITICAL,
        at=reading.ts,
        emergency=True,
        detail=where(reading),
    )


def _apply_sos(state: PersonState, reading: WearableReading, ledger: AlarmLedger) -> PersonState:
    if not reading.sos:
        return state
    if reading.event_id is not None:
        if reading.event_id in state.recent_events:
            return state  # a device's retry of a press already handled
        state = _remember_event(state, reading.event_id)
    elif state.last_sos_ts is not None and reading.ts <= state.last_sos_ts:
        return state  # this press, or an older one, was handled already
    detail = where(reading)
    raised = ledger.raise_(AlarmType.SOS, Severity.CRITICAL, reading.ts, emergency=True, detail=detail)
    if not raised and reading.event_id is not None:
        # Another press while help is on its way: the control room must see it.
        ledger.repeat(AlarmType.SOS, reading.ts, detail=detail)
    newest = reading.ts if state.last_sos_ts is None else max(state.last_sos_ts, reading.ts)
    return evolve(state, last_sos_ts=newest)


def _apply_fall(
    state: PersonState,
    config: PersonConfig,
    reading: WearableReading,
    now: datetime,
    ledger: AlarmLedger,
) -> PersonState:
    if not reading.fall:
        return state
    if reading.event_id is not None:
        if reading.event_id in state.recent_events:
            return state
        state = _remember_event(state, reading.event_id)
    elif state.last_fall_ts is not None and reading.ts <= state.last_fall_ts:
        return state
    newest = reading.ts if state.last_fall_ts is None else max(state.last_fall_ts, reading.ts)
    fall, cancels = open_fall(state.fall, state.recent_cancels, config, reading, now, ledger)
    return evolve(state, last_fall_ts=newest, fall=fall, recent_cancels=cancels)


def _apply_cancel(
    state: PersonState,
    config: PersonConfig,
    reading: WearableReading,
    now: datetime,
    ledger: AlarmLedger,
) -> PersonState:
    if not reading.cancel:
        return state
    if reading.event_id is not None:
        if reading.event_id in state.recent_events:
            return state
        state = _remember_event(state, reading.event_id)
    fall, cancels = cancel_fall(state.fall, state.recent_cancels, config, reading, now, ledger)
    return evolve(state, fall=fall, recent_cancels=cancels)


def _remember_event(state: PersonState, event_id: str) -> PersonState:
    return evolve(state, recent_events=(*state.recent_events, event_id)[-RECENT_EVENTS:])


def _apply_steps(state: PersonState, reading: WearableReading, ledger: AlarmLedger) -> PersonState:
    if reading.steps is None:
        return state
    previous = state.steps
    # A counter that went down was reset (a new day, a reboot); any steps since are motion.
    moved = previous is not None and (
        reading.steps > previous or (reading.steps < previous and reading.steps > 0)
    )
    state = evolve(state, steps=reading.steps)
    return record_motion(state, reading.ts, ledger, source="steps") if moved else state


def _deadlines(state: PersonState, config: PersonConfig) -> dict[AlarmType, datetime]:
    deadlines: dict[AlarmType, datetime | None] = {
        AlarmType.FALL_UNCANCELLED: uncancelled_deadline(state.fall, state.alarms),
        AlarmType.INACTIVITY: inactivity_deadline(state, config),
        AlarmType.BED_EXIT_NIGHT: bed_deadline(state, config),
        AlarmType.DOOR_OPEN_NIGHT: door_deadline(state, config),
        AlarmType.NOT_IN_BED: not_in_bed_deadline(state, config),
        AlarmType.NOT_UP: not_up_deadline(state, config),
    }
    return {k: v for k, v in deadlines.items() if v is not None}


def _timer_detail(alarm_type: AlarmType, state: PersonState, deadline: datetime) -> dict[str, Any]:
    detail: dict[str, Any] = {"due_at": dt_to_json(deadline)}
    if alarm_type is AlarmType.FALL_UNCANCELLED and state.fall is not None:
        detail["fall_at"] = dt_to_json(state.fall.fall_ts)
    elif alarm_type is AlarmType.INACTIVITY:
        detail["inactive_since"] = dt_to_json(state.inactive_since)
    elif alarm_type in (AlarmType.BED_EXIT_NIGHT, AlarmType.NOT_IN_BED, AlarmType.NOT_UP):
        detail["sensors"] = sorted(k for k, s in state.sensors.items() if s.kind == "bed")
    elif alarm_type is AlarmType.DOOR_OPEN_NIGHT:
        detail["sensors"] = sorted(
            k for k, s in state.sensors.items() if s.kind == "door" and s.value
        )
    return detail
