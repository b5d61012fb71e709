"""The alert lane: life-safety alerts from `{root}/elder/+/alert`, each committed at once in
its own transaction, acknowledged, and answered with a `received` receipt to the device.

Its own MQTT session in its own shared-subscription group, subscribed to the alert topic
only, so no amount of routine telemetry, nor a backlog of it, sits in front of an alert.
Two threads: paho's network thread hands each alert to a small bounded queue; the thread
that calls `run` takes them one by one:

    parse (pure) → one transaction: the alert row keyed (person_id, event_id), the reading,
    the rules and the alarm → commit → PUBACK → receipt `received` (QoS 1).

No alert waits for the person's rule state, which an ingest batch holds locked until its
commit: an SOS and a home hazard go straight to the alarm store (they need no memory); a
fall and an "I'm OK" take the lane's own small state of the person (`alert:{person_id}`,
`ingest.rules.alert_state`), which no ingest batch touches. The lane also ticks those states
(a fall's cancel window) itself, so an uncancelled fall becomes an emergency on time even
while ingest is down or behind.

A repeat of an event id finds its row and is answered again with the stored alarm id; it
never raises a second alarm. Nothing is acknowledged before it is committed: a consumer
killed in between leaves the alert with the broker (and the device keeps repeating it until
it sees `received`), and the key makes the redelivery a repeat. A bad alert is
dead-lettered with its reason and counted; a database outage is retried with backoff.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.alerts import (
    Alert,
    AlertLimits,
    AlertType,
    RejectedAlert,
    parse_alert,
    reading_of,
    receipt_payload,
)
from ingest.alarm_store import apply_transitions
from ingest.devices import DeviceDirectory
from ingest.readings import HomeSensorEvent
from ingest.rule_store import RuleRunner, fetch_rule_configs
from ingest.rules import Action, AlarmTransition, AlarmType
from ingest.rules.elderly import sos_alarm
from ingest.rules.home import hazard_alarm
from ingest.store import fetch_device_directory, insert_reading
from kernel.clock import Clock
from kernel.db import registry_version
from kernel.settings import AlertSettings, MqttEndpoint
from kernel.topics import ANY, Topics, share_group_offered, shared

log = logging.getLogger(__name__)

_T = TypeVar("_T")

INTERNAL_ERROR = "internal_error"
RECEIVED = "received"

# Which alarm an alert answers to, for its receipt: the alarm types it can raise or clear.
_ALARM_TYPES: dict[AlertType, tuple[AlarmType, ...]] = {
    AlertType.SOS: (AlarmType.SOS,),
    AlertType.FALL: (AlarmType.FALL_UNCANCELLED, AlarmType.FALL),
    AlertType.CANCEL: (AlarmType.FALL_UNCANCELLED, AlarmType.FALL),
    AlertType.SMOKE: (AlarmType.SMOKE,),
    AlertType.GAS: (AlarmType.GAS,),
    AlertType.WATER_LEAK: (AlarmType.WATER_LEAK,),
}


def alert_subscriptions(root: str, share_group: str) -> list[str]:
    """The alert topic only: receipts and everything else are not this lane's to read."""
    return [shared(Topics(root).alert(ANY), share_group)]


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.alerts = Counter("watchpost_alerts_total", "Alerts stored, by type", ["type"], registry=r)
        self.repeats = Counter("watchpost_alerts_repeats_total", "Repeats of an alert already stored (answered again)", registry=r)
        self.clock_suspect = Counter("watchpost_alerts_clock_suspect_total", "Alerts whose device clock was out of tolerance", registry=r)
        self.dead_letters = Counter("watchpost_alerts_dead_letters_total", "Alerts dead-lettered, by reason", ["reason"], registry=r)
        self.db_errors = Counter("watchpost_alerts_db_errors_total", "Failed alert commits, retried", registry=r)
        self.broker_connects = Counter("watchpost_alerts_broker_connects_total", "Connections (and reconnections) to the broker", registry=r)
        self.commit_seconds = Histogram(
            "watchpost_alerts_commit_seconds", "From taking an alert to its receipt being sent",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=r,
        )
        self.pending = Gauge("watchpost_alerts_pending", "Alerts received, not yet committed", registry=r)


