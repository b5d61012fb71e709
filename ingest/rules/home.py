"""Home-sensor rules: smoke, gas, water leak, and the night rules for bed and front door.

Smoke and gas are immediate emergencies, a water leak an immediate (non-emergency) alarm;
each clears when every sensor of its kind reports false again. The night rules are timers:
a bed left at night and not returned to within `bed_exit_s`, or a door open for
`door_open_s` of night time. Motion events feed the inactivity rule.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ingest.readings import HomeSensorEvent

from .alarms import AlarmLedger, AlarmType, Severity
from .inactivity import record_motion
from .person_config import PersonConfig
from .person_state import PersonState, SensorState
from .timewindows import contiguous_deadline, deadline_in_same_occurrence

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
    state = replace(state, sensors={**state.sensors, event.sensor_id: sensor})
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
        else:
            ledger.clear(alarm_type, event.ts, detail=detail)
    elif event.kind == "door" and not _sensors_on(state, "door"):
        ledger.clear(AlarmType.DOOR_OPEN_NIGHT, event.ts, detail=detail)
    elif event.kind == "bed" and _sensors_on(state, "bed"):
        ledger.clear(AlarmType.BED_EXIT_NIGHT, event.ts, detail=detail)
    return state


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
    return deadline_in_same_occurrence(
        config.night_window, config.tz, max(exits), timedelta(seconds=config.bed_exit_s)
    )


def _sensors_on(state: PersonState, kind: str) -> list[str]:
    return sorted(sid for sid, s in state.sensors.items() if s.kind == kind and s.value)
