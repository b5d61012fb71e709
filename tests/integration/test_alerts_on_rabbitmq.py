"""The alert lane on a broker without shared subscriptions. RabbitMQ's MQTT plugin accepts the
lane's `$share/watchpost-alerts/…` filter and never delivers anything to it, but its CONNACK
says it has no shared subscriptions; told so, the lane subscribes on its own and an SOS is
answered and raised as on Mosquitto."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fix_broker import TEST_ROOT, process_environment, stop_process
from tests.fix_rabbitmq import Node, needs_rabbitmq
from tests.fix_wait import wait_for

pytestmark = [pytest.mark.slow, needs_rabbitmq]


def mqtt5_client(node: Node, client_id: str) -> mqtt.Client:
    """An anonymous MQTT 5 client (the script's nodes let one in as guest), or a skip where
    the node is a RabbitMQ before 3.13, which speaks MQTT 3.1.1 only."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda _c, _u, _f, rc, _p: connected.set() if not rc.is_failure else None
    client.connect("127.0.0.1", node.mqtt_port)
    client.loop_start()
    if not connected.wait(10):
        client.loop_stop()
        pytest.skip("this RabbitMQ speaks MQTT 3.1.1 only: `scripts/services.sh rabbitmq` installs RabbitMQ 4")
    return client


def test_the_alert_lane_answers_through_a_broker_without_shared_subscriptions(
    rabbitmq_node: Node, database_url: str, tmp_path: Path
) -> None:
    wearable = mqtt5_client(rabbitmq_node, "P-0001")
    receipts: list[dict] = []
    wearable.on_message = lambda _c, _u, msg: receipts.append(orjson.loads(msg.payload))
    wearable.subscribe(f"{TEST_ROOT}/elder/P-0001/receipt", qos=1)
    log_path = tmp_path / "alerts.log"
    with log_path.open("w") as log:
        lane = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "alerts"], stdout=log, stderr=log,
            env={**process_environment(), "WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_TOPIC_ROOT": TEST_ROOT,
                 "WATCHPOST_MQTT_URL": f"mqtt://guest:guest@127.0.0.1:{rabbitmq_node.mqtt_port}"},
        )
    try:
        wait_for(lambda: "connected to the broker" in log_path.read_text(), 30, what="the alert lane connected")
        assert "no shared subscriptions" in log_path.read_text()
        wearable.publish(f"{TEST_ROOT}/elder/P-0001/alert", orjson.dumps({"event_id": "sos-r", "type": "sos", "ts": datetime.now(UTC).isoformat()}), qos=1)
        wait_for(lambda: any(r.get("event_id") == "sos-r" for r in receipts), 30, what="the SOS's receipt")
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM alarms WHERE alarm_type = 'sos' AND person_id = 'P-0001'").fetchone() == (1,)
    finally:
        stop_process(lane)
        wearable.loop_stop()
