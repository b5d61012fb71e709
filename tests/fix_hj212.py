"""`watchpost hj212`, the HJ 212 station gateway, as a real child process on a free port,
with a deployment home of its own (the secrets station passwords derive from)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernel.broker import GATEWAY_USER, load_or_create_secret
from tests.fix_broker import TEST_ROOT, Broker, free_port, process_environment, stop_process


@dataclass
class GatewayProcess:
    port: int
    home: Path  # WATCHPOST_HOME: mqtt-secret (station PWs derive from it) and hj212-secret
    log_path: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def deployment_secret(self) -> Path:
        return self.home / "mqtt-secret"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def start_hj212_gateway(broker: Broker, tmp_path: Path) -> Iterator[Callable[[str], GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(database_url: str) -> GatewayProcess:
        home = tmp_path / "hj212-home"
        load_or_create_secret(home / "mqtt-secret")
        load_or_create_secret(home / "hj212-secret")
        port, log_path = free_port(), tmp_path / "hj212.log"
        env = {**process_environment(), "WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_TOPIC_ROOT": TEST_ROOT,
               "WATCHPOST_HOME": str(home)}
        with log_path.open("a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "watchpost.cli", "hj212", "--host", "127.0.0.1", "--port", str(port),
                 "--mqtt-url", broker.url(GATEWAY_USER), "--refresh-s", "1"],
                env=env, stdout=log, stderr=log,
            )
        gateway = GatewayProcess(port, home, log_path, process)
        started.append(gateway)
        deadline = time.monotonic() + 20
        while not all(line in gateway.log() for line in ("HJ 212 gateway connected to the broker", "HJ 212 gateway listening")):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the HJ 212 gateway did not start:\n{gateway.log()}")
            time.sleep(0.05)
        return gateway

    yield start
    for g in started:
        stop_process(g.process)
