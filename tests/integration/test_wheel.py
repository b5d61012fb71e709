"""The wheel works on its own, outside a source checkout: installed into a fresh virtual
environment, its `watchpost db backup` dumps a database."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.fix_wheel import watchpost_wheel  # noqa: F401  (the fixture)


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


def test_the_installed_wheel_backs_up_a_database(database_url: str, watchpost_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    bin_dir = fresh_environment_with(watchpost_wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"  # no source checkout in sight
    elsewhere.mkdir()
    imported_from = subprocess.run([str(bin_dir / "python"), "-c", "import watchpost.backup as b; print(b.__file__)"],
                                   cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    assert imported_from.startswith(str(tmp_path / "venv")), imported_from

    env = os.environ | {"WATCHPOST_DATABASE_URL": database_url}
    done = subprocess.run([str(bin_dir / "watchpost"), "db", "backup", "watchpost.dump"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    dump = elsewhere / "watchpost.dump"
    assert dump.read_bytes()[:5] == b"PGDMP", "pg_dump's custom format"
    assert not (elsewhere / "watchpost.dump.partial").exists()
