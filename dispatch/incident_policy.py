"""Which alarms open which incidents, where a person's incident is placed, and the water
incidents' closed loop. Pure: no database, no broker; the clock is passed in.

The dispatcher owns incidents: it opens one when it hears an incident-opening alarm (or finds
one without an incident in its sweep) and asks this module what to open and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# Person emergencies: alarm type -> (incident kind, priority 1..4, 1 most urgent).
# Priorities per kind: a medical emergency is 1 when life is threatened now (SOS, heart rate
# out of range) and 2 when it can be (an uncancelled fall, low SpO2); smoke in the home of a
# person living alone is a fire until verified: 1; a gas leak with no fire is 2 — the crew
# ventilates and the gas company shuts off, and a person who does not answer or is hurt makes
# it 1 with an ambulance (companion_for).
INCIDENT_FOR: dict[str, tuple[str, int]] = {
    "sos": ("medical", 1),
    "fall_uncancelled": ("medical", 2),
    "heart_rate_low": ("medical", 1),
    "heart_rate_high": ("medical", 1),
    "spo2_low": ("medical", 2),
    "smoke": ("fire", 1),
    "gas": ("gas", 2),
}

# The right service: the unit kind each incident kind needs. Fire and gas go to the
# fire-and-rescue crews, not to an ambulance (DOMAIN.md, CONTRACT.md version 2).
UNIT_KIND_FOR: dict[str, str] = {"medical": "ambulance", "fire": "fire", "gas": "fire", "water": "river_patrol"}
# Who else is told when the unit is sent: the fire service's 119 centre for fire and gas, and
# for gas the gas company too; each hand-off is an audit record with the facility it went to.
HANDOFFS: dict[str, tuple[str, ...]] = {"fire": ("fire_service_119",), "gas": ("fire_service_119", "gas_company")}
# The facility kind (registry) that takes each hand-off.
HANDOFF_FACILITY: dict[str, str] = {"fire_service_119": "fire_station", "gas_company": "gas_company"}
# Why a fire or gas incident gets an ambulance as well.
COMPANION_REASONS = frozenset({"hurt", "no_answer"})
# The receiving hospital and the village first-aid post go with a patient, not a fire crew.
MEDICAL_KINDS = frozenset({"medical"})


def unit_kind_for(incident_kind: str) -> str:
    """The unit kind an incident needs; an unknown kind is treated as medical (an ambulance
    sent in doubt is better than none)."""
    return UNIT_KIND_FOR.get(incident_kind, "ambulance")


def handoffs_for(incident_kind: str) -> tuple[str, ...]:
    return HANDOFFS.get(incident_kind, ())


def companion_for(incident_kind: str, reason: str) -> IncidentSpec | None:
    """The ambulance a fire or gas incident gets when someone is hurt or the person does not
    answer: a medical incident at priority 1. None when the reason or the kind calls for none."""
    if reason not in COMPANION_REASONS:
        raise ValueError(f"reason {reason!r}: expected one of {', '.join(sorted(COMPANION_REASONS))}")
    if incident_kind not in HANDOFFS:
        return None
    return IncidentSpec("medical", 1, for_person=False)


# --- the verification call at a fire or gas incident in a person's home -------------------
# The control room calls the person (or a neighbour) as soon as a smoke or gas alarm opens an
# incident: answered and unhurt, the fire crew goes alone; hurt, or nobody answers, an
# ambulance goes too. Nothing waits on the call: with no answer recorded by VERIFY_WITHIN the
# dispatcher counts it as no answer and adds the ambulance itself. Two minutes is about four
# unanswered rings and a retry; the ambulance then still leaves well before a fire crew has
# reported from the scene (8–15 minutes in the county).
VERIFY_WITHIN = timedelta(minutes=2)


class Verification(StrEnum):
    OK = "ok"  # the person answered, nobody is hurt
    HURT = "hurt"  # someone is hurt
    NO_ANSWER = "no_answer"  # nobody answered the call (or nobody recorded an answer in time)


def needs_verification(incident_kind: str, person_id: str | None) -> bool:
    """A fire or gas incident at a person's home is verified by a call; a station's or a
    companion's incident is not."""
    return person_id is not None and incident_kind in HANDOFFS


