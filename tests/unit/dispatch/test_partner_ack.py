"""A partner's CAP Ack/Error to our water alert: pure parsing and the escalation rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.partner_ack import AckRejected, overdue, parse_ack

# Our own CAP sender, as the region settings name it.
SENDER = "watchpost@county.example"
SENT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def cap(msg_type: str = "Ack", references: str = f"{SENDER},watchpost-water-7-0,2026-12-01T10:00:00+08:00", extra: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        "<identifier>p-1</identifier><sender>duty@wujiang.example</sender><sent>2026-12-01T10:03:00+08:00</sent>"
        f"<status>Actual</status><msgType>{msg_type}</msgType><scope>Restricted</scope>"
        f"<references>{references}</references>{extra}</alert>"
    ).encode()


def test_an_ack_names_our_alert_its_sender_and_time() -> None:
    ack = parse_ack(cap(extra="<note>on our way</note>"), SENDER)
    assert (ack.accepted, ack.sender, ack.identifiers, ack.note) == (True, "duty@wujiang.example", ("watchpost-water-7-0",), "on our way")
    assert ack.sent == datetime(2026, 12, 1, 2, 3, tzinfo=UTC)


def test_an_error_is_a_refusal() -> None:
    assert not parse_ack(cap("Error"), SENDER).accepted


def test_only_references_to_our_own_alerts_count() -> None:
    refs = f"other@x,id-1,2026-12-01T10:00:00+08:00 {SENDER},watchpost-water-8-0,2026-12-01T10:00:00+08:00"
    assert parse_ack(cap(references=refs), SENDER).identifiers == ("watchpost-water-8-0",)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not xml", "not_xml"),
        (b"<alert/>", "not_cap"),
        (cap("Alert"), "not_an_answer"),
        (cap(references="other@x,id-1,2026-12-01T10:00:00+08:00"), "unknown_reference"),
        (b'<!DOCTYPE a [<!ENTITY x "y">]><alert/>', "not_cap"),
        (b"<a>" + b"x" * 20000 + b"</a>", "oversized"),
    ],
)
def test_anything_else_is_rejected_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(AckRejected) as info:
        parse_ack(payload, SENDER)
    assert info.value.reason == reason


def test_an_unanswered_alert_is_overdue_after_the_timeout_once() -> None:
    assert not overdue(SENT, False, False, SENT + timedelta(minutes=9))
    assert overdue(SENT, False, False, SENT + timedelta(minutes=10))
    assert not overdue(SENT, True, False, SENT + timedelta(hours=1))
    assert not overdue(SENT, False, True, SENT + timedelta(hours=1))


def test_our_alert_carries_the_configured_sender_and_an_ack_to_it_is_ours() -> None:
    from xml.etree import ElementTree as ET

    from dispatch.cap import CapSender, StationInfo, water_alert

    sender = CapSender(SENDER, "Leishan water-quality monitoring (Watchpost)")
    alarm = {"alarm_id": 7, "alarm_type": "water_class_exceeded", "severity": "major", "first_seen": SENT, "detail": {"class": 4}}
    document = water_alert(sender=sender, event_type="alarm.raised", alarm=alarm, station=StationInfo("WS-9", "Bahe", 26.4, 108.1, "rongjiang"),
                           sent=SENT, sequence=0, first_sent=None)
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    root = ET.fromstring(document)
    assert root.findtext("cap:sender", namespaces=ns) == SENDER
    assert root.findtext("cap:info/cap:senderName", namespaces=ns) == sender.name
    references = f"{SENDER},{root.findtext('cap:identifier', namespaces=ns)},{root.findtext('cap:sent', namespaces=ns)}"
    assert parse_ack(cap(references=references), SENDER).identifiers == ("watchpost-water-7-0",)
    with pytest.raises(AckRejected):
        parse_ack(cap(references=references), "watchpost@another-county.example")
