"""`watchpost ingest` as a real child process, so tests can kill -9 it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from tests.fix_broker import TEST_ROOT, Broker, Publisher, process_environment
from tests.fix_db import count
from kernel.broker import INGEST_ROLE


class IngestProcess:
    def __init__(self, broker: Broker | None, database_url: str, log_path: Path, client_id: str, **settings: str) -> None:
        """`broker` None: the settings name another source (a RabbitMQ queue over AMQP)."""
        self.env = {
            **process_environment(),
            "WATCHPOST_DATABASE_URL": database_url,
            **({"WATCHPOST_MQTT_URL": broker.url(broker.account(INGEST_ROLE, client_id))} if broker else {}),
            "WATCHPOST_TOPIC_ROOT": TEST_ROOT,
            "WATCHPOST_INGEST__CLIENT_ID": client_id,
            "WATCHPOST_INGEST__REGISTRY_REFRESH_S": "1",
            **{f"WATCHPOST_{k.upper()}": v for k, v in settings.items()},
        }
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._connects_seen = 0

    def start(self, wait_connected: bool = True) -> None:
        self._connects_seen = self.log().count("connected to the broker")
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "ingest"], env=self.env, stdout=log, stderr=log
        )
        if wait_connected:
            self.wait_connected()

    def wait_connected(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count("connected to the broker") <= self._connects_seen:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"ingest exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingest did not connect:\n{self.log()}")
            time.sleep(0.05)
        self._connects_seen = self.log().count("connected to the broker")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)
        self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def start_ingest(broker: Broker, database_url: str, tmp_path: Path) -> Iterator[Callable[..., IngestProcess]]:
    started: list[IngestProcess] = []

    def start(client_id: str = "ingest-test-1", db_url: str | None = None, **settings: str) -> IngestProcess:
        p = IngestProcess(broker, db_url or database_url, tmp_path / f"{client_id}.log", client_id, **settings)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill(signal.SIGTERM)


def stored_total(url: str) -> int:
    return sum(
        count(url, f"SELECT count(*) FROM {t}")
        for t in ("water_readings", "wearable_readings", "home_events", "unit_positions", "unit_status_reports")
    )


# Sentinels are readings of a test station stamped "now"; the streams under test are stamped
# minutes or hours back, so a sentinel is told apart by its time alone.
SENTINEL_TOPIC = f"{TEST_ROOT}/water/WS-002/telemetry"


def publish_sentinels(publisher: Publisher, n: int = 1) -> float:
    """Publish `n` readings after the messages under test; returns the time they are stamped
    from. A worker that has stored a sentinel has stored everything the broker gave it before
    (its session delivers in order, it commits in order): anything extra would be in the
    database by then. Send several to a shared group: the broker's round-robin hands each
    worker some."""
    since = time.time()
    publisher.wait_acked([
        publisher.publish(SENTINEL_TOPIC, orjson.dumps({"ts": since + i * 0.001, "ph": 7.0})) for i in range(n)
    ])
    return since


def sentinels_stored(url: str, since: float) -> int:
    # A millisecond of slack: the worker and the database round a float time each their way.
    return count(url, "SELECT count(*) FROM water_readings WHERE station_id = 'WS-002' AND ts > to_timestamp(%s) - interval '1 ms'", since)
