"""What a scoped websocket (village post, hospital, crew) is told: its incidents only, and
no person data in the message itself."""

from __future__ import annotations

from dashboard.privacy import TierFilter, family_incident
from kernel.events import Event, EventType


def _event(type_: EventType, data: dict) -> Event:
    return Event(1, type_, "2026-12-01T08:00:00+00:00", data.get("person_id"), data)


def test_a_post_takes_the_incidents_it_is_alerted_to_and_no_other() -> None:
    post = TierFilter("first_aid", "FA-1")
    ours = {"incident_id": "INC-1", "person_id": "P-1", "first_response": {"post_id": "FA-1", "state": "waiting"}}
    theirs = {"incident_id": "INC-2", "person_id": "P-2", "first_response": {"post_id": "FA-2", "state": "waiting"}}
    assert post.wants(_event(EventType.INCIDENT_UPDATED, ours))
    assert not post.wants(_event(EventType.INCIDENT_UPDATED, theirs))
    # Later events about its incident reach it even when they do not name the post.
    assert post.wants(_event(EventType.INCIDENT_UPDATED, {"incident_id": "INC-1", "state": "on_scene"}))
    assert not post.wants(_event(EventType.INCIDENT_UPDATED, {"incident_id": "INC-2", "state": "on_scene"}))
    assert not post.wants(_event(EventType.ALARM_RAISED, {"person_id": "P-1"}))


def test_a_hospital_takes_its_patients_and_follows_their_units() -> None:
    er = TierFilter("hospital", "H-1")
    assigned = {"incident_id": "INC-1", "unit_id": "AMB-1", "decision": {"hospital": "H-1"}}
    assert er.wants(_event(EventType.INCIDENT_UPDATED, assigned))
    assert er.wants(_event(EventType.UNIT_UPDATED, {"unit_id": "AMB-1", "lat": 30.8, "lon": 120.9}))
    assert not er.wants(_event(EventType.UNIT_UPDATED, {"unit_id": "AMB-2", "lat": 30.8, "lon": 120.9}))
    other = {"incident_id": "INC-9", "unit_id": "AMB-2", "decision": {"hospital": "H-2"}}
    assert not er.wants(_event(EventType.INCIDENT_UPDATED, other))


def test_a_crew_takes_its_own_unit_and_its_orders_only() -> None:
    crew = TierFilter("crew", "AMB-1")
    assert crew.wants(_event(EventType.UNIT_UPDATED, {"unit_id": "AMB-1", "status": "en_route"}))
    assert not crew.wants(_event(EventType.UNIT_UPDATED, {"unit_id": "AMB-2", "status": "en_route"}))
    assert crew.wants(_event(EventType.INCIDENT_UPDATED, {"incident_id": "INC-1", "unit_id": "AMB-1"}))
    assert not crew.wants(_event(EventType.INCIDENT_UPDATED, {"incident_id": "INC-2", "unit_id": "AMB-2"}))


def test_the_message_names_the_incident_and_carries_no_person_data() -> None:
    post = TierFilter("first_aid", "FA-1")
    data = {"incident_id": "INC-1", "person_id": "P-1", "description": "fall", "first_response": {"post_id": "FA-1"}}
    view = post.view(_event(EventType.INCIDENT_UPDATED, data))
    assert view.data == {"incident_id": "INC-1"} and view.person_id is None


def test_the_family_learns_that_a_village_doctor_is_coming_but_not_who() -> None:
    data = {"incident_id": "INC-1", "state": "dispatched", "unit_id": "AMB-1",
            "first_response": {"post_id": "FA-1", "state": "accepted", "on_scene_at": None, "note": "on my way"}}
    view = family_incident(data)
    assert view["doctor_on_the_way"] is True and view["help_on_the_way"] is True
    assert "first_response" not in view and "unit_id" not in view
    arrived = family_incident({**data, "first_response": {**data["first_response"], "on_scene_at": "2026-12-01T08:05:00+00:00"}})
    assert arrived["doctor_on_scene"] is True and arrived["doctor_on_the_way"] is False
