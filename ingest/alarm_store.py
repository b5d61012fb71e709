"""Alarm transitions into the database: the alarm's lifecycle and audit trail and family
escalation, each announced on the event stream (kernel.events). Incidents are the
dispatcher's: it opens them from these alarms.

Every function takes the cursor of a transaction the caller owns, so alarms commit
together with the readings and rule states that caused them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.handlers import DueEscalation, advance_due_escalations
from ingest.rules import Action, AlarmTransition, SourceKind
from ingest.rules.escalation import PARTNER_PREFIX, Channel, Contact, EscalationStep, Notification, first_step
from kernel.events import EventType, emit

log = logging.getLogger(__name__)


_ALARM_COLUMNS = (
    "alarm_id, source_kind, source_id, alarm_type, severity, emergency, state, person_id, first_seen, "
    "last_seen, repeat_count, acked_at, acked_by, cleared_at, cleared_by, control_room, detail"
)


def person_of(source_kind: str, source_id: str) -> str | None:
    """Whose alarm this is: the person, or the person whose wearable or home sensor it is."""
    if source_kind == SourceKind.PERSON:
        return source_id
    if source_kind == SourceKind.DEVICE and source_id.startswith("elder:"):
        return source_id[len("elder:"):].split("/", 1)[0]
    return None


def apply_transitions(cur: psycopg.Cursor, transitions: Iterable[AlarmTransition], now: datetime) -> int:
    """Record rule transitions. Returns the number of events emitted."""
    emitted = 0
    for t in transitions:
        if t.action is Action.RAISE:
            emitted += _raise(cur, t, now)
        else:
            emitted += _clear(cur, t, now, actor=f"rule:{t.alarm_type}")
    return emitted


def _raise(cur: psycopg.Cursor, t: AlarmTransition, now: datetime) -> int:
    person_id = person_of(t.source_kind, t.source_id)
    # The unique partial index makes a concurrent second raise a repeat, never a duplicate.
    row = _returned(
        cur,
        f"""INSERT INTO alarms (source_kind, source_id, alarm_type, severity, emergency, person_id,
                                first_seen, last_seen, control_room, detail)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (source_kind, source_id, alarm_type) WHERE state <> 'cleared'
            DO UPDATE SET last_seen = GREATEST(alarms.last_seen, excluded.last_seen),
                          repeat_count = alarms.repeat_count + 1
            RETURNING {_ALARM_COLUMNS}, (xmax = 0) AS inserted""",
        (
            t.source_kind.value, t.source_id, t.alarm_type.value, t.severity.value, t.emergency, person_id,
            t.at, t.at, t.source_kind != SourceKind.PERSON, Jsonb(t.detail),
        ),
    )
    inserted = row.pop("inserted")
    _audit(cur, row["alarm_id"], now, "raised" if inserted else "repeated", f"rule:{t.alarm_type}", t.detail)
    log.info(
        "alarm %s %s at %s:%s", "raised" if inserted else "repeated", t.alarm_type, t.source_kind, t.source_id,
        extra={"alarm_id": row["alarm_id"], "alarm_type": str(t.alarm_type), "source": f"{t.source_kind}:{t.source_id}",
               "measured_at": t.at.isoformat(), "severity": str(t.severity)},
    )
    if not inserted:
        return emit(cur, EventType.ALARM_UPDATED, person_id, {**row, "change": "repeated"}, now)
    emitted = 0
    if t.source_kind == SourceKind.PERSON:
        row, escalation = _start_escalation(cur, row, severe=t.emergency or t.severity == "critical", now=now)
        row["escalation"] = escalation
    # The dispatcher opens the incident an emergency or a water exceedance calls for when it
    # hears this event (or finds the alarm without one in its sweep).
    emitted += emit(cur, EventType.ALARM_RAISED, person_id, row, now)
    return emitted


def _clear(cur: psycopg.Cursor, t: AlarmTransition | None, now: datetime, *, actor: str, alarm_id: int | None = None) -> int:
    params: tuple[object, ...]
    if alarm_id is None:
        assert t is not None
        where, params = "source_kind = %s AND source_id = %s AND alarm_type = %s", (t.source_kind.value, t.source_id, t.alarm_type.value)
        if t.unheld:
            where, params = where + " AND first_seen <= %s", (*params, t.at)
    else:
        where, params = "alarm_id = %s", (alarm_id,)
    row = _one(
        cur,
        f"UPDATE alarms SET state = 'cleared', cleared_at = %s, cleared_by = %s WHERE {where} AND state <> 'cleared' RETURNING {_ALARM_COLUMNS}",
        (now, actor, *params),
    )
    if row is None:
        return 0
    _audit(cur, row["alarm_id"], now, "cleared", actor, t.detail if t else {})
    cur.execute("UPDATE escalations SET next_at = NULL WHERE alarm_id = %s", (row["alarm_id"],))
    _cancel_notifications(cur, row["alarm_id"], now, "cleared")
    return emit(cur, EventType.ALARM_CLEARED, row["person_id"], row, now)


def acknowledge(cur: psycopg.Cursor, alarm_id: int, actor: str, now: datetime) -> dict[str, Any] | None:
    """An operator (or a family member: "I'm on my way") acknowledges. Acknowledging stops
    the escalation; the alarm stays open until its condition clears."""
    row = _one(
        cur,
        f"UPDATE alarms SET state = 'acked', acked_at = %s, acked_by = %s WHERE alarm_id = %s AND state = 'active' RETURNING {_ALARM_COLUMNS}",
        (now, actor, alarm_id),
    )
    if row is None:
        return None
    _audit(cur, alarm_id, now, "acked", actor, {})
    cur.execute("UPDATE escalations SET next_at = NULL, acked_by = %s WHERE alarm_id = %s", (actor, alarm_id))
    _cancel_notifications(cur, alarm_id, now, "acked")
    emit(cur, EventType.ALARM_UPDATED, row["person_id"], {**row, "change": "acked"}, now)
    return row


# --- escalation ----------------------------------------------------------------------------


def _family_chain(cur: psycopg.Cursor, person_id: str) -> list[Contact]:
    rows = _all(
        cur,
        "SELECT username, ack_timeout_s, channels, voice_after_s FROM family_links WHERE person_id = %s ORDER BY position, username",
        (person_id,),
    )
    return [Contact(r["username"], r["ack_timeout_s"], tuple(Channel(c) for c in r["channels"]), r["voice_after_s"]) for r in rows]


def _queue_notifications(cur: psycopg.Cursor, alarm: dict[str, Any], step: EscalationStep, now: datetime) -> None:
    """The messages a step sends, for the notifier (`watchpost notify`) to pick up. The app
    needs no sending (the family page hears the alarm's events): its row records that it
    was told. A contact is reached once per channel per alarm. The alarm event emitted with
    the step wakes the notifier at commit."""
    rows = [_notification_row(alarm, step.step, n, now) for n in step.notifications]
    if rows:
        cur.executemany(
            """INSERT INTO notifications (alarm_id, person_id, username, channel, step, state, due_at, expires_at, created_at, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (alarm_id, username, channel) DO NOTHING""",
            rows,
        )


def _notification_row(alarm: dict[str, Any], step: int, n: Notification, now: datetime) -> tuple[object, ...]:
    state = "delivered" if n.channel is Channel.APP else "queued"
    return (alarm["alarm_id"], alarm["person_id"], n.username, n.channel.value, step, state, n.due_at, n.expires_at, now, now)


def _cancel_notifications(cur: psycopg.Cursor, alarm_id: int, now: datetime, why: str) -> None:
    """An acknowledged or cleared alarm sends nothing more to the family; a call already
    ringing ends on its own (the notifier checks the alarm before it speaks). A partner's
    duty contact is still reached when the control room acknowledges a water alarm: what
    they are asked for is the partner's answer to our alert, which only a clear makes moot."""
    cur.execute(
        "UPDATE notifications SET state = 'cancelled', updated_at = %s, detail = detail || jsonb_build_object('cancelled', %s::text) "
        "WHERE alarm_id = %s AND state = 'queued' AND (%s = 'cleared' OR username NOT LIKE %s)",
        (now, why, alarm_id, why, f"{PARTNER_PREFIX}%"),
    )


def _start_escalation(cur: psycopg.Cursor, alarm: dict[str, Any], *, severe: bool, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record the first step of the person's escalation (ingest.rules.escalation decides it)."""
    first = first_step(_family_chain(cur, alarm["person_id"]), severe=severe, now=now)
    cur.execute(
        "INSERT INTO escalations (alarm_id, person_id, step, notified, next_at) VALUES (%s, %s, %s, %s, %s)",
        (alarm["alarm_id"], alarm["person_id"], first.step, first.notified, first.next_at),
    )
    if first.reaches_control_room:
        cur.execute("UPDATE alarms SET control_room = true WHERE alarm_id = %s", (alarm["alarm_id"],))
        alarm = {**alarm, "control_room": True}
    _queue_notifications(cur, alarm, first, now)
    _audit(cur, alarm["alarm_id"], now, "escalated", "timer", {"notify": list(first.notify), "channels": _channels(first)})
    return alarm, {"step": first.step, "notify": list(first.notify), "next_at": first.next_at, "channels": _channels(first)}


def _channels(step: EscalationStep) -> list[dict[str, Any]]:
    return [{"username": n.username, "channel": n.channel.value, "due_at": n.due_at} for n in step.notifications]


def run_due_escalations(cur: psycopg.Cursor, now: datetime, limit: int = 500) -> int:
    """Advance every escalation whose acknowledgement timeout has passed. Several workers
    may run this at once: SKIP LOCKED gives each escalation to one of them."""
    return advance_due_escalations(_SqlEscalations(cur), now, limit)


class _SqlEscalations:
    """The escalations table, as the escalation ticker (ingest.handlers) sees it."""

    def __init__(self, cur: psycopg.Cursor) -> None:
        self._cur = cur

    def due(self, now: datetime, limit: int) -> list[DueEscalation]:
        rows = _all(
            self._cur,
            "SELECT alarm_id, person_id, step FROM escalations WHERE next_at <= %s ORDER BY next_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        return [DueEscalation(r["alarm_id"], r["person_id"], r["step"]) for r in rows]

    def family_chain(self, person_id: str) -> list[Contact]:
        return _family_chain(self._cur, person_id)

    def record(self, due: DueEscalation, step: EscalationStep, now: datetime) -> int:
        cur = self._cur
        cur.execute(
            "UPDATE escalations SET step = %s, notified = %s, next_at = %s WHERE alarm_id = %s",
            (step.step, step.notified, step.next_at, due.alarm_id),
        )
        extra = ", control_room = true" if step.reaches_control_room else ""
        row = _returned(cur, f"UPDATE alarms SET last_seen = last_seen{extra} WHERE alarm_id = %s RETURNING {_ALARM_COLUMNS}", (due.alarm_id,))
        _queue_notifications(cur, row, step, now)
        _audit(cur, due.alarm_id, now, "escalated", "timer", {"notify": list(step.notify), "step": step.step, "channels": _channels(step)})
        escalation = {"step": step.step, "notify": list(step.notify), "next_at": step.next_at, "channels": _channels(step)}
        return emit(cur, EventType.ALARM_UPDATED, due.person_id, {**row, "change": "escalated", "escalation": escalation}, now)


# --- events --------------------------------------------------------------------------------


def _audit(cur: psycopg.Cursor, alarm_id: int, at: datetime, action: str, actor: str, detail: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO alarm_audit (alarm_id, at, action, actor, detail) VALUES (%s, %s, %s, %s, %s)",
        (alarm_id, at, action, actor, Jsonb(orjson.loads(orjson.dumps(detail, default=str)))),
    )


def _all(cur: psycopg.Cursor, sql: str, params: tuple) -> list[dict[str, Any]]:
    with cur.connection.cursor(row_factory=dict_row) as c:
        c.execute(sql, params)
        return c.fetchall()


def _one(cur: psycopg.Cursor, sql: str, params: tuple) -> dict[str, Any] | None:
    with cur.connection.cursor(row_factory=dict_row) as c:
        c.execute(sql, params)
        return c.fetchone()


def _returned(cur: psycopg.Cursor, sql: str, params: tuple) -> dict[str, Any]:
    """The row of an INSERT or UPDATE whose RETURNING always gives one."""
    row = _one(cur, sql, params)
    if row is None:
        raise LookupError(f"no row returned by: {sql[:60]}")
    return row
