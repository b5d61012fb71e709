"""A family member sees who of the family was called, by name, never a number."""

from __future__ import annotations

from dashboard.privacy import family_event
from kernel.events import Event, EventType


def test_a_notification_event_reaches_the_family_without_the_phone_number() -> None:
    event = Event(7, EventType.ALARM_UPDATED, "2026-03-02T03:00:00+00:00", "P-0001",
                  {"alarm_id": 1, "change": "notification",
                   "notification": {"username": "fam2", "channel": "voice", "state": "ringing", "phone": "**********0002"}})
    seen = family_event(event).data["notification"]
    assert seen == {"username": "fam2", "channel": "voice", "state": "ringing"}
