"""The event stream: what the control room and the families see change, in commit order.

Writers `emit` an event inside the transaction that caused it. It waits there, in
`pending_events`, until the transaction commits: then a deferred trigger (migration 0012)
takes the events lock, appends it to the `events` table and announces it with NOTIFY on
`EVENTS_CHANNEL`. Ids therefore increase in commit order, yet the lock is held only while a
transaction commits, not from its first event on — an ingest batch that raises alarms does
not hold an SOS back. A rolled-back event is never kept nor heard. A unit's position fix is `announce`d only: it is not kept
(id None), because the next fix supersedes it.

Readers run one `EventListener` per process (the dispatcher, each API process): a LISTEN
connection that hands every complete event to a callback, reads an event too large for
NOTIFY from the table by its id, and reconnects with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

__all__ = [
    "EVENTS_CHANNEL",
    "NOTIFY_LIMIT",
    "SERVICE_ONLY",
    "Event",
    "EventListener",
    "EventType",
    "announce",
    "emit",
]

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "watchpost_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; a larger event is announced by
# id alone and listeners read it from the events table.
NOTIFY_LIMIT = 7900
# Room kept in a notification for the `"id":N,` member the commit trigger puts in front.
_ID_ROOM = 32

_COLUMNS = "event_id, ts, type, person_id, data"


class EventType(StrEnum):
    """Every event the platform emits; the websocket `type` field carries these values."""

    ALARM_RAISED = "alarm.raised"
    ALARM_UPDATED = "alarm.updated"
    ALARM_CLEARED = "alarm.cleared"
    INCIDENT_CREATED = "incident.created"
    INCIDENT_UPDATED = "incident.updated"
    UNIT_UPDATED = "unit.updated"
    # Between services only (announced, never kept, never sent to clients): a person with an
    # open incident has a newer fix, for the dispatcher that moves the incident.
    PERSON_LOCATED = "person.located"
    # Between services only (announced): `watchpost roads load` replaced the road network;
    # the dispatchers and API processes read the new one before their next route.
    ROADS_LOADED = "roads.loaded"


# Events the services exchange that are not part of what clients receive.
SERVICE_ONLY: frozenset[EventType] = frozenset({EventType.PERSON_LOCATED, EventType.ROADS_LOADED})


@dataclass(frozen=True, slots=True)
class Event:
    """One event as listeners and clients see it."""

    id: int | None  # None: announced only, not kept (a position fix)
    type: EventType
    ts: str  # RFC 3339, as clients receive it
    person_id: str | None  # whom it is about, for the family pages' filter
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type.value, "ts": self.ts, "person_id": self.person_id, "data": self.data}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Event:
        return cls(doc["id"], EventType(doc["type"]), doc["ts"], doc.get("person_id"), doc["data"])

    @classmethod
    def from_row(cls, row: tuple) -> Event:
        """From a `SELECT event_id, ts, type, person_id, data FROM events` row."""
        event_id, ts, kind, person_id, data = row
        return cls(event_id, EventType(kind), ts.isoformat(), person_id, data)


# --- writing ----------------------------------------------------------------------------


def emit(cur: psycopg.Cursor[Any], event_type: EventType, person_id: str | None, data: dict[str, Any], now: datetime) -> int:
    """Add an event to the durable stream as of this transaction's commit, when it takes its
    id and listeners hear of it (no lock is taken here). Returns 1, the number of events
    emitted, for callers that count them."""
    event_type = EventType(event_type)
    body = orjson.loads(orjson.dumps(data, default=str))  # datetimes -> ISO text, as clients see them
    # The notification as listeners get it, less the id the commit trigger puts in front.
    notice = orjson.dumps({"type": event_type.value, "ts": now.isoformat(), "person_id": person_id, "data": body})
    if len(notice) + _ID_ROOM > NOTIFY_LIMIT:
        notice = orjson.dumps({"type": event_type.value, "person_id": person_id})  # read by id
    cur.execute(
        "INSERT INTO pending_events (ts, type, person_id, data, notice) VALUES (%s, %s, %s, %s, %s)",
        (now, event_type.value, person_id, Jsonb(body), notice.decode()),
    )
    return 1


def announce(
    conn: psycopg.Connection | psycopg.Cursor, event_type: EventType, person_id: str | None, data: dict[str, Any], ts: datetime
) -> None:
    """NOTIFY listeners of an event that is not kept (id None), delivered at commit. Such an
    event cannot be read back, so it must fit in a notification."""
    payload = orjson.dumps(Event(None, EventType(event_type), ts.isoformat(), person_id, data).to_json())
    if len(payload) > NOTIFY_LIMIT:
        raise ValueError(f"an announced event must fit in NOTIFY ({NOTIFY_LIMIT} bytes), this one is {len(payload)}")
    conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, payload.decode()))


# --- reading ----------------------------------------------------------------------------


class EventListener:
    """Listens on the event stream and hands each complete event, in commit order, to
    `on_event`. `on_listening` runs after every (re)connection, once LISTEN is in place:
    the place to catch up on what was committed while not listening.

    An outage of the database (or an `on_event` that fails on a database error) closes the
    connection; it is reopened after a jittered, exponentially growing delay. Any other
    exception from the callbacks is a bug and ends `run`.
    """

    def __init__(
        self,
        database_url: str,
        on_event: Callable[[Event], Awaitable[None]],
        *,
        on_listening: Callable[[], Awaitable[None]] | None = None,
        min_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
    ) -> None:
        self._url = database_url
        self._on_event = on_event
        self._on_listening = on_listening
        self._min_delay_s = min_delay_s
        self._max_delay_s = max_delay_s
        self.listening = False

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Listen until `stop` is set (or for ever, until cancelled)."""
        delay = self._min_delay_s
        while stop is None or not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening = True
                    delay = self._min_delay_s
                    if self._on_listening is not None:
                        await self._on_listening()
                    async for note in conn.notifies():
                        event = await self._complete(note.payload)
                        if event is not None:
                            await self._on_event(event)
            except psycopg.Error as exc:
                self.listening = False
                log.warning("event stream lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._max_delay_s)
            finally:
                self.listening = False

    async def _complete(self, payload: str) -> Event | None:
        """The event a notification announces; read from the table when it came by id alone.
        The read takes a connection of its own: the listening one is busy waiting for
        notifications, and these events are rare."""
        try:
            doc = orjson.loads(payload)
            if "data" in doc:
                return Event.from_json(doc)
            async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as reader:
                return await fetch_event(reader, doc["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.error("ignoring a notification on %s that is not an event (%s): %.200s", EVENTS_CHANNEL, exc, payload)
            return None


async def fetch_event(conn: psycopg.AsyncConnection, event_id: int) -> Event | None:
    row = await (await conn.execute(f"SELECT {_COLUMNS} FROM events WHERE event_id = %s", (event_id,))).fetchone()
    return Event.from_row(row) if row else None


async def fetch_since(
    conn: psycopg.AsyncConnection, after: int, *, limit: int, persons: frozenset[str] | None = None,
    type_prefixes: tuple[str, ...] = (),
) -> list[Event]:
    """Kept events with an id above `after`, oldest first, at most `limit`; only about
    `persons` and of types starting with one of `type_prefixes`, when given."""
    query = f"SELECT {_COLUMNS} FROM events WHERE event_id > %s"
    params: list[Any] = [after]
    if persons is not None:
        query += " AND person_id = ANY(%s)"
        params.append(list(persons))
    if type_prefixes:
        query += " AND (" + " OR ".join(["type LIKE %s"] * len(type_prefixes)) + ")"
        params.extend(p.replace("%", r"\%").replace("_", r"\_") + "%" for p in type_prefixes)
    query += " ORDER BY event_id LIMIT %s"
    params.append(limit)
    rows = await (await conn.execute(query, params)).fetchall()
    return [Event.from_row(r) for r in rows]
