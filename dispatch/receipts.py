"""Receipts to the wearer's device after `received`: `help_dispatched` when the alert's
incident gets a unit, `family_notified` when a family member acknowledged the alarm ("I'm on
my way"), `cancelled` when the wearer's "I'm OK" cleared the fall.

A receipt answers an alert, so it goes only for an alarm that carries the device's
`event_id` (the alert lane records it in the alarm's detail). Every dispatcher hears every
event; a receipt is inserted under its (alarm, state) key and only the dispatcher whose
insert succeeded publishes it, so a device gets each receipt once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg

from dispatch.incident_policy import ALERT_ALARMS


class ReceiptState(StrEnum):
    FAMILY_NOTIFIED = "family_notified"
    HELP_DISPATCHED = "help_dispatched"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Receipt:
    person_id: str
    event_id: str
    alarm_id: int
    state: ReceiptState
    ts: datetime

    def payload(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "alarm_id": self.alarm_id, "state": self.state.value, "ts": self.ts.isoformat()}


def family_acknowledged(acked_by: object) -> bool:
    return isinstance(acked_by, str) and acked_by.startswith("family:")


def cancelled_by_wearer(alarm: dict[str, Any]) -> bool:
    """A fall cleared by the rules, not by an operator: the wearer pressed "I'm OK"."""
    cleared_by = alarm.get("cleared_by")
    return alarm.get("alarm_type") == "fall" and isinstance(cleared_by, str) and cleared_by.startswith("rule:")


def for_alarm(conn: psycopg.Connection, alarm_id: int, state: ReceiptState, now: datetime) -> list[Receipt]:
    """The receipt of one alarm, if it answers an alert and was not sent before."""
    return _record(conn, "a.alarm_id = %s", (alarm_id,), state, now)


def for_incident(conn: psycopg.Connection, incident_id: str, now: datetime) -> list[Receipt]:
    """`help_dispatched` for the alerts behind an incident: its alarms and the person's open
    SOS or fall (an uncancelled fall's incident stands on the fall alert)."""
    return _record(
        conn,
        """(a.alarm_id IN (SELECT alarm_id FROM incident_alarms WHERE incident_id = %s)
            OR a.state <> 'cleared' AND a.person_id = (SELECT person_id FROM incidents WHERE incident_id = %s))""",
        (incident_id, incident_id),
        ReceiptState.HELP_DISPATCHED,
        now,
    )


def _record(conn: psycopg.Connection, where: str, params: tuple[object, ...], state: ReceiptState, now: datetime) -> list[Receipt]:
    with conn.transaction():
        rows = conn.execute(
            f"""INSERT INTO receipts (alarm_id, state, person_id, event_id, sent_at)
                SELECT a.alarm_id, %s, a.person_id, a.detail->>'event_id', %s FROM alarms a
                WHERE {where} AND a.person_id IS NOT NULL AND a.alarm_type = ANY(%s) AND a.detail ? 'event_id'
                ON CONFLICT (alarm_id, state) DO NOTHING
                RETURNING person_id, event_id, alarm_id""",
            (state.value, now, *params, sorted(ALERT_ALARMS)),
        ).fetchall()
    return [Receipt(person_id, event_id, alarm_id, state, now) for person_id, event_id, alarm_id in rows]
