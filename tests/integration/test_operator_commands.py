"""Operator commands when a service is down: one line naming the service and the cause,
exit code 3, never a traceback; and `watchpost status --json` on a running database."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from tests.fix_broker import free_port, process_environment


def _run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watchpost.cli", *args], capture_output=True, text=True, timeout=60,
                          input=stdin, env={**process_environment(), **(env or {})})


def _closed_port_env() -> dict[str, str]:
    port = free_port()  # nothing listens there
    return {"WATCHPOST_DATABASE_URL": f"postgresql://watchpost:secret-pw@127.0.0.1:{port}/watchpost",
            "WATCHPOST_MQTT_URL": f"mqtt://watchpost-api-1:secret-pw@127.0.0.1:{port}"}


# One entry point handles every command (watchpost.cli.main): a few kinds of command stand
# for all (a read, the migration, a write with a secret, a file load).
@pytest.mark.parametrize("command", [
    ["status", "--json"], ["db", "migrate"], ["broker", "sync"], ["registry", "load", "tests/fixtures/registry-small.yaml"],
])
def test_a_command_meets_a_database_that_is_down_with_one_line(command: list[str], tmp_path) -> None:
    result = _run(*command, env={**_closed_port_env(), "WATCHPOST_HOME": str(tmp_path)})
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("the database at 127.0.0.1:") and "Connection refused" in line and "WATCHPOST_DATABASE_URL" in line
    assert "secret-pw" not in line  # never the password


def test_status_json_reports_schema_processes_lag_and_silent_devices(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO alarms (source_kind, source_id, alarm_type, severity, first_seen, last_seen) "
            "VALUES ('person', 'P-0001', 'device_silent', 'minor', now() - interval '1 hour', now())"
        )
        conn.execute("INSERT INTO dead_letters (topic, reason, payload, detail, received_at) VALUES ('t', 'not_json', '\\x00', '', now())")
    # Another process connected as a Watchpost service, as the dispatcher would be.
    with psycopg.connect(database_url, application_name="watchpost-dispatch-1"):
        result = _run("status", "--json", env={"WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_API__PORT": str(free_port())})
    assert result.returncode == 0, result.stderr
    status = orjson.loads(result.stdout)
    assert status["schema"]["version"] == status["schema"]["known"] > 1
    assert [p["name"] for p in status["processes"]] == ["watchpost-dispatch-1"]
    assert status["silent_devices"] == [{"kind": "person", "id": "P-0001", "since": status["silent_devices"][0]["since"]}]
    assert status["dead_letters_last_hour"] == {"not_json": 1}
    assert status["api"].startswith("unreachable")
    assert set(status) >= {"ingest_lag_s", "open_alarms", "open_incidents", "units", "dead_letters_last_day"}


def test_config_check_connect_reaches_the_database_and_the_broker(database_url: str, broker, tmp_path) -> None:
    from kernel.broker import API_ROLE

    env = {"WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_MQTT_URL": broker.url(broker.account(API_ROLE)),
           "WATCHPOST_HOME": str(tmp_path)}
    ok = _run("config", "check", "--connect", env=env)
    assert ok.returncode == 0 and "the database and the broker answer" in ok.stdout, ok.stderr
    down = _run("config", "check", "--connect", env={**env, **_closed_port_env()})
    assert down.returncode == 1 and "Traceback" not in down.stderr
    problems = down.stderr.strip().splitlines()
    assert problems[0].startswith("problem: WATCHPOST_DATABASE_URL (127.0.0.1:") and "cannot connect" in problems[0]
    assert problems[1].startswith("problem: WATCHPOST_MQTT_URL (127.0.0.1:") and "does not answer" in problems[1]


def test_a_mistyped_home_is_refused_instead_of_minting_a_new_secret(database_url: str, tmp_path) -> None:
    home, typo = tmp_path / "watchpost", tmp_path / "watchpsot"
    env = {"WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(home)}
    first = _run("broker", "password", "AMB-01", env=env)
    assert first.returncode == 0, first.stderr
    assert _run("broker", "password", "AMB-01", env=env).stdout == first.stdout  # the same secret, recorded
    wrong = _run("broker", "password", "AMB-01", env={**env, "WATCHPOST_HOME": str(typo)})
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert len(wrong.stderr.strip().splitlines()) == 1 and "is missing" in wrong.stderr and str(typo) in wrong.stderr
    assert not (typo / "mqtt-secret").exists()
    # A different secret in its place is refused too; the exported one brings it back.
    assert _run("secrets", "export", str(tmp_path / "saved.secrets"), env=env).returncode == 0
    assert (tmp_path / "saved.secrets").stat().st_mode & 0o777 == 0o600
    (home / "mqtt-secret").write_text("c2VjcmV0IHRoYXQgaXMgbm90IHRoZSBvbmUgcmVjb3JkZWQgaW4gdGhlIGRhdGFiYXNl\n")
    other = _run("broker", "password", "AMB-01", env=env)
    assert other.returncode == 1 and "is not the mqtt-secret this database" in other.stderr
    assert _run("secrets", "import", str(tmp_path / "saved.secrets"), env=env).returncode == 1  # no silent overwrite
    assert _run("secrets", "import", "--replace", str(tmp_path / "saved.secrets"), env=env).returncode == 0
    assert _run("broker", "password", "AMB-01", env=env).stdout == first.stdout


def test_a_database_nobody_migrated_is_named_with_the_command_that_fixes_it() -> None:
    from tests.fix_db import empty_database

    with empty_database() as url:
        result = _run("status", env={"WATCHPOST_DATABASE_URL": url})
    assert result.returncode == 3 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "has no Watchpost schema" in line and line.endswith("run `watchpost db migrate`")


def test_set_password_gives_several_users_one_password_and_names_the_unknown(database_url: str, tmp_path) -> None:
    """How the demo's village doctors all get theirs at once (scripts/services.sh)."""
    import psycopg

    from dashboard.auth import verify_password

    env = {"WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(tmp_path)}
    done = _run("user", "set-password", "op1", "fam1", "--password-stdin", env=env, stdin="one-for-both\n")
    assert done.returncode == 0 and "2 users" in done.stdout, done.stderr
    with psycopg.connect(database_url) as conn:
        hashes = dict(conn.execute("SELECT username, password_hash FROM users WHERE username IN ('op1', 'fam1')").fetchall())
    assert all(verify_password(hashes[u], "one-for-both") for u in ("op1", "fam1"))
    unknown = _run("user", "set-password", "op1", "nobody", "--password-stdin", env=env, stdin="one-for-both\n")
    assert unknown.returncode == 1 and "'nobody'" in unknown.stderr
