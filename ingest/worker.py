"""The ingest worker: messages in, validated batches committed to TimescaleDB, then acknowledged.

Two threads. The message source's thread (ingest.source: a persistent MQTT session, or a
RabbitMQ quorum queue over AMQP) receives, validates (pure, fast) and appends to the open
batch. The writer thread (the caller of `run`) commits a batch when it is full or old
enough, and only then acknowledges its messages to the broker, so a crash at any point
leaves every unacknowledged message with the broker, which redelivers it; the store's
unique keys make the redelivery a no-op.

Memory is bounded by the broker: the source announces how many unacknowledged messages it
takes (MQTT's Receive Maximum, AMQP's prefetch) and nothing is acknowledged before it is
committed, so while the database is slow or down the broker stops sending once that many
are outstanding. MQTT QoS 0 messages, which the broker does not count, are held back by
`max_pending`: the source's thread waits instead of growing.

Every time the worker reads comes from its `Clock`: `now()` for what it stores, `monotonic()`
for the batch wait and the housekeeping intervals.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import psycopg

from ingest.batch import Batch, Received
from ingest.devices import DeviceDirectory
from ingest.metrics import IngestMetrics
from ingest.parse import Limits, RejectedMessage, parse_message
from ingest.rule_store import RuleRunner, fetch_rule_configs
from ingest.source import MessageSource
from ingest.store import (
    DeadLetter,
    TelemetryStore,
    WriteResult,
    drop_expired_chunks,
    fetch_device_directory,
)
from kernel.clock import Clock
from kernel.db import registry_version
from kernel.settings import IngestSettings

log = logging.getLogger(__name__)

# Reason recorded when validation itself failed unexpectedly: the message is kept (as a
# dead letter) and the traceback logged, so a parser bug never stops ingestion.
INTERNAL_ERROR = "internal_error"
# Reason recorded when the database refused a message that validation accepted.
STORE_REJECTED = "store_rejected"


class IngestWorker:
    def __init__(
        self,
        *,
        source: MessageSource,
        topic_root: str,
        database_url: str,
        settings: IngestSettings,
        metrics: IngestMetrics,
        connect_db: Callable[[str], psycopg.Connection],
        clock: Clock,
    ) -> None:
        self._source = source
        self._root = topic_root
        self._database_url = database_url
        self._settings = settings
        self._metrics = metrics
        self._connect_db = connect_db
        self._clock = clock
        self._limits = Limits(
            max_payload_bytes=settings.max_payload_bytes,
            max_senml_records=settings.max_senml_records,
            future_tolerance=timedelta(seconds=settings.future_tolerance_s),
            max_age=timedelta(seconds=settings.max_age_s),
        )
        self._max_pending = settings.receive_maximum
        self._devices = DeviceDirectory()
        self._lock = threading.Condition()
        self._batch = Batch(opened_at=self._clock.monotonic())
        self._pending = 0  # received, not yet committed (all open and in-flight batches)
        self._stopping = threading.Event()
        self._store: TelemetryStore | None = None
        self._rules = RuleRunner(clock) if settings.rules_enabled else None
        self._supervised: set[str] = set()
        self._registry_version: int | None = None
        self._last_commit: float | None = None
        metrics.pending.set_function(lambda: self._pending)

    # --- the source's thread --------------------------------------------------------------

    def _receive(self, topic: str, payload: bytes, ack: object) -> None:
        """Validate one message and add it to the open batch (the source's `Deliver`)."""
        received_at = self._clock.now()
        readings: list | None = None
        dead: DeadLetter | None = None
        try:
            readings = parse_message(
                topic, payload, root=self._root, devices=self._devices, now=received_at, limits=self._limits
            )
        except RejectedMessage as rejected:
            dead = DeadLetter(received_at, topic, payload, rejected.reason.value, rejected.detail)
        except Exception as exc:  # a validation bug: keep the message, say so loudly
            log.exception("validation failed unexpectedly on %s", topic)
            dead = DeadLetter(received_at, topic, payload, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])
        with self._lock:
            while self._pending >= self._max_pending and not self._stopping.is_set():
                self._lock.wait(0.5)
            if not self._batch.items:
                self._batch.opened_at = self._clock.monotonic()
            self._batch.items.append(Received(topic, payload, readings, dead, ack))
            self._pending += 1
            # Wake the writer when a batch opens (its wait clock starts now) and when it fills.
            if len(self._batch) == 1 or len(self._batch) >= self._settings.batch_max_messages:
                self._lock.notify_all()

    # --- writer side (the thread that calls run) ---------------------------------------

    def run(self) -> None:
        """Runs until `stop()`; then commits and acknowledges what it holds and returns."""
        self._load_devices_before_start()
        next_refresh = self._clock.monotonic() + self._settings.registry_refresh_s
        # Not at start-up: retention can wait while a restarted worker drains its backlog.
        next_maintenance = self._clock.monotonic() + min(600.0, self._settings.maintenance_interval_s)
        next_timers = self._clock.monotonic()
        self._source.start(self._receive)
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    break
                if batch:
                    self._commit(batch)
                now = self._clock.monotonic()
                if now >= next_refresh:
                    self._refresh_devices()
                    next_refresh = now + self._settings.registry_refresh_s
                if self._rules is not None and now >= next_timers:
                    self._run_timers()
                    next_timers = now + self._settings.timer_interval_s
                if now >= next_maintenance:
                    self._maintain()
                    next_maintenance = now + self._settings.maintenance_interval_s
        finally:
            self._source.close()
            if self._store is not None:
                self._store.connection.close()

    def readiness(self, max_commit_age_s: float = 60.0) -> dict[str, str]:
        """Broker connected, database reachable (the last commit attempt worked), and no lag:
        nothing pending longer than `max_commit_age_s` without a commit."""
        age = self._clock.now().timestamp() - (self._last_commit or 0)
        with self._lock:
            pending = self._pending
        return {
            "broker": "ok" if self._source.connected.is_set() else "not connected",
            "database": "ok" if self._store is not None else "not connected",
            "lag": "ok" if pending == 0 or age < max_commit_age_s else f"{pending} messages pending, last commit {age:.0f} s ago",
        }

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()

    def _next_batch(self) -> Batch | None:
        """Wait until the open batch is due (full, or its oldest message has waited long
        enough) and swap it out. Returns an empty batch after a second of silence so that
        the caller can do its housekeeping, and None once stopping with nothing left."""
        s = self._settings
        idle_until = self._clock.monotonic() + 1.0
        with self._lock:
            while True:
                batch, now = self._batch, self._clock.monotonic()
                if self._stopping.is_set():
                    if not batch:
                        return None
                    break
                if len(batch) >= s.batch_max_messages:
                    break
                if batch:
                    remaining = batch.opened_at + s.batch_max_wait_s - now
                    if remaining <= 0:
                        break
                    self._lock.wait(remaining)
                elif now >= idle_until:
                    return Batch(opened_at=now)
                else:
                    self._lock.wait(idle_until - now)
            self._batch = Batch(opened_at=self._clock.monotonic())
            return batch

    def _commit(self, batch: Batch) -> None:
        started = self._clock.monotonic()
        result = self._write_with_retry(batch)
        if result is None:  # stopping while the database is unreachable: the broker keeps them
            return
        self._acknowledge(batch)
        m = self._metrics
        m.commit_seconds.observe(self._clock.monotonic() - started)
        m.batch_size.observe(len(batch))
        m.messages.inc(len(batch))
        for stream, n in result.stored.items():
            m.stored.labels(stream).inc(n)
        for stream, n in result.duplicates.items():
            if n:
                m.duplicates.labels(stream).inc(n)
        m.count_dead_letters(Counter(d.reason for d in batch.dead_letters()))
        if self._rules is not None:
            m.count_alarms(self._rules.take_raised())
        self._last_commit = self._clock.now().timestamp()
        m.last_commit.set(self._last_commit)

    def _acknowledge(self, batch: Batch) -> None:
        self._source.acknowledge([item.ack for item in batch.items])
        with self._lock:
            self._pending -= len(batch)
            self._lock.notify_all()

    def _write_with_retry(self, batch: Batch) -> WriteResult | None:
        delay = 0.1
        while True:
            try:
                return self._store_or_connect().write(batch.readings(), batch.dead_letters())
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if self._rules is not None:
                    self._rules.discard_raised()  # rolled back: nothing was raised
                # Outage, restart or deadlock: the batch is intact, try again.
                self._metrics.db_errors.inc()
                self._drop_broken_connection()
                if self._stopping.is_set():
                    log.warning("stopping with %d uncommitted messages; the broker will redeliver them", len(batch))
                    return None
                log.warning("commit of %d messages failed (%s); retrying in %.1f s", len(batch), exc, delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._settings.db_retry_max_s)
            except psycopg.Error as exc:
                if self._rules is not None:
                    self._rules.discard_raised()
                log.error("the database refused a batch (%s); storing it message by message", exc)
                return self._write_one_by_one(batch)

    def _write_one_by_one(self, batch: Batch) -> WriteResult:
        """A batch the database refuses as data: find the messages it refuses and
        dead-letter those, so one bad message never holds up the rest."""
        total = WriteResult()
        store = self._store_or_connect()
        for item in batch.items:
            try:
                result = store.write(item.readings or [], [item.dead_letter] if item.dead_letter else [])
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise
            except psycopg.Error as exc:
                dead = DeadLetter(self._clock.now(), item.topic, item.payload, STORE_REJECTED, str(exc)[:500])
                result = store.write([], [dead])
            for stream, n in result.stored.items():
                total.stored[stream] += n
            for stream, n in result.duplicates.items():
                total.duplicates[stream] += n
            total.dead_letters += result.dead_letters
        return total

    def _store_or_connect(self) -> TelemetryStore:
        if self._store is None:
            on_stored = None
            if self._rules is not None:
                rules = self._rules
                on_stored = lambda cur, readings: rules.on_stored(cur, readings, self._clock.now())  # noqa: E731
            self._store = TelemetryStore(self._connect_db(self._database_url), on_stored, self._settings.dead_letter_max_bytes)
        return self._store

    def _drop_broken_connection(self, force: bool = False) -> None:
        store = self._store
        if store is not None and (force or store.connection.broken or store.connection.closed):
            store.connection.close()
            self._store = None

    def _load_devices_before_start(self) -> None:
        """Without the registry every message would be dead-lettered as an unknown device,
        so ingest does not subscribe until it has read the registry once."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                self._read_registry()
                return
            except psycopg.Error as exc:
                self._drop_broken_connection(force=True)
                log.warning("waiting for the database (%s); retrying in %.1f s", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._settings.db_retry_max_s)

    def _read_registry(self) -> None:
        conn = self._store_or_connect().connection
        version = registry_version(conn)
        if version == self._registry_version:
            return
        self._devices = fetch_device_directory(conn)
        if self._rules is not None:
            self._rules.configs, device_keys = fetch_rule_configs(conn)
            new = set(device_keys) - self._supervised
            if new:
                self._rules.supervise_devices(conn, new, self._clock.now())
                self._supervised |= new
        self._registry_version = version

    def _run_timers(self) -> None:
        assert self._rules is not None
        try:
            self._rules.run_due_timers(self._store_or_connect().connection, self._clock.now())
            self._metrics.count_alarms(self._rules.take_raised())
        except psycopg.Error as exc:
            self._rules.discard_raised()
            self._drop_broken_connection()
            log.warning("timer pass failed (%s); will try again", exc)

    def _refresh_devices(self) -> None:
        try:
            self._read_registry()
        except psycopg.Error as exc:
            self._drop_broken_connection()
            log.warning("could not refresh the device registry (%s); keeping the previous one", exc)

    def _maintain(self) -> None:
        try:
            dropped = drop_expired_chunks(self._store_or_connect().connection)
            if dropped:
                log.info("retention dropped %d chunks", dropped)
        except psycopg.Error as exc:
            self._drop_broken_connection()
            log.warning("retention maintenance failed (%s); will try again", exc)
