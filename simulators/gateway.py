"""The simulator's broker connections (paho-mqtt), the only place it touches the network.

Two shapes. Gateway (the default, and the only one that scales): a few connections with the
gateway account speak for every device, each device always on the same connection so its
messages stay in order; devices' online flags are published explicitly, since one
connection cannot carry thousands of wills. Per device: one connection per device with its
own retained will (`online` = 0) and `online` = 1 on every connect, as real devices do — for
small runs and for testing last wills.

Every message is QoS 1 within a bounded in-flight window per connection; each PUBACK is
checked, and a refusal is counted with the broker's reason. A dropped connection reconnects
with paho's exponential backoff and resends what was not acknowledged (so the broker may see
a message twice; ingest stores it once). Orders for crews arrive through a session that
survives reconnects.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from kernel.broker import pool_account
from kernel.settings import MqttEndpoint
from kernel.topics import ANY, Channel, Kind, Topics, parse_topic

from .faults import Wire

log = logging.getLogger(__name__)

KEEPALIVE_S = 60
CONNECT_TIMEOUT_S = 10.0
# Queued orders survive a dropped connection for this long (MQTT v5 session expiry).
SESSION_EXPIRY_S = 300
RECONNECT_DELAY_S = (0.25, 8.0)  # paho doubles from the first to the second
_WILL_REASON = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")

OrderHandler = Callable[[str, bytes], None]


class GatewayError(RuntimeError):
    """The broker cannot be reached or refused the connection."""


class Connection:
    def __init__(
        self, endpoint: MqttEndpoint, client_id: str, *, window: int, root: str,
        presence_topic: str | None = None, order_topic: str | None = None, on_order: OrderHandler | None = None,
        receipt_topic: str | None = None, on_receipt: OrderHandler | None = None,
    ) -> None:
        self.client_id = client_id
        self.receipt_topic, self.on_receipt = receipt_topic, on_receipt
        self.window = threading.BoundedSemaphore(window)
        self.presence_topic, self.order_topic, self.on_order, self.root = presence_topic, order_topic, on_order, root
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()  # malformed messages the broker accepted, by reason
        self.presence_sent = 0
        self.connects = 0
        self._lock = threading.Lock()
        self._inflight: dict[int, Wire] = {}
        self._early: dict[int, ReasonCode] = {}  # PUBACKs that beat publish() back to the caller
        self._untracked: set[int] = set()
        self._connected = threading.Event()
        self._refusal: str | None = None
        c = self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if endpoint.username:
            c.username_pw_set(endpoint.username, endpoint.password)
        if (context := endpoint.ssl_context()) is not None:
            c.tls_set_context(context)
        c.max_inflight_messages_set(window)
        c.max_queued_messages_set(0)
        # paho annotates the delays as whole seconds but computes with floats.
        c.reconnect_delay_set(*RECONNECT_DELAY_S)  # type: ignore[arg-type]
        if presence_topic:
            c.will_set(presence_topic, b"0", qos=1, retain=True)
        c.on_connect, c.on_disconnect, c.on_publish, c.on_message = self._on_connect, self._on_disconnect, self._on_publish, self._on_message
        self.endpoint = endpoint

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            self.client.connect(
                self.endpoint.host, self.endpoint.port, keepalive=KEEPALIVE_S,
                clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props,
            )
        except OSError as exc:
            raise GatewayError(f"cannot reach the broker at {self.endpoint.host}:{self.endpoint.port}: {exc}") from None
        self.client.loop_start()

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        if not self._connected.wait(timeout) or self._refusal:
            self.client.loop_stop()
            raise GatewayError(f"the broker refused {self.client_id}: {self._refusal or 'no answer'}")

    def drop(self) -> None:
        """Cut the connection as a network failure would (no DISCONNECT): the broker sends
        the will, paho reconnects after its backoff."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def go_silent(self) -> None:
        """Stop, asking the broker for the will, and stay away until `resume`."""
        self._connected.clear()
        self.client.disconnect(reasoncode=_WILL_REASON)
        self.client.loop_stop()

    def resume(self) -> None:
        self.client.reconnect()
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # --- publishing ------------------------------------------------------------------------

    def publish(self, wire: Wire, stop: threading.Event) -> bool:
        """Send within the window; blocks while it is full. False if stopped meanwhile."""
        if not self.window.acquire(blocking=False):  # the common case, without a timed wait
            while not self.window.acquire(timeout=0.2):
                if stop.is_set():
                    return False
        info = self.client.publish(wire.topic, wire.payload, qos=1, retain=wire.retain)
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._inflight[info.mid] = wire
        if early is not None:
            self._settle(wire, early)
        return True

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def _settle(self, wire: Wire, code: ReasonCode) -> None:
        if code.is_failure:
            self.refused[str(code)] += 1
        else:
            self.acked += 1
            if wire.reason:
                self.dead_letters[wire.reason] += 1
        self.window.release()

    # --- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: object, _flags: object, code: ReasonCode, _p: object) -> None:
        if code.is_failure:
            self._refusal = str(code)
            self._connected.set()
            return
        self.connects += 1
        if self.order_topic:
            client.subscribe(self.order_topic, qos=1)
        if self.receipt_topic:
            client.subscribe(self.receipt_topic, qos=1)
        if self.presence_topic:
            info = client.publish(self.presence_topic, b"1", qos=1, retain=True)
            with self._lock:
                self._untracked.add(info.mid)
            self.presence_sent += 1
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, code: ReasonCode, _p: object) -> None:
        if code.is_failure:
            log.info("broker connection %s lost (%s); reconnecting", self.client_id, code)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, code: ReasonCode, _p: object) -> None:
        with self._lock:
            if mid in self._untracked:
                self._untracked.discard(mid)
                return
            wire = self._inflight.pop(mid, None)
            if wire is None:
                self._early[mid] = code
                return
        self._settle(wire, code)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        address = parse_topic(msg.topic, self.root)
        if address is None:
            return
        if self.on_order and address.channel is Channel.ORDER:
            self.on_order(address.id, msg.payload)
        elif self.on_receipt and address.channel is Channel.RECEIPT:
            self.on_receipt(address.id, msg.payload)


