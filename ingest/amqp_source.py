"""Ingest's AMQP source: a RabbitMQ quorum queue bound to the device topics, read over AMQP.

Devices publish over RabbitMQ's MQTT plugin, which routes each message into the topic
exchange `amq.topic` with the topic's `/` turned into `.`. The source declares a durable
quorum queue (a Raft log replicated on the cluster's nodes) and binds it to the same filters
the MQTT source subscribes to, so the queue holds the devices' stream whether or not a worker
is reading, and several workers reading one queue split it.

Acknowledgement is the worker's, after commit: one `basic.ack` with `multiple` up to the
batch's last delivery tag. The prefetch (the worker's Receive Maximum) bounds how many
unacknowledged messages RabbitMQ pushes, and so the worker's memory.

A lost connection (its node killed, a network cut) moves on to the next node in the list,
with a jittered back-off once every node has failed in a row. What was delivered on the
lost connection and not acknowledged goes back to the queue and is delivered again; the
store's unique keys make storing it twice a no-op.

pika's BlockingConnection is not thread-safe: it lives on the source's thread, and the
worker's acknowledgements reach it through `add_callback_threadsafe`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from ingest.metrics import IngestMetrics
from ingest.source import Deliver
from kernel.topics import Topics

log = logging.getLogger(__name__)

# The exchange RabbitMQ's MQTT plugin publishes into.
TOPIC_EXCHANGE = "amq.topic"
# Durable, replicated by Raft on the cluster's nodes (by default all of them, at declaration).
QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}
# AMQP 0-9-1 carries the prefetch count in two bytes.
MAX_PREFETCH = 65535
# How long the source's thread lets pika wait for traffic before it looks at `close()`.
POLL_S = 0.2
# First wait once every node has failed in a row, refusing the connection or the queue
# (doubled each round, up to RETRY_MAX_S). A node lost after it served is left for the next
# one at once: another node usually serves.
RETRY_MIN_S = 0.5
RETRY_MAX_S = 30.0
# A node that neither accepts nor refuses is given up on after this long.
SOCKET_TIMEOUT_S = 5.0


class ConsumerCancelled(Exception):
    """RabbitMQ cancelled the consumer (its queue deleted, or its member lost); the source
    reconnects and consumes again."""


def binding_key(topic_filter: str) -> str:
    """An MQTT topic filter as an AMQP topic-exchange binding key, as the MQTT plugin maps
    topics: levels joined by `.`, `+` becomes `*`; `#` means the same in both."""
    return ".".join("*" if level == "+" else level for level in topic_filter.split("/"))


def topic_of(routing_key: str) -> str:
    """The MQTT topic of a routing key the MQTT plugin made: `.` back to `/`. The plugin
    leaves a `.` inside a topic level as it is, so it too becomes `/` here: a device whose id
    contains a `.` publishes to a topic the contract does not have (docs/delivery.md)."""
    return routing_key.replace(".", "/")


def ingest_bindings(topic_root: str) -> list[str]:
    """The binding keys of ingest's queue: the MQTT source's subscriptions, as AMQP keys."""
    return [binding_key(f) for f in Topics(topic_root).ingest_filters()]


def declare_queue(channel: BlockingChannel, queue: str, bindings: Sequence[str]) -> None:
    """Declare the quorum queue and bind it to `amq.topic`; both are idempotent, so every
    worker does it on every connection and the first one creates the queue."""
    channel.queue_declare(queue, durable=True, arguments=QUEUE_ARGUMENTS)
    for key in bindings:
        channel.queue_bind(queue, TOPIC_EXCHANGE, routing_key=key)


def node_label(url: str) -> str:
    """host:port of a node URL, for logs (never its credentials)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


@dataclass(frozen=True, slots=True)
class AmqpAck:
    """What acknowledges one delivery: the connection it arrived on, its delivery tag."""

    generation: int
    delivery_tag: int


