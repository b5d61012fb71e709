"""`watchpost serve` as a real child process on a free port, and logged-in users."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from dashboard.auth import hash_password
from tests.fix_broker import TEST_ROOT, Broker, free_port, process_environment, stop_process
from kernel.broker import API_ROLE

TEST_PASSWORD = "correct-horse-battery"


class ApiProcess:
    def __init__(self, broker: Broker, database_url: str, log_path: Path, secret: str, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.secret = secret
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **process_environment(),
            "WATCHPOST_DATABASE_URL": database_url,
            "WATCHPOST_MQTT_URL": broker.url(broker.account(API_ROLE)),
            "WATCHPOST_TOPIC_ROOT": TEST_ROOT,
            "WATCHPOST_API__TOKEN_SECRET": secret,
            "WATCHPOST_API__PORT": str(self.port),
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "serve"], env=env, stdout=log_path.open("a"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API did not start:\n{log_path.read_text()}")
            time.sleep(0.1)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def token(self, username: str, password: str = TEST_PASSWORD) -> str:
        r = httpx.post(f"{self.base}/api/token", data={"username": username, "password": password})
        r.raise_for_status()
        return r.json()["access_token"]

    def client(self, username: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token(username)}"})

    def stop(self) -> None:
        stop_process(self.process)


def set_passwords(database_url: str, password: str = TEST_PASSWORD) -> None:
    """Every user of the registry gets the test password (hashed once, shared)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE users SET password_hash = %s", (hash_password(password),))


@pytest.fixture
def start_api(broker: Broker, tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    secret = os.urandom(24).hex()
    started: list[ApiProcess] = []

    def start(database_url: str, name: str = "api", env: dict[str, str] | None = None) -> ApiProcess:
        """`env`: more WATCHPOST_* settings for this process."""
        set_passwords(database_url)
        api = ApiProcess(broker, database_url, tmp_path / f"{name}.log", secret, env)
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()
