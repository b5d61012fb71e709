"""`watchpost run` supervises every platform process, the HJ 212 gateway among them, and with
`--simulate` the simulator pointed at that gateway."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from watchpost import cli, supervisor


def test_run_starts_the_hj212_gateway_on_its_own_account(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    seen: dict[str, list[str]] = {}

    class Captured:
        def __init__(self, commands: dict[str, list[str]], quick_restart=frozenset(), niceness=None) -> None:
            seen.update(commands)

        def stop(self) -> None: ...

        def run(self) -> int:
            return 0

    monkeypatch.setattr(supervisor, "Supervisor", Captured)
    monkeypatch.setenv("WATCHPOST_HOME", str(tmp_path))
    monkeypatch.setenv("WATCHPOST_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/db")
    monkeypatch.setenv("WATCHPOST_MQTT_URL", "mqtt://watchpost-ingest-1:x@127.0.0.1:1883")
    result = CliRunner().invoke(cli.app, ["run", "--simulate", "demo"])
    assert result.exit_code == 0, result.output
    assert seen["hj212"][-1] == "hj212"  # default client id and account: watchpost-hj212-1
    assert "simulator" in seen and {"ingest", "alerts-1", "alerts-2", "dispatch", "api", "notify"} <= set(seen)


def captured_run(monkeypatch: pytest.MonkeyPatch, home, *args: str) -> tuple[dict[str, list[str]], str]:
    seen: dict[str, list[str]] = {}

    class Captured:
        def __init__(self, commands: dict[str, list[str]], quick_restart=frozenset(), niceness=None) -> None:
            seen.update(commands)

        def stop(self) -> None: ...

        def run(self) -> int:
            return 0

    monkeypatch.setattr(supervisor, "Supervisor", Captured)
    monkeypatch.setenv("WATCHPOST_HOME", str(home))
    monkeypatch.setenv("WATCHPOST_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/db")
    monkeypatch.setenv("WATCHPOST_MQTT_URL", "mqtt://watchpost-ingest-1:x@127.0.0.1:1883")
    result = CliRunner().invoke(cli.app, ["run", *args])
    assert result.exit_code == 0, result.output
    return seen, result.output


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_demos_village_doctors_answer_on_the_supervised_api_with_the_password_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "doctor-password").write_text("s3cret-doctors\n")
    monkeypatch.setenv("WATCHPOST_API__HOST", "0.0.0.0")
    monkeypatch.setenv("WATCHPOST_API__PORT", "8123")
    seen, _ = captured_run(monkeypatch, tmp_path, "--simulate", "demo")
    simulator = seen["simulator"]
    assert option(simulator, "--api-url") == "http://127.0.0.1:8123"
    assert option(simulator, "--doctor-password-file") == str(tmp_path / "doctor-password")
    assert "s3cret-doctors" not in " ".join(simulator)  # never on a command line `ps` shows


def test_without_the_password_file_the_simulator_runs_without_doctors_and_says_so(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    seen, output = captured_run(monkeypatch, tmp_path, "--simulate", "demo")
    assert "--api-url" not in seen["simulator"] and "--doctor-password-file" not in seen["simulator"]
    assert "village doctors do not answer" in output


@pytest.mark.parametrize(("host", "url"), [("127.0.0.1", "http://127.0.0.1:8000"), ("0.0.0.0", "http://127.0.0.1:8000"),
                                           ("::", "http://[::1]:8000"), ("10.1.2.3", "http://10.1.2.3:8000")])
def test_the_api_is_reached_on_the_address_it_listens_on_or_the_loopback(host: str, url: str) -> None:
    assert cli.local_api_url(host, 8000) == url
