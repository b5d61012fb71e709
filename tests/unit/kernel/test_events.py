import pytest

from kernel.events import SERVICE_ONLY, Event, EventType

# Every event type the websocket contract names, except water.status, which nothing emits yet.
CONTRACT_TYPES = {"alarm.raised", "alarm.updated", "alarm.cleared", "incident.created", "incident.updated", "unit.updated"}


def test_the_event_types_are_the_ones_clients_are_promised():
    assert {t.value for t in EventType if t not in SERVICE_ONLY} == CONTRACT_TYPES


def test_service_only_events_are_not_in_the_contract():
    assert {t.value for t in SERVICE_ONLY} == {"person.located", "roads.loaded"}


def test_an_event_survives_its_notification_shape():
    event = Event(7, EventType.ALARM_RAISED, "2026-12-01T08:00:00+00:00", "P-1", {"alarm_id": 3})
    doc = event.to_json()
    assert doc == {"id": 7, "type": "alarm.raised", "ts": "2026-12-01T08:00:00+00:00", "person_id": "P-1", "data": {"alarm_id": 3}}
    assert Event.from_json(doc) == event


def test_an_announced_event_has_no_id():
    event = Event.from_json({"id": None, "type": "unit.updated", "ts": "2026-12-01T08:00:00+00:00", "data": {}})
    assert event.id is None and event.person_id is None


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError):
        Event.from_json({"id": 1, "type": "alarm.exploded", "ts": "2026-12-01T08:00:00+00:00", "data": {}})
