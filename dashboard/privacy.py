"""What a family member may see of an incident: their relative's incident, never the fleet.

An incident event as the control room sees it names the unit sent, its status and the
dispatcher's ranking of every candidate unit (ids, ETAs, GPS ages). A family member learns
only that help is on its way and, when a unit is assigned to *their* incident, its ETA; no
unit id, no position, no other unit. An allow-list, so a field added to incident events
later stays with the control room until someone decides otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from kernel.events import Event

FAMILY_INCIDENT_FIELDS = frozenset(
    {"incident_id", "kind", "priority", "state", "person_id", "lat", "lon", "description", "created_at", "updated_at",
     "closed_at", "queued"}
)
_HELP_STATES = frozenset({"dispatched", "on_scene", "transporting"})
_DOCTOR_COMING = frozenset({"waiting", "accepted"})


def family_incident(data: dict[str, Any]) -> dict[str, Any]:
    """The family's view of one incident (an event's data or a row of /api/incidents)."""
    view = {k: v for k, v in data.items() if k in FAMILY_INCIDENT_FIELDS}
    eta = data.get("eta_s")
    decision = data.get("decision")
    if eta is None and isinstance(decision, dict) and isinstance(decision.get("chosen"), dict):
        eta = decision["chosen"].get("eta_s")
    assigned = bool(data.get("unit_id")) or data.get("state") in _HELP_STATES
    view["help_on_the_way"] = assigned
    # The village doctor: the family learns that one is coming (or there), never who.
    response = data.get("first_response")
    if isinstance(response, dict):
        view["doctor_on_the_way"] = response.get("state") in _DOCTOR_COMING and not response.get("on_scene_at")
        view["doctor_on_scene"] = bool(response.get("on_scene_at")) and response.get("state") == "accepted"
    if assigned and isinstance(eta, int | float):
        view["eta_s"] = eta
    return view


def family_event(event: Event) -> Event:
    """The event as a family client receives it (alarm events are about their relative and
    carry no fleet data; incident events are reduced by `family_incident`)."""
    if event.type.value.startswith("incident."):
        return replace(event, data=family_incident(event.data))
    notification = event.data.get("notification")
    if isinstance(notification, dict) and "phone" in notification:
        # Who was called is shown to the family by name; a relative's number stays with them.
        return replace(event, data={**event.data, "notification": {k: v for k, v in notification.items() if k != "phone"}})
    return event


# --- the scoped tiers: village doctor, hospital, crew ------------------------------------------


@dataclass(eq=False)
class TierFilter:
    """What a scoped websocket (a village post, a hospital, a crew) is told: that one of its
    incidents changed, and nothing else. The message names the incident (and, for a unit's
    fix, the unit) but carries no person data: the page re-reads its board from its scoped
    route, which checks the scope again and writes the access log. An incident becomes the
    client's when an event names its scope (the doctor's alert, the chosen hospital, the
    unit ordered); `incidents` starts with those visible when the socket opened."""

    role: str  # first_aid, hospital or crew
    scope: str
    incidents: set[str] = field(default_factory=set)
    units: set[str] = field(default_factory=set)  # the units bringing a hospital's patients

    def names_scope(self, data: dict[str, Any]) -> bool:
        if self.role == "first_aid":
            response = data.get("first_response")
            return isinstance(response, dict) and response.get("post_id") == self.scope
        if self.role == "hospital":
            decision = data.get("decision")
            return data.get("hospital_id") == self.scope or (isinstance(decision, dict) and decision.get("hospital") == self.scope)
        return data.get("unit_id") == self.scope

    def wants(self, event: Event) -> bool:
        data = event.data
        if event.type.value.startswith("incident."):
            incident_id = data.get("incident_id")
            if not isinstance(incident_id, str):
                return False
            if incident_id in self.incidents:
                return True  # a diverted patient too: the board drops it on re-reading
            if self.names_scope(data):
                self.incidents.add(incident_id)
                if self.role == "hospital" and isinstance(data.get("unit_id"), str):
                    self.units.add(data["unit_id"])
                return True
            return False
        if event.type.value == "unit.updated":
            unit_id = data.get("unit_id")
            return unit_id == self.scope if self.role == "crew" else self.role == "hospital" and unit_id in self.units
        return False

    def view(self, event: Event) -> Event:
        """The nudge: which incident or unit changed, and a unit's fix for the crew's map."""
        data = event.data
        out: dict[str, Any] = {k: data[k] for k in ("incident_id", "unit_id", "status", "lat", "lon", "gps_at") if k in data}
        if event.type.value.startswith("incident."):
            out = {"incident_id": data.get("incident_id")}
        return replace(event, person_id=None, data=out)
