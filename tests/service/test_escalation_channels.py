"""Channels of the escalation steps, on a fake clock: a contact gets the app and an SMS at
once and a phone call if nobody acknowledged within the step's voice delay; the next contact
follows at the step's timeout; a severe alarm reaches everyone on every channel at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.readings import WearableReading
from ingest.rules import AlarmType
from ingest.rules.escalation import Channel, Contact
from kernel.clock import FakeClock
from tests.service.ingest_fakes import FakeIngestService

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
ALL = (Channel.APP, Channel.SMS, Channel.VOICE)
CHAIN = [Contact("daughter", 120, ALL, 45), Contact("son", 300, (Channel.SMS, Channel.VOICE), 60)]


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fallen() -> FakeIngestService:
    ingest = FakeIngestService(FakeClock(T0), family={"P001": CHAIN})
    ingest.receive(WearableReading("P001", T0, fall=True))
    return ingest


def sent(ingest: FakeIngestService) -> list[tuple[str, str, datetime, datetime | None]]:
    return [(q.username, q.channel, q.due_at, q.expires_at) for q in ingest.alarms.queued if q.alarm_type is AlarmType.FALL]


def test_the_first_contact_gets_the_app_and_an_sms_at_once_and_a_call_after_the_voice_delay() -> None:
    ingest = fallen()
    assert sent(ingest) == [
        ("daughter", "app", T0, s(120)),
        ("daughter", "sms", T0, s(120)),
        ("daughter", "voice", s(45), s(120)),
    ]


def test_unacknowledged_the_next_contact_is_reached_at_the_step_timeout() -> None:
    ingest = fallen()
    ingest.run_for(120)
    assert sent(ingest)[3:] == [("son", "sms", s(120), s(420)), ("son", "voice", s(180), s(420))]


def test_an_acknowledgement_queues_nothing_more() -> None:
    ingest = fallen()
    fall = ingest.alarms.open(AlarmType.FALL)
    assert fall is not None
    ingest.run_for(50)
    assert ingest.alarms.acknowledge(fall.alarm_id, "family:daughter")
    ingest.run_for(3600)
    assert {username for username, *_ in sent(ingest)} == {"daughter"}


def test_a_severe_alarm_reaches_every_contact_on_every_channel_at_once() -> None:
    ingest = FakeIngestService(FakeClock(T0), family={"P001": CHAIN})
    ingest.receive(WearableReading("P001", T0, sos=True))
    queued = [(q.username, q.channel, q.due_at) for q in ingest.alarms.queued if q.alarm_type is AlarmType.SOS]
    assert queued == [
        ("daughter", "app", T0), ("daughter", "sms", T0), ("daughter", "voice", T0),
        ("son", "sms", T0), ("son", "voice", T0),
    ]


def test_a_contact_reached_only_by_voice_is_called_at_once() -> None:
    ingest = FakeIngestService(FakeClock(T0), family={"P001": [Contact("neighbour", 120, (Channel.VOICE,), 60)]})
    ingest.receive(WearableReading("P001", T0, fall=True))
    assert sent(ingest) == [("neighbour", "voice", T0, s(120))]
