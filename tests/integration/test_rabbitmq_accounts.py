"""`watchpost broker sync-rabbitmq` against a real RabbitMQ that lets no anonymous MQTT client
in: each registered device logs in with its derived password and publishes under its own
topics only, a wrong password is refused, and a device taken out of the registry loses its
account at the next sync while accounts the sync did not make stay. MQTT 5 and 3.1.1 both
(MQTT 5 on RabbitMQ 3.13 and later: `scripts/rabbitmq.sh provision` installs one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kernel.broker import load_or_create_secret, password_for
from kernel.rabbitmq_admin import ManagementApi
from tests.fix_broker import process_environment
from watchpost.cli import watchpost_home
from watchpost.deployment_secrets import MQTT_SECRET

pika = pytest.importorskip("pika")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq.sh"
ROOT = "jiashan"  # the settings' default topic root

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
    and not (watchpost_home() / "rabbitmq-root/usr/lib/rabbitmq/bin/rabbitmq-server").exists(),
    reason="no RabbitMQ: install rabbitmq-server (apt) or run scripts/rabbitmq.sh provision",
)]


@dataclass(frozen=True)
class Rabbit:
    mqtt_port: int
    amqp_port: int
    http_url: str
    version: tuple[int, int]


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rabbit]:
    # Node names are registered with the machine's epmd: unique per test process.
    directory = tmp_path_factory.mktemp("rabbit") / f"acct{os.getpid()}"
    directory.mkdir()

    def script(*args: str) -> str:
        return subprocess.run([str(SCRIPT), *args], check=True, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "RMQ_ACCOUNTS": "1"}).stdout.strip()

    try:
        _name, mqtt_port, amqp_port = script("up", str(directory), "1").split()
        major, minor = script("version", str(directory)).split(".")[:2]
        yield Rabbit(int(mqtt_port), int(amqp_port), script("http", str(directory), "1"), (int(major), int(minor)))
    finally:
        subprocess.run([str(SCRIPT), "down", str(directory)], timeout=120, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=[mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt3.1.1"])
def protocol(request: pytest.FixtureRequest, rabbit: Rabbit) -> int:
    if request.param == mqtt.MQTTv5 and rabbit.version < (3, 13):
        pytest.skip(f"RabbitMQ {rabbit.version[0]}.{rabbit.version[1]} speaks MQTT 3.1.1 only: "
                    "scripts/rabbitmq.sh provision installs RabbitMQ 4")
    return int(request.param)


def sync(rabbit: Rabbit, database_url: str, home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "watchpost.cli", "broker", "sync-rabbitmq", rabbit.http_url],
        env={**process_environment(), "WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(home)},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Device:
    """One MQTT connection: what the broker answered to CONNECT, and whether it closed it."""

    def __init__(self, rabbit: Rabbit, protocol: int, username: str, password: str, client_id: str | None = None) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id or username,
                                  protocol=protocol)
        self.client.username_pw_set(username, password)
        self.connack = threading.Event()
        self.closed = threading.Event()
        self.refused = False
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.closed.set()
        self.client.connect("127.0.0.1", rabbit.mqtt_port, keepalive=10)
        self.client.loop_start()
        assert self.connack.wait(10) or self.closed.wait(1), "no CONNACK"

    def _on_connect(self, _c, _u, _f, reason_code, _p) -> None:
        self.refused = reason_code.is_failure
        self.connack.set()

    def publish(self, topic: str) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, b'{"ph": 7.1}', qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def delivered(rabbit: Rabbit) -> Iterator[Callable[[], list[str]]]:
    """The routing keys of what reaches a queue bound to every device topic (read as the
    default administrator over AMQP)."""
    received: list[str] = []
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", rabbit.amqp_port))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "amq.topic", routing_key=f"{ROOT}.#")

    def drain() -> list[str]:
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            received.append(message[0].routing_key)
        return received

    yield drain
    connection.close()


def test_a_synced_device_publishes_under_its_own_topic_and_nowhere_else(
    rabbit: Rabbit, protocol: int, database_url: str, tmp_path: Path, delivered
) -> None:
    report = sync(rabbit, database_url, tmp_path)
    assert "accounts created" in report
    secret = load_or_create_secret(tmp_path / MQTT_SECRET)

    station = Device(rabbit, protocol, "WS-001", password_for(secret, "WS-001"))
    assert not station.refused
    station.publish(f"{ROOT}/water/WS-001/telemetry").wait_for_publish(10)
    assert delivered() == [f"{ROOT}.water.WS-001.telemetry"]

    # Another station's topic: RabbitMQ closes the connection and routes nothing.
    station.publish(f"{ROOT}/water/WS-002/telemetry")
    assert station.closed.wait(10), "publishing under another device's topic was not refused"
    station.close()

    # Its own topic, but under another client id.
    impostor = Device(rabbit, protocol, "WS-001", password_for(secret, "WS-001"), client_id="WS-001-spare")
    impostor.publish(f"{ROOT}/water/WS-001/telemetry")
    assert impostor.closed.wait(10), "a device's publication under another client id was not refused"
    impostor.close()

    wrong = Device(rabbit, protocol, "WS-002", "not-its-password")
    assert wrong.refused and wrong.closed.wait(10)
    wrong.close()
    assert delivered() == [f"{ROOT}.water.WS-001.telemetry"]


def test_a_resync_removes_unregistered_devices_and_keeps_accounts_it_did_not_make(
    rabbit: Rabbit, protocol: int, database_url: str, tmp_path: Path
) -> None:
    api = ManagementApi(rabbit.http_url, "guest", "guest")
    api._request("PUT", "/api/users/site-monitoring", {"password": "pw", "tags": "monitoring"})
    sync(rabbit, database_url, tmp_path)
    secret = load_or_create_secret(tmp_path / MQTT_SECRET)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM persons WHERE person_id = 'P-0002'")

    report = sync(rabbit, database_url, tmp_path)
    assert "0 accounts created, 0 updated" in report and "1 deleted" in report, report
    users = {str(u["name"]) for u in api.accounts().users}
    assert "P-0002" not in users
    assert {"P-0001", "site-monitoring", "guest", "watchpost-ingest-1"} <= users

    gone = Device(rabbit, protocol, "P-0002", password_for(secret, "P-0002"))
    assert gone.refused
    gone.close()
    kept = Device(rabbit, protocol, "P-0001", password_for(secret, "P-0001"))
    assert not kept.refused
    kept.publish(f"{ROOT}/elder/P-0001/wearable").wait_for_publish(10)
    kept.close()


def test_ingests_account_binds_its_quorum_queue_to_the_device_topics_and_nothing_else(
    rabbit: Rabbit, database_url: str, tmp_path: Path
) -> None:
    """What ingest's AMQP source does with its account: declare its quorum queue, bind it to
    the device topics it stores; a binding to the alert lane's topics is refused."""
    sync(rabbit, database_url, tmp_path)
    secret = load_or_create_secret(tmp_path / MQTT_SECRET)
    credentials = pika.PlainCredentials("watchpost-ingest-2", password_for(secret, "watchpost-ingest-2"))
    with pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", rabbit.amqp_port, credentials=credentials)) as conn:
        channel = conn.channel()
        queue = f"watchpost-ingest-{os.getpid()}"
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        for key in (f"{ROOT}.water.#", f"{ROOT}.elder.*.wearable", f"{ROOT}.elder.*.home.*", f"{ROOT}.unit.*.gps"):
            channel.queue_bind(queue, "amq.topic", routing_key=key)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            channel.queue_bind(queue, "amq.topic", routing_key=f"{ROOT}.elder.*.alert")
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            channel.queue_declare("someone-elses-queue", durable=True)
        conn.channel().queue_delete(queue)
