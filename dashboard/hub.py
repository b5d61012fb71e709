"""Fan-out of the durable event stream to websocket clients.

One event listener per API process (kernel.events) receives every committed event (NOTIFY is
delivered to every listener, so several API processes all see everything). Each client has a bounded send
queue and its own sender task: a slow client fills only its own queue, and when it is full
the client is disconnected (close code 1013, "try again later") — it reconnects with its last
event id and catches up from the `events` table, so it loses nothing and delays no one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from dashboard.privacy import TierFilter, family_event
from kernel.clock import Clock, SystemClock
from kernel.events import SERVICE_ONLY, Event, EventListener, EventType, fetch_since

log = logging.getLogger(__name__)

# Per-client send queue. A console receives a few events per second in a busy hour; 1,000
# is minutes of backlog — past that the client is gone or too slow, and catching up from the
# table is cheaper than holding its backlog here.
CLIENT_QUEUE = 1000
# Events replayed to a reconnecting client at most; older gaps are the console's reload.
CATCH_UP_LIMIT = 10_000
FAMILY_TYPES = ("alarm.", "incident.")


@dataclass(eq=False)
class Client:
    """What one websocket may receive: everything (control room) or only alarm and incident
    events about its persons (family)."""

    persons: frozenset[str] | None  # None: the control room, no filter (unless `tier` is set)
    send: Callable[[str], Awaitable[None]]
    close: Callable[[int, str], Coroutine[Any, Any, None]]
    queue: asyncio.Queue[tuple[int | None, str]] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    last_id: int = 0
    connected_at: float = 0.0  # on the hub's monotonic clock, set when it is served
    tier: TierFilter | None = None  # a village post, a hospital or a crew: its incidents only
    # Told which events a catch-up replays before they are sent: the control room's replay
    # of persons' alarms is a read of their data, written to the access log.
    on_replay: Callable[[list[Event]], Awaitable[None]] | None = None

    def wants(self, event: Event) -> bool:
        if self.tier is not None:
            return self.tier.wants(event)
        if self.persons is None:
            return True
        return event.person_id in self.persons and event.type.startswith(FAMILY_TYPES)


def wire(event: Event) -> str:
    """The message a client receives: {"type", "ts", "data"} plus the event id to resume from."""
    return orjson.dumps({"id": event.id, "type": event.type.value, "ts": event.ts, "data": event.data}).decode()


class Hub:
    def __init__(self, database_url: str, *, pool: AsyncConnectionPool | None = None, clock: Clock | None = None) -> None:
        self._url = database_url
        self._pool = pool  # catch-up reads borrow from the API's pool, not a connection per socket
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._clients: set[Client] = set()
        # Who may receive what, so that an event visits only its recipients: with ten
        # thousand family pages open, testing every client against every event was most of
        # a burst's cost.
        self._control_room: set[Client] = set()  # everything
        self._scoped: set[Client] = set()  # tier pages: asked one by one
        self._by_person: dict[str, set[Client]] = {}  # family pages, by the persons they watch
        self.dropped = 0  # slow clients disconnected, for /metrics
        self.delivered = 0
        # Called when the road network may have changed: a `roads.loaded` event, or a
        # reconnection (one may have come while not listening). The API forgets its network.
        self.on_roads_changed: Callable[[], None] | None = None
        self._events = EventListener(database_url, self._dispatch, on_listening=self._listening, max_delay_s=10.0)

    @property
    def listening(self) -> bool:
        return self._events.listening

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def run(self) -> None:
        """Listen for ever, reconnecting with backoff."""
        await self._events.run()

    async def _listening(self) -> None:
        if self.on_roads_changed is not None:
            self.on_roads_changed()

    def _register(self, client: Client) -> None:
        self._clients.add(client)
        if client.tier is not None:
            self._scoped.add(client)
        elif client.persons is None:
            self._control_room.add(client)
        else:
            for person in client.persons:
                self._by_person.setdefault(person, set()).add(client)

    def _unregister(self, client: Client) -> None:
        self._clients.discard(client)
        self._scoped.discard(client)
        self._control_room.discard(client)
        for person in client.persons or ():
            watchers = self._by_person.get(person)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self._by_person[person]

    def _recipients(self, event: Event) -> list[tuple[Client, bool]]:
        """The clients `event` goes to, each with whether it gets the family view."""
        out = [(c, False) for c in self._control_room]
        out += [(c, False) for c in self._scoped if c.wants(event)]
        if event.person_id is not None and event.type.startswith(FAMILY_TYPES):
            out += [(c, True) for c in self._by_person.get(event.person_id, ())]
        return out

    async def _dispatch(self, event: Event) -> None:
        if event.type is EventType.ROADS_LOADED and self.on_roads_changed is not None:
            self.on_roads_changed()
        if event.type in SERVICE_ONLY:
            return
        message = (event.id, wire(event))  # serialised once for every client
        family_message: tuple[int | None, str] | None = None  # and once for every family client
        for client, family in self._recipients(event):
            out = message
            if client.tier is not None:  # a scoped tier: a nudge naming the incident, no data
                out = (event.id, wire(client.tier.view(event)))
            elif family:  # a family client: no fleet data
                family_message = family_message or (event.id, wire(family_event(event)))
                out = family_message
            try:
                client.queue.put_nowait(out)
            except asyncio.QueueFull:
                # Drop the client, not the event: it resumes from its last id.
                self._unregister(client)
                self.dropped += 1
                log.warning("dropping a websocket client after %.0f s connected: %d events queued unsent",
                            self._clock.monotonic() - client.connected_at, client.queue.qsize())
                asyncio.create_task(client.close(1013, "too slow: reconnect with last_event_id to catch up"))

    async def serve(self, client: Client, last_event_id: int | None) -> None:
        """Register the client, replay what it missed, then stream live events until it
        goes away. Live events are queued from the moment of registration, so nothing falls
        between the replay and the live stream; duplicates are skipped by id."""
        client.connected_at = self._clock.monotonic()
        self._register(client)
        try:
            if last_event_id is not None and client.tier is None:  # a tier page re-reads its board instead
                replay = await self._fetch_since(last_event_id, client.persons)
                if replay and client.on_replay is not None:
                    await client.on_replay(replay)
                for event in replay:
                    await client.send(wire(event if client.persons is None else family_event(event)))
                    client.last_id = event.id or client.last_id  # a stored event always has its id
            while True:
                event_id, message = await client.queue.get()
                if event_id is not None:  # None: a position fix, not kept, superseded by the next
                    if event_id <= client.last_id:
                        continue
                    client.last_id = event_id
                await client.send(message)
                self.delivered += 1
        finally:
            self._unregister(client)

    async def _fetch_since(self, after: int, persons: frozenset[str] | None) -> list[Event]:
        prefixes = FAMILY_TYPES if persons is not None else ()
        if self._pool is not None:
            async with self._pool.connection() as conn:
                return await fetch_since(conn, after, limit=CATCH_UP_LIMIT, persons=persons, type_prefixes=prefixes)
        async with await psycopg.AsyncConnection.connect(self._url) as conn:
            return await fetch_since(conn, after, limit=CATCH_UP_LIMIT, persons=persons, type_prefixes=prefixes)