@dataclass(frozen=True, slots=True)
class _Received:
    topic: str
    payload: bytes
    received_at: datetime
    ack: tuple[int, int, int]  # (connection generation, packet id, qos)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the database made of one alert."""

    alarm_id: int | None
    repeat: bool


class AlertLane:
    def __init__(
        self,
        *,
        mqtt_endpoint: MqttEndpoint,
        topic_root: str,
        database_url: str,
        settings: AlertSettings,
        metrics: AlertMetrics,
        connect_db: Callable[[str], psycopg.Connection],
        clock: Clock,
        client_id: str,
        after_commit: Callable[[Alert], None] = lambda _alert: None,
    ) -> None:
        self._endpoint = mqtt_endpoint
        self._root = topic_root
        self._database_url = database_url
        self._settings = settings
        self._metrics = metrics
        self._connect_db = connect_db
        self._clock = clock
        self._after_commit = after_commit
        self._limits = AlertLimits(
            future_tolerance=timedelta(seconds=settings.future_tolerance_s),
            max_age=timedelta(seconds=settings.max_age_s),
        )
        self._devices = DeviceDirectory()
        self._client_id = client_id
        self._rules = RuleRunner(clock)
        self._registry_version: int | None = None
        # Bounded by the broker: it sends no more than Receive Maximum unacknowledged alerts.
        self._queue: queue.Queue[_Received] = queue.Queue()
        self._generation = 0
        self._generation_lock = threading.Lock()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._last_ok: float | None = None
        metrics.pending.set_function(self._queue.qsize)
        self._client = self._make_client()
        self.connected = threading.Event()

    # --- MQTT side (paho's network thread) ---------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self._endpoint.username:
            client.username_pw_set(self._endpoint.username, self._endpoint.password)
        if (context := self._endpoint.ssl_context()) is not None:
            client.tls_set_context(context)
        # Reconnect soon: an alert may be waiting.
        client.reconnect_delay_set(min_delay=0.2, max_delay=2)  # type: ignore[arg-type]  # paho computes in float seconds; its hint says int
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _userdata, _flags, reason_code, props) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        # The PUBACK and the receipt are two small writes in a row: with Nagle's algorithm
        # the receipt would wait for the broker's delayed ACK of the first (~40 ms).
        sock = client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._generation_lock:
            self._generation += 1
        self._metrics.broker_connects.inc()
        options = SubscribeOptions(qos=1)
        group = share_group_offered(self._settings.share_group, props)
        if group != self._settings.share_group:
            log.warning("the broker has no shared subscriptions: the alert lane subscribes on its own, and every "
                        "alert lane running hears every alert (run one, or count each alert's repeats)")
        client.subscribe([(f, options) for f in alert_subscriptions(self._root, group)])
        log.info("connected to the broker at %s:%s (alert lane)", self._endpoint.host, self._endpoint.port)
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("lost the broker connection (%s); reconnecting", reason_code)

    def _on_message(self, _client, _userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)
        with self._generation_lock:
            generation = self._generation
        self._queue.put(_Received(topic, msg.payload, self._clock.now(), (generation, msg.mid, msg.qos)))

    # --- the lane (the thread that calls run) ------------------------------------------

    def run(self) -> None:
        """Runs until `stop()`; an alert taken but not committed stays with the broker."""
        self._load_registry_before_start()
        self._client.connect_async(
            self._endpoint.host, self._endpoint.port, keepalive=10, clean_start=False, properties=self._connect_properties()
        )
        self._client.loop_start()
        next_refresh = self._clock.monotonic() + self._settings.registry_refresh_s
        next_timers = self._clock.monotonic()
        try:
            while not self._stopping.is_set():
                try:
                    item = self._queue.get(timeout=0.5)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._handle(item)
                if self._clock.monotonic() >= next_refresh:
                    self._refresh_registry()
                    next_refresh = self._clock.monotonic() + self._settings.registry_refresh_s
                now = self._clock.monotonic()
                # Timers between alerts: an alert waiting is not held behind a timer pass,
                # unless alerts have kept the lane busy for a whole interval past the due time.
                if now >= next_timers and (self._queue.empty() or now >= next_timers + self._settings.timer_interval_s):
                    self._run_timers()
                    next_timers = self._clock.monotonic() + self._settings.timer_interval_s
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            if self._conn is not None:
                self._conn.close()

    def stop(self) -> None:
        self._stopping.set()

    def readiness(self) -> dict[str, str]:
        return {
            "broker": "ok" if self.connected.is_set() else "not connected",
            "database": "ok" if self._conn is not None and not self._conn.closed else "not connected",
        }

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._settings.session_expiry_s
        props.ReceiveMaximum = min(self._settings.receive_maximum, 65535)
        return props

    def _handle(self, item: _Received) -> None:
        started = self._clock.monotonic()
        try:
            alert = parse_alert(
                item.topic, item.payload, root=self._root, devices=self._devices, now=item.received_at, limits=self._limits
            )
        except RejectedAlert as rejected:
            self._dead_letter(item, rejected.reason.value, rejected.detail)
            return
        except Exception as exc:  # a validation bug: keep the alert, say so loudly
            log.exception("alert validation failed unexpectedly on %s", item.topic)
            self._dead_letter(item, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])
            return
        outcome = self._with_retry(lambda conn: self._store(conn, alert), what=f"alert {alert.event_id}")
        if outcome is None:
            return  # stopping during an outage: the broker keeps it, the device repeats it
        self._after_commit(alert)
        self._acknowledge(item)
        self._client.publish(
            Topics(self._root).receipt(alert.person_id),
            receipt_payload(alert.event_id, outcome.alarm_id, RECEIVED, self._clock.now()),
            qos=1,
        )
        m = self._metrics
        if outcome.repeat:
            m.repeats.inc()
        else:
            m.alerts.labels(alert.type.value).inc()
            if alert.clock_suspect:
                m.clock_suspect.inc()
        m.commit_seconds.observe(self._clock.monotonic() - started)
        self._last_ok = time.time()
        log.info(
            "alert %s %s from %s%s", alert.type, "repeated" if outcome.repeat else "received", alert.person_id,
            " (device clock suspect)" if alert.clock_suspect else "",
            extra={"event_id": alert.event_id, "alarm_id": outcome.alarm_id, "person_id": alert.person_id},
        )

    def _store(self, conn: psycopg.Connection, alert: Alert) -> Outcome:
        """One transaction: the alert's row, and on its first arrival the reading, the
        rules and the alarm; then the alarm id is recorded on the row."""
        now = self._clock.now()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                """INSERT INTO alerts (person_id, event_id, type, ts, device_ts, clock_suspect, received_at,
                                       lat, lon, acc_m, sensor_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (person_id, event_id) DO UPDATE SET repeats = alerts.repeats + 1
                   RETURNING alarm_id, (xmax = 0) AS inserted""",
                (alert.person_id, alert.event_id, alert.type.value, alert.ts, alert.device_ts, alert.clock_suspect,
                 alert.received_at, alert.lat, alert.lon, alert.acc_m, alert.sensor_id),
            )
            row = cur.fetchone()
            assert row is not None  # INSERT … ON CONFLICT DO UPDATE … RETURNING always returns the row
            alarm_id, inserted = row
            if not inserted:
                return Outcome(alarm_id, repeat=True)
            reading = reading_of(alert)
            insert_reading(cur, reading)
            # Never the person's telemetry state, which an ingest batch holds locked until
            # its commit (measured: a fall's receipt waited up to 24 s under load).
            if isinstance(reading, HomeSensorEvent):
                transitions = [hazard_alarm(reading)]  # a detector going off needs no memory
                apply_transitions(cur, transitions, now)
            elif alert.type is AlertType.SOS:
                transitions = [sos_alarm(reading)]  # nor does a press
                apply_transitions(cur, transitions, now)
            else:
                # A fall or an "I'm OK": the lane's own small state of the person.
                transitions = self._rules.on_alert(cur, reading, now)
            alarm_id = _alarm_of(cur, alert, transitions, now)
            if alarm_id is not None:
                cur.execute("UPDATE alerts SET alarm_id = %s WHERE person_id = %s AND event_id = %s",
                            (alarm_id, alert.person_id, alert.event_id))
        self._rules.take_raised()
        return Outcome(alarm_id, repeat=False)

    def _run_timers(self) -> None:
        """A fall nobody cancelled becomes an emergency on time, whatever ingest is doing.
        Between alerts only: an alert never waits more than one short pass."""
        try:
            self._rules.run_due_alert_timers(self._connection(), self._clock.now())
            self._rules.take_raised()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._rules.discard_raised()
            self._drop_connection()
            log.warning("alert timer pass failed (%s); will try again", exc)

    def _dead_letter(self, item: _Received, reason: str, detail: str) -> None:
        def write(conn: psycopg.Connection) -> bool:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO dead_letters (received_at, topic, payload, reason, detail) VALUES (%s, %s, %s, %s, %s)",
                    (item.received_at, item.topic, item.payload, reason, detail),
                )
            return True

        if self._with_retry(write, what="a dead letter") is None:
            return
        self._acknowledge(item)
        self._metrics.dead_letters.labels(reason).inc()
        log.warning("alert on %s dead-lettered: %s (%s)", item.topic, reason, detail)

    def _acknowledge(self, item: _Received) -> None:
        generation, mid, qos = item.ack
        with self._generation_lock:
            current = self._generation
        # A message from an earlier connection is redelivered on this one with the same
        # packet id; acknowledging the stale id could acknowledge a different alert.
        if qos and generation == current:
            self._client.ack(mid, qos)

    def _with_retry(self, work: Callable[[psycopg.Connection], _T], *, what: str) -> _T | None:
        delay = 0.05
        while True:
            try:
                return work(self._connection())
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._rules.discard_raised()
                self._metrics.db_errors.inc()
                self._drop_connection()
                if self._stopping.is_set():
                    log.warning("stopping before %s was stored; the broker keeps it", what)
                    return None
                log.warning("storing %s failed (%s); retrying in %.2f s", what, exc, delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._settings.db_retry_max_s)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            conn = self._connect_db(self._database_url)
            # Every alert is its own `transaction()` block, committed when the block ends.
            conn.autocommit = True
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _load_registry_before_start(self) -> None:
        """Without the registry every alert would be dead-lettered as an unknown person."""
        delay = 0.2
        while not self._stopping.is_set():
            try:
                self._read_registry()
                return
            except psycopg.Error as exc:
                self._drop_connection()
                log.warning("waiting for the database (%s); retrying in %.1f s", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._settings.db_retry_max_s)

    def _read_registry(self) -> None:
        conn = self._connection()
        version = registry_version(conn)
        if version == self._registry_version:
            return
        self._devices = fetch_device_directory(conn)
        self._rules.configs, _ = fetch_rule_configs(conn)
        self._registry_version = version

    def _refresh_registry(self) -> None:
        try:
            self._read_registry()
        except psycopg.Error as exc:
            self._drop_connection()
            log.warning("could not refresh the registry (%s); keeping the previous one", exc)


