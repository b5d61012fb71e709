"""Unit and incident lifecycles as explicit state machines.

A crew's status report or an operator's action is checked against the table before it is
stored: an ambulance that reports `on_scene` while `available` is a lost message or a
wrong button, and the control room must hear about it rather than have its board lie.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar


class UnitStatus(StrEnum):
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    RETURNING = "returning"
    OUT_OF_SERVICE = "out_of_service"


class IncidentStatus(StrEnum):
    NEW = "new"
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    CLOSED = "closed"
    CANCELLED = "cancelled"


U, I = UnitStatus, IncidentStatus

_UNIT_WORKFLOW: dict[UnitStatus, frozenset[UnitStatus]] = {
    U.AVAILABLE: frozenset({U.DISPATCHED}),
    # Stood down before moving: refused, no answer within the re-dispatch window, or the
    # incident was cancelled.
    U.DISPATCHED: frozenset({U.EN_ROUTE, U.AVAILABLE}),
    # Stood down on the way (cancelled, or another unit got there first).
    U.EN_ROUTE: frozenset({U.ON_SCENE, U.RETURNING}),
    # Treated on scene or the patient declined transport: no hospital leg.
    U.ON_SCENE: frozenset({U.TRANSPORTING, U.RETURNING}),
    U.TRANSPORTING: frozenset({U.AT_HOSPITAL}),
    U.AT_HOSPITAL: frozenset({U.RETURNING, U.AVAILABLE}),
    # A top-priority call may take a returning unit (DOMAIN.md), hence returning -> dispatched.
    U.RETURNING: frozenset({U.AVAILABLE, U.DISPATCHED}),
    U.OUT_OF_SERVICE: frozenset({U.AVAILABLE}),
}
# A breakdown or a crew change can happen in any state.
UNIT_TRANSITIONS: Mapping[UnitStatus, frozenset[UnitStatus]] = MappingProxyType(
    {
        state: nexts | {U.OUT_OF_SERVICE} if state is not U.OUT_OF_SERVICE else nexts
        for state, nexts in _UNIT_WORKFLOW.items()
    }
)

INCIDENT_TRANSITIONS: Mapping[IncidentStatus, frozenset[IncidentStatus]] = MappingProxyType(
    {
        # dispatched -> new: every candidate refused or was stood down; back to the queue.
        I.NEW: frozenset({I.DISPATCHED, I.CANCELLED}),
        I.DISPATCHED: frozenset({I.ON_SCENE, I.NEW, I.CANCELLED}),
        # on_scene -> closed: treated on scene, no transport.
        I.ON_SCENE: frozenset({I.TRANSPORTING, I.CLOSED, I.CANCELLED}),
        I.TRANSPORTING: frozenset({I.CLOSED, I.CANCELLED}),
        I.CLOSED: frozenset(),
        I.CANCELLED: frozenset(),
    }
)

S = TypeVar("S", UnitStatus, IncidentStatus)


class AssignmentState(StrEnum):
    """One unit's part in one incident: it follows the unit (dispatch/progress.py)."""

    ORDERED = "ordered"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    DONE = "done"
    REFUSED = "refused"  # declined, or no en_route within the re-dispatch window
    STOOD_DOWN = "stood_down"  # released by the control room or a manual re-assignment


# The open and closed sets, defined here once. As value tuples so that SQL takes them as
# parameters (`state = ANY(%s)`) instead of spelling the states out again.
CLOSED_INCIDENT: frozenset[IncidentStatus] = frozenset(
    state for state, nexts in INCIDENT_TRANSITIONS.items() if not nexts
)
OPEN_INCIDENT: frozenset[IncidentStatus] = frozenset(IncidentStatus) - CLOSED_INCIDENT
OPEN_ASSIGNMENT: frozenset[AssignmentState] = frozenset(
    {AssignmentState.ORDERED, AssignmentState.EN_ROUTE, AssignmentState.ON_SCENE,
     AssignmentState.TRANSPORTING, AssignmentState.AT_HOSPITAL}
)
# A unit is free for a new call once it is in one of these (the queue is then served).
FREE_UNIT: frozenset[UnitStatus] = frozenset({U.AVAILABLE, U.RETURNING})


def values(states: Iterable[StrEnum]) -> list[str]:
    """A state set as a sorted list of its values, the parameter of `state = ANY(%s)`."""
    return sorted(s.value for s in states)


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow; says what was expected and what came."""

    def __init__(
        self, machine: str, current: str, new: str, expected: frozenset[str], *, known: bool = True
    ) -> None:
        self.machine, self.current, self.new, self.expected = machine, current, new, expected
        allowed = (
            f"one of {', '.join(sorted(expected))}"
            if expected
            else f"nothing ({current!r} is final)"
        )
        what = (
            f"go from {current!r} to {new!r}"
            if known
            else f"go from {current!r} to unknown status {new!r}"
        )
        super().__init__(f"{machine} cannot {what}: expected {allowed}")


def allowed_next(current: S) -> frozenset[S]:
    table = UNIT_TRANSITIONS if isinstance(current, UnitStatus) else INCIDENT_TRANSITIONS
    return table[current]


def transition(current: S, new: S | str) -> S:
    """The new status if the lifecycle allows it, else IllegalTransition. `new` may be the
    raw string from an MQTT payload. Repeating the current status is allowed and changes
    nothing: QoS 1 delivers at least once, so a crew's `on_scene` can arrive twice."""
    status_type = type(current)
    machine = "unit" if status_type is UnitStatus else "incident"
    expected = allowed_next(current)
    try:
        target = status_type(new)
    except ValueError:
        raise IllegalTransition(
            machine, current.value, str(new), frozenset(s.value for s in expected), known=False
        ) from None
    if target is current:
        return current
    if target not in expected:
        raise IllegalTransition(
            machine, current.value, target.value, frozenset(s.value for s in expected)
        )
    return target


def is_open(status: IncidentStatus | str) -> bool:
    return IncidentStatus(status) in OPEN_INCIDENT


def can_reach(current: S, target: S) -> bool:
    """Whether the lifecycle allows `current` -> `target` (repeating `current` included)."""
    return target is current or target in allowed_next(current)


def reachable_from(target: UnitStatus) -> frozenset[UnitStatus]:
    """The unit statuses from which `target` may be entered: the guard a conditional
    UPDATE puts in its WHERE, derived from the table rather than written out."""
    return frozenset(state for state, nexts in UNIT_TRANSITIONS.items() if target in nexts)


def released(current: UnitStatus) -> UnitStatus | None:
    """Where a unit goes when the control room releases it from its incident: available if
    it had not set off, returning if it is out on the road; None when the lifecycle allows
    neither (a unit carrying a patient finishes that leg first, one out of service stays so)."""
    if current is U.OUT_OF_SERVICE:
        return None
    for target in (U.AVAILABLE, U.RETURNING):
        if target in allowed_next(current):
            return target
    return None
