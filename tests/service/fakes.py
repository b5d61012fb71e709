"""In-memory stand-ins for the dispatcher's collaborators: a store that keeps incidents,
units and assignments in dicts and decides with the same pure policy as the real one
(decide, next_candidate, order_pending, redispatch_due, transition), and a publisher that
keeps what it was given."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dispatch.assignment import (
    Incident,
    IncidentStatus,
    Priority,
    Unit,
    UnitStatus,
    decide,
    next_candidate,
    order_pending,
    redispatch_due,
    transition,
)
from dispatch.lifecycle import FREE_UNIT, AssignmentState
from dispatch.store import Order, Queued


@dataclass
class FakeAssignment:
    incident_id: str
    unit_id: str
    ordered_at: datetime
    state: AssignmentState = AssignmentState.ORDERED


@dataclass
class FakeStore:
    """Units sit at fixed road times from every scene (`eta_s`); each has a position."""

    units: dict[str, Unit] = field(default_factory=dict)
    eta_s: dict[str, float] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    states: dict[str, IncidentStatus] = field(default_factory=dict)
    assignments: list[FakeAssignment] = field(default_factory=list)

    def add_unit(self, unit_id: str, eta_s: float, kind: str = "ambulance", at: datetime | None = None) -> None:
        self.units[unit_id] = Unit(unit_id, kind, UnitStatus.AVAILABLE, node=0, gps_at=at)
        self.eta_s[unit_id] = eta_s

    def add_incident(self, incident_id: str, priority: int, created_at: datetime, unit_kind: str = "ambulance") -> None:
        self.incidents[incident_id] = Incident(incident_id, Priority(priority), created_at, unit_kind)
        self.states[incident_id] = IncidentStatus.NEW

    def unit_status(self, unit_id: str) -> UnitStatus:
        return self.units[unit_id].status

    def _set_unit(self, unit_id: str, status: UnitStatus) -> None:
        u = self.units[unit_id]
        self.units[unit_id] = Unit(u.unit_id, u.kind, transition(u.status, status), u.node, u.gps_at)

    async def pending_incidents(self) -> list[str]:
        waiting = [i for i in self.incidents.values() if self.states[i.incident_id] is IncidentStatus.NEW]
        return [i.incident_id for i in order_pending(waiting)]

    async def assign(self, incident_id: str, now: datetime, skip_kinds: frozenset[str]) -> Order | Queued | None:
        incident = self.incidents[incident_id]
        if self.states[incident_id] is not IncidentStatus.NEW:
            return None
        if incident.unit_kind in skip_kinds:
            return Queued(incident.unit_kind)
        decision = decide(incident, self.units.values(), self.eta_s, now)
        for a in self.assignments:
            if a.incident_id == incident_id and a.state is AssignmentState.REFUSED:
                decision = next_candidate(decision, a.unit_id, now)
        if decision.chosen is None:
            return Queued(incident.unit_kind)
        unit_id = decision.chosen.unit_id
        self._set_unit(unit_id, UnitStatus.DISPATCHED)
        self.states[incident_id] = transition(self.states[incident_id], IncidentStatus.DISPATCHED)
        self.assignments.append(FakeAssignment(incident_id, unit_id, now))
        return Order(unit_id, incident_id, int(incident.priority), 30.8, 120.9, "", decision.chosen.eta_s, None, None)

    async def refuse_overdue(self, now: datetime, after_s: float) -> list[str]:
        refused = []
        for a in self.assignments:
            if a.state is AssignmentState.ORDERED and redispatch_due(a.ordered_at, now, after_s=after_s):
                a.state = AssignmentState.REFUSED
                self._set_unit(a.unit_id, UnitStatus.AVAILABLE)
                self.states[a.incident_id] = transition(self.states[a.incident_id], IncidentStatus.NEW)
                refused.append(a.incident_id)
        return refused

    async def apply_unit_status(self, unit_id: str, status: str, reported_at: datetime, now: datetime) -> bool:
        new = transition(self.units[unit_id].status, status)
        self._set_unit(unit_id, new)
        for a in self.assignments:
            if a.unit_id == unit_id and a.state is AssignmentState.ORDERED and new is UnitStatus.EN_ROUTE:
                a.state = AssignmentState.EN_ROUTE
        return new in FREE_UNIT

    async def record_position(self, unit_id: str, lat: float, lon: float, at: datetime) -> None:
        u = self.units[unit_id]
        self.units[unit_id] = Unit(u.unit_id, u.kind, u.status, u.node, at)


@dataclass
class FakePublisher:
    orders: list[Order] = field(default_factory=list)

    async def __call__(self, order: Order) -> None:
        self.orders.append(order)

    def sent(self) -> list[tuple[str, str]]:
        """(unit, incident) of every order, in publishing order."""
        return [(o.unit_id, o.incident_id) for o in self.orders]
