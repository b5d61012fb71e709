"""Beyond one box: a three-node RabbitMQ cluster loses a node mid-stream and nothing else.

Devices publish over MQTT to one node; ingest's queue is a quorum queue (a Raft log on all
three nodes) bound to the device topics and read over AMQP from another node with an
acknowledgement per message. The node leading the queue is SIGKILLed mid-stream: the other
two elect a new leader and the stream goes on; every reading the broker acknowledged is
delivered. Redeliveries after the leader change are allowed (ingest's unique keys make them
no-ops), losses are not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fix_wait import wait_for

pika = pytest.importorskip("pika")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists(), reason="rabbitmq-server is not installed"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq.sh"
ROOT = "clustertest"
QUEUE = "watchpost-ingest"


@dataclass(frozen=True)
class Node:
    name: str
    mqtt_port: int
    amqp_port: int


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, list[Node]]]:
    # Node names are registered with the machine's epmd: unique per test process.
    directory = tmp_path / f"rmq{os.getpid()}"
    directory.mkdir()
    try:
        out = subprocess.run([str(SCRIPT), "up", str(directory), "3"], check=True, capture_output=True, text=True, timeout=400).stdout
        yield directory, [Node(name, int(m), int(a)) for name, m, a in (line.split() for line in out.splitlines())]
    finally:
        subprocess.run([str(SCRIPT), "down", str(directory)], timeout=120, check=False)
        shutil.rmtree(directory, ignore_errors=True)


class QueueReader:
    """Ingest's side: reads the quorum queue through one node, acknowledging each message."""

    def __init__(self, node: Node) -> None:
        self.seqs: list[int] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._params = pika.ConnectionParameters("127.0.0.1", node.amqp_port)
        self._thread = threading.Thread(target=self._run, name="queue-reader", daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the reader never started consuming"

    def _run(self) -> None:
        connection = pika.BlockingConnection(self._params)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=500)

        def on_message(ch, method, _props, body: bytes) -> None:
            self.seqs.append(orjson.loads(body)["seq"])
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(QUEUE, on_message)
        self._ready.set()
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.1)
        connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def declare_queue(node: Node) -> None:
    """Declared through `node`, which leads the queue (the leader is placed on the declaring node)."""
    with pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", node.amqp_port)) as connection:
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum", "x-quorum-initial-group-size": 3})
        channel.queue_bind(QUEUE, "amq.topic", routing_key=f"{ROOT}.water.#")  # the MQTT plugin maps / to .


def test_killing_the_node_that_leads_the_queue_mid_stream_loses_nothing(cluster: tuple[Path, list[Node]]) -> None:
    directory, (entry, leader, reader_node) = cluster
    declare_queue(leader)
    reader = QueueReader(reader_node)
    n = 20_000
    sent: list[mqtt.MQTTMessageInfo] = []

    station = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="WS-001", protocol=mqtt.MQTTv311, clean_session=False)
    station.max_inflight_messages_set(500)
    station.max_queued_messages_set(0)
    station.reconnect_delay_set(min_delay=1, max_delay=2)
    station.connect("127.0.0.1", entry.mqtt_port, keepalive=10)
    station.loop_start()

    def acked() -> set[int]:
        return {seq for seq, info in enumerate(list(sent)) if info.is_published()}

    def keep_publishing() -> None:
        for seq in range(n):
            if seq >= 500:  # at most 500 unacknowledged, as a device's own buffer
                sent[seq - 500].wait_for_publish(120)
            sent.append(station.publish(f"{ROOT}/water/WS-001/telemetry", orjson.dumps({"seq": seq, "ph": 7.1}), qos=1))

    sender = threading.Thread(target=keep_publishing, name="station")
    sender.start()
    try:
        wait_for(lambda: len(reader.seqs) > 3000, timeout=60, what="the stream flows through the cluster")
        subprocess.run([str(SCRIPT), "kill", str(directory), "2"], check=True, timeout=60)
        killed_at = len(set(reader.seqs))
        sender.join(120)
        wait_for(lambda: len(acked()) == n, timeout=90, what="the surviving nodes acknowledge the rest of the stream")
        wait_for(lambda: len(set(reader.seqs)) >= n, timeout=60, what="every acknowledged reading delivered")
    finally:
        station.disconnect()
        station.loop_stop()
        reader.close()
    assert killed_at < n, "the node was killed after the stream had passed; the test proved nothing"
    assert set(reader.seqs) == acked() == set(range(n))
    print(f"node killed after {killed_at} readings; {len(reader.seqs) - n} redelivered after the leader change")
