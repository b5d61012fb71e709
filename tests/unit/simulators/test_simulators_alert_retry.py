"""The simulated wearable repeats an alert with backoff until it is receipted."""

from __future__ import annotations

import orjson

from simulators.alert_retry import AlertRetrier
from simulators.faults import Wire


def alert_wire(event_id: str = "sos-1") -> Wire:
    return Wire("jiashan/elder/P-0001/alert", orjson.dumps({"event_id": event_id, "type": "sos", "ts": 0}), False, "alert", "elder/P-0001")


def test_an_unanswered_alert_is_repeated_after_1_2_4_seconds_then_capped() -> None:
    retrier = AlertRetrier(max_s=4)
    retrier.sent(alert_wire(), now=0)
    times = [t / 10 for t in range(0, 200) if retrier.due(t / 10)]
    assert times == [1.0, 3.0, 7.0, 11.0, 15.0, 19.0]


def test_the_received_receipt_stops_the_repeats() -> None:
    retrier = AlertRetrier()
    retrier.sent(alert_wire(), now=0)
    retrier.receipt("P-0001", orjson.dumps({"event_id": "sos-1", "alarm_id": 7, "state": "received", "ts": "x"}))
    assert retrier.due(100) == [] and retrier.unanswered == 0 and retrier.receipted == 1


def test_a_receipt_for_another_person_or_event_changes_nothing() -> None:
    retrier = AlertRetrier()
    retrier.sent(alert_wire(), now=0)
    retrier.receipt("P-0002", orjson.dumps({"event_id": "sos-1", "state": "received"}))
    retrier.receipt("P-0001", b"{")
    assert retrier.due(1) == [alert_wire()]


def test_other_messages_are_not_tracked() -> None:
    retrier = AlertRetrier()
    retrier.sent(Wire("jiashan/elder/P-0001/wearable", b"{}", False, "wearable", "elder/P-0001"), now=0)
    assert retrier.unanswered == 0