def _alarm_of(cur: psycopg.Cursor, alert: Alert, transitions: list[AlarmTransition], now: datetime) -> int | None:
    """The alarm this alert raised, joined (a repeat press, a fall during an open episode)
    or cancelled; None when it touched none (a cancel with nothing to cancel yet)."""
    types = [t.value for t in _ALARM_TYPES[alert.type]]
    if alert.type is AlertType.CANCEL:
        if not any(t.action is Action.CLEAR for t in transitions):
            return None
        cur.execute(
            "SELECT alarm_id FROM alarms WHERE source_kind = 'person' AND source_id = %s AND alarm_type = ANY(%s) "
            "AND state = 'cleared' AND cleared_at = %s ORDER BY alarm_id DESC LIMIT 1",
            (alert.person_id, types, now),
        )
    else:
        cur.execute(
            "SELECT alarm_id FROM alarms WHERE source_kind = 'person' AND source_id = %s AND alarm_type = ANY(%s) "
            "AND state <> 'cleared' ORDER BY array_position(%s, alarm_type), alarm_id DESC LIMIT 1",
            (alert.person_id, types, types),
        )
    row = cur.fetchone()
    return None if row is None else row[0]


def crash_once_after_commit(marker: str) -> Callable[[Alert], None]:
    """Test hook (WATCHPOST_TEST_ALERT_CRASH_ONCE=<marker file>): if the marker file exists,
    remove it and die at once after the commit, before the PUBACK and the receipt — the
    moment a SIGKILL hurts most. Used by the integration tests only."""

    def hook(_alert: Alert) -> None:
        try:
            os.remove(marker)
        except FileNotFoundError:
            return
        os._exit(137)

    return hook