class AmqpSource:
    def __init__(
        self, *, urls: Sequence[str], queue: str, topic_root: str, prefetch: int, metrics: IngestMetrics
    ) -> None:
        if not urls:
            raise ValueError("the amqp source needs at least one node URL")
        self._urls = list(urls)
        self._queue = queue
        self._bindings = ingest_bindings(topic_root)
        self._prefetch = min(prefetch, MAX_PREFETCH)
        self._metrics = metrics
        self._lock = threading.Lock()
        # The current connection, its channel and generation (bumped on every connection);
        # written by the source's thread, read by `acknowledge` on the worker's.
        self._generation = 0
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._closing = threading.Event()
        self._deliver: Deliver | None = None
        self._thread: threading.Thread | None = None
        self._consuming = False  # the connection being tried got as far as consuming
        self.connected = threading.Event()

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name="amqp-source", daemon=True)
        self._thread.start()

    def acknowledge(self, tokens: Sequence[object]) -> None:
        with self._lock:
            generation, connection, channel = self._generation, self._connection, self._channel
        last = 0
        for token in tokens:
            assert isinstance(token, AmqpAck), f"expected an AmqpAck, got {token!r}"
            # Tags of a lost connection mean nothing on the current one: those messages are
            # redelivered, and a stale tag could acknowledge an uncommitted message.
            if token.generation == generation:
                last = max(last, token.delivery_tag)
        if not last or connection is None or channel is None:
            return

        def ack() -> None:  # runs on the source's thread
            if channel.is_open and self._generation == generation:
                # Everything up to `last` on this channel is committed: the worker commits
                # in delivery order, and earlier batches were acknowledged before this one.
                channel.basic_ack(last, multiple=True)

        try:
            connection.add_callback_threadsafe(ack)
        except pika.exceptions.AMQPError:
            pass  # the connection is gone: its messages are redelivered

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(10)

    # --- the source's thread ---------------------------------------------------------------

    def _run(self) -> None:
        delay = RETRY_MIN_S
        failures_in_a_row = 0
        node = 0
        while not self._closing.is_set():
            url = self._urls[node % len(self._urls)]
            node += 1
            try:
                self._consume(url)
                return  # closing
            except ConsumerCancelled as exc:
                reason = str(exc)
            except (pika.exceptions.AMQPError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug in the client or the source: say so, start over
                log.exception("the amqp source failed unexpectedly on %s", node_label(url))
                reason = f"{type(exc).__name__}: {exc}"
                self._consuming = False  # backed off like a refusal: a bug that recurs must not spin
            finally:
                self.connected.clear()
                self._forget_connection()
            if self._closing.is_set():
                return
            if self._consuming:
                failures_in_a_row, delay = 0, RETRY_MIN_S
                log.warning("lost the broker connection to %s (%s); moving on to %s",
                            node_label(url), reason, node_label(self._urls[node % len(self._urls)]))
                continue
            failures_in_a_row += 1
            if failures_in_a_row < len(self._urls):
                log.warning("cannot consume through the broker at %s (%s); trying the next node", node_label(url), reason)
                continue
            log.warning("no broker node lets ingest consume (last: %s, %s); retrying in %.1f s", node_label(url), reason, delay)
            self._closing.wait(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RETRY_MAX_S)
            failures_in_a_row = 0

    def _consume(self, url: str) -> None:
        """Connect to one node and consume until `close()`; raises when the connection or
        the consumer is lost."""
        self._consuming = False
        params = pika.URLParameters(url)
        params.socket_timeout = SOCKET_TIMEOUT_S
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            declare_queue(channel, self._queue, self._bindings)
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.add_on_cancel_callback(self._on_cancelled)
            with self._lock:
                self._generation += 1
                self._connection, self._channel = connection, channel
                generation = self._generation
            channel.basic_consume(self._queue, self._on_delivery)
            self._consuming = True
            self._metrics.broker_connects.inc()
            log.info("connected to the broker at %s, reading queue %s (generation %d)", node_label(url), self._queue, generation)
            self.connected.set()
            while not self._closing.is_set():
                connection.process_data_events(time_limit=POLL_S)
            # The worker acknowledges its last batch just before it closes the source: send
            # that before the connection goes, or the batch would be delivered again.
            connection.process_data_events(time_limit=0)
        finally:
            if connection.is_open:
                try:
                    connection.close()  # unacknowledged deliveries go back to the queue
                except pika.exceptions.AMQPError:
                    pass

    def _forget_connection(self) -> None:
        with self._lock:
            self._connection = self._channel = None

    def _on_cancelled(self, _frame: object) -> None:
        raise ConsumerCancelled(f"RabbitMQ cancelled the consumer of {self._queue}")

    def _on_delivery(self, _channel: BlockingChannel, method: Basic.Deliver, _props: BasicProperties, body: bytes) -> None:
        key = method.routing_key
        # pika hands over a routing key that is not UTF-8 as bytes: keep the message anyway.
        topic = topic_of(key) if isinstance(key, str) else repr(key)
        assert self._deliver is not None, "a delivery arrived before start()"
        self._deliver(topic, body, AmqpAck(self._generation, method.delivery_tag))