class Gateway:
    """`connections` shared connections, or one per device (`per_device`)."""

    def __init__(
        self, endpoint: MqttEndpoint, *, root: str, on_order: OrderHandler, connections: int = 2, window: int = 500,
        per_device: list[str] | None = None, device_passwords: Callable[[str], str] | None = None,
        on_receipt: OrderHandler | None = None,
    ) -> None:
        prefix = f"wp-sim-{os.getpid()}-{os.urandom(2).hex()}"
        topics = Topics(root)
        self.per_device = per_device is not None
        self.by_device: dict[str, Connection] = {}
        self.connections: list[Connection] = []
        if per_device is None:
            for k in range(max(1, connections)):
                order_topic = topics.order(ANY) if k == 0 else None
                receipt_topic = topics.receipt(ANY) if k == 0 and on_receipt else None
                # The broker takes the account name as client id: each shared connection
                # logs in as the next account of the simulator's pool (same password).
                own = dataclasses.replace(endpoint, username=pool_account(endpoint.username, k)) if endpoint.username else endpoint
                self.connections.append(Connection(
                    own, f"{prefix}-{k}", window=window, root=root, order_topic=order_topic, on_order=on_order,
                    receipt_topic=receipt_topic, on_receipt=on_receipt,
                ))
        else:
            for key in per_device:  # "water/WS-001"
                kind, device_id = key.split("/")
                # Without the devices' own passwords, each device's connection logs in as
                # the next account of the simulator's pool (the broker takes the account
                # name as client id, so two connections may not share one).
                own = dataclasses.replace(endpoint, username=pool_account(endpoint.username, len(self.connections))) if endpoint.username else endpoint
                if device_passwords is not None:
                    own = MqttEndpoint(endpoint.host, endpoint.port, device_id, device_passwords(device_id), endpoint.tls, endpoint.ca_file)
                conn = Connection(
                    own, f"{prefix}-{device_id}", window=window, root=root, presence_topic=topics.online(kind, device_id),
                    order_topic=topics.order(device_id) if kind == Kind.UNIT else None, on_order=on_order,
                    receipt_topic=topics.receipt(device_id) if kind == Kind.ELDER and on_receipt else None,
                    on_receipt=on_receipt,
                )
                self.connections.append(conn)
                self.by_device[key] = conn

    def start(self) -> None:
        for c in self.connections:
            c.start()
        for c in self.connections:
            c.wait_connected()

    def connection_for(self, device: str) -> Connection:
        if self.per_device:
            return self.by_device[device]
        # Stable per device (not Python's salted hash): its messages keep their order.
        return self.connections[_stable_hash(device) % len(self.connections)]

    def publish(self, wire: Wire, stop: threading.Event) -> bool:
        conn = self.by_device.get(wire.device) if self.per_device else None
        if self.per_device and conn is None:
            conn = self.connections[_stable_hash(wire.device) % len(self.connections)]  # a ghost device's fault
        return (conn or self.connection_for(wire.device)).publish(wire, stop)

    def drop(self, pick: int) -> None:
        self.connections[pick % len(self.connections)].drop()

    def silence(self, device: str) -> None:
        if device in self.by_device:
            self.by_device[device].go_silent()

    def resume(self, device: str) -> None:
        if device in self.by_device:
            self.by_device[device].resume()

    def flush(self, timeout: float) -> int:
        """Wait for every PUBACK; returns how many never came."""
        deadline = time.monotonic() + timeout
        while (left := sum(c.inflight for c in self.connections)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return left

    def close(self) -> None:
        for c in self.connections:
            c.close()

    def totals(self) -> tuple[int, Counter[str], Counter[str], int, int]:
        """(acknowledged, refused by reason, dead letters to expect by reason, presence flags sent, reconnects)."""
        refused: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        for c in self.connections:
            refused.update(c.refused)
            dead.update(c.dead_letters)
        reconnects = sum(max(0, c.connects - 1) for c in self.connections)
        return sum(c.acked for c in self.connections), refused, dead, sum(c.presence_sent for c in self.connections), reconnects


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())
