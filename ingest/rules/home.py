"""Home-sensor rules: smoke, gas, water leak, and the night rules for bed and front door.

Smoke and gas are immediate emergencies, a water leak an immediate (non-emergency) alarm;
each clears when every sensor of its kind reports false again. The night rules are timers:
a bed left at night and not returned to within `bed_exit_s`, or a door open for
`door_open_s` of night time. Motion events feed the inactivity rule.

With a bed sensor, two more timers bracket the night: the bed still empty at the person's
`bed_by` ("not in bed by": someone who collapsed in the evening is looked for that evening,
not after the inactivity clock's night pause) and still occupied at `up_by` ("not up by").
A bed left near the end of the night, so late that `bed_exit_s` would run past the window,
is getting up only if motion follows; without any, it alarms at the exit + `bed_exit_s`.
Every timer runs from the sensors' own times, so a late event moves it as if it had come on
time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ingest.readings import HomeSensorEvent

from ._evolve import evolve
from .alarms import Action, AlarmLedger, AlarmTransition, AlarmType, Severity, SourceKind
from .inactivity import record_motion
from .person_config import PersonConfig
from .person_state import PersonState, SensorState
from .timewindows import contiguous_deadline, deadline_in_same_occurrence, next_local_time

# kind -> (alarm, severity, emergency incident)
HAZARDS: dict[str, tuple[AlarmType, Severity, bool]] = {
    "smoke": (AlarmType.SMOKE, Severity.CRITICAL, True),
    "gas": (AlarmType.GAS, Severity.CRITICAL, True),
    "water_leak": (AlarmType.WATER_LEAK, Severity.MAJOR, False),
}
# Sensors whose latest value the rules must remember. Temperature is stored by ingest but
# drives no rule here.
STATEFUL_KINDS: frozenset[str] = frozenset({"door", "bed", *HAZARDS})


def apply_home_event(
    state: PersonState, event: HomeSensorEvent, ledger: AlarmLedger
) -> PersonState:
    if event.kind == "motion":
        if bool(event.value):  # true, or a non-zero count of detections
            return record_motion(state, event.ts, ledger, source=f"home:{event.sensor_id}")
        return state
    if event.kind not in STATEFUL_KINDS:
        return state
    previous = state.sensors.get(event.sensor_id)
    if previous is not None and event.ts <= previous.last_ts:
        # Stale or duplicate: a newer value from this sensor is already known.
        return state
    value = bool(event.value)
    unchanged = previous is not None and previous.kind == event.kind and previous.value == value
    sensor = SensorState(
        kind=event.kind,
        value=value,
        since=previous.since if unchanged and previous is not None else event.ts,
        last_ts=event.ts,
    )
    state = evolve(state, sensors={**state.sensors, event.sensor_id: sensor})
    detail: dict[str, object] = {"sensor_id": event.sensor_id, "kind": event.kind, "value": value}
    if event.event_id is not None:  # from the alert lane
        detail.update(event_id=event.event_id, clock_suspect=event.clock_suspect)

    if event.kind in HAZARDS:
        alarm_type, severity, emergency = HAZARDS[event.kind]
        active = _sensors_on(state, event.kind)
        if active:
            ledger.raise_(
                alarm_type,
                severity,
                event.ts,
                emergency=emergency,
                detail={**detail, "sensors": active},
            )
        elif not ledger.clear(alarm_type, event.ts, detail=detail):
            # The alarm may be open all the same: raised from the alert topic straight into
            # the alarm store (`hazard_alarm`), which this state never sees.
            ledger.clear_unheld(alarm_type, severity, event.ts, emergency=emergency, detail=detail)
    elif event.kind == "door" and not _sensors_on(state, "door"):
        ledger.clear(AlarmType.DOOR_OPEN_NIGHT, event.ts, detail=detail)
    elif event.kind == "bed" and _sensors_on(state, "bed"):
        ledger.clear(AlarmType.BED_EXIT_NIGHT, event.ts, detail=detail)
        ledger.clear(AlarmType.NOT_IN_BED, event.ts, detail=detail)
    elif event.kind == "bed":
        ledger.clear(AlarmType.NOT_UP, event.ts, detail=detail)
    return state


def hazard_alarm(event: HomeSensorEvent) -> AlarmTransition:
    """The alarm of a detector that went off, without the person's state: the alert lane
    raises it this way, so that it never waits for the state an ingest batch holds. Its
    `alerts` table drops a repeated event id, and the alarm store joins a second detector (or
    the detector's own telemetry) to the open alarm as a repeat. The detector reporting clear
    on the home topic clears it (`apply_home_event`)."""
    alarm_type, severity, emergency = HAZARDS[event.kind]
    detail: dict[str, object] = {"sensor_id": event.sensor_id, "kind": event.kind, "value": True, "sensors": [event.sensor_id]}
    if event.event_id is not None:
        detail.update(event_id=event.event_id, clock_suspect=event.clock_suspect)
    return AlarmTransition(
        action=Action.RAISE,
        source_kind=SourceKind.PERSON,
        source_id=event.person_id,
        alarm_type=alarm_type,
        severity=severity,
        at=event.ts,
        emergency=emergency,
        detail=detail,
    )


def door_deadline(state: PersonState, config: PersonConfig) -> datetime | None:
    """When some open door will have been open for `door_open_s` of night time; a door
    left open since the afternoon alarms `door_open_s` after the night begins."""
    if AlarmType.DOOR_OPEN_NIGHT in state.alarms:
        return None
    needed = timedelta(seconds=config.door_open_s)
    deadlines = [
        contiguous_deadline(config.night_window, config.tz, sensor.since, needed)
        for sensor in state.sensors.values()
        if sensor.kind == "door" and sensor.value
    ]
    return min((d for d in deadlines if d is not None), default=None)


def bed_deadline(state: PersonState, config: PersonConfig) -> datetime | None:
    """When a bed left during the night will have stayed empty for `bed_exit_s`. Only an
    exit at night counts (an empty bed in the evening is someone not yet in bed), and only
    within that same night (getting up at 05:50 is getting up)."""
    if AlarmType.BED_EXIT_NIGHT in state.alarms or _sensors_on(state, "bed"):
        return None
    exits = [s.since for s in state.sensors.values() if s.kind == "bed" and not s.value]
    if not exits:
        return None
    left = max(exits)
    needed = timedelta(seconds=config.bed_exit_s)
    deadline = deadline_in_same_occurrence(config.night_window, config.tz, left, needed)
    if deadline is not None or not config.night_window.contains(config.tz, left):
        return deadline
    # Left within `bed_exit_s` of the night's end: up for the day if seen moving since.
    if state.inactive_since is not None and state.inactive_since > left:
        return None
    return left + needed


def not_in_bed_deadline(state: PersonState, config: PersonConfig) -> datetime | None:
    """The person's next `bed_by` with every bed empty since. A bed left during the night is
    the bed-exit rule's: this one then waits for the next evening."""
    beds = [s for s in state.sensors.values() if s.kind == "bed"]
    if config.bed_by is None or AlarmType.NOT_IN_BED in state.alarms or not beds:
        return None
    if any(s.value for s in beds):
        return None
    left = max(s.since for s in beds)
    night, tz = config.night_window, config.tz
    if not night.all_day and night.contains(tz, left):
        _start, left = next(night.occurrences(tz, left))
    return next_local_time(config.bed_by, tz, left)


def not_up_deadline(state: PersonState, config: PersonConfig) -> datetime | None:
    """The person's next `up_by` after they went to bed, if still in bed then."""
    occupied = [s.since for s in state.sensors.values() if s.kind == "bed" and s.value]
    if config.up_by is None or AlarmType.NOT_UP in state.alarms or not occupied:
        return None
    return next_local_time(config.up_by, config.tz, min(occupied))


def _sensors_on(state: PersonState, kind: str) -> list[str]:
    return sorted(sid for sid, s in state.sensors.items() if s.kind == kind and s.value)
