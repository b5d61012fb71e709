"""Who goes: the assignment policy, the pending queue, and the hospital and first-aid post
that go with a dispatch. Pure: units, ETAs and `now` come in, a Decision goes out, and the
Decision carries the rule that chose and why every other unit was passed over, because each
dispatch decision is an audit record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The lifecycle is re-exported: one import gives a caller the policy and the states it drives.
from .lifecycle import IllegalTransition, IncidentStatus, UnitStatus, transition

__all__ = [
    "Candidate",
    "Decision",
    "Exclusion",
    "Facility",
    "FacilityChoice",
    "IllegalTransition",
    "Incident",
    "IncidentStatus",
    "Priority",
    "Unit",
    "UnitStatus",
    "choose_hospital",
    "decide",
    "nearest_first_aid_post",
    "next_candidate",
    "order_pending",
    "rank_key",
    "redispatch_due",
    "transition",
]

# A position older than this says where the unit was, not where it is (units report every
# 5 s; a minute covers a tunnel or a dead zone but not a drive across town).
STALE_GPS_S = 60.0
# A stale fix away from the unit's base is widened, not ranked last: in the fix's age the
# unit could have driven that long away from it, and needs as long again to come back, so
# its ETA grows by the age — up to this cap, past which the fix says nothing more (a crew
# that drove off 20 minutes ago is somewhere in the county either way). A unit `available`
# at its base is at its base whatever its fix's age: a parked terminal is quiet.
STALE_WIDEN_MAX_S = 900.0
# Equal ETAs: the ranking compares ETAs rounded to this many seconds, then unit ids, so float
# noise between two routes of the same length never decides, and the order never flickers.
ETA_TIE_S = 1.0
# A dispatched unit that has not reported en_route by then is treated as refusing.
REDISPATCH_AFTER_S = 60.0


class Priority(IntEnum):
    """1 is the most urgent. MPDS determinants map onto it: echo and delta are 1 (life
    threat), charlie 2, bravo 3, alpha and omega 4."""

    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4

    @classmethod
    def parse(cls, value: int | str) -> Priority:
        if isinstance(value, str):
            key = value.strip().lower()
            if key in _MPDS:
                return _MPDS[key]
            if key.isdigit():
                value = int(key)
        try:
            return cls(int(value))
        except (TypeError, ValueError):
            raise ValueError(
                f"priority {value!r} is not 1-4 or an MPDS level (echo, delta, charlie, bravo, alpha, omega)"
            ) from None

    @property
    def is_top(self) -> bool:
        return self is Priority.P1


_MPDS = {
    "echo": Priority.P1,
    "e": Priority.P1,
    "delta": Priority.P1,
    "d": Priority.P1,
    "charlie": Priority.P2,
    "c": Priority.P2,
    "bravo": Priority.P3,
    "b": Priority.P3,
    "alpha": Priority.P4,
    "a": Priority.P4,
    "omega": Priority.P4,
    "o": Priority.P4,
}


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    priority: Priority
    created_at: datetime
    unit_kind: str = "ambulance"  # water incidents need a river_patrol


@dataclass(frozen=True, slots=True)
class Unit:
    unit_id: str
    kind: str
    status: UnitStatus
    node: int | None  # snapped GPS position; None before the first fix
    gps_at: datetime | None = None
    at_base: bool = False  # available and parked at its base (fix there, or no fix at all)


@dataclass(frozen=True, slots=True)
class Candidate:
    unit_id: str
    status: UnitStatus
    eta_s: float
    stale: bool
    gps_age_s: float | None
    widened_s: float = 0.0  # added to the road ETA for a stale fix away from base
    at_base: bool = False


@dataclass(frozen=True, slots=True)
class Exclusion:
    unit_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    incident_id: str
    priority: Priority
    decided_at: datetime
    chosen: Candidate | None
    ranked: tuple[Candidate, ...]  # best first, the chosen one included
    excluded: tuple[Exclusion, ...]
    rule: str
    refused: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def cand(c: Candidate) -> dict[str, Any]:
            return {
                "unit_id": c.unit_id,
                "status": c.status.value,
                "eta_s": round(c.eta_s, 1),
                "stale": c.stale,
                "gps_age_s": c.gps_age_s,
                "widened_s": round(c.widened_s, 1),
                "at_base": c.at_base,
            }

        return {
            "incident_id": self.incident_id,
            "priority": int(self.priority),
            "decided_at": self.decided_at.isoformat(),
            "rule": self.rule,
            "chosen": None if self.chosen is None else cand(self.chosen),
            "ranked": [cand(c) for c in self.ranked],
            "excluded": [{"unit_id": e.unit_id, "reason": e.reason} for e in self.excluded],
            "refused": list(self.refused),
        }


def decide(
    incident: Incident,
    units: Iterable[Unit],
    etas: Mapping[str, float],
    now: datetime,
    *,
    stale_after_s: float = STALE_GPS_S,
) -> Decision:
    """Nearest eligible unit by road time. Eligible: the right kind, `available` (or
    `returning` for a priority-1 call), a position, and a finite ETA. A unit parked at its
    base is where its base is, whatever its fix's age; a stale fix elsewhere has its ETA
    widened by the fix's age (up to STALE_WIDEN_MAX_S). Ranked by the ETA rounded to
    ETA_TIE_S, then unit_id."""
    statuses = (
        {UnitStatus.AVAILABLE, UnitStatus.RETURNING}
        if incident.priority.is_top
        else {UnitStatus.AVAILABLE}
    )
    ranked: list[Candidate] = []
    excluded: list[Exclusion] = []
    for unit in units:
        eta = etas.get(unit.unit_id, math.inf)
        reason = _exclusion(unit, incident, statuses, eta)
        if reason is not None:
            excluded.append(Exclusion(unit.unit_id, reason))
            continue
        age = None if unit.gps_at is None else (now - unit.gps_at).total_seconds()
        stale = not unit.at_base and (age is None or age > stale_after_s)
        widened = (STALE_WIDEN_MAX_S if age is None else min(age, STALE_WIDEN_MAX_S)) if stale else 0.0
        ranked.append(
            Candidate(unit.unit_id, unit.status, float(eta) + widened, stale, age, widened, unit.at_base)
        )
    ranked.sort(key=rank_key)
    excluded.sort(key=lambda e: e.unit_id)
    decision = Decision(
        incident.incident_id, incident.priority, now, None, tuple(ranked), tuple(excluded), ""
    )
    return _choose(decision, stale_after_s)


def rank_key(candidate: Candidate) -> tuple[int, str]:
    """The documented tie-break: the ETA rounded to ETA_TIE_S, then the unit id."""
    return (round(candidate.eta_s / ETA_TIE_S), candidate.unit_id)


def next_candidate(
    decision: Decision, refused_unit: str, now: datetime, *, stale_after_s: float = STALE_GPS_S
) -> Decision:
    """The same ranking without `refused_unit` (and those refused before): for re-dispatch
    when the chosen unit declined or did not go en_route in REDISPATCH_AFTER_S. The ETAs are
    a minute old by then; a caller that can afford one more Dijkstra should call decide."""
    refused = (
        (*decision.refused, refused_unit)
        if refused_unit not in decision.refused
        else decision.refused
    )
    return _choose(replace(decision, decided_at=now, refused=refused), stale_after_s)


def redispatch_due(
    dispatched_at: datetime, now: datetime, *, after_s: float = REDISPATCH_AFTER_S
) -> bool:
    return (now - dispatched_at).total_seconds() >= after_s


def order_pending(incidents: Iterable[Incident]) -> list[Incident]:
    """Waiting incidents in the order they should get the next free unit: most urgent
    first, then the longest waiting, then by id so the order never flickers."""
    return sorted(incidents, key=lambda i: (int(i.priority), i.created_at, i.incident_id))


def _exclusion(unit: Unit, incident: Incident, statuses: set[UnitStatus], eta: float) -> str | None:
    """Why `unit` cannot take `incident`, or None if it can."""
    if unit.kind != incident.unit_kind:
        return f"kind {unit.kind}, incident needs {incident.unit_kind}"
    if unit.status not in statuses:
        return f"status {unit.status.value}"
    if unit.node is None:
        return "no position"
    if not math.isfinite(eta):
        return "unreachable by road"
    return None


def _choose(decision: Decision, stale_after_s: float) -> Decision:
    left = [c for c in decision.ranked if c.unit_id not in decision.refused]
    after = f" after {', '.join(decision.refused)} refused" if decision.refused else ""
    if not left:
        why = "every eligible unit refused" if decision.ranked else "no eligible unit"
        return replace(decision, chosen=None, rule=f"no candidate: {why}{after}")
    chosen = left[0]
    if chosen.stale:
        rule = (f"nearest by road time; its fix is over {stale_after_s:g} s old away from base, "
                f"ETA widened by {chosen.widened_s:.0f} s")
    elif chosen.status is UnitStatus.RETURNING:
        rule = f"nearest available or returning by road time (priority {int(decision.priority)})"
    else:
        rule = "nearest available by road time"
    return replace(decision, chosen=chosen, rule=rule + after)


# -- the other two tiers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facility:
    facility_id: str
    node: int
    capabilities: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FacilityChoice:
    facility_id: str
    eta_s: float
    rule: str


def choose_hospital(
    hospitals: Sequence[Facility],
    seconds_from_scene: NDArray[np.float64],
    *,
    capability: str | None = None,
    designated: str | None = None,
) -> FacilityChoice | None:
    """The receiving hospital. `seconds_from_scene` is node-indexed travel time *from* the
    scene (eta_from). A designated hospital wins if reachable; otherwise the nearest with
    the capability; otherwise, rather than no hospital, the nearest at all."""
    reachable = [
        (float(seconds_from_scene[h.node]), h)
        for h in hospitals
        if np.isfinite(seconds_from_scene[h.node])
    ]
    if designated is not None:
        for eta, h in reachable:
            if h.facility_id == designated:
                return FacilityChoice(h.facility_id, eta, "designated hospital")
    if capability is not None:
        capable = [(eta, h) for eta, h in reachable if capability in h.capabilities]
        if capable:
            eta, h = min(capable, key=lambda p: (p[0], p[1].facility_id))
            return FacilityChoice(h.facility_id, eta, f"nearest with {capability} by road time")
    if not reachable:
        return None
    eta, h = min(reachable, key=lambda p: (p[0], p[1].facility_id))
    lacking = f"no reachable hospital with {capability}: " if capability is not None else ""
    return FacilityChoice(h.facility_id, eta, f"{lacking}nearest hospital by road time")


def nearest_first_aid_post(
    posts: Sequence[Facility], seconds_to_scene: NDArray[np.float64]
) -> FacilityChoice | None:
    """The village post whose responder reaches the patient first; `seconds_to_scene` is
    node-indexed travel time *to* the scene (eta_to), like the units'."""
    reachable = [
        (float(seconds_to_scene[p.node]), p.facility_id)
        for p in posts
        if np.isfinite(seconds_to_scene[p.node])
    ]
    if not reachable:
        return None
    eta, facility_id = min(reachable)
    return FacilityChoice(facility_id, eta, "nearest first-aid post by road time")