def companion_reason(outcome: Verification) -> str | None:
    """The reason an ambulance goes too, or None when the person answered unhurt."""
    return None if outcome is Verification.OK else outcome.value


# A station worse than its target class opens the river patrol's closed loop: on its
# real-time readings, or on the hourly averages it uploads (the wet-chemistry parameters).
WATER_ALARM = "water_class_exceeded"
WATER_HOURLY_ALARM = "water_hourly_exceeded"
WATER_ALARMS = frozenset({WATER_ALARM, WATER_HOURLY_ALARM})
WATER_PRIORITY = 3



@dataclass(frozen=True, slots=True)
class LinkedAlarm:
    """A water alarm already linked to a station's incident, as far as joining is concerned."""

    alarm_type: str
    parameter: str | None
    raised: bool  # not cleared


def same_exceedance(alarm_type: str, parameter: str | None, linked: Iterable[LinkedAlarm]) -> bool:
    """Whether a water alarm is an exceedance the incident already stands for: the other
    record (real-time readings or the station's hourly uploads) of the same parameter is
    still raised there. The hourly rule sees an exceedance hours after the real-time one (it
    waits for three hours of uploads), when the patrol may already have closed its incident
    out; it is still the same water, and one patrol goes, not two."""
    if alarm_type not in WATER_ALARMS or parameter is None:
        return False
    return any(a.raised and a.alarm_type in WATER_ALARMS and a.alarm_type != alarm_type and a.parameter == parameter for a in linked)


# The alarms that carry the wearer's own fix and event id (an alert or a telemetry flag).
ALERT_ALARMS = frozenset({"sos", "fall", "fall_uncancelled"})

# How old the wearable's latest fix may be to place a new incident. An elderly walker covers
# about 800 m in 10 minutes; an older fix can be further from the person than their home, so
# past that the home address is as good a guess and is the one the family knows.
RECENT_FIX_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class IncidentSpec:
    """What an alarm opens: a person's emergency or a station's patrol loop."""

    kind: str
    priority: int
    for_person: bool


def incident_for(alarm_type: str, *, emergency: bool, person_id: str | None) -> IncidentSpec | None:
    """The incident an alarm opens, or None when it opens none."""
    if alarm_type in WATER_ALARMS:
        return IncidentSpec("water", WATER_PRIORITY, for_person=False)
    if emergency and person_id is not None and alarm_type in INCIDENT_FOR:
        kind, priority = INCIDENT_FOR[alarm_type]
        return IncidentSpec(kind, priority, for_person=True)
    return None


# --- where the person is -------------------------------------------------------------------


class LocationSource(StrEnum):
    ALERT_FIX = "alert_fix"  # the fix the alert itself carried
    RECENT_FIX = "recent_fix"  # the wearable's latest fix, recent enough
    HOME = "home"  # the registry's home address


@dataclass(frozen=True, slots=True)
class Fix:
    lat: float
    lon: float
    acc_m: float | None
    at: datetime | None  # None: not known (the home address)


@dataclass(frozen=True, slots=True)
class Placement:
    fix: Fix
    source: LocationSource
    # A fix passed over because it lies far outside the service region (a receiver that lost
    # its almanac, a default 0, 0, a wearable abroad with its owner's relative): the control
    # room is told which one, and help goes to the next best place instead.
    untrusted: LocationSource | None = None


# Where a fix can be trusted: in the service region. The dispatcher answers from its road
# network (a road within walking reach); without one every fix is taken as it comes.
InRegion = Callable[[Fix], bool]


def anywhere(_fix: Fix) -> bool:
    return True


def alert_fix(detail: dict[str, Any], at: datetime) -> Fix | None:
    """The fix an alarm's detail carries (the alert lane's `lat, lon, acc_m`, or the wearable
    telemetry's `lat, lon` on the sos/fall flag path)."""
    lat, lon, acc = detail.get("lat"), detail.get("lon"), detail.get("acc_m")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float) or isinstance(lat, bool) or isinstance(lon, bool):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Fix(float(lat), float(lon), float(acc) if isinstance(acc, int | float) and not isinstance(acc, bool) else None, at)


