"""Families off the page, end to end with real telephony: an SMSC speaking SMPP and family
phones that are SIP user agents (baresip). A fall's escalation texts the first contact,
calls them, and keypad 1 acknowledges it; an unanswered call hands over to the next
contact; a notifier that dies mid-call neither loses the call nor places it twice."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from dispatch.receipts import ReceiptState, for_alarm
from ingest.alarm_store import apply_transitions, run_due_escalations
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from kernel.clock import FakeClock
from notify import store
from notify.outcomes import RetryPolicy
from notify.smpp import SmppEndpoint, SmppSender
from tests.fix_notify import needs_baresip, notifier_for, now_utc
from tests.fix_wait import wait_for

DAUGHTER, SON = "+8613800000001", "+8613900000002"


def family(url: str, *, second: bool = False, voice_after_s: int = 30) -> None:
    """fam1 (P-0001's first contact) on app, SMS and voice; optionally a second contact."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE users SET phone = %s WHERE username = 'fam1'", (DAUGHTER,))
        conn.execute("UPDATE family_links SET channels = '{app,sms,voice}', voice_after_s = %s, ack_timeout_s = 120 "
                     "WHERE username = 'fam1'", (voice_after_s,))
        if second:
            conn.execute("INSERT INTO users (username, display_name, role, phone) VALUES ('fam2', 'Wang Lei', 'family', %s)", (SON,))
            conn.execute("INSERT INTO family_links (username, person_id, position, ack_timeout_s, channels, voice_after_s) "
                         "VALUES ('fam2', 'P-0001', 2, 300, '{sms,voice}', 30)")


def fall(url: str, clock: FakeClock) -> int:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        apply_transitions(cur, [AlarmTransition(Action.RAISE, SourceKind.PERSON, "P-0001", AlarmType.FALL, Severity.MAJOR,
                                                clock.now(), detail={"event_id": "ev-1"})], clock.now())
        return int(cur.execute("SELECT alarm_id FROM alarms WHERE alarm_type = 'fall'").fetchone()[0])


def tick_escalations(url: str, clock: FakeClock) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        run_due_escalations(cur, clock.now())


def rows(url: str, sql: str, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def notifications(url: str) -> list[tuple[str, str, str, int]]:
    return [(r["username"], r["channel"], r["state"], r["attempt"])
            for r in rows(url, "SELECT * FROM notifications ORDER BY notification_id")]


def test_an_sms_reaches_the_smsc_in_chinese_with_the_family_link_and_its_delivery_is_recorded(database_url: str, smsc) -> None:
    state, port = smsc
    family(database_url)
    clock = FakeClock(now_utc())
    alarm_id = fall(database_url, clock)
    with notifier_for(database_url, clock, smsc_port=port, phonebook=None) as notifier:
        notifier.run_pass()
        (sms,) = state.wait_for(1)
        assert sms.destination == DAUGHTER.lstrip("+")
        assert "发生跌倒" in sms.text and f"http://watchpost.test/family?alarm={alarm_id}" in sms.text
        wait_for(lambda: (notifier.run_pass(), notifications(database_url))[1][1][2] == "delivered", 10, what="the delivery report")
    assert notifications(database_url)[:2] == [("fam1", "app", "delivered", 0), ("fam1", "sms", "delivered", 1)]
    shown = [r["detail"]["state"] for r in rows(database_url, "SELECT detail FROM alarm_audit WHERE action = 'notification' ORDER BY at, ctid")]
    assert shown == ["sending", "accepted", "delivered"]
    # The text is longer than one SMS: its other parts report under the first part's id,
    # and are matched (not retried and logged as unknown) without recording anything again.
    [ref] = [r["provider_ref"] for r in rows(database_url, "SELECT provider_ref FROM notifications WHERE channel = 'sms'")]
    with psycopg.connect(database_url) as conn:
        assert store.delivery_report(conn, ref, True, clock.now(), {"stat": "DELIVRD"})
        assert not store.delivery_report(conn, "no-such-message", True, clock.now(), {"stat": "DELIVRD"})
    assert len(rows(database_url, "SELECT 1 FROM alarm_audit WHERE action = 'notification'")) == 3


def test_every_part_of_a_long_sms_is_reported_under_its_sms_even_before_all_parts_are_accepted(smsc) -> None:
    # The test SMSC reports each part delivered right after accepting it, as a fast SMSC may:
    # the first parts' reports arrive while the sender still waits for the last part's id.
    state, port = smsc
    reports: list[tuple[str, bool]] = []
    sender = SmppSender(SmppEndpoint("127.0.0.1", port, "watchpost", "secret"), sender="JiashanWatch",
                        on_report=lambda ref, delivered, _detail: reports.append((ref, delivered)))
    try:
        for _ in range(3):
            outcome = sender.send("+8613800000001", "老人跌倒，请立即查看。" * 20)  # four parts
            assert outcome.detail["parts"] == 4
            wait_for(lambda: len([r for r in reports if r[0] == outcome.ref]) == 4, 10, what="four reports under the SMS's ref")
    finally:
        sender.close()
    assert len(reports) == 12 and all(delivered for _, delivered in reports)


@needs_baresip
def test_a_fall_calls_the_first_contact_and_keypad_one_stops_the_escalation(database_url: str, smsc, family_phones) -> None:
    _, port = smsc
    family(database_url, second=True)
    phone = family_phones("answer", key="1")
    clock = FakeClock(now_utc())
    alarm_id = fall(database_url, clock)
    with notifier_for(database_url, clock, smsc_port=port, phonebook={DAUGHTER: phone.uri}) as notifier:
        notifier.run_pass()
        assert phone.calls == []  # the app and the SMS have their 30 s first
        clock.advance(30)
        notifier.run_pass()
        assert len(phone.wait_for_calls(1)) == 1
        notifier.wait_for_calls(20)
    (alarm,) = rows(database_url, "SELECT state, acked_by FROM alarms WHERE alarm_id = %s", alarm_id)
    assert alarm == {"state": "acked", "acked_by": "family:fam1"}
    assert ("fam1", "voice", "acked", 1) in notifications(database_url)
    assert rows(database_url, "SELECT next_at FROM escalations")[0]["next_at"] is None
    clock.advance(600)
    tick_escalations(database_url, clock)
    assert [u for u, *_ in notifications(database_url)].count("fam2") == 0  # nobody else is bothered
    states = [r["data"]["notification"]["state"] for r in rows(
        database_url, "SELECT data FROM events WHERE data->>'change' = 'notification' AND data->'notification'->>'channel' = 'voice' ORDER BY event_id")]
    assert states == ["sending", "ringing", "answered", "acked"]
    with psycopg.connect(database_url) as conn:
        (receipt,) = for_alarm(conn, alarm_id, ReceiptState.FAMILY_NOTIFIED, clock.now())
    assert receipt.event_id == "ev-1"


@needs_baresip
def test_an_unanswered_call_hands_over_to_the_next_contact(database_url: str, family_phones) -> None:
    family(database_url, second=True)
    daughter, son = family_phones("ignore"), family_phones("answer", key="1")
    clock = FakeClock(now_utc())
    alarm_id = fall(database_url, clock)
    policy = RetryPolicy(max_attempts=1, base_s=5)
    with notifier_for(database_url, clock, smsc_port=None, phonebook={DAUGHTER: daughter.uri, SON: son.uri},
                      ring_timeout_s=2, policy=policy) as notifier:
        clock.advance(30)
        notifier.run_pass()
        notifier.wait_for_calls(20)
        assert ("fam1", "voice", "no_answer", 1) in notifications(database_url)
        tick_escalations(database_url, clock)  # the dead end moved the step's deadline to now
        clock.advance(30)
        notifier.run_pass()
        notifier.wait_for_calls(20)
    assert len(daughter.calls) == 1 and len(son.calls) == 1
    assert rows(database_url, "SELECT acked_by FROM alarms WHERE alarm_id = %s", alarm_id)[0]["acked_by"] == "family:fam2"


@needs_baresip
def test_a_notifier_that_dies_mid_call_calls_again_once_its_lease_passed_never_sooner(database_url: str, family_phones) -> None:
    family(database_url)
    phone = family_phones("answer", key="1")
    clock = FakeClock(now_utc())
    fall(database_url, clock)
    clock.advance(30)
    with psycopg.connect(database_url) as conn:  # a notifier claims the call and dies before placing it
        (claimed,) = store.claim(conn, clock.now(), channels=[store.Channel.VOICE], limit=10, lease_s=150, max_attempts=3)
    with notifier_for(database_url, clock, smsc_port=None, phonebook={DAUGHTER: phone.uri}, lease_s=150) as notifier:
        notifier.run_pass()
        clock.advance(60)
        notifier.run_pass()
        assert phone.calls == []  # still under the dead notifier's lease: no call in a burst
        clock.advance(91)
        notifier.run_pass()
        notifier.wait_for_calls(20)
    assert len(phone.calls) == 1
    assert ("fam1", "voice", "acked", 2) in notifications(database_url)


def test_a_dead_smsc_is_retried_then_the_call_is_brought_forward(database_url: str, smsc) -> None:
    state, port = smsc
    state.refuse = True
    family(database_url, voice_after_s=90)
    clock = FakeClock(now_utc())
    fall(database_url, clock)
    with notifier_for(database_url, clock, smsc_port=port, phonebook=None, policy=RetryPolicy(max_attempts=2, base_s=5)) as notifier:
        notifier.run_pass()
        assert notifications(database_url)[1] == ("fam1", "sms", "queued", 1)
        assert notifier.health.sms.startswith("failing")
        clock.advance(5)
        notifier.run_pass()
    assert notifications(database_url)[1] == ("fam1", "sms", "failed", 2)
    (voice,) = rows(database_url, "SELECT due_at FROM notifications WHERE channel = 'voice'")
    assert voice["due_at"] == clock.now()


def test_the_control_room_reads_a_familys_numbers_only_with_an_access_log_entry(database_url: str, start_api) -> None:
    family(database_url)
    api = start_api(database_url)
    with api.client("op1") as op:
        (contact,) = op.get("/api/persons/P-0001/contacts").json()
    assert contact["phone"] == DAUGHTER and contact["channels"] == ["app", "sms", "voice"]
    assert rows(database_url, "SELECT username, person_id, what FROM access_log") == [
        {"username": "op1", "person_id": "P-0001", "what": "family contacts"}]
    with api.client("fam1") as fam:
        assert fam.get("/api/persons/P-0001/contacts").status_code == 403


QINGPU_DUTY = "+862159720001"


def unanswered_partner_alert(url: str, clock: FakeClock) -> int:
    """An hourly NH3-N exceedance at the cross-border station WS-002, its CAP Alert sent to
    Qingpu eleven minutes ago and not answered; Qingpu's duty phone in the registry."""
    from datetime import timedelta

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("UPDATE partners SET duty_phone = %s, duty_contact = 'Qingpu environment duty officer' WHERE partner_id = 'qingpu'",
                    (QINGPU_DUTY,))
        apply_transitions(cur, [AlarmTransition(Action.RAISE, SourceKind.STATION, "WS-002", AlarmType.WATER_HOURLY_EXCEEDED, Severity.MAJOR,
                                                clock.now(), detail={"parameter": "nh3n_mg_l"})], clock.now())
        alarm_id = int(cur.execute("SELECT alarm_id FROM alarms WHERE source_id = 'WS-002'").fetchone()[0])
        cur.execute("INSERT INTO cap_alerts (event_id, alarm_id, partner_id, msg_type, identifier, sent, document) "
                    "VALUES (1, %s, 'qingpu', 'Alert', %s, %s, '<alert/>')", (alarm_id, f"wp-{alarm_id}-0", clock.now() - timedelta(minutes=11)))
    return alarm_id


def escalate(url: str, clock: FakeClock) -> list[int]:
    from dispatch.partner_loop import escalate_overdue

    with psycopg.connect(url) as conn:
        return escalate_overdue(conn, clock.now())


@needs_baresip
def test_a_partner_that_leaves_an_alert_unanswered_has_its_duty_contact_texted_then_called(database_url: str, smsc, family_phones) -> None:
    from ingest.alarm_store import acknowledge

    state, port = smsc
    phone = family_phones("answer", key="1")
    clock = FakeClock(now_utc())
    alarm_id = unanswered_partner_alert(database_url, clock)
    assert escalate(database_url, clock) == [alarm_id]
    # The control room acknowledging the alarm does not stop the partner being reached.
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        acknowledge(cur, alarm_id, "op1", clock.now())
    with notifier_for(database_url, clock, smsc_port=port, phonebook={QINGPU_DUTY: phone.uri}) as notifier:
        notifier.run_pass()
        (sms,) = state.wait_for(1)
        assert sms.destination == QINGPU_DUTY.lstrip("+")
        assert "跨界断面Taipu river boundary" in sms.text and "NH3-N" in sms.text and "CAP" in sms.text
        assert "/family" not in sms.text  # the family page is not theirs
        assert phone.calls == []  # the SMS has its minute first
        clock.advance(60)
        notifier.run_pass()
        assert len(phone.wait_for_calls(1)) == 1
        notifier.wait_for_calls(20)
    by_channel = {(u, c): s for u, c, s, _ in notifications(database_url)}
    assert by_channel[("partner:qingpu", "voice")] == "acked"
    # Keypad 1 says the duty officer heard it; the alarm stays the operator's, the alert awaits Qingpu's CAP answer.
    assert rows(database_url, "SELECT acked_by FROM alarms WHERE alarm_id = %s", alarm_id)[0]["acked_by"] == "op1"
    assert rows(database_url, "SELECT answered_at FROM cap_alerts")[0]["answered_at"] is None
    [escalated] = rows(database_url, "SELECT data FROM events WHERE data ->> 'change' = 'partner_escalated'")
    assert escalated["data"]["notified"] == ["sms", "voice"]
    recipients = {r["data"]["notification"]["recipient"] for r in rows(database_url, "SELECT data FROM events WHERE data ->> 'change' = 'notification'")}
    assert recipients == {"partner:qingpu"}


@needs_baresip
def test_a_partners_answer_before_the_call_cancels_it(database_url: str, smsc, family_phones) -> None:
    _, port = smsc
    phone = family_phones("answer", key="1")
    clock = FakeClock(now_utc())
    alarm_id = unanswered_partner_alert(database_url, clock)
    escalate(database_url, clock)
    with notifier_for(database_url, clock, smsc_port=port, phonebook={QINGPU_DUTY: phone.uri}) as notifier:
        notifier.run_pass()
        with psycopg.connect(database_url) as conn:  # Qingpu's CAP Ack arrives
            conn.execute("UPDATE cap_alerts SET answer = 'Ack', answered_at = %s, answered_by = 'duty@qingpu' WHERE alarm_id = %s",
                         (clock.now(), alarm_id))
        clock.advance(60)
        notifier.run_pass()
        notifier.wait_for_calls(5)
    assert phone.calls == []
    assert ("partner:qingpu", "voice", "cancelled", 0) in notifications(database_url)


def test_a_partner_without_a_duty_phone_is_escalated_on_the_console_only(database_url: str) -> None:
    clock = FakeClock(now_utc())
    alarm_id = unanswered_partner_alert(database_url, clock)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE partners SET duty_phone = NULL")
    assert escalate(database_url, clock) == [alarm_id]
    assert notifications(database_url) == []
    [escalated] = rows(database_url, "SELECT data FROM events WHERE data ->> 'change' = 'partner_escalated'")
    assert escalated["data"]["notified"] == []
