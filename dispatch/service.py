"""The dispatcher process: incidents in, orders out, unit lifecycles, partner alerts.

One asyncio loop with three named tasks in a TaskGroup:
* `mqtt`: unit status and GPS from the crews (a persistent session, so none is lost while
  the dispatcher restarts; every dispatcher hears every report, in order, and the database
  applies each once — a shared group would split one unit's reports across dispatchers and
  reorder them);
* `events`: the event stream (kernel.events) — a new incident is served at once, and a water
  alarm at a cross-border station becomes a CAP document for the partner;
* `clock`: every second, overdue orders count as refused, and the queue is served (which also
  covers any notification missed during a reconnect).

All database work runs on one worker thread, in order, through `self._db`; orders are
published only after the transaction that decided them has committed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import orjson
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry, Counter, Histogram

from dispatch import store
from dispatch.assignment import REDISPATCH_AFTER_S
from dispatch.cap import StationInfo, identifier, water_alert
from dispatch.roads import RoadGraph
from kernel.events import Event, EventListener, EventType
from kernel.settings import MqttEndpoint
from kernel.topics import ANY, Channel, Kind, Topics, parse_topic, shared

log = logging.getLogger(__name__)

# Backoff bounds for reconnecting to the broker and the database.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 30.0

# A water alarm's events and the CAP message type each becomes for the partner.
_CAP_MSG_TYPE = {EventType.ALARM_RAISED: "Alert", EventType.ALARM_UPDATED: "Update", EventType.ALARM_CLEARED: "Cancel"}
_ALARM_EVENTS = frozenset(_CAP_MSG_TYPE)


class Dispatcher:
    def __init__(
        self,
        *,
        database_url: str,
        mqtt_endpoint: MqttEndpoint,
        topic_root: str,
        client_id: str,
        share_group: str,
        connect_db: Callable[[str], psycopg.Connection],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        redispatch_after_s: float = REDISPATCH_AFTER_S,
    ) -> None:
        self._url = database_url
        self._endpoint = mqtt_endpoint
        self._topics = Topics(topic_root)
        self._client_id = client_id
        self._share_group = share_group
        self._connect_db = connect_db
        self._clock = clock
        self._redispatch_after_s = redispatch_after_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-db")
        self._conn: psycopg.Connection | None = None
        self._graph: RoadGraph | None = None
        self._facilities: store.Facilities | None = None
        self._partner_stations: dict[str, StationInfo] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        self.ready = asyncio.Event()
        self.metrics = DispatchMetrics()
        # A new incident is served at once; on every (re)connection, whatever arrived
        # while not listening is served too.
        self._events = EventListener(database_url, self._on_event, on_listening=self._serve_queue,
                                     min_delay_s=RECONNECT_MIN_S, max_delay_s=RECONNECT_MAX_S)

    # --- database thread ------------------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(conn, *args)` on the database thread, reconnecting once if the
        connection was lost."""
        def call() -> Any:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect_db(self._url)
                    return fn(self._conn, *args)
                except psycopg.OperationalError:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _load_reference(self, conn: psycopg.Connection) -> None:
        self._graph = store.load_road_graph(conn)
        self._facilities = store.load_facilities(conn, self._graph)
        rows = conn.execute(
            "SELECT station_id, name, lat, lon, partner_id FROM stations WHERE partner_id IS NOT NULL"
        ).fetchall()
        conn.commit()
        self._partner_stations = {r[0]: StationInfo(*r) for r in rows}

    # --- the process ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then the loops are cancelled where they are (every step
        is its own transaction, so none is left half-done)."""
        await self._retry_forever(lambda: self._db(self._load_reference), "reading the road network and facilities", stop)
        if self._graph is None:  # stopped before the database answered
            return
        log.info("road network: %d nodes, %d edges", self._graph.n_nodes, self._graph.n_edges)
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(self._mqtt_loop(stop), name="mqtt"),
                tasks.create_task(self._events.run(stop), name="events"),
                tasks.create_task(self._clock_loop(stop), name="clock"),
            ]
            await stop.wait()
            for loop in loops:
                loop.cancel()

    def readiness(self) -> dict[str, str]:
        return {
            "broker": "ok" if self.ready.is_set() else "not connected",
            "database": "ok" if self._graph is not None and self._conn is not None and not self._conn.closed else "not connected",
            "event_stream": "ok" if self._events.listening else "not listening",
        }

    async def _retry_forever(self, attempt: Callable[[], Any], what: str, stop: asyncio.Event) -> Any:
        delay = RECONNECT_MIN_S
        while not stop.is_set():
            try:
                return await attempt()
            except (psycopg.Error, LookupError, aiomqtt.MqttError, OSError) as exc:
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_MAX_S)
        return None

    async def _mqtt_loop(self, stop: asyncio.Event) -> None:
        delay = RECONNECT_MIN_S
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 86400
        while not stop.is_set():
            lost: Exception | None = None
            try:
                async with aiomqtt.Client(
                    self._endpoint.host, self._endpoint.port,
                    username=self._endpoint.username, password=self._endpoint.password,
                    identifier=self._client_id, protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=False, properties=props, tls_context=self._endpoint.ssl_context(),
                ) as client:
                    await client.subscribe(shared(self._topics.unit_status(ANY), self._share_group), qos=1)
                    await client.subscribe(shared(self._topics.unit_gps(ANY), self._share_group), qos=1)
                    delay = RECONNECT_MIN_S
                    self.ready.set()
                    self.metrics.broker_connects.inc()
                    log.info("dispatcher connected to the broker")
                    async with asyncio.TaskGroup() as inner:
                        inner.create_task(self._publish_outbox(client), name="outbox")
                        async for message in client.messages:
                            await self._on_unit_message(str(message.topic), message.payload)
            except* aiomqtt.MqttError as group:  # raised in the TaskGroup: comes as a group
                lost = group.exceptions[0]
            self.ready.clear()
            if stop.is_set():
                return
            log.warning("broker connection lost (%s); reconnecting in %.1f s", lost, delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _publish_outbox(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload = await self._outbox.get()
            await client.publish(topic, payload, qos=1)

    async def _on_unit_message(self, topic: str, payload: bytes) -> None:
        address = parse_topic(topic, self._topics.root)
        if address is None or address.kind is not Kind.UNIT:
            log.info("ignoring a message on %s: not a unit's report", topic)
            return
        unit_id, channel = address.id, address.channel
        try:
            doc = orjson.loads(payload)
            ts = datetime.fromtimestamp(doc["ts"], UTC) if isinstance(doc.get("ts"), int | float) else datetime.fromisoformat(doc["ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # Ingest dead-letters malformed reports with their reason; here they are skipped.
            log.info("ignoring malformed %s from %s: %s", channel, unit_id, exc)
            return
        try:
            self.metrics.unit_reports.labels(channel).inc()
            if channel == Channel.STATUS and isinstance(doc.get("status"), str):
                freed = await self._db(store.apply_unit_status, unit_id, doc["status"], ts, self._clock())
                if freed:
                    await self._serve_queue()
            elif channel == Channel.GPS and isinstance(doc.get("lat"), int | float) and isinstance(doc.get("lon"), int | float):
                await self._db(store.record_position, unit_id, float(doc["lat"]), float(doc["lon"]), ts)
        except psycopg.Error as exc:
            log.error("could not record %s of %s: %s", channel, unit_id, exc)

    async def _on_event(self, event: Event) -> None:
        if event.type is EventType.INCIDENT_CREATED:
            await self._serve_queue()
        elif event.type in _ALARM_EVENTS and event.data.get("source_kind") == "station":
            station = self._partner_stations.get(str(event.data.get("source_id")))
            if station is not None:
                await self._send_cap(event, station)

    async def _send_cap(self, event: Event, station: StationInfo) -> None:
        document = await self._db(_record_cap, event, station, self._clock())
        if document is not None and station.partner_id is not None:
            await self._outbox.put((self._topics.water_alert(station.partner_id), document.encode()))

    async def _clock_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                refused = await self._db(store.refuse_overdue, self._clock(), self._redispatch_after_s)
                if refused:
                    log.warning("no en_route within %.0f s for %s: re-dispatching", self._redispatch_after_s, ", ".join(refused))
                await self._serve_queue()
            except psycopg.Error as exc:
                log.warning("clock pass failed (%s)", exc)
            await asyncio.sleep(1.0)

    async def _serve_queue(self) -> None:
        """Assign waiting incidents, most urgent first. Once an incident finds no unit of the
        kind it needs, less urgent ones needing that kind wait too: a unit freed a moment
        later must go to the most urgent call, which the next pass serves first."""
        blocked: frozenset[str] = frozenset()
        for incident_id in await self._db(store.pending_incidents):
            started = time.perf_counter()
            order = await self._db(
                functools.partial(store.assign, skip_kinds=blocked), incident_id, self._graph, self._facilities, self._clock()
            )
            self.metrics.decision_seconds.observe(time.perf_counter() - started)
            if isinstance(order, store.Queued):
                blocked |= {order.unit_kind}
            elif order is not None:
                await self._outbox.put((self._topics.order(order.unit_id), orjson.dumps(order.payload())))
                log.info("ordered %s to %s (ETA %.0f s)", order.unit_id, order.incident_id, order.eta_s,
                         extra={"incident_id": order.incident_id, "unit_id": order.unit_id, "eta_s": round(order.eta_s, 1)})
                self.metrics.orders.inc()

    async def close(self) -> None:
        def shutdown() -> None:
            if self._conn is not None:
                self._conn.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, shutdown)
        self._executor.shutdown(wait=True)


class DispatchMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.orders = Counter("watchpost_dispatch_orders_total", "Orders published to crews", registry=r)
        self.decision_seconds = Histogram(
            "watchpost_dispatch_decision_seconds", "Time to decide and record one waiting incident",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1), registry=r,
        )
        self.unit_reports = Counter("watchpost_dispatch_unit_reports_total", "Crew reports received, by channel", ["channel"], registry=r)
        self.broker_connects = Counter("watchpost_dispatch_broker_connects_total", "Connections to the broker", registry=r)


def _record_cap(conn: psycopg.Connection, event: Event, station: StationInfo, now: datetime) -> str | None:
    """Store the CAP document of this alarm event; None if another dispatcher already did."""
    alarm = event.data
    with conn.transaction():
        first = conn.execute(
            "SELECT sent, (SELECT count(*) FROM cap_alerts WHERE alarm_id = %s) FROM cap_alerts WHERE alarm_id = %s AND msg_type = 'Alert'",
            (alarm["alarm_id"], alarm["alarm_id"]),
        ).fetchone()
        if event.type is not EventType.ALARM_RAISED and first is None:
            return None  # nothing was sent for this alarm: no Update or Cancel either
        sequence = 0 if first is None else first[1]
        document = water_alert(
            event_type=event.type.value, alarm=alarm, station=station, sent=now, sequence=sequence,
            first_sent=None if first is None else first[0],
        )
        msg_type = _CAP_MSG_TYPE[event.type]
        inserted = conn.execute(
            "INSERT INTO cap_alerts (event_id, alarm_id, partner_id, msg_type, identifier, sent, document) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            (event.id, alarm["alarm_id"], station.partner_id, msg_type, identifier(alarm["alarm_id"], sequence), now, document),
        ).fetchone()
    return document if inserted else None


async def run_dispatcher(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    try:
        await dispatcher.run(stop)
    finally:
        await dispatcher.close()
