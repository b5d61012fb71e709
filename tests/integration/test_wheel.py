"""The wheel works on its own, outside a source checkout: installed into a fresh virtual
environment, its `watchpost db backup` dumps a database with the deployment's secrets beside
it, and its `watchpost serve` serves the console page with the map's vendor libraries."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import orjson

from tests.fix_broker import free_port, process_environment, stop_process
from tests.fix_wait import wait_for
from tests.fix_wheel import watchpost_wheel  # noqa: F401  (the fixture)
from watchpost.cli import watchpost_home


def fresh_environment_with(wheel: Path, where: Path) -> Path:
    """A new virtual environment with the wheel installed and nothing else; the locked
    dependencies come from this test run's environment through a path file, which adds
    their directory without running its path files (so this checkout's editable install
    stays out). Returns the environment's bin directory."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    bin_dir = where / "bin"
    done = subprocess.run([str(bin_dir / "pip"), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = subprocess.run([str(bin_dir / "python"), "-c", purelib],
                                   capture_output=True, text=True, check=True).stdout.strip()
    Path(site_packages, "watchpost-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return bin_dir


def test_the_installed_wheel_backs_up_a_database_and_serves_the_console(database_url: str, watchpost_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    bin_dir = fresh_environment_with(watchpost_wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"  # no source checkout in sight
    elsewhere.mkdir()
    imported_from = subprocess.run([str(bin_dir / "python"), "-c", "import watchpost.backup as b; print(b.__file__)"],
                                   cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    assert imported_from.startswith(str(tmp_path / "venv")), imported_from

    home = tmp_path / "home"
    # pg_dump may live in the development machine's TimescaleDB root under the usual home.
    env = os.environ | {"WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(home),
                        "WATCHPOST_PG_ROOTFS": os.environ.get("WATCHPOST_PG_ROOTFS", str(watchpost_home() / "timescaledb-root"))}
    synced = subprocess.run([str(bin_dir / "watchpost"), "broker", "sync"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=120)  # creates the mqtt-secret, as an install does
    assert synced.returncode == 0, synced.stderr
    done = subprocess.run([str(bin_dir / "watchpost"), "db", "backup", "watchpost.dump"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    dump = elsewhere / "watchpost.dump"
    assert dump.read_bytes()[:5] == b"PGDMP", "pg_dump's custom format"
    assert not (elsewhere / "watchpost.dump.partial").exists()
    secrets = orjson.loads((elsewhere / "watchpost.dump.secrets").read_bytes())["secrets"]
    assert secrets["mqtt-secret"] == (home / "mqtt-secret").read_text().strip()
    assert (elsewhere / "watchpost.dump.secrets").stat().st_mode & 0o077 == 0

    # The same installation serves the console page with the map's libraries (one virtual
    # environment for both: making one takes most of this test's time).
    port = free_port()
    env = process_environment() | {"WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(tmp_path / "home"),
                                    "WATCHPOST_API__PORT": str(port)}
    with (tmp_path / "api.log").open("w") as log:
        api = subprocess.Popen([str(bin_dir / "watchpost"), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=60, what="the installed API")
        console = httpx.get(f"{base}/console")
        assert console.status_code == 200 and "vendor/leaflet/leaflet.js" in console.text
        for asset in ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css", "vendor/uplot/uPlot.iife.min.js"):
            r = httpx.get(f"{base}/static/{asset}")
            assert r.status_code == 200 and len(r.content) > 1000, asset
    finally:
        stop_process(api)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
