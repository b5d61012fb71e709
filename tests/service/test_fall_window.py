"""The fall cancel window, through ingest's handlers on a fake clock: a fall alerts at
once; the wearer's "I'm OK" within the window ends it; past the window it becomes an
emergency, which goes to the family and the control room at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.readings import WearableReading
from ingest.rules import AlarmType
from ingest.rules.escalation import CONTROL_ROOM, Contact
from kernel.clock import FakeClock
from tests.service.ingest_fakes import FakeIngestService

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Jiashan
FAMILY = {"P001": [Contact("daughter", 120), Contact("son", 120)]}


@pytest.fixture
def ingest() -> FakeIngestService:
    return FakeIngestService(FakeClock(T0), family=FAMILY)


def worn(ingest: FakeIngestService, *, measured_s_ago: float = 0.5, **fields: object) -> WearableReading:
    return WearableReading("P001", ingest.clock.now() - timedelta(seconds=measured_s_ago), **fields)  # type: ignore[arg-type]


def test_a_fall_alerts_the_first_family_contact_at_once(ingest: FakeIngestService) -> None:
    ingest.receive(worn(ingest, fall=True))
    assert ingest.alarms.raised() == [AlarmType.FALL]
    assert ingest.alarms.told(AlarmType.FALL) == [(T0, ("family:daughter",))]


def test_a_cancel_at_59_s_ends_the_fall_and_no_emergency_follows(ingest: FakeIngestService) -> None:
    ingest.receive(worn(ingest, fall=True))
    ingest.run_for(59)
    ingest.receive(worn(ingest, cancel=True))
    ingest.run_for(600)
    assert AlarmType.FALL_UNCANCELLED not in ingest.alarms.raised()
    assert ingest.alarms.open(AlarmType.FALL) is None


def test_a_cancel_at_61_s_comes_after_the_emergency_went_to_everyone(ingest: FakeIngestService) -> None:
    ingest.receive(worn(ingest, fall=True))
    ingest.run_for(61)
    emergency = ingest.alarms.open(AlarmType.FALL_UNCANCELLED)
    assert emergency is not None and emergency.emergency and emergency.control_room
    assert ingest.alarms.told(AlarmType.FALL_UNCANCELLED) == [
        (T0 + timedelta(seconds=60), ("family:daughter", "family:son", CONTROL_ROOM))
    ]
    ingest.receive(worn(ingest, cancel=True))
    # Pressed too late: the emergency stands; someone must check on the wearer.
    assert ingest.alarms.open(AlarmType.FALL_UNCANCELLED) is not None


def test_the_emergency_fires_on_the_first_timer_pass_after_the_window(ingest: FakeIngestService) -> None:
    ingest.receive(worn(ingest, fall=True))
    assert ingest.run_for(59.9) == []
    [fired] = ingest.run_for(0.1)
    assert fired.alarm_type is AlarmType.FALL_UNCANCELLED


def test_a_late_fall_from_a_backlog_gets_its_full_window_from_arrival(ingest: FakeIngestService) -> None:
    # Delivered ten minutes late (the wearable was out of reach): the wearer can still cancel.
    ingest.receive(worn(ingest, measured_s_ago=600, fall=True))
    assert ingest.run_for(59) == []
    assert ingest.alarms.open(AlarmType.FALL) is not None
    ingest.run_for(1)
    assert ingest.alarms.open(AlarmType.FALL_UNCANCELLED) is not None


def test_a_fall_and_its_cancel_in_one_backlog_never_raise_an_emergency(ingest: FakeIngestService) -> None:
    ingest.receive(worn(ingest, measured_s_ago=600, fall=True), worn(ingest, measured_s_ago=580, cancel=True))
    ingest.run_for(600)
    assert AlarmType.FALL_UNCANCELLED not in ingest.alarms.raised()
    assert ingest.alarms.open(AlarmType.FALL) is None
