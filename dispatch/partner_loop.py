"""The partner loop's storage: a partner's answer to our CAP alert recorded on it, and an
unanswered alert escalated to the partner's duty contact. Each change is an `alarm.updated`
event in the same transaction, so the console sees who accepted and when, or whom to call.
The escalation also queues an SMS and a call to the duty contact's phone (the registry's
`duty_phone`) for the notifier, in the same transaction, so neither is lost.

The events carry `change` (partner_accepted, partner_refused, partner_escalated) and the
partner, but no `source_kind`: they are about the partner's handling, and must not become a
CAP Update to the partner in turn.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from dispatch.partner_ack import PartnerAck
from ingest.rules.escalation import partner_contact
from kernel.events import EventType, emit

# Unanswered alerts escalated per pass: a bounded statement however long the backlog.
ESCALATE_BATCH = 100
# The duty contact is texted at once and rung this long after, unless the partner answers
# the alert meanwhile: the SMS carries the facts, the call makes sure someone read them.
PARTNER_CALL_AFTER_S = 60
# How long the SMS and the call are worth trying: a duty desk unreachable for this long is
# the control room's to phone by hand (the console shows the escalation).
PARTNER_NOTIFY_FOR_S = 1800


def record_answer(conn: psycopg.Connection, partner_id: str, ack: PartnerAck, now: datetime) -> list[int]:
    """Record the partner's Ack/Error on the Alerts it references (the first answer counts).
    Returns the alarm ids answered; empty when it answered nothing of ours still open."""
    with conn.transaction(), conn.cursor() as cur:
        rows = cur.execute(
            """UPDATE cap_alerts SET answer = %s, answered_at = %s, answered_by = %s, answer_note = %s
               WHERE partner_id = %s AND identifier = ANY(%s) AND msg_type = 'Alert' AND answered_at IS NULL
               RETURNING alarm_id, sent, escalated_at""",
            (ack.msg_type, now, ack.sender, ack.note, partner_id, list(ack.identifiers)),
        ).fetchall()
        for alarm_id, sent, escalated_at in rows:
            data: dict[str, Any] = {
                "alarm_id": alarm_id, "change": "partner_accepted" if ack.accepted else "partner_refused",
                "partner_id": partner_id, "by": ack.sender, "at": now, "note": ack.note,
                "answer_s": (now - sent).total_seconds(), "after_escalation": escalated_at is not None,
            }
            emit(cur, EventType.ALARM_UPDATED, None, data, now)
    return [r[0] for r in rows]


def escalate_overdue(conn: psycopg.Connection, now: datetime, limit: int = ESCALATE_BATCH) -> list[int]:
    """Escalate every Alert its partner has not answered within the partner's timeout (once
    each), unless its alarm has cleared meanwhile. Returns the alarm ids escalated."""
    with conn.transaction(), conn.cursor() as cur:
        rows = cur.execute(
            """WITH due AS (
                   SELECT c.event_id FROM cap_alerts c
                   JOIN partners p ON p.partner_id = c.partner_id
                   JOIN alarms a ON a.alarm_id = c.alarm_id
                   WHERE c.msg_type = 'Alert' AND c.answered_at IS NULL AND c.escalated_at IS NULL
                     AND a.state <> 'cleared' AND c.sent <= %s - make_interval(secs => p.ack_timeout_s)
                   ORDER BY c.sent LIMIT %s FOR UPDATE OF c SKIP LOCKED)
               UPDATE cap_alerts c SET escalated_at = %s FROM due, partners p
               WHERE c.event_id = due.event_id AND p.partner_id = c.partner_id
               RETURNING c.alarm_id, c.partner_id, p.name, p.duty_contact, p.duty_phone IS NOT NULL, c.sent""",
            (now, limit, now),
        ).fetchall()
        for alarm_id, partner_id, name, duty_contact, has_phone, sent in rows:
            if has_phone:
                _queue_calls(cur, alarm_id, partner_id, now)
            emit(cur, EventType.ALARM_UPDATED, None, {
                "alarm_id": alarm_id, "change": "partner_escalated", "partner_id": partner_id, "partner": name,
                "duty_contact": duty_contact, "sent": sent, "waited_s": (now - sent).total_seconds(),
                # Without a phone in the registry the control room calls by hand.
                "notified": ["sms", "voice"] if has_phone else [],
            }, now)
    return [r[0] for r in rows]


def _queue_calls(cur: psycopg.Cursor[Any], alarm_id: int, partner_id: str, now: datetime) -> None:
    """The duty contact's SMS now and call a minute later, as notifications of the alarm."""
    until = now + timedelta(seconds=PARTNER_NOTIFY_FOR_S)
    cur.executemany(
        """INSERT INTO notifications (alarm_id, person_id, username, channel, step, state, due_at, expires_at, created_at, updated_at)
           VALUES (%s, NULL, %s, %s, 1, 'queued', %s, %s, %s, %s) ON CONFLICT (alarm_id, username, channel) DO NOTHING""",
        [(alarm_id, partner_contact(partner_id), "sms", now, until, now, now),
         (alarm_id, partner_contact(partner_id), "voice", now + timedelta(seconds=PARTNER_CALL_AFTER_S), until, now, now)],
    )
