"""`watchpost config check`'s checks of the deployment's secrets."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from kernel.settings import load_settings
from watchpost.config_check import secret_problems


def test_a_strong_token_secret_and_private_secret_files_pass(tmp_path: Path) -> None:
    (tmp_path / "mqtt-secret").write_text(base64.b64encode(os.urandom(32)).decode())
    (tmp_path / "mqtt-secret").chmod(0o600)
    settings = load_settings({"WATCHPOST_API__TOKEN_SECRET": base64.b64encode(os.urandom(32)).decode()})
    assert secret_problems(settings, tmp_path) == []


def test_a_short_or_repetitive_token_secret_is_named_by_its_variable(tmp_path: Path) -> None:
    for weak, why in (("hunter2", "too short"), ("x" * 40, "too simple")):
        problems = secret_problems(load_settings({"WATCHPOST_API__TOKEN_SECRET": weak}), tmp_path)
        assert len(problems) == 1 and problems[0].startswith("WATCHPOST_API__TOKEN_SECRET (api.token_secret): " + why)
        assert weak not in problems[0]  # never the secret itself


def test_a_secret_file_others_can_read_or_too_short_is_reported(tmp_path: Path) -> None:
    (tmp_path / "mqtt-secret").write_text(base64.b64encode(os.urandom(32)).decode())
    (tmp_path / "mqtt-secret").chmod(0o644)
    (tmp_path / "hj212-secret").write_text("abc")
    (tmp_path / "hj212-secret").chmod(0o600)
    problems = secret_problems(load_settings({}), tmp_path)
    assert any("mqtt-secret: other users may read it (mode 644): chmod 600" in p for p in problems)
    assert any("hj212-secret: too short" in p for p in problems)