def place(
    alert: Fix | None, latest: Fix | None, home: Fix, now: datetime, window: timedelta = RECENT_FIX_WINDOW,
    *, in_region: InRegion = anywhere,
) -> Placement:
    """Where help goes: the alert's fix, else the latest fix when recent, else home — each fix
    only if it is in the service region; the first one passed over is named."""
    untrusted: LocationSource | None = None
    if alert is not None:
        if in_region(alert):
            return Placement(alert, LocationSource.ALERT_FIX)
        untrusted = LocationSource.ALERT_FIX
    if latest is not None and latest.at is not None and now - latest.at <= window:
        if in_region(latest):
            return Placement(latest, LocationSource.RECENT_FIX, untrusted)
        untrusted = untrusted or LocationSource.RECENT_FIX
    return Placement(home, LocationSource.HOME, untrusted)


def moves_incident(current_at: datetime | None, fix: Fix, now: datetime, window: timedelta = RECENT_FIX_WINDOW) -> bool:
    """A newer fix moves an incident; an older or equal one (redelivered, reordered) does not,
    nor one too old to place a new incident. An incident placed at home (no fix time) moves to
    any recent fix. (Whether the fix is in the region is asked separately: an untrusted fix is
    reported, not followed.)"""
    if fix.at is None or now - fix.at > window:
        return False
    return current_at is None or fix.at > current_at


# --- the water incidents' closed loop ------------------------------------------------------


class LoopStage(StrEnum):
    """patrol → discover → supervise → close out, as the incident records it."""

    ASSIGNED = "assigned"  # a river patrol is sent (patrol)
    IN_PROGRESS = "in_progress"  # the patrol is at the station (discover, remedy)
    VERIFIED = "verified"  # the readings are back within the target (supervise)
    CLOSED = "closed"  # the control room closed it out


class LoopEvent(StrEnum):
    UNIT_ORDERED = "unit_ordered"
    UNIT_ON_SCENE = "unit_on_scene"
    ALARM_CLEARED = "alarm_cleared"
    CLOSED_OUT = "closed_out"


S, E = LoopStage, LoopEvent

# The whole loop, one table: (stage now, what happened) -> the next stage. None is an
# incident just opened. A pair not listed leaves the stage as it is: a verified finding stays
# verified when a patrol is re-sent, and a closed loop stays closed.
LOOP: dict[tuple[LoopStage | None, LoopEvent], LoopStage] = {
    (None, E.UNIT_ORDERED): S.ASSIGNED,
    (S.ASSIGNED, E.UNIT_ORDERED): S.ASSIGNED,
    (S.IN_PROGRESS, E.UNIT_ORDERED): S.ASSIGNED,
    (None, E.UNIT_ON_SCENE): S.IN_PROGRESS,
    (S.ASSIGNED, E.UNIT_ON_SCENE): S.IN_PROGRESS,
    (None, E.ALARM_CLEARED): S.VERIFIED,
    (S.ASSIGNED, E.ALARM_CLEARED): S.VERIFIED,
    (S.IN_PROGRESS, E.ALARM_CLEARED): S.VERIFIED,
    (None, E.CLOSED_OUT): S.CLOSED,
    (S.ASSIGNED, E.CLOSED_OUT): S.CLOSED,
    (S.IN_PROGRESS, E.CLOSED_OUT): S.CLOSED,
    (S.VERIFIED, E.CLOSED_OUT): S.CLOSED,
}


def next_loop_stage(kind: str, current: str | None, event: LoopEvent) -> str | None:
    """The loop stage after `event`: None for an incident outside the water loop, else the
    stage it moves to or the one it keeps."""
    if kind != "water":
        return None
    stage = LoopStage(current) if current is not None else None
    after = LOOP.get((stage, event), stage)
    return after.value if after is not None else None
