"""The broker's TLS listener: ingest over mqtts://, trusting the local CA, stores a message;
a client that does not trust the CA is not let in."""

from __future__ import annotations

import signal
import ssl
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kernel.broker import INGEST_ROLE, password_for
from kernel.settings import MqttEndpoint
from tests.fix_broker import Broker, Publisher
from tests.fix_db import count
from tests.fix_ingest import IngestProcess
from tests.fix_wait import wait_for
from tests.integration.test_ingest_delivery import water

pytestmark = pytest.mark.slow


def test_ingest_over_mqtts_stores_a_message(broker: Broker, database_url: str, tmp_path) -> None:
    account = broker.account(INGEST_ROLE, "ingest-tls")
    worker = IngestProcess(broker, database_url, tmp_path / "ingest-tls.log", account)
    worker.env["WATCHPOST_MQTT_URL"] = broker.tls_url(account)
    worker.start()
    try:
        assert f":{broker.tls_port} " in worker.log()
        station = Publisher(broker)
        try:
            topic, payload = water("WS-001", time.time() - 5)
            station.wait_acked([station.publish(topic, payload)])
        finally:
            station.close()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") == 1)
    finally:
        worker.kill(signal.SIGTERM)


def test_the_tls_listener_verifies_and_is_verified(broker: Broker) -> None:
    endpoint = MqttEndpoint.parse(broker.tls_url("WS-001"))
    assert endpoint.tls and endpoint.ca_file
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("WS-001", password_for(broker.secret, "WS-001"))
    client.tls_set_context(ssl.create_default_context())  # the system's CAs, not the broker's
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(endpoint.host, endpoint.port)
    good = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    good.username_pw_set("WS-001", password_for(broker.secret, "WS-001"))
    context = endpoint.ssl_context()
    assert context is not None
    good.tls_set_context(context)
    assert good.connect(endpoint.host, endpoint.port) == 0
    good.disconnect()
