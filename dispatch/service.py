"""The dispatcher process: incidents in, orders out, unit lifecycles, partner alerts.

One asyncio loop with three named tasks in a TaskGroup:
* `mqtt`: unit status and GPS from the crews (a persistent session, so none is lost while
  the dispatcher restarts; every dispatcher hears every report, in order, and the database
  applies each once — a shared group would split one unit's reports across dispatchers and
  reorder them). A report is validated by ingest's parser, like all device input; one that
  meets a database outage is retried, in order, until it applies (docs/dispatch.md);
* `events`: the event stream (kernel.events) — an emergency or water alarm opens its incident
  (dispatch owns incidents), a new incident is served at once, a person's newer fix moves
  their incident and re-sends the crew's order, receipts go to the wearer's device, and a
  water alarm at a cross-border station becomes a CAP document for the partner;
* `clock`: every second, overdue orders count as refused, and the queue is served; every few
  seconds (and at start-up) the sweep reads the durable tables for what an event missed
  while no dispatcher listened would have done: alarms without their incident, cleared water
  alarms not yet verified, incidents standing on an older fix.
* `reference`: the road network and facilities, read once; until then incidents are opened
  but not yet assigned.

All database work runs on one worker thread, in order, through `self._db`; orders are
published only after the transaction that decided them has committed. What to do on a tick,
an incident or a report is decided in dispatch/handlers.py; this module is its I/O.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
import orjson
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry, Counter, Histogram

from dispatch import handlers, incidents, receipts, store, tier_store
from dispatch.assignment import REDISPATCH_AFTER_S
from dispatch.cap import CapSender, SentFirst, StationInfo, identifier, plan_message, water_alert
from dispatch.first_response import ANSWER_WITHIN_S, CALL_AFTER_S, FIRST_RESPONDER_MARGIN_S
from dispatch.incident_policy import VERIFY_WITHIN, Fix, incident_for
from dispatch.partner_ack import AckRejected, parse_ack
from dispatch.partner_loop import escalate_overdue, record_answer
from dispatch.roads import RoadGraph
from dispatch.snapping import snap_to_edge
from ingest.devices import DeviceDirectory
from ingest.parse import Limits, Reason, RejectedMessage, parse_message
from ingest.readings import UnitPosition, UnitStatusReport
from ingest.store import fetch_device_directory
from kernel.clock import Clock, SystemClock
from kernel.events import Event, EventListener, EventType
from kernel.settings import MqttEndpoint
from kernel.topics import ANY, Channel, Topics, parse_topic, shared

log = logging.getLogger(__name__)

# Backoff bounds for reconnecting to the broker and the database.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 30.0
# A report from a unit not in the dispatcher's copy of the registry re-reads the registry
# (a unit added since the start), at most this often.
DIRECTORY_REFRESH_S = 10.0
# Reason recorded for a crew report the database refused for good (not an outage).
STORE_REJECTED = "store_rejected"

# A water alarm's events and the CAP message type each becomes for the partner.
_CAP_MSG_TYPE = {EventType.ALARM_RAISED: "Alert", EventType.ALARM_UPDATED: "Update", EventType.ALARM_CLEARED: "Cancel"}
_ALARM_EVENTS = frozenset(_CAP_MSG_TYPE)
# How often the sweep looks for work an event missed while no dispatcher listened.
SWEEP_EVERY_S = 5.0


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
        cap_sender: CapSender,
        clock: Clock | None = None,
        redispatch_after_s: float = REDISPATCH_AFTER_S,
        sweep_every_s: float = SWEEP_EVERY_S,
        first_responder_margin_s: float = FIRST_RESPONDER_MARGIN_S,
        first_responder_answer_s: float = ANSWER_WITHIN_S,
        verify_answer_s: float = VERIFY_WITHIN.total_seconds(),
        first_responder_call_after_s: float = CALL_AFTER_S,
    ) -> None:
        self._url = database_url
        self._endpoint = mqtt_endpoint
        self._topics = Topics(topic_root)
        self._client_id = client_id
        self._share_group = share_group
        self._connect_db = connect_db
        self._cap_sender = cap_sender
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._redispatch_after_s = redispatch_after_s
        self._first_responder_margin_s = first_responder_margin_s
        self._first_responder_answer_s = first_responder_answer_s
        self._verify_within = timedelta(seconds=verify_answer_s)
        self._first_responder_call_after_s = first_responder_call_after_s
        self._sweep_every_s = sweep_every_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-db")
        self._conn: psycopg.Connection | None = None
        self._graph: RoadGraph | None = None
        self._roads_version = -1  # the road network's version self._graph was read at
        self._facilities: store.Facilities | None = None
        self._partner_stations: dict[str, StationInfo] = {}
        self._devices = DeviceDirectory()
        self._devices_read_at = float("-inf")
        self._store = _DatabaseStore(self)
        self._stop = asyncio.Event()
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        self.ready = asyncio.Event()
        self.metrics = DispatchMetrics()
        # A new incident is served at once; on every (re)connection, whatever arrived
        # while not listening is swept up and served too.
        self._events = EventListener(database_url, self._on_event, on_listening=self._catch_up,
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
        # The version first: a network loaded meanwhile makes it older, so it is read again.
        version = store.road_network_version(conn)
        graph = store.load_road_graph(conn)
        facilities = store.load_facilities(conn, graph)
        self._graph, self._facilities, self._roads_version = graph, facilities, version
        rows = conn.execute(
            "SELECT station_id, name, lat, lon, partner_id FROM stations WHERE partner_id IS NOT NULL"
        ).fetchall()
        conn.commit()
        self._partner_stations = {r[0]: StationInfo(*r) for r in rows}
        self._read_devices(conn)

    def _read_devices(self, conn: psycopg.Connection) -> None:
        self._devices = fetch_device_directory(conn)
        self._devices_read_at = self._clock.monotonic()

    # --- the process ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then the loops are cancelled where they are (every step
        is its own transaction, so none is left half-done)."""
        self._stop = stop
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(self._reference(stop), name="reference"),
                tasks.create_task(self._mqtt_loop(stop), name="mqtt"),
                tasks.create_task(self._events.run(stop), name="events"),
                tasks.create_task(self._clock_loop(stop), name="clock"),
            ]
            await stop.wait()
            for loop in loops:
                loop.cancel()

    async def _reference(self, stop: asyncio.Event) -> None:
        await self._retry_forever(lambda: self._db(self._load_reference), "reading the road network and facilities", stop)
        if self._graph is not None:
            log.info("road network: %d nodes, %d edges", self._graph.n_nodes, self._graph.n_edges)
            await self._serve_queue()

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
                    await client.subscribe(shared(self._topics.water_ack(ANY), self._share_group), qos=1)
                    delay = RECONNECT_MIN_S
                    self.ready.set()
                    self.metrics.broker_connects.inc()
                    log.info("dispatcher connected to the broker")
                    async with asyncio.TaskGroup() as inner:
                        inner.create_task(self._publish_outbox(client), name="outbox")
                        async for message in client.messages:
                            topic, payload = str(message.topic), message.payload
                            address = parse_topic(topic, self._topics.root)
                            if address is not None and address.channel is Channel.WATER_ACK:
                                await self._on_partner_answer(topic, address.id, payload)
                            else:
                                await self._on_unit_message(topic, payload)
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
        """A crew's report, validated as all device input is (ingest's parser, which also
        dead-letters it in ingest's own store if it is bad), then applied."""
        try:
            reports = self._parse_report(topic, payload)
        except RejectedMessage as exc:
            if exc.reason not in (Reason.UNKNOWN_DEVICE, Reason.RETIRED_DEVICE) or (
                self._clock.monotonic() - self._devices_read_at < DIRECTORY_REFRESH_S
            ):
                log.info("ignoring a report on %s: %s", topic, exc)
                return
            await self._db(self._read_devices)  # a unit registered (or listed again) since the last read?
            try:
                reports = self._parse_report(topic, payload)
            except RejectedMessage as again:
                log.info("ignoring a report on %s: %s", topic, again)
                return
        for report in reports:
            channel = "status" if isinstance(report, UnitStatusReport) else "gps"
            self.metrics.unit_reports.labels(channel).inc()
            await self._apply_until_done(topic, payload, report)

    async def _on_partner_answer(self, topic: str, partner_id: str, payload: Any) -> None:
        """A partner's CAP Ack/Error: recorded on the alerts it references; anything else on
        the topic is dead-lettered with its reason."""
        body = payload if isinstance(payload, bytes) else str(payload).encode()
        try:
            ack = parse_ack(body, self._cap_sender.address)
        except AckRejected as exc:
            log.info("partner %s: not an answer to our alerts (%s)", partner_id, exc)
            await self._dead_letter(topic, body, str(exc), reason=exc.reason)
            return
        answered = await self._db(record_answer, partner_id, ack, self._clock.now())
        if answered:
            log.info("partner %s %s alarms %s (%s)", partner_id, "accepted" if ack.accepted else "refused", answered, ack.sender)
        else:
            await self._dead_letter(topic, body, "references no open alert of ours to this partner", reason="unknown_reference")

    def _parse_report(self, topic: str, payload: bytes) -> list[UnitStatusReport | UnitPosition]:
        readings = parse_message(topic, payload, root=self._topics.root, devices=self._devices, now=self._clock.now(), limits=Limits())
        return [r for r in readings if isinstance(r, UnitStatusReport | UnitPosition)]

    async def _apply_until_done(self, topic: str, payload: bytes, report: UnitStatusReport | UnitPosition) -> None:
        """The broker has had its acknowledgement (aiomqtt acknowledges on receipt), so the
        report is ours to keep: through a database outage it is retried with backoff, and
        the reports behind it wait, so one unit's reports still apply in order. One the
        database refuses for good (not an outage) is dead-lettered, never silently lost."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                await handlers.apply_report(self._store, self._publish, self._clock, report, self.metrics.decision_seconds.observe)
                return
            except psycopg.OperationalError as exc:
                if self._stop.is_set():
                    log.error("stopping with a report of %s not applied (%s): %s", report.unit_id, exc, payload[:200])
                    return
                log.warning("could not apply a report of %s (%s); retrying in %.1f s", report.unit_id, exc, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_MAX_S)
            except psycopg.Error as exc:
                log.error("the database refused a report of %s: %s", report.unit_id, exc)
                await self._dead_letter(topic, payload, str(exc))
                return

    async def _dead_letter(self, topic: str, payload: bytes, detail: str, reason: str = STORE_REJECTED) -> None:
        def insert(conn: psycopg.Connection) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO dead_letters (received_at, topic, payload, reason, detail) VALUES (%s, %s, %s, %s, %s)",
                    (self._clock.now(), topic, payload, reason, detail[:1000]),
                )
        try:
            await self._db(insert)
        except psycopg.Error as exc:
            log.error("could not dead-letter a report on %s (%s): %r", topic, exc, payload[:1000])

    async def _on_event(self, event: Event) -> None:
        data = event.data
        if event.type is EventType.ALARM_RAISED and isinstance(data.get("alarm_id"), int) and incident_for(
            str(data.get("alarm_type")), emergency=bool(data.get("emergency")), person_id=data.get("person_id")
        ):
            await self._open_incident(data["alarm_id"], self._clock.now())
        elif event.type is EventType.ALARM_CLEARED and isinstance(data.get("alarm_id"), int):
            await self._db(incidents.verify_water, data["alarm_id"], self._clock.now())
            if receipts.cancelled_by_wearer(data):
                await self._send_receipts(receipts.for_alarm, data["alarm_id"], receipts.ReceiptState.CANCELLED)
        elif event.type is EventType.ALARM_UPDATED and data.get("change") == "acked" and receipts.family_acknowledged(data.get("acked_by")):
            await self._send_receipts(receipts.for_alarm, data["alarm_id"], receipts.ReceiptState.FAMILY_NOTIFIED)
        elif event.type is EventType.PERSON_LOCATED and event.person_id is not None:
            await self._follow_fix(event.person_id)
        elif event.type is EventType.ROADS_LOADED:
            await self._reload_roads()
        if event.type is EventType.INCIDENT_UPDATED and data.get("unit_id") and "decision" in data and data.get("person_id"):
            await self._send_receipts(receipts.for_incident, data["incident_id"])  # a unit is on its way
        if event.type is EventType.UNIT_UPDATED and event.id is not None and "status" in data and "lat" not in data:
            await self._sample_coverage(event)  # a status change (a fix carries lat and no event id)
        if event.type is EventType.INCIDENT_CREATED:
            await self._serve_queue()
        elif event.type in _ALARM_EVENTS and event.data.get("source_kind") == "station":
            station = self._partner_stations.get(str(event.data.get("source_id")))
            if station is not None:
                await self._send_cap(event, station)

    async def _sample_coverage(self, event: Event) -> None:
        """Coverage after a unit's status change, for the shift report's daily figure."""
        if self._graph is None or self._facilities is None or event.id is None:
            return
        started = self._clock.monotonic()
        await self._db(store.record_coverage, self._graph, self._facilities, event.id, datetime.fromisoformat(event.ts))
        self.metrics.coverage_seconds.observe(self._clock.monotonic() - started)

    def _in_region(self, fix: Fix) -> bool:
        """A person's fix is trusted when a road is within walking reach of it (as a unit's is):
        a fix tens of kilometres away is a receiver's error or the person abroad, and help is
        sent to the last place that is in the region. Before the road network is read every
        fix is taken as it comes."""
        graph = self._graph
        # Not through snap_cached: a person's fixes seldom repeat, and would only push the
        # units' bases and the facilities out of that cache.
        return graph is None or not snap_to_edge(graph, fix.lat, fix.lon).outside

    async def _open_incident(self, alarm_id: int, now: datetime) -> dict[str, Any] | None:
        opened: dict[str, Any] | None = await self._db(
            functools.partial(incidents.open_for_alarm, in_region=self._in_region, verify_within=self._verify_within), alarm_id, now)
        return opened

    async def _follow_fix(self, person_id: str) -> None:
        """A newer fix moves the person's open incident; its crew gets the order again."""
        moved = await self._db(functools.partial(incidents.follow_fix, in_region=self._in_region), person_id, self._clock.now())
        if moved is None:
            return
        update = await self._db(incidents.order_update, moved, self._graph, self._facilities)
        if update is not None:
            unit_id, payload = update
            await self._outbox.put((self._topics.order(unit_id), orjson.dumps(payload)))
            log.info("order update to %s: %s moved", unit_id, payload["incident_id"],
                     extra={"incident_id": payload["incident_id"], "unit_id": unit_id})

    async def _send_receipts(self, record: Callable[..., list[receipts.Receipt]], *args: Any) -> None:
        """Record and publish receipts; only the dispatcher whose insert succeeded sends one."""
        for receipt in await self._db(record, *args, self._clock.now()):
            await self._outbox.put((self._topics.receipt(receipt.person_id), orjson.dumps(receipt.payload())))
            log.info("receipt %s for %s of %s", receipt.state, receipt.event_id, receipt.person_id,
                     extra={"alarm_id": receipt.alarm_id, "person_id": receipt.person_id})

    async def _reload_roads(self) -> None:
        """A new road network was loaded (`roads.loaded`, or a newer version seen by the
        sweep): route on it from now on, and serve the queue on it."""
        try:
            await self._db(self._load_reference)
        except (psycopg.Error, LookupError, ValueError) as exc:
            # Routing goes on, on the network already read; the next sweep tries again.
            log.warning("reading the new road network failed (%s); routing on version %d meanwhile", exc, self._roads_version)
            return
        if self._graph is not None:
            log.info("road network version %d: %d nodes, %d edges", self._roads_version, self._graph.n_nodes, self._graph.n_edges)
        await self._serve_queue()

    async def _sweep(self) -> None:
        """Do what a missed event would have done; the durable tables say what is owed."""
        if self._graph is not None and await self._db(store.road_network_version) != self._roads_version:
            await self._reload_roads()  # its announcement came while no one listened
        now = self._clock.now()
        owed = await self._db(incidents.backlog, now)
        for alarm_id in owed.alarms:
            opened = await self._open_incident(alarm_id, now)
            if opened is not None:
                log.info("sweep: alarm %s had no incident; %s", alarm_id, opened["incident_id"])
        for alarm_id in owed.cleared_water:
            await self._db(incidents.verify_water, alarm_id, now)
        for person_id in owed.moved_persons:
            await self._follow_fix(person_id)

    async def _catch_up(self) -> None:
        await self._sweep()
        await self._serve_queue()

    async def _send_cap(self, event: Event, station: StationInfo) -> None:
        document = await self._db(_record_cap, event, station, self._cap_sender, self._clock.now())
        if document is not None and station.partner_id is not None:
            await self._outbox.put((self._topics.water_alert(station.partner_id), document.encode()))

    async def _clock_loop(self, stop: asyncio.Event) -> None:
        swept_at = float("-inf")
        while not stop.is_set():
            try:
                if self._clock.monotonic() - swept_at >= self._sweep_every_s:
                    swept_at = self._clock.monotonic()
                    await self._sweep()
                    escalated = await self._db(escalate_overdue, self._clock.now())
                    if escalated:
                        log.warning("partners have not answered water alerts %s: escalated to their duty contacts", escalated)
                if self._graph is not None:  # until the road network is read, incidents only wait
                    await handlers.tick(self._store, self._publish, self._clock, redispatch_after_s=self._redispatch_after_s,
                                        observe=self.metrics.decision_seconds.observe)
                    self.metrics.queue_passes.inc()
                # A village doctor's alert past its time without an answer: recorded and shown,
                # never waited on.
                await self._db(tier_store.expire_unanswered, self._clock.now())
                # A verification call at a fire or gas incident with no answer recorded in
                # time: an ambulance goes too (its incident is served like any other).
                for verified in await self._db(store.verify_overdue, self._clock.now()):
                    log.warning("incident %s: no answer to the verification call; ambulance incident %s",
                                verified.incident["incident_id"], (verified.companion or {}).get("incident_id"),
                                extra={"incident_id": verified.incident["incident_id"]})
            except psycopg.Error as exc:
                log.warning("clock pass failed (%s)", exc)
            await asyncio.sleep(1.0)

    async def _serve_queue(self) -> None:
        if self._graph is None or self._facilities is None:
            return  # the road network is not read yet: the reference task serves the queue then
        await handlers.serve_queue(self._store, self._publish, self._clock, self.metrics.decision_seconds.observe)
        self.metrics.queue_passes.inc()

    async def _publish(self, order: store.Order) -> None:
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
        self.coverage_seconds = Histogram(
            "watchpost_dispatch_coverage_seconds", "Time to recompute and record the coverage after a unit's status change",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 1), registry=r,
        )
        self.unit_reports = Counter("watchpost_dispatch_unit_reports_total", "Crew reports received, by channel", ["channel"], registry=r)
        self.broker_connects = Counter("watchpost_dispatch_broker_connects_total", "Connections to the broker", registry=r)
        # Rises at least once a second while the queue is served (the clock loop's pass).
        self.queue_passes = Counter("watchpost_dispatch_queue_passes_total", "Completed passes over the waiting incidents", registry=r)


