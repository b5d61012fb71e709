"""Falls and "I'm OK" from the alert topic, through the alert lane's own state on a fake
clock: the same guarantees as the telemetry path (cancel-before-fall, a late fall's window
from its own time, an emergency when nobody cancels), without the person's telemetry state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.readings import WearableReading
from ingest.rules import AlarmType
from ingest.rules.engine import ALERT, PERSON
from kernel.clock import FakeClock
from tests.service.ingest_fakes import FakeIngestService

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def lane() -> FakeIngestService:
    return FakeIngestService(FakeClock(T0))


def alert(lane: FakeIngestService, event_id: str, *, at_s_ago: float = 0.5, **flag: bool) -> WearableReading:
    return WearableReading("P001", lane.clock.now() - timedelta(seconds=at_s_ago), event_id=event_id, **flag)  # type: ignore[arg-type]


def test_an_alert_fall_keeps_its_episode_apart_from_the_persons_telemetry_state(lane: FakeIngestService) -> None:
    lane.receive_alert(alert(lane, "f1", fall=True))
    assert lane.alarms.raised() == [AlarmType.FALL]
    assert f"{PERSON}P001" not in lane.states.states  # an ingest batch may hold that one
    assert lane.states.deadlines[f"{ALERT}P001"] is not None


def test_nobody_cancels_an_alert_fall_and_it_becomes_an_emergency_on_time(lane: FakeIngestService) -> None:
    lane.receive_alert(alert(lane, "f1", fall=True))
    assert lane.run_for(59) == []
    [emergency] = lane.run_for(2)
    assert emergency.alarm_type is AlarmType.FALL_UNCANCELLED and emergency.emergency
    assert emergency.detail["fall_at"] == (T0 - timedelta(seconds=0.5)).isoformat()
    assert lane.run_for(600) == []  # raised once


def test_an_im_ok_that_arrives_before_its_fall_cancels_it(lane: FakeIngestService) -> None:
    lane.receive_alert(alert(lane, "ok", at_s_ago=10, cancel=True))
    lane.receive_alert(alert(lane, "f1", at_s_ago=20, fall=True))
    lane.run_for(600)
    assert lane.alarms.raised() == []


def test_an_im_ok_within_the_window_ends_the_alert_fall(lane: FakeIngestService) -> None:
    lane.receive_alert(alert(lane, "f1", fall=True))
    lane.run_for(30)
    lane.receive_alert(alert(lane, "ok", cancel=True))
    lane.run_for(600)
    assert lane.alarms.open(AlarmType.FALL) is None
    assert AlarmType.FALL_UNCANCELLED not in lane.alarms.raised()


def test_a_fall_that_arrives_late_has_used_up_part_of_its_window(lane: FakeIngestService) -> None:
    lane.receive_alert(alert(lane, "f1", at_s_ago=45, fall=True))  # queued 45 s somewhere
    assert lane.run_for(14) == []
    [emergency] = lane.run_for(2)  # 60 s after the fall itself, not after its arrival
    assert emergency.alarm_type is AlarmType.FALL_UNCANCELLED
