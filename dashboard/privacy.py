"""What a family member may see of an incident: their relative's incident, never the fleet.

An incident event as the control room sees it names the unit sent, its status and the
dispatcher's ranking of every candidate unit (ids, ETAs, GPS ages). A family member learns
only that help is on its way and, when a unit is assigned to *their* incident, its ETA; no
unit id, no position, no other unit. An allow-list, so a field added to incident events
later stays with the control room until someone decides otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kernel.events import Event

FAMILY_INCIDENT_FIELDS = frozenset(
    {"incident_id", "kind", "priority", "state", "person_id", "lat", "lon", "description", "created_at", "updated_at",
     "closed_at", "queued"}
)
_HELP_STATES = frozenset({"dispatched", "on_scene", "transporting"})


def family_incident(data: dict[str, Any]) -> dict[str, Any]:
    """The family's view of one incident (an event's data or a row of /api/incidents)."""
    view = {k: v for k, v in data.items() if k in FAMILY_INCIDENT_FIELDS}
    eta = data.get("eta_s")
    decision = data.get("decision")
    if eta is None and isinstance(decision, dict) and isinstance(decision.get("chosen"), dict):
        eta = decision["chosen"].get("eta_s")
    assigned = bool(data.get("unit_id")) or data.get("state") in _HELP_STATES
    view["help_on_the_way"] = assigned
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
