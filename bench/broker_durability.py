"""Broker candidates side by side: what a kill -9 with a backlog loses, and how fast they are.

    python bench/broker_durability.py [--messages 20000] [--engines mosquitto,nats,rabbitmq]

For each engine, its own server is started on free ports with its own data directory (never a
system instance), then:

1. a consumer opens a persistent session (clean session off, QoS 1 subscription) and leaves,
   as an ingest worker stopped for an upgrade does;
2. a publisher sends `--messages` QoS 1 readings and waits for every PUBACK: the broker has
   accepted all of them (figure: accepted msg/s);
3. the broker is killed with SIGKILL (an OOM kill, a host crash) and started again;
4. the consumer resumes its session and drains the backlog (figure: drain msg/s); lost =
   accepted readings never delivered, duplicates = readings delivered twice;
5. alert latency: with the consumer connected, readings one every 20 ms, publish → receive,
   p50 and p99.

Every client speaks MQTT 3.1.1, the one version all candidates here accept (RabbitMQ 3.10
and the NATS 2.9 MQTT gateway refuse MQTT 5). Mosquitto 2.1 is the one `scripts/mosquitto.sh`
installs (`mosquitto-sqlite`: the project's configuration; `mosquitto-sqlite-flush-5`: the
plugin's default batching of five seconds). The consumer acknowledges as soon as it
receives: the broker's own durability is what is measured, not Watchpost's (which
acknowledges after commit and deduplicates on its unique keys).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common import ROOT_DIR  # noqa: F401  (puts the project on the path)
from kernel.broker import find_mosquitto
from watchpost.cli import watchpost_home

TOPIC = "bench/water/WS-001/telemetry"
FILTER = "bench/#"
CONSUMER_ID = "bench-durable-consumer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port} after {timeout} s")


class Engine:
    """One broker server: started, killed with SIGKILL, started again on the same data."""

    name = ""
    startup_s = 60.0

    def __init__(self, data: Path) -> None:
        self.data = data
        self.mqtt_port = free_port()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def consumer(self) -> Consumer | AmqpConsumer:
        return Consumer(self.mqtt_port)

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        log = (self.data / "server.log").open("a")
        self.proc = subprocess.Popen(self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.mqtt_port, self.startup_s)
        self.ready()

    def ready(self) -> None:
        """Listening is not always serving: wait until a session can be opened."""
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=mqtt.MQTTv311)
            try:
                c.connect("127.0.0.1", self.mqtt_port, keepalive=10)
                c.disconnect()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"{self.name} never accepted a connection")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server and whatever it started, nothing else
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Mosquitto(Engine):
    """Mosquitto 2.0 with the project's persistence settings (`autosave_interval`, seconds)."""

    def __init__(self, data: Path, autosave_interval: int = 30) -> None:
        super().__init__(data)
        self.name = f"mosquitto (autosave {autosave_interval} s)"
        (data / "mosquitto.conf").write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {data}/\nautosave_interval {autosave_interval}\n"
            "max_queued_messages 5000000\nmax_queued_bytes 0\nmax_inflight_messages 1000\n"
        )
        if os.geteuid() == 0:  # started as root, Mosquitto drops to its own user to write its store
            shutil.chown(data, "mosquitto")

    def command(self) -> list[str]:
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.data / "mosquitto.conf")]


class MosquittoSqlite(Engine):
    """Mosquitto 2.1 with its SQLite persistence plugin as the project configures it: every
    change written as it is made (flush period 0), before the PUBACK."""

    def __init__(self, data: Path, flush_period: int = 0) -> None:
        super().__init__(data)
        self.install = find_mosquitto(watchpost_home())
        if self.install.persist_plugin is None:
            raise SystemExit("no Mosquitto with mosquitto_persist_sqlite.so here: run scripts/mosquitto.sh provision")
        self.name = f"mosquitto 2.1 + sqlite (flush {flush_period} s)"
        (data / "mosquitto.conf").write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence_location {data}/\n"
            f"global_plugin {self.install.persist_plugin}\nplugin_opt_flush_period {flush_period}\nplugin_opt_sync normal\n"
            "max_queued_messages 5000000\nmax_queued_bytes 0\nmax_inflight_messages 1000\n"
        )
        if os.geteuid() == 0:
            shutil.chown(data, "mosquitto")

    def command(self) -> list[str]:
        return [*self.install.command, "-c", str(self.data / "mosquitto.conf")]


