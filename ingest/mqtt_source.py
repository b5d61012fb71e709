"""Ingest's MQTT source: a persistent MQTT v5 session subscribed to the device topics.

The session (clean start off, `session_expiry_s`) keeps what arrives while the worker is
down; acknowledgements are manual, so the broker redelivers anything the worker had not
committed. The Receive Maximum announced on connect bounds how many unacknowledged
messages the broker pushes, and so the worker's memory while the database is slow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.metrics import IngestMetrics
from ingest.source import Deliver
from kernel.settings import IngestSettings, MqttEndpoint
from kernel.topics import Kind, Topics, share_group_offered, shared

log = logging.getLogger(__name__)

# MQTT v5 carries Receive Maximum in two bytes.
MAX_RECEIVE_MAXIMUM = 65535


def subscriptions(root: str, share_group: str) -> list[str]:
    """The device→platform topics of the contract. Platform→device topics (orders, partner
    alerts, receipts) live under the same root and are deliberately not subscribed, and so
    are life-safety alerts: the alert lane has its own subscription (ingest.alert_lane)."""
    return [shared(f, share_group) for f in Topics(root).ingest_filters()]


# The group every worker joined before a single worker subscribed plainly by default.
FORMER_SHARE_GROUP = "watchpost-ingest"


def retired_subscriptions(root: str, share_group: str) -> list[str]:
    """Filters earlier versions subscribed: a persistent session keeps them, so they are
    unsubscribed on connect (`elder/#` would take the alert lane's messages too). A session
    that switches between a plain and a shared subscription drops the other form, or it
    would receive every message twice."""
    retired = [shared(f"{root}/{Kind.ELDER}/#", g) for g in dict.fromkeys((share_group, FORMER_SHARE_GROUP))]
    other = FORMER_SHARE_GROUP if not share_group else ""
    return retired + subscriptions(root, other)


@dataclass(frozen=True, slots=True)
class MqttAck:
    """What acknowledges one message: the connection it arrived on, its packet id, its QoS."""

    generation: int
    mid: int
    qos: int


class MqttSource:
    def __init__(self, *, endpoint: MqttEndpoint, topic_root: str, settings: IngestSettings, metrics: IngestMetrics) -> None:
        self._endpoint = endpoint
        self._root = topic_root
        self._settings = settings
        self._metrics = metrics
        self._lock = threading.Lock()
        self._generation = 0  # bumped on every broker (re)connection
        self._closing = threading.Event()
        self._deliver: Deliver | None = None
        self._client = self._make_client()
        self.connected = threading.Event()

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._client.connect_async(
            self._endpoint.host, self._endpoint.port, keepalive=30, clean_start=False, properties=self._connect_properties()
        )
        self._client.loop_start()

    def acknowledge(self, tokens: Sequence[object]) -> None:
        with self._lock:
            generation = self._generation
        for token in tokens:
            assert isinstance(token, MqttAck), f"expected an MqttAck, got {token!r}"
            # A message received on an earlier connection is redelivered by the broker on
            # the current one, with the same packet id; acknowledging the stale id could
            # acknowledge a different, uncommitted message, so those wait for redelivery.
            if token.qos and token.generation == generation:
                self._client.ack(token.mid, token.qos)

    def close(self) -> None:
        self._closing.set()
        self._client.disconnect()
        self._client.loop_stop()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._settings.client_id or self._endpoint.username or "watchpost-ingest-1",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self._endpoint.username:
            client.username_pw_set(self._endpoint.username, self._endpoint.password)
        if (context := self._endpoint.ssl_context()) is not None:
            client.tls_set_context(context)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._settings.session_expiry_s
        props.ReceiveMaximum = min(self._settings.receive_maximum, MAX_RECEIVE_MAXIMUM)
        return props

    # --- paho's network thread ---------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata, _flags, reason_code, props) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._metrics.broker_connects.inc()
        options = SubscribeOptions(qos=1)
        group = share_group_offered(self._settings.share_group, props)
        if group != self._settings.share_group:
            log.warning("the broker has no shared subscriptions: this worker subscribes on its own and stores "
                        "everything (more workers only repeat it; on RabbitMQ read the quorum queue: ingest.source = amqp)")
        client.subscribe([(f, options) for f in subscriptions(self._root, group)])
        client.unsubscribe(retired_subscriptions(self._root, group))
        log.info("connected to the broker at %s:%s (generation %d)", self._endpoint.host, self._endpoint.port, generation)
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected.clear()
        if not self._closing.is_set():
            log.warning("lost the broker connection (%s); reconnecting", reason_code)

    def _on_message(self, _client, _userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)  # a broker should never pass this on; keep the message anyway
        with self._lock:
            generation = self._generation
        assert self._deliver is not None, "a message arrived before start()"
        self._deliver(topic, msg.payload, MqttAck(generation, msg.mid, msg.qos))
