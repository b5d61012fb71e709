"""The console's orders on their way to the broker: an assignment or move-up a dispatcher
gives by hand is committed, written here, then published; the row goes once the broker has
acknowledged it. While the broker is down the row stays and the API's resend loop sends it
when the broker is back — if it still stands. So a committed order is never left unsent,
and a superseded one is never sent late.

(The dispatcher's own orders do not need this: it publishes from an in-memory outbox over
a persistent session and re-dispatches an order not answered in time.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class UnsentOrder:
    unit_id: str
    topic: str
    payload: dict[str, Any]
    incident_id: str | None


def keep(conn: psycopg.Connection, order: UnsentOrder) -> None:
    """Write the order before it is published (a newer order for the unit replaces an older
    unsent one)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO unsent_orders (unit_id, topic, payload, incident_id) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (unit_id) DO UPDATE SET topic = excluded.topic, payload = excluded.payload, "
            "incident_id = excluded.incident_id, committed_at = now(), attempts = 0",
            (order.unit_id, order.topic, Jsonb(order.payload), order.incident_id),
        )


def sent(conn: psycopg.Connection, order: UnsentOrder) -> None:
    """The broker has the order: forget it (unless a newer one for the unit replaced it)."""
    with conn.transaction():
        conn.execute("DELETE FROM unsent_orders WHERE unit_id = %s AND payload = %s", (order.unit_id, Jsonb(order.payload)))


def due(conn: psycopg.Connection, limit: int = 100) -> list[UnsentOrder]:
    """The unsent orders that still stand; those that no longer do (the unit was stood down,
    re-assigned by the dispatcher, or took another incident) are dropped."""
    pending = conn.execute("SELECT 1 FROM unsent_orders LIMIT 1").fetchone()
    conn.commit()
    if pending is None:
        return []  # the usual case, asked every few seconds by every API process: a read only
    with conn.transaction():
        conn.execute(
            "DELETE FROM unsent_orders o "
            "WHERE (SELECT s.incident_id FROM unit_state s WHERE s.unit_id = o.unit_id) IS DISTINCT FROM o.incident_id"
        )
        rows = conn.execute(
            "UPDATE unsent_orders SET attempts = attempts + 1 WHERE unit_id IN "
            "(SELECT unit_id FROM unsent_orders ORDER BY committed_at LIMIT %s) RETURNING unit_id, topic, payload, incident_id",
            (limit,),
        ).fetchall()
    return [UnsentOrder(unit_id, topic, payload, incident_id) for unit_id, topic, payload, incident_id in rows]
