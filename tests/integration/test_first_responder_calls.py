"""The village doctor reached off the page, with real telephony: the first-aid post's duty
phone gets the alert by SMS (at the test SMSC) at once and, unanswered after the set time, a
call (a baresip phone) whose keypad 1 accepts and 2 declines, exactly as the page's buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from dispatch import tier_store
from dispatch.first_response import Answer
from dispatch.store import _alert_first_responder, create_incident
from kernel.clock import FakeClock
from tests.fix_notify import needs_baresip, notifier_for, now_utc

POST, DUTY_PHONE = "FAP-1", "+8613812340069"


def rows(url: str, sql: str, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def alert_the_post(url: str, now: datetime, *, duty_phone: str | None = DUTY_PHONE) -> str:
    """Wang Lan fell; the dispatcher sent an ambulance 15 minutes out and alerted post FAP-1,
    5 minutes away, as its assignment does."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute("INSERT INTO facilities (facility_id, kind, name, lat, lon, duty_phone) "
                     "VALUES (%s, 'first_aid_post', '东港村卫生室', 30.84, 120.94, %s)", (POST, duty_phone))
        conn.execute("UPDATE persons SET address = '魏塘街道东港村12号', conditions = '{房颤}', medications = '{华法林}' "
                     "WHERE person_id = 'P-0001'")
        conn.commit()
        incident = create_incident(conn, lat=30.84, lon=120.93, kind="medical", priority=1, description="跌倒，头部出血",
                                   actor="calltaker", now=now)
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute("UPDATE incidents SET person_id = 'P-0001' WHERE incident_id = %s RETURNING *", (incident["incident_id"],))
            _alert_first_responder(cur, cur.fetchone(), POST, 300.0, 900.0, now, 90.0, 30.0)
    return incident["incident_id"]


def post_notifications(url: str) -> list[tuple[str, str, int]]:
    return [(r["channel"], r["state"], r["attempt"])
            for r in rows(url, "SELECT * FROM notifications WHERE incident_id IS NOT NULL ORDER BY notification_id")]


def test_the_posts_duty_phone_gets_the_alert_by_sms_at_once_and_no_call_before_its_time(database_url: str, smsc) -> None:
    state, port = smsc
    clock = FakeClock(now_utc())
    incident_id = alert_the_post(database_url, clock.now())
    with notifier_for(database_url, clock, smsc_port=port, phonebook=None) as notifier:
        notifier.run_pass()
        (sms,) = state.wait_for(1)
    assert sms.destination == DUTY_PHONE.lstrip("+")
    for fact in ("Wang Lan", "魏塘街道东港村12号", "跌倒，头部出血", "房颤", "华法林", "救护车约15分钟到",
                 f"http://watchpost.test/first-aid?incident={incident_id}"):
        assert fact in sms.text
    assert post_notifications(database_url) == [("sms", "accepted", 1), ("voice", "queued", 0)]
    [voice] = rows(database_url, "SELECT due_at, expires_at FROM notifications WHERE channel = 'voice'")
    assert (voice["due_at"] - clock.now()).total_seconds() == 30 and (voice["expires_at"] - clock.now()).total_seconds() == 90
    shown = rows(database_url, "SELECT person_id, data FROM events WHERE data->>'change' = 'notification' ORDER BY event_id")
    assert [e["data"]["notification"]["state"] for e in shown] == ["sending", "accepted"]
    assert all(e["person_id"] is None and e["data"]["notification"]["phone"].endswith("0069") for e in shown)


@needs_baresip
@pytest.mark.parametrize(("key", "answer", "state"), [("1", "accepted", "acked"), ("2", "declined", "declined")])
def test_unanswered_the_doctor_is_called_and_the_keypad_answers_as_the_page_does(
        database_url: str, family_phones, key: str, answer: str, state: str) -> None:
    phone = family_phones("answer", key=key)
    clock = FakeClock(now_utc())
    incident_id = alert_the_post(database_url, clock.now())
    with notifier_for(database_url, clock, smsc_port=None, phonebook={DUTY_PHONE: phone.uri}) as notifier:
        notifier.run_pass()
        clock.advance(29)
        notifier.run_pass()
        assert phone.calls == []  # the SMS has its time first
        clock.advance(1)
        notifier.run_pass()
        assert len(phone.wait_for_calls(1)) == 1
        notifier.wait_for_calls(20)
    [response] = rows(database_url, "SELECT answer, answered_at FROM first_responses WHERE incident_id = %s", incident_id)
    assert response == {"answer": answer, "answered_at": clock.now()}
    assert ("voice", state, 1) in post_notifications(database_url)
    [audit] = rows(database_url, "SELECT actor FROM dispatch_audit WHERE incident_id = %s AND action = %s",
                   incident_id, f"first_responder_{answer}")
    assert audit["actor"] == f"call:{POST}"
    events = rows(database_url, "SELECT data FROM events WHERE data ? 'first_response' ORDER BY event_id")
    assert events[-1]["data"]["first_response"]["state"] == answer  # the console and the crew hear it


def test_a_doctor_who_answered_on_the_page_is_neither_texted_nor_called(database_url: str, smsc) -> None:
    state, port = smsc
    clock = FakeClock(now_utc())
    incident_id = alert_the_post(database_url, clock.now())
    with psycopg.connect(database_url) as conn:
        tier_store.answer(conn, incident_id, POST, Answer.ACCEPTED, "doc", clock.now())
    clock.advance(30)
    with notifier_for(database_url, clock, smsc_port=port, phonebook={DUTY_PHONE: "sip:nobody@127.0.0.1:9"}) as notifier:
        assert notifier.run_pass() == 0
    assert post_notifications(database_url) == [("sms", "cancelled", 0), ("voice", "cancelled", 0)]
    assert state.received == []


def test_a_post_without_a_duty_phone_has_only_its_page(database_url: str) -> None:
    incident_id = alert_the_post(database_url, now_utc(), duty_phone=None)
    assert rows(database_url, "SELECT 1 FROM first_responses WHERE incident_id = %s", incident_id)
    assert post_notifications(database_url) == []
