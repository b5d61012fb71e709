"""The inactivity window, through ingest's handlers on a fake clock: no motion for four
hours of the person's active day (07:00-22:00 in Jiashan) raises an alarm; the quiet hours
pause the count; motion restarts it and clears the alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.readings import HomeSensorEvent
from ingest.rules import AlarmType
from kernel.clock import FakeClock
from tests.service.ingest_fakes import FakeIngestService

NINE_AM = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Jiashan (UTC+8)
HOUR = 3600.0


def moved(ingest: FakeIngestService) -> None:
    ingest.receive(HomeSensorEvent("P001", "hall-motion", ingest.clock.now(), "motion", True))


def watched_from(start: datetime) -> FakeIngestService:
    # The worker ticks every second; a minute is fine enough here and keeps hours cheap.
    ingest = FakeIngestService(FakeClock(start), timer_interval_s=60)
    moved(ingest)
    return ingest


def test_four_hours_without_motion_raise_inactivity() -> None:
    ingest = watched_from(NINE_AM)
    ingest.run_for(4 * HOUR - 60)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is None
    ingest.run_for(60)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is not None


def test_motion_within_the_window_restarts_the_count() -> None:
    ingest = watched_from(NINE_AM)
    ingest.run_for(3 * HOUR)
    moved(ingest)
    ingest.run_for(4 * HOUR - 60)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is None
    ingest.run_for(60)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is not None


def test_the_quiet_hours_pause_the_count() -> None:
    # Last seen at 20:00: two hours count before 22:00, two more from 07:00 → 09:00.
    ingest = watched_from(NINE_AM + timedelta(hours=11))
    ingest.run_for(13 * HOUR - 60)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is None
    ingest.run_for(60)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is not None


def test_motion_clears_the_inactivity_alarm() -> None:
    ingest = watched_from(NINE_AM)
    ingest.run_for(4 * HOUR)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is not None
    moved(ingest)
    assert ingest.alarms.open(AlarmType.INACTIVITY) is None
