"""Alert or Update, referencing what: one exceedance reaches the partner as one Alert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatch.cap import CapPlan, SentFirst, plan_message

SENT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
REAL_TIME_ALERT = SentFirst(alarm_id=7, sent=SENT)


def test_the_first_alarm_of_an_exceedance_is_an_alert() -> None:
    assert plan_message("alarm.raised", own_first=None, own_sent=0, exceedance_alert=None) == CapPlan("Alert", 0, None)


def test_the_second_alarm_of_an_exceedance_updates_the_first_ones_alert() -> None:
    assert plan_message("alarm.raised", own_first=None, own_sent=0, exceedance_alert=REAL_TIME_ALERT) == CapPlan("Update", 0, REAL_TIME_ALERT)


@pytest.mark.parametrize(("event_type", "msg_type"), [("alarm.updated", "Update"), ("alarm.cleared", "Cancel")])
def test_later_documents_of_an_alarm_reference_its_own_first(event_type: str, msg_type: str) -> None:
    own = SentFirst(alarm_id=9, sent=SENT)
    # Whether its first was an Alert or the Update of its sibling's, the alarm's clear
    # withdraws what it sent itself, not the sibling's Alert.
    for sibling in (None, REAL_TIME_ALERT):
        assert plan_message(event_type, own_first=own, own_sent=2, exceedance_alert=sibling) == CapPlan(msg_type, 2, own)


@pytest.mark.parametrize("event_type", ["alarm.updated", "alarm.cleared"])
def test_nothing_follows_an_alarm_that_sent_nothing(event_type: str) -> None:
    assert plan_message(event_type, own_first=None, own_sent=0, exceedance_alert=REAL_TIME_ALERT) is None
