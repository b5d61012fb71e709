"""The container image builds from deploy/Dockerfile, and its entry points work: `watchpost
--help`, `watchpost config check` with the compose environment, and `watchpost db backup`
with the image's own PostgreSQL 17 client.

Built with buildah, daemonless. Skipped where buildah is absent and in CI, which must not
depend on a container builder. Where no registry serves the `python:3.11-slim-trixie` base,
a stand-in is made from Debian 13 packages with debootstrap (Debian's Python is 3.13, not
3.11: the stand-in proves the Dockerfile, not the exact interpreter). Builds use chroot
isolation and the host's network: machines whose cgroups are in hybrid mode refuse buildah's
OCI runtime (docs/operations.md, "The image")."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fix_wheel import watchpost_wheel  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("buildah") is None, reason="no buildah"),
    pytest.mark.skipif(bool(os.environ.get("CI")), reason="CI does not depend on a container builder"),
]

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker.io/library/python:3.11-slim-trixie"
# This machine's certificate authorities, for pip inside the stand-in base: the host may
# reach PyPI through a proxy that presents its own certificate.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def buildah(*args: str, timeout: int = 900) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"buildah {' '.join(args[:3])}…: {done.stderr[-3000:]}"
    return done.stdout.strip()


def ensure_base(work: Path) -> None:
    """The Dockerfile's base image, or a stand-in for it built from Debian 13 packages."""
    if subprocess.run(["buildah", "inspect", "--type", "image", BASE], capture_output=True).returncode == 0:
        return
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.skip(f"no {BASE} and no way to make a stand-in (debootstrap as root)")
    rootfs = work / "rootfs"
    done = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,ca-certificates",
                           "trixie", str(rootfs), "http://deb.debian.org/debian"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    container = buildah("from", "scratch")
    try:
        mount = buildah("mount", container)
        subprocess.run(["cp", "-a", f"{rootfs}/.", mount], check=True)
        shutil.copy(HOST_CA_BUNDLE, Path(mount, "etc/ssl/certs/site-ca-bundle.crt"))
        buildah("umount", container)
        # Debian marks its Python externally managed; the python image's is not.
        buildah("config", "--env", "PIP_BREAK_SYSTEM_PACKAGES=1", "--env", "LANG=C.UTF-8",
                "--env", "PIP_CERT=/etc/ssl/certs/site-ca-bundle.crt", container)
        buildah("commit", "-q", container, BASE)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
        shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def image_container(watchpost_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    work = tmp_path_factory.mktemp("image")
    ensure_base(work)
    context = work / "context"
    (context / "dist").mkdir(parents=True)
    shutil.copy(watchpost_wheel, context / "dist")
    shutil.copy(ROOT / "requirements.lock", context)
    tag = f"localhost/watchpost-test:{uuid.uuid4().hex[:8]}"
    buildah("bud", "--pull-never", "--isolation", "chroot", "--network", "host", "-q",
            "-f", str(ROOT / "deploy" / "Dockerfile"), "-t", tag, str(context), timeout=1800)
    container = buildah("from", "--pull-never", tag)
    try:
        yield container
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
        subprocess.run(["buildah", "rmi", tag], capture_output=True)


def run_in(container: str, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env_args = [arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")]
    return subprocess.run(["buildah", "run", "--isolation", "chroot", "--network", "host", *env_args, container,
                           "--", *command], capture_output=True, text=True, timeout=300)


def compose_api_environment(database_url: str) -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    env = {k: str(v) for k, v in compose["services"]["api"]["environment"].items()}
    return env | {"WATCHPOST_DATABASE_URL": database_url,
                  "WATCHPOST_MQTT_URL": f"mqtt://watchpost-ingest:pw@{env['MQTT_BROKER']}",
                  "WATCHPOST_API__TOKEN_SECRET": os.urandom(24).hex()}


def test_the_image_runs_its_entry_points_and_backs_up_with_its_own_client(
    image_container: str, database_url: str
) -> None:
    done = run_in(image_container, "watchpost", "--help")
    assert done.returncode == 0 and "Watchpost" in done.stdout, done.stderr

    env = compose_api_environment(database_url)
    done = run_in(image_container, "watchpost", "config", "check", env=env)
    assert done.returncode == 0 and "configuration is valid" in done.stdout, done.stderr

    backup_and_show_its_magic = "watchpost db backup /var/lib/watchpost/t.dump && head -c 5 /var/lib/watchpost/t.dump"
    done = run_in(image_container, "sh", "-c", backup_and_show_its_magic, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "PGDMP"
    assert "pg_dump from native /usr/lib/postgresql/17/bin" in done.stderr
