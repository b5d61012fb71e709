"""`watchpost dispatch` as a child process, and a subscriber that collects what it sends."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fix_broker import TEST_ROOT, Broker, process_environment, stop_process
from kernel.broker import DISPATCH_ROLE, SERVICE_ROLES, password_for


class DispatcherProcess:
    def __init__(self, broker: Broker, database_url: str, log_path: Path, client_id: str, **settings: str) -> None:
        self.log_path = log_path
        env = {
            **process_environment(),
            "WATCHPOST_DATABASE_URL": database_url,
            "WATCHPOST_MQTT_URL": broker.url(broker.account(DISPATCH_ROLE, client_id)),
            "WATCHPOST_TOPIC_ROOT": TEST_ROOT,
            **{f"WATCHPOST_{k.upper()}": v for k, v in settings.items()},
        }
        log = log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "dispatch", "--client-id", client_id], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while "dispatcher connected to the broker" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dispatcher did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def start_dispatcher(broker: Broker, tmp_path: Path) -> Iterator[Callable[..., DispatcherProcess]]:
    started: list[DispatcherProcess] = []

    def start(database_url: str, client_id: str = "dispatch-test-1", **settings: str) -> DispatcherProcess:
        d = DispatcherProcess(broker, database_url, tmp_path / f"{client_id}.log", client_id, **settings)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


class Collector:
    """Subscribes as `username` (a device, or a service role: then an account of that role
    of its own) and keeps every message, with its arrival time."""

    def __init__(self, broker: Broker, username: str, topic: str) -> None:
        if username in SERVICE_ROLES:
            username = broker.account(username)
        self.messages: list[tuple[float, str, bytes]] = []
        self._lock = threading.Condition()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password_for(broker.secret, username))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        subscribed.wait(5)

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.messages.append((time.time(), msg.topic, msg.payload))
            self._lock.notify_all()

    def wait_for(self, n: int, timeout: float = 20) -> list[tuple[float, str, bytes]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.messages)} of {n} messages arrived")
                self._lock.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def collect(broker: Broker) -> Iterator[Callable[[str, str], Collector]]:
    made: list[Collector] = []

    def make(username: str, topic: str) -> Collector:
        c = Collector(broker, username, f"{TEST_ROOT}/{topic}")
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
