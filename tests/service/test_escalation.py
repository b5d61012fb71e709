"""Escalation steps, through ingest's handlers on a fake clock: family contacts in order,
each with an acknowledgement timeout, then the control room; a severe alarm to everyone at
once; an acknowledgement stops it wherever it stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.readings import WearableReading
from ingest.rules import AlarmType
from ingest.rules.escalation import CONTROL_ROOM, Contact, first_step, next_step
from kernel.clock import FakeClock
from tests.service.ingest_fakes import FakeIngestService

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
CHAIN = [Contact("daughter", 120), Contact("son", 300)]


def fallen(family: list[Contact] | None = None) -> FakeIngestService:
    """A person whose wearable reported a fall (a major alarm) just now."""
    ingest = FakeIngestService(FakeClock(T0), family={"P001": CHAIN if family is None else family})
    ingest.receive(WearableReading("P001", T0, fall=True))
    return ingest


def test_family_one_timeout_then_family_two_then_the_control_room() -> None:
    ingest = fallen()
    ingest.run_for(119)
    assert ingest.alarms.told(AlarmType.FALL) == [(T0, ("family:daughter",))]
    ingest.run_for(1)
    ingest.run_for(300)
    assert ingest.alarms.told(AlarmType.FALL) == [
        (T0, ("family:daughter",)),
        (T0 + timedelta(seconds=120), ("family:son",)),
        (T0 + timedelta(seconds=420), (CONTROL_ROOM,)),
    ]
    fall = ingest.alarms.open(AlarmType.FALL)
    assert fall is not None and fall.control_room


def test_after_the_control_room_nothing_more_is_due() -> None:
    ingest = fallen()
    ingest.run_for(420)
    told = len(ingest.alarms.notices)
    ingest.run_for(3600)
    # The fall's cancel window has long passed: the emergency is new, the fall is not re-told.
    assert ingest.alarms.told(AlarmType.FALL)[-1][1] == (CONTROL_ROOM,)
    assert len(ingest.alarms.told(AlarmType.FALL)) == 3
    assert len(ingest.alarms.notices) == told


def test_a_severe_alarm_goes_to_the_whole_family_and_the_control_room_at_once() -> None:
    ingest = FakeIngestService(FakeClock(T0), family={"P001": CHAIN})
    ingest.receive(WearableReading("P001", T0, sos=True))
    assert ingest.alarms.told(AlarmType.SOS) == [(T0, ("family:daughter", "family:son", CONTROL_ROOM))]
    ingest.run_for(3600)
    assert len(ingest.alarms.told(AlarmType.SOS)) == 1


def test_a_person_without_family_goes_straight_to_the_control_room() -> None:
    ingest = fallen(family=[])
    assert ingest.alarms.told(AlarmType.FALL) == [(T0, (CONTROL_ROOM,))]


def test_acknowledgement_stops_the_escalation_where_it_stands() -> None:
    ingest = fallen()
    ingest.run_for(150)  # the son has been called
    fall = ingest.alarms.open(AlarmType.FALL)
    assert fall is not None
    assert ingest.alarms.acknowledge(fall.alarm_id, "son")
    ingest.run_for(3600)
    assert [who for _, who in ingest.alarms.told(AlarmType.FALL)] == [("family:daughter",), ("family:son",)]
    assert not fall.control_room


def test_an_acknowledgement_just_before_the_timeout_wins() -> None:
    ingest = fallen()
    ingest.run_for(119.5)
    fall = ingest.alarms.open(AlarmType.FALL)
    assert fall is not None and ingest.alarms.acknowledge(fall.alarm_id, "daughter")
    ingest.run_for(1)
    assert len(ingest.alarms.told(AlarmType.FALL)) == 1


def test_a_contact_removed_during_the_escalation_is_skipped() -> None:
    ingest = fallen()
    ingest.alarms.family["P001"] = CHAIN[:1]  # the son left the chain
    ingest.run_for(120)
    assert ingest.alarms.told(AlarmType.FALL)[-1] == (T0 + timedelta(seconds=120), (CONTROL_ROOM,))


def test_the_policy_alone_names_each_step_and_its_deadline() -> None:
    first = first_step(CHAIN, severe=False, now=T0)
    assert (first.step, first.notify, first.next_at) == (0, ("family:daughter",), T0 + timedelta(seconds=120))
    second = next_step(CHAIN, first.step, T0 + timedelta(seconds=120))
    assert (second.step, second.notified, second.next_at) == (1, "family:son", T0 + timedelta(seconds=420))
    last = next_step(CHAIN, second.step, T0 + timedelta(seconds=420))
    assert (last.step, last.notify, last.next_at) == (2, (CONTROL_ROOM,), None)
