"""`watchpost registry load` stores a station's HJ 212 MN and the digest of the PW derived
for it from the deployment's secret; a PW set with `watchpost hj212-station` is kept when the
registry says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import yaml

from ingest.hj212_gateway import derived_station_password, password_digest
from kernel.broker import load_or_create_secret
from tests.fix_broker import process_environment

MN_1, MN_2 = "33042100WS00010000000001", "33042100WS00020000000001"


def watchpost(home: Path, database_url: str, *args: str, stdin: str = "") -> str:
    env = {**process_environment(), "WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "watchpost.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stored(database_url: str) -> dict[str, tuple[str | None, str | None]]:
    with psycopg.connect(database_url) as conn:
        return {s: (mn, digest) for s, mn, digest in conn.execute("SELECT station_id, hj212_mn, hj212_password_digest FROM stations")}


def test_registry_load_stores_the_mn_and_the_derived_pws_digest(database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    doc = {"stations": [
        {"station_id": "WS-001", "name": "Weitang canal", "lat": 30.835, "lon": 120.915, "hj212_mn": MN_1},
        {"station_id": "WS-002", "name": "Taipu river boundary", "lat": 30.95, "lon": 120.99, "hj212_mn": MN_2, "hj212_password": "keep"},
    ]}
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(doc))
    watchpost(home, database_url, "hj212-station", "WS-002", "--mn", MN_2, "--password-stdin", stdin="654321\n")
    assert "2 hj212_stations" in watchpost(home, database_url, "registry", "load", str(registry_file))

    deployment, gateway = load_or_create_secret(home / "mqtt-secret"), load_or_create_secret(home / "hj212-secret")
    rows = stored(database_url)
    assert rows["WS-001"] == (MN_1, password_digest(gateway, MN_1, derived_station_password(deployment, MN_1)))
    assert rows["WS-002"] == (MN_2, password_digest(gateway, MN_2, "654321"))  # kept as the operator set it
    # What the technician configures the logger with.
    assert watchpost(home, database_url, "hj212-password", MN_1).strip() == derived_station_password(deployment, MN_1)
    assert "654321" not in registry_file.read_text() and derived_station_password(deployment, MN_1) not in registry_file.read_text()
