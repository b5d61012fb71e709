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
