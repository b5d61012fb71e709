"""How a unit's status report moves its assignment and its incident. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.incident_policy import LoopEvent
from dispatch.lifecycle import IncidentStatus, UnitStatus

U, I = UnitStatus, IncidentStatus


@dataclass(frozen=True, slots=True)
class Step:
    assignment_state: str
    incident_state: IncidentStatus | None  # None: the incident stays where it is
    loop_event: LoopEvent | None = None  # what it means for a water incident's closed loop


def step_for(incident_kind: str, old: UnitStatus, new: UnitStatus) -> Step:
    """The assignment follows the unit; the incident follows the unit's arrival and the
    patient's transport. A unit that drops out before arriving sends the incident back to
    the queue. A medical incident closes when its unit hands over (returning or available);
    a water incident waits for verification and close-out by the control room."""
    water = incident_kind == "water"
    if new in (U.EN_ROUTE, U.ON_SCENE, U.TRANSPORTING, U.AT_HOSPITAL):
        incident = {U.ON_SCENE: I.ON_SCENE, U.TRANSPORTING: I.TRANSPORTING}.get(new)
        return Step(new.value, incident, LoopEvent.UNIT_ON_SCENE if water and new is U.ON_SCENE else None)
    if old in (U.DISPATCHED, U.EN_ROUTE) or new is U.OUT_OF_SERVICE and old is not U.AT_HOSPITAL:
        return Step("refused", I.NEW if old in (U.DISPATCHED, U.EN_ROUTE) else None)
    return Step("done", None if water else I.CLOSED)
