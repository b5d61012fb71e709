"""A real Mosquitto for tests, started on a free port with the project's own configuration
(password file, ACL, persistence), and a publisher that waits for every PUBACK."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kernel.broker import (
    INGEST_USER,
    SIMULATOR_ROLE,
    BrokerFiles,
    TlsFiles,
    find_mosquitto,
    password_for,
    service_account,
    write_broker_files,
)
from watchpost.cli import watchpost_home

TEST_ROOT = "jiashan"
# Accounts per service role in the test broker: tests open many connections at once, and the
# simulator with a connection per device (and no device passwords) takes one per device.
BROKER_INSTANCES = 256
TEST_DEVICES = ("WS-001", "WS-002", "P-0001", "P-0002", "AMB-01", "AMB-02", "qingpu")


def process_environment() -> dict[str, str]:
    """The environment for a child process under test: this one's, without any WATCHPOST_*
    setting (the developer's .env.local must not point a test process at the dev broker)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")}


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it does not go in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    port: int
    secret: bytes
    files: BrokerFiles
    process: subprocess.Popen | None = None
    tls_port: int = 0
    tls: TlsFiles | None = None
    # The broker takes the account name as client id, so every concurrent connection of a
    # test needs an account of its own: `account` hands out numbered ones per role.
    _accounts: dict[tuple[str, str], str] = field(default_factory=dict)

    def url(self, username: str) -> str:
        return f"mqtt://{username}:{password_for(self.secret, username)}@127.0.0.1:{self.port}"

    def tls_url(self, username: str) -> str:
        assert self.tls is not None
        return (f"mqtts://{username}:{password_for(self.secret, username)}@localhost:{self.tls_port}"
                f"?ca_file={self.tls.ca_file}")

    def account(self, role: str, key: str | None = None) -> str:
        """A service account of `role` for the connection named `key` (the same key, e.g. a
        worker restarted with the same client id, gets the same account; no key, a new one).
        Instance 1 of each role is left to the tests that name it directly."""
        if key is None:
            key = f"anonymous-{len(self._accounts)}"
        if (role, key) not in self._accounts:
            taken = sum(1 for r, _ in self._accounts if r == role)
            # The simulator's accounts go in steps of 2: its default two connections.
            self._accounts[(role, key)] = service_account(role, 2 + taken * (2 if role == SIMULATOR_ROLE else 1))
        return self._accounts[(role, key)]

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*MOSQUITTO.command, "-c", str(self.files.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not start: {self.process.stderr.read().decode() if self.process.stderr else ''}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None


# The project's Mosquitto (2.1 with its SQLite persistence, where `make test` installed it).
MOSQUITTO = find_mosquitto(watchpost_home())


@pytest.fixture
def broker() -> Iterator[Broker]:
    # Not under pytest's tmp_path: that is private to root, and Mosquitto started as root
    # drops to the `mosquitto` user, which must reach its files.
    directory = Path(tempfile.mkdtemp(prefix="watchpost-broker-"))
    directory.chmod(0o711)
    secret = os.urandom(32)
    port, tls_port = free_port(), free_port()
    files = write_broker_files(directory, port=port, root=TEST_ROOT, secret=secret, device_users=TEST_DEVICES,
                               instances=BROKER_INSTANCES, tls_port=tls_port, persist_plugin=MOSQUITTO.persist_plugin)
    tls = TlsFiles(directory / "tls" / "ca.crt", directory / "tls" / "server.crt", directory / "tls" / "server.key")
    b = Broker(port=port, secret=secret, files=files, tls_port=tls_port, tls=tls)
    b.start()
    yield b
    b.stop()
    shutil.rmtree(directory, ignore_errors=True)


class Publisher:
    """A paho client that publishes QoS 1 and can wait until the broker acknowledged all."""

    def __init__(self, broker: Broker, username: str | None = None, client_id: str | None = None) -> None:
        username = username or broker.account(SIMULATOR_ROLE)
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{os.urandom(4).hex()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password_for(broker.secret, username))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._lock = threading.Condition()
        self.acked: dict[int, int] = {}  # mid -> reason code value
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_publish(self, _c, _u, mid, reason_code, _p) -> None:
        with self._lock:
            self.acked[mid] = reason_code.value
            self._lock.notify_all()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        return self.client.publish(topic, payload, qos=qos, retain=retain).mid

    def wait_acked(self, mids: list[int], timeout: float = 30) -> dict[int, int]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not all(m in self.acked for m in mids):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{sum(m not in self.acked for m in mids)} of {len(mids)} not acknowledged")
                self._lock.wait(left)
            return {m: self.acked[m] for m in mids}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    p = Publisher(broker)
    yield p
    p.close()


__all__ = ["Broker", "Publisher", "INGEST_USER", "TEST_ROOT", "free_port"]