class _DatabaseStore:
    """The handlers' store: dispatch.store's transactions, on the dispatcher's database
    thread."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def pending_incidents(self) -> list[str]:
        pending: list[str] = await self._d._db(store.pending_incidents)
        return pending

    async def assign(self, incident_id: str, now: datetime, skip_kinds: frozenset[str]) -> store.Order | store.Queued | None:
        d = self._d
        order: store.Order | store.Queued | None = await d._db(
            functools.partial(store.assign, skip_kinds=skip_kinds, first_responder_margin_s=d._first_responder_margin_s,
                              answer_within_s=d._first_responder_answer_s, call_after_s=d._first_responder_call_after_s),
            incident_id, d._graph, d._facilities, now
        )
        return order

    async def refuse_overdue(self, now: datetime, after_s: float) -> list[str]:
        refused: list[str] = await self._d._db(store.refuse_overdue, now, after_s)
        return refused

    async def apply_unit_status(self, unit_id: str, status: str, reported_at: datetime, now: datetime) -> bool:
        return bool(await self._d._db(store.apply_unit_status, unit_id, status, reported_at, now))

    async def record_position(self, unit_id: str, lat: float, lon: float, at: datetime) -> None:
        await self._d._db(store.record_position, unit_id, lat, lon, at)


def _record_cap(conn: psycopg.Connection, event: Event, station: StationInfo, sender: CapSender, now: datetime) -> str | None:
    """Store the CAP document of this alarm event; None if another dispatcher already did.
    The alarm's incident is linked before its raise gets here (`_on_event` opens or attaches
    it first), so a second alarm of the exceedance finds the first one's Alert."""
    alarm = event.data
    alarm_id = alarm["alarm_id"]
    with conn.transaction():
        own = conn.execute(
            "SELECT (SELECT sent FROM cap_alerts WHERE alarm_id = %s AND identifier = %s), count(*) FROM cap_alerts WHERE alarm_id = %s",
            (alarm_id, identifier(alarm_id, 0), alarm_id),
        ).fetchone()
        own_first = SentFirst(alarm_id, own[0]) if own is not None and own[0] is not None else None
        exceedance_alert = None
        if own_first is None and event.type is EventType.ALARM_RAISED:
            # The earliest Alert of another alarm on this alarm's incident that no Cancel has
            # withdrawn: the partner already knows of this exceedance.
            row = conn.execute(
                """SELECT c.alarm_id, c.sent FROM incident_alarms mine
                   JOIN incident_alarms other ON other.incident_id = mine.incident_id AND other.alarm_id <> mine.alarm_id
                   JOIN cap_alerts c ON c.alarm_id = other.alarm_id AND c.msg_type = 'Alert' AND c.partner_id = %s
                   WHERE mine.alarm_id = %s
                     AND NOT EXISTS (SELECT 1 FROM cap_alerts x WHERE x.alarm_id = c.alarm_id AND x.msg_type = 'Cancel')
                   ORDER BY c.sent LIMIT 1""",
                (station.partner_id, alarm_id),
            ).fetchone()
            exceedance_alert = None if row is None else SentFirst(row[0], row[1])
        plan = plan_message(event.type.value, own_first=own_first, own_sent=0 if own is None else own[1], exceedance_alert=exceedance_alert)
        if plan is None:
            return None
        document = water_alert(
            sender=sender, event_type=event.type.value, alarm=alarm, station=station, sent=now, sequence=plan.sequence,
            first_sent=None if plan.references is None else plan.references.sent, msg_type=plan.msg_type,
            references_alarm_id=None if plan.references is None else plan.references.alarm_id,
        )
        inserted = conn.execute(
            "INSERT INTO cap_alerts (event_id, alarm_id, partner_id, msg_type, identifier, sent, document) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            (event.id, alarm_id, station.partner_id, plan.msg_type, identifier(alarm_id, plan.sequence), now, document),
        ).fetchone()
    return document if inserted else None


async def run_dispatcher(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    try:
        await dispatcher.run(stop)
    finally:
        await dispatcher.close()
