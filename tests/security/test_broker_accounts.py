"""The broker against an attacker holding one device's password: no session takeover, and
each account type may publish and subscribe only what its role needs (real Mosquitto with
the project's generated configuration)."""

from __future__ import annotations

import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kernel.broker import ALERTS_USER, API_USER, DISPATCH_USER, GATEWAY_USER, INGEST_ROLE, SIMULATOR_USER
from kernel.broker import password_for
from tests.fix_broker import TEST_ROOT, Broker, Publisher
from tests.fix_db import count
from tests.fix_wait import wait_for
from tests.integration.test_ingest_delivery import water

pytestmark = pytest.mark.slow

R = TEST_ROOT
NOT_AUTHORIZED = 0x87


class Probe:
    """One MQTT v5 connection as `username`, reporting the broker's reason codes."""

    def __init__(self, broker: Broker, username: str, client_id: str | None = None, port: int | None = None) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"probe-{os.urandom(4).hex()}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password_for(broker.secret, username))
        self._done = threading.Condition()
        self.connack: int | None = None
        self.assigned_client_id: str | None = None
        self.disconnects = 0
        self.results: dict[int, int] = {}
        self.received: set[str] = set()
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self._result(mid, rc.value)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self._result(mid, rcs[0].value)
        self.client.connect("127.0.0.1", port or broker.port)
        self.client.loop_start()
        self._wait(lambda: self.connack is not None)

    def _on_connect(self, _c, _u, _flags, rc, props) -> None:
        with self._done:
            self.connack = rc.value
            self.assigned_client_id = getattr(props, "AssignedClientIdentifier", None)
            self._done.notify_all()

    def _on_disconnect(self, *_a) -> None:
        with self._done:
            self.disconnects += 1
            self._done.notify_all()

    def _on_message(self, _c, _u, msg) -> None:
        with self._done:
            self.received.add(msg.topic)
            self._done.notify_all()

    def _result(self, mid: int, code: int) -> None:
        with self._done:
            self.results[mid] = code
            self._done.notify_all()

    def _wait(self, condition, timeout: float = 10) -> None:
        with self._done:
            assert self._done.wait_for(condition, timeout), "no answer from the broker"

    def publish(self, topic: str) -> int:
        mid = self.client.publish(topic, b"{}", qos=1).mid
        self._wait(lambda: mid in self.results)
        return self.results[mid]

    def subscribe(self, topic_filter: str) -> int:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        self._wait(lambda: mid in self.results)
        return self.results[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_password_with_the_ingest_workers_client_id_does_not_take_over_ingest(
    broker: Broker, start_ingest, database_url: str,
) -> None:
    worker = start_ingest()
    account = broker.account(INGEST_ROLE, "ingest-test-1")  # the worker's account, and so its client id
    connects = worker.log().count("connected to the broker")
    attacker = Probe(broker, "WS-001", client_id=account)
    try:
        # The broker let the wearable in under its own id, not the worker's: the attacker got a
        # session of its own and the worker's session was never touched.
        assert attacker.connack == 0
        assert attacker.assigned_client_id in (None, "WS-001")
        station = Publisher(broker)
        try:
            topic, payload = water("WS-002", time.time() - 5)
            station.wait_acked([station.publish(topic, payload)])
            wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") == 1)
        finally:
            station.close()
        assert worker.log().count("connected to the broker") == connects
        assert "lost the broker connection" not in worker.log()
        # And the attacker, being WS-001, still may not write for another station.
        assert attacker.publish(f"{R}/water/WS-002/telemetry") == NOT_AUTHORIZED
    finally:
        attacker.close()


def test_two_connections_of_one_device_share_its_id_and_never_reach_a_service_session(broker: Broker) -> None:
    victim = Probe(broker, DISPATCH_USER)
    attacker = Probe(broker, "AMB-01", client_id=DISPATCH_USER)
    try:
        assert attacker.connack == 0
        assert victim.publish(f"{R}/unit/AMB-01/order") < 0x80  # still connected and serving
        assert victim.disconnects == 0
    finally:
        attacker.close()
        victim.close()


# (account, "pub" or "sub", topic or filter under the root, allowed). Mosquitto grants
# every SUBSCRIBE and applies the read ACL to each message, so a subscription row is
# proven by delivery: a message on a sample topic the filter matches (SAMPLES) reaches the
# subscriber only where allowed.
MATRIX = [
    # ingest reads device topics and writes nothing
    (INGEST_ROLE, "sub", "water/#", True),
    (INGEST_ROLE, "sub", "elder/+/wearable", True),
    (INGEST_ROLE, "sub", "unit/+/order", False),
    (INGEST_ROLE, "pub", "unit/AMB-01/order", False),
    (INGEST_ROLE, "pub", "water/WS-001/telemetry", False),
    # the dispatcher reads unit reports, writes orders, partner alerts and receipts
    (DISPATCH_USER, "sub", "unit/+/status", True),
    (DISPATCH_USER, "sub", "unit/+/gps", True),
    (DISPATCH_USER, "pub", "unit/AMB-01/order", True),
    (DISPATCH_USER, "pub", "partner/qingpu/water-alert", True),
    (DISPATCH_USER, "pub", "elder/P-0001/receipt", True),
    (DISPATCH_USER, "pub", "water/WS-001/telemetry", False),
    (DISPATCH_USER, "sub", "elder/+/wearable", False),
    # the API publishes manual orders only
    (API_USER, "pub", "unit/AMB-01/order", True),
    (API_USER, "pub", "partner/qingpu/water-alert", False),
    (API_USER, "pub", "elder/P-0001/receipt", False),
    (API_USER, "sub", "water/+/telemetry", False),
    # the HJ 212 gateway publishes water topics only
    (GATEWAY_USER, "pub", "water/WS-001/telemetry", True),
    (GATEWAY_USER, "pub", "water/WS-001/online", True),
    (GATEWAY_USER, "pub", "elder/P-0001/wearable", False),
    (GATEWAY_USER, "pub", "unit/AMB-01/gps", False),
    (GATEWAY_USER, "sub", "unit/+/order", False),
    # the alert lane reads alerts and writes receipts
    (ALERTS_USER, "sub", "elder/+/alert", True),
    (ALERTS_USER, "pub", "elder/P-0001/receipt", True),
    (ALERTS_USER, "pub", "unit/AMB-01/order", False),
    (ALERTS_USER, "sub", "elder/+/wearable", False),
    # the simulator stands in for any device
    (SIMULATOR_USER, "pub", "elder/P-0001/wearable", True),
    (SIMULATOR_USER, "sub", "unit/+/order", True),
    (SIMULATOR_USER, "pub", "unit/AMB-01/order", False),
    # devices: their own topics only
    ("WS-001", "pub", "water/WS-001/telemetry", True),
    ("WS-001", "pub", "water/WS-002/telemetry", False),
    ("WS-001", "sub", "water/+/telemetry", False),
    ("AMB-01", "pub", "unit/AMB-01/gps", True),
    ("AMB-01", "pub", "unit/AMB-01/order", False),
    ("AMB-01", "sub", "unit/AMB-01/order", True),
    ("AMB-01", "sub", "unit/AMB-02/order", False),
    ("P-0001", "pub", "elder/P-0001/alert", True),
    ("P-0001", "pub", "elder/P-0001/receipt", False),
    ("P-0001", "sub", "elder/P-0001/receipt", True),
    ("P-0001", "sub", "elder/P-0002/receipt", False),
    ("P-0001", "sub", "elder/+/wearable", False),
    ("qingpu", "sub", "partner/qingpu/water-alert", True),
    ("qingpu", "sub", "partner/+/water-ack", False),
]
# A topic each filter matches, and someone else's where the row is a refusal.
SAMPLES = {
    "water/#": "water/WS-002/telemetry", "elder/+/wearable": "elder/P-0002/wearable",
    "unit/+/order": "unit/AMB-02/order", "unit/+/status": "unit/AMB-02/status", "unit/+/gps": "unit/AMB-02/gps",
    "water/+/telemetry": "water/WS-002/telemetry", "elder/+/alert": "elder/P-0002/alert",
    "unit/AMB-01/order": "unit/AMB-01/order", "unit/AMB-02/order": "unit/AMB-02/order",
    "elder/P-0001/receipt": "elder/P-0001/receipt", "elder/P-0002/receipt": "elder/P-0002/receipt",
    "partner/qingpu/water-alert": "partner/qingpu/water-alert", "partner/+/water-ack": "partner/qingpu/water-ack",
}
_FROM_PLATFORM = ("/order", "/receipt", "/water-alert")


def test_each_account_type_may_publish_and_subscribe_only_what_its_role_needs(broker: Broker) -> None:
    probes: dict[str, Probe] = {}
    wrong = []
    try:
        for account, _, _, _ in MATRIX:
            if account not in probes:
                probes[account] = Probe(broker, broker.account(account) if account == INGEST_ROLE else account)
        subs = [(a, t, ok) for a, action, t, ok in MATRIX if action == "sub"]
        for account, topic_filter, _ in subs:
            assert probes[account].subscribe(f"{R}/{topic_filter}") < 0x80
        for account, action, topic, allowed in MATRIX:
            if action == "pub":
                code = probes[account].publish(f"{R}/{topic}")
                if (code < 0x80) != allowed:
                    wrong.append(f"{account} pub {topic}: {'refused' if allowed else 'allowed'} ({code:#x})")
        # (One connection per account: a second one would take the first one's session.)
        senders = {True: probes[DISPATCH_USER], False: Probe(broker, broker.account("simulator"))}
        probes["sender"] = senders[False]
        for topic in sorted({SAMPLES[t] for _, t, _ in subs}):
            sender = senders[topic.endswith(_FROM_PLATFORM)]
            if topic.endswith("/water-ack"):
                sender = probes["qingpu"]  # a partner writes its own acks, and does not read them back
            assert sender.publish(f"{R}/{topic}") < 0x80, topic
        expected = [(probes[a], f"{R}/{SAMPLES[t]}") for a, t, ok in subs if ok]
        wait_for(lambda: all(topic in p.received for p, topic in expected), timeout=10)
        time.sleep(0.5)  # what is refused never arrives: give it the time the allowed ones took
        for account, topic_filter, allowed in subs:
            got = f"{R}/{SAMPLES[topic_filter]}" in probes[account].received
            if got != allowed:
                wrong.append(f"{account} sub {topic_filter}: {'refused' if allowed else 'allowed'}")
    finally:
        for probe in probes.values():
            probe.close()
    assert not wrong, wrong
