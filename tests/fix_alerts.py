"""`watchpost alerts` as a real child process, and a device that sends alerts and collects
its receipts, as a wearable does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fix_broker import TEST_ROOT, Broker, process_environment
from kernel.broker import ALERTS_ROLE, password_for


class AlertProcess:
    def __init__(self, broker: Broker, database_url: str, log_path: Path, client_id: str, env: dict[str, str]) -> None:
        self.env = {
            **process_environment(),
            "WATCHPOST_DATABASE_URL": database_url,
            # Its own account (the broker takes the account as client id), kept across restarts.
            "WATCHPOST_MQTT_URL": broker.url(broker.account(ALERTS_ROLE, client_id)),
            "WATCHPOST_TOPIC_ROOT": TEST_ROOT,
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._connects_seen = 0

    def start(self) -> None:
        self._connects_seen = self.log().count("connected to the broker")
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "watchpost.cli", "alerts"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while self.log().count("connected to the broker") <= self._connects_seen:
            if self.process.poll() is not None:
                raise RuntimeError(f"the alert lane exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the alert lane did not connect:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)

    def wait_exit(self, timeout: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout)


@pytest.fixture
def start_alerts(broker: Broker, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., AlertProcess]]:
    started: list[AlertProcess] = []

    def start(client_id: str = "alerts-test-1", db_url: str | None = None, **env: str) -> AlertProcess:
        # The test's own database unless given one (the Jiashan tests use another fixture).
        url = db_url or request.getfixturevalue("database_url")
        p = AlertProcess(broker, url, tmp_path / f"{client_id}.log", client_id, env)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill(signal.SIGTERM)


class Device:
    """A wearable (or a gateway standing in for many): publishes alerts, collects receipts."""

    def __init__(self, broker: Broker, username: str, receipts_of: str = "+") -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{username}-{os.urandom(3).hex()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password_for(broker.secret, username))
        self._lock = threading.Condition()
        self.receipts: list[tuple[str, dict, float]] = []  # (topic, payload, monotonic time seen)
        self._subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{TEST_ROOT}/elder/{receipts_of}/receipt", qos=1)
        if not self._subscribed.wait(10):
            raise TimeoutError("receipt subscription not confirmed")

    def _on_message(self, _c, _u, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.receipts.append((msg.topic, orjson.loads(msg.payload), time.monotonic()))
            self._lock.notify_all()

    def send(self, person_id: str, **alert: object) -> None:
        info = self.client.publish(f"{TEST_ROOT}/elder/{person_id}/alert", orjson.dumps(alert), qos=1)
        info.wait_for_publish(10)

    def receipts_for(self, event_id: str) -> list[dict]:
        with self._lock:
            return [p for _, p, _ in self.receipts if p.get("event_id") == event_id]

    def wait_receipts(self, event_id: str, n: int = 1, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([p for _, p, _ in self.receipts if p.get("event_id") == event_id]) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fewer than {n} receipts for {event_id}")
                self._lock.wait(left)
        return self.receipts_for(event_id)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device_factory(broker: Broker) -> Iterator[Callable[..., Device]]:
    made: list[Device] = []

    def make(username: str, receipts_of: str = "+") -> Device:
        d = Device(broker, username, receipts_of)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()
