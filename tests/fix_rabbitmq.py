"""A RabbitMQ of the tests' own (scripts/rabbitmq.sh: one node or a cluster on free ports,
never the system's instance), devices that publish to it over MQTT, and ingest workers that
read its quorum queue over AMQP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fix_ingest import IngestProcess

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rabbitmq.sh"
RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
INSTALLED = Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
needs_rabbitmq = pytest.mark.skipif(not INSTALLED, reason="rabbitmq-server is not installed")


@dataclass(frozen=True)
class Node:
    name: str
    mqtt_port: int
    amqp_port: int

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"


class Cluster:
    def __init__(self, directory: Path, nodes: list[Node]) -> None:
        self.directory = directory
        self.nodes = nodes

    def kill(self, k: int) -> None:
        """SIGKILL node k (1-based): a crash, not a shutdown."""
        subprocess.run([str(SCRIPT), "kill", str(self.directory), str(k)], check=True, timeout=60)

    def start(self, k: int) -> None:
        subprocess.run([str(SCRIPT), "start", str(self.directory), str(k)], check=True, timeout=300)

    def queue_leader(self, queue: str, asking: Node) -> str:
        """The name of the node leading a quorum queue, as node `asking` sees it."""
        # rabbitmqctl reaches the nodes with the cluster's Erlang cookie, in its HOME.
        out = subprocess.run(
            [str(RABBITMQCTL), "-q", "-n", asking.name, "list_queues", "name", "leader"], check=True, capture_output=True,
            text=True, timeout=60, env={**os.environ, "HOME": str(self.directory / "home")},
        ).stdout
        return next(line.split()[1] for line in out.splitlines()[1:] if line.split()[0] == queue)


@pytest.fixture(scope="module")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One RabbitMQ node for a module's tests; each test reads a queue of its own."""
    with rabbitmq(tmp_path_factory.mktemp("rabbitmq"), 1) as cluster:
        yield cluster.nodes[0]


@contextmanager
def rabbitmq(tmp_path: Path, nodes: int) -> Iterator[Cluster]:
    # Node names are registered with the machine's epmd: unique per test process.
    directory = tmp_path / f"rmq{os.getpid()}"
    directory.mkdir()
    try:
        out = subprocess.run([str(SCRIPT), "up", str(directory), str(nodes)], check=True, capture_output=True, text=True,
                             timeout=400).stdout
        yield Cluster(directory, [Node(name, int(m), int(a)) for name, m, a in (line.split() for line in out.splitlines())])
    finally:
        subprocess.run([str(SCRIPT), "down", str(directory)], timeout=120, check=False)
        shutil.rmtree(directory, ignore_errors=True)


class Device:
    """A registered device publishing QoS 1 over MQTT 3.1.1 (what RabbitMQ 3.10's plugin
    speaks), with at most `window` messages unacknowledged, as a device's own buffer."""

    def __init__(self, client_id: str, node: Node, window: int = 500) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.max_inflight_messages_set(window)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", node.mqtt_port, keepalive=10)
        self.client.loop_start()
        self.window = window
        self.sent: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        if len(self.sent) >= self.window:
            self.sent[-self.window].wait_for_publish(120)
        info = self.client.publish(topic, payload, qos=1)
        self.sent.append(info)
        return info

    def publish_in_background(self, messages: list[tuple[str, bytes]]) -> threading.Thread:
        thread = threading.Thread(target=lambda: [self.publish(t, p) for t, p in messages], name="device", daemon=True)
        thread.start()
        return thread

    def acked(self) -> set[int]:
        """Indexes of the messages the broker acknowledged (PUBACK)."""
        return {i for i, info in enumerate(list(self.sent)) if info.is_published()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def start_amqp_ingest(database_url: str, tmp_path: Path) -> Iterator[Callable[..., IngestProcess]]:
    """`watchpost ingest` in a child process with the AMQP source reading `nodes`, in order."""
    started: list[IngestProcess] = []

    def start(nodes: list[Node], client_id: str = "ingest-amqp-1", **settings: str) -> IngestProcess:
        p = IngestProcess(None, database_url, tmp_path / f"{client_id}.log", client_id,
                          INGEST__SOURCE="amqp", INGEST__AMQP_URLS=" ".join(n.amqp_url for n in nodes), **settings)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill(signal.SIGTERM)
