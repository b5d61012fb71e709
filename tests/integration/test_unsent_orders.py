"""A dispatcher's manual assignment while the broker is unreachable: the order is committed
and kept, the console is told so (202), and the unit gets it once the broker is back."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from dashboard.app import create_app
from kernel.broker import API_ROLE
from kernel.settings import MqttEndpoint
from tests.fix_api import TEST_PASSWORD, set_passwords
from tests.fix_broker import TEST_ROOT, Broker
from tests.fix_proxy import CuttableProxy
from tests.fix_wait import wait_for


def _unsent(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT unit_id, incident_id FROM unsent_orders").fetchall()


def test_an_order_given_while_the_broker_is_down_reaches_the_unit_when_it_is_back(
    broker: Broker, collect, jiashan_url: str
) -> None:
    with psycopg.connect(jiashan_url) as conn:
        conn.execute("INSERT INTO users (username, display_name, role) VALUES ('disp1', 'Dispatcher One', 'dispatcher') ON CONFLICT (username) DO UPDATE SET role = 'dispatcher', scope_id = NULL")
    set_passwords(jiashan_url)
    proxy = CuttableProxy("127.0.0.1", broker.port)  # the API reaches the broker only through it
    endpoint = MqttEndpoint.parse(broker.url(broker.account(API_ROLE)))
    endpoint = MqttEndpoint(endpoint.host, proxy.port, endpoint.username, endpoint.password, tls=False)
    orders = collect("AMB-01", "unit/AMB-01/order")  # the unit's terminal, straight on the broker
    app = create_app(database_url=jiashan_url, token_secret="unsent-orders-test-secret-0123456789",
                     topic_root=TEST_ROOT, mqtt=endpoint, unsent_retry_s=0.5)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            token = client.post("/api/token", data={"username": "disp1", "password": TEST_PASSWORD}).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            incident = client.post("/api/incidents", json={"lat": 30.83, "lon": 120.92, "kind": "medical", "priority": 1,
                                                           "description": "fall at home"}).json()["incident_id"]
            proxy.cut()
            r = client.post(f"/api/incidents/{incident}/assign", json={"unit_id": "AMB-01"})
            assert r.status_code == 202, r.text
            assert r.json()["sent"] is False and "broker" in r.json()["detail"]
            assert _unsent(jiashan_url) == [("AMB-01", incident)]
            assert orders.messages == []
            proxy.restore()
            received = orders.wait_for(1, timeout=30)
            assert incident.encode() in received[0][2]
            wait_for(lambda: _unsent(jiashan_url) == [], timeout=10)
            # With the broker reachable, an order is sent at once and nothing is kept.
            r = client.post(f"/api/incidents/{incident}/assign", json={"unit_id": "AMB-01"})
            assert r.status_code in (200, 409), r.text
            assert _unsent(jiashan_url) == []
    finally:
        proxy.close()