class Nats(Engine):
    """nats-server with JetStream on files and its MQTT gateway: an MQTT session, its
    subscriptions and its QoS 1 messages are JetStream streams."""

    name = "nats jetstream + mqtt"

    def __init__(self, data: Path) -> None:
        super().__init__(data)
        self.client_port = free_port()
        (data / "nats.conf").write_text(
            f"listen: 127.0.0.1:{self.client_port}\nserver_name: bench_nats\n"
            f"jetstream {{ store_dir: \"{data}/js\" }}\n"
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_port}\n  max_ack_pending: 20000 }}\n"
        )

    def command(self) -> list[str]:
        return [shutil.which("nats-server") or "/usr/sbin/nats-server", "-c", str(self.data / "nats.conf")]


class RabbitMq(Engine):
    """RabbitMQ 3.10 with its MQTT plugin: a persistent session's subscription is a durable
    queue, QoS 1 messages are persistent and confirmed before the PUBACK."""

    name = "rabbitmq 3.10 + mqtt"
    startup_s = 120.0

    def __init__(self, data: Path) -> None:
        super().__init__(data)
        self.node = f"wpbench{os.getpid()}@localhost"
        self.amqp_port, self.dist_port = free_port(), free_port()
        (data / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (data / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.amqp_port}\nmqtt.listeners.tcp.default = {self.mqtt_port}\n"
            "mqtt.allow_anonymous = true\nmqtt.prefetch = 1000\nloopback_users = none\n"
        )
        (data / "home").mkdir(exist_ok=True)

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.data / "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.data / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.data / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.data / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.data / "rabbitmq.pid"),
        }

    def command(self) -> list[str]:
        return ["/usr/lib/rabbitmq/bin/rabbitmq-server"]

    def kill(self) -> None:
        # The Erlang VM leaves the start script's process group: kill it by the pid it wrote.
        pid_file = self.data / "rabbitmq.pid"
        beam = int(pid_file.read_text().strip()) if pid_file.exists() else None
        if beam is not None:
            os.kill(beam, signal.SIGKILL)
            while Path(f"/proc/{beam}").exists():
                time.sleep(0.05)
            pid_file.unlink()
        super().kill()

    def stop(self) -> None:
        pid_file = self.data / "rabbitmq.pid"
        if pid_file.exists():
            beam = int(pid_file.read_text().strip())
            os.kill(beam, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{beam}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        super().stop()


class RabbitMqQuorum(RabbitMq):
    """The same RabbitMQ, but the consumer's queue is a quorum queue (Raft log, fsync before
    the confirm that becomes the device's PUBACK) bound to the topics, read over AMQP with an
    acknowledgement per message: the queue does not depend on any MQTT session."""

    name = "rabbitmq 3.10 quorum queue (ingest over AMQP)"

    def consumer(self) -> Consumer | AmqpConsumer:
        return AmqpConsumer(self.amqp_port)


@dataclass
class Outcome:
    engine: str
    accepted: int
    publish_rate: float
    delivered: int
    distinct: int
    drain_rate: float
    latency_p50_ms: float
    latency_p99_ms: float
    restart_s: float

    @property
    def lost(self) -> int:
        return self.accepted - self.distinct

    @property
    def duplicates(self) -> int:
        return self.delivered - self.distinct


class Consumer:
    """A persistent session that records what it receives."""

    def __init__(self, port: int) -> None:
        self.seqs: list[int] = []
        self.latencies: list[float] = []
        self.last_at = time.monotonic()
        self.subscribed = threading.Event()
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=CONSUMER_ID, protocol=mqtt.MQTTv311, clean_session=False)
        c.max_inflight_messages_set(1000)
        c.on_message = self._on_message
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.connect("127.0.0.1", port, keepalive=30)
        self.client = c
        c.loop_start()

    def _on_message(self, _c, _u, msg: mqtt.MQTTMessage) -> None:
        doc = orjson.loads(msg.payload)
        self.seqs.append(doc["seq"])
        if "sent" in doc:
            self.latencies.append(time.time() - doc["sent"])
        self.last_at = time.monotonic()

    def subscribe(self) -> None:
        self.client.subscribe(FILTER, qos=1)
        if not self.subscribed.wait(30):
            raise TimeoutError("no SUBACK")

    def drain(self, expected: int, idle_s: float = 5.0, timeout: float = 300) -> float:
        """Waits until `expected` arrived (or nothing for `idle_s`); returns the elapsed time
        to the last message."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if len(set(self.seqs)) >= expected and time.monotonic() - self.last_at > 0.5:
                break
            if time.monotonic() - max(self.last_at, t0) > idle_s:
                break
            time.sleep(0.05)
        return max(self.last_at - t0, 1e-6)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class AmqpConsumer:
    """A durable quorum queue bound to the device topics (`amq.topic` is where the MQTT
    plugin publishes, `/` becoming `.`), consumed with manual acknowledgements."""

    QUEUE = "bench-ingest"

    def __init__(self, port: int) -> None:
        import pika  # a benchmark-only dependency: pip install pika

        self.seqs: list[int] = []
        self.latencies: list[float] = []
        self.last_at = time.monotonic()
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._params = pika.ConnectionParameters("127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest"))
        self._thread = threading.Thread(target=self._run, name="amqp-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import pika

        connection = pika.BlockingConnection(self._params)
        channel = connection.channel()
        channel.queue_declare(self.QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.QUEUE, "amq.topic", routing_key=FILTER.replace("/", "."))
        channel.basic_qos(prefetch_count=1000)
        self.subscribed.set()

        def on_message(ch, method, _props, body: bytes) -> None:
            doc = orjson.loads(body)
            self.seqs.append(doc["seq"])
            if "sent" in doc:
                self.latencies.append(time.time() - doc["sent"])
            self.last_at = time.monotonic()
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(self.QUEUE, on_message)
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.1)
        connection.close()

    def subscribe(self) -> None:
        if not self.subscribed.wait(30):
            raise TimeoutError("the queue was not declared")

    drain = Consumer.drain

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def publish(port: int, n: int, window: int = 1000) -> float:
    """Sends n QoS 1 readings, at most `window` unacknowledged; returns accepted msg/s."""
    acked = threading.Semaphore(0)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-station", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    c.on_publish = lambda *_: acked.release()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    t0 = time.monotonic()
    for seq in range(n):
        c.publish(TOPIC, orjson.dumps({"seq": seq, "ph": 7.1, "ts": time.time()}), qos=1)
    for _ in range(n):
        if not acked.acquire(timeout=120):
            raise TimeoutError("the broker stopped acknowledging")
    rate = n / (time.monotonic() - t0)
    c.disconnect()
    c.loop_stop()
    return rate


def alert_latency(port: int, consumer: Consumer, n: int = 200) -> tuple[float, float]:
    consumer.latencies.clear()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-wearable", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    for seq in range(n):
        c.publish(TOPIC, orjson.dumps({"seq": 10_000_000 + seq, "sent": time.time()}), qos=1)
        time.sleep(0.02)
    deadline = time.monotonic() + 10
    while len(consumer.latencies) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    ms = sorted(x * 1000 for x in consumer.latencies) or [float("nan")]
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def trial(engine: Engine, n: int) -> Outcome:
    engine.start()
    try:
        consumer = engine.consumer()
        consumer.subscribe()
        consumer.close()  # the session stays, queuing for it
        publish_rate = publish(engine.mqtt_port, n)
        engine.kill()
        t0 = time.monotonic()
        engine.start()
        restart_s = time.monotonic() - t0
        consumer = engine.consumer()
        drain_s = consumer.drain(n)
        delivered = list(consumer.seqs)
        p50, p99 = alert_latency(engine.mqtt_port, consumer)
        consumer.close()
    finally:
        engine.stop()
    distinct = len(set(delivered))
    return Outcome(engine.name, n, publish_rate, len(delivered), distinct, len(delivered) / drain_s if delivered else 0.0,
                   p50, p99, restart_s)


ENGINES = {
    "mosquitto": lambda d: Mosquitto(d, 30),
    "mosquitto-autosave-1": lambda d: Mosquitto(d, 1),
    "mosquitto-sqlite": MosquittoSqlite,
    "mosquitto-sqlite-flush-5": lambda d: MosquittoSqlite(d, 5),
    "nats": Nats,
    "rabbitmq": RabbitMq,
    "rabbitmq-quorum": RabbitMqQuorum,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--engines", default="mosquitto,mosquitto-autosave-1,mosquitto-sqlite,nats,rabbitmq,rabbitmq-quorum")
    args = ap.parse_args()
    print(f"| engine | accepted | accepted msg/s | lost after kill -9 | duplicates | drain msg/s | alert p50 / p99 ms | restart s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in args.engines.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-{key}-") as tmp:
            o = trial(ENGINES[key](Path(tmp)), args.messages)
        print(f"| {o.engine} | {o.accepted:,} | {o.publish_rate:,.0f} | {o.lost:,} | {o.duplicates:,} | {o.drain_rate:,.0f} | "
              f"{o.latency_p50_ms:.1f} / {o.latency_p99_ms:.1f} | {o.restart_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
