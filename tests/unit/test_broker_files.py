from __future__ import annotations

import base64
import hashlib

from kernel.broker import acl_text, device_password, password_line


def test_password_line_is_mosquittos_pbkdf2_format() -> None:
    # A line made by `mosquitto_passwd -b` for testuser/secret.
    made_by_mosquitto = "testuser:$7$101$1SxzFZK/t8HYvdJg$dnSN7ZMm7RaGb4Se52UBAt46RY27fD8tmit02VRI+3GCRYNZwFhJrq7uMXZNWDGro2psVe4JtEEi/+imwI+c2w=="
    salt = base64.b64decode("1SxzFZK/t8HYvdJg")
    assert password_line("testuser", "secret", salt) == made_by_mosquitto
    assert hashlib.sha512  # the standard library computes it; no mosquitto_passwd needed


def test_device_passwords_differ_per_device_and_per_secret() -> None:
    assert device_password(b"a", "WS-001") != device_password(b"a", "WS-002")
    assert device_password(b"a", "WS-001") != device_password(b"b", "WS-001")


def test_devices_may_write_only_under_their_own_id() -> None:
    acl = acl_text("jiashan")
    assert "pattern write jiashan/water/%u/telemetry" in acl
    assert "pattern write jiashan/#" not in acl


def test_the_alert_lane_reads_alerts_and_writes_receipts_only() -> None:
    acl = acl_text("jiashan")
    section = acl.split("user watchpost-alerts-1\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == ["topic read jiashan/elder/+/alert", "topic write jiashan/elder/+/receipt"]


def test_a_device_sends_its_own_alerts_and_reads_its_own_receipts() -> None:
    acl = acl_text("jiashan")
    assert "pattern write jiashan/elder/%u/alert" in acl
    assert "pattern read jiashan/elder/%u/receipt" in acl


def test_with_the_sqlite_plugin_every_message_is_written_before_its_puback(tmp_path) -> None:
    from pathlib import Path

    from kernel.broker import BrokerFiles, mosquitto_config

    files = BrokerFiles(tmp_path / "c", tmp_path / "p", tmp_path / "a", tmp_path / "data")
    plugin = Path("/usr/lib/x86_64-linux-gnu/mosquitto/mosquitto_persist_sqlite.so")
    durable = mosquitto_config(port=1884, files=files, persist_plugin=plugin)
    assert f"global_plugin {plugin}" in durable and "plugin_opt_flush_period 0" in durable
    assert "autosave_interval" not in durable and "persistence true" not in durable
    snapshots = mosquitto_config(port=1884, files=files)
    assert "autosave_interval 30" in snapshots and "global_plugin" not in snapshots


def test_the_mosquitto_installed_under_the_home_is_preferred_with_its_plugin(tmp_path) -> None:
    from kernel.broker import MOSQUITTO_ROOT, PERSIST_PLUGIN, find_mosquitto

    root = tmp_path / MOSQUITTO_ROOT
    (root / "usr/lib/x86_64-linux-gnu/mosquitto").mkdir(parents=True)
    (root / "run-mosquitto").write_text("#!/bin/sh\n")
    (root / "usr/lib/x86_64-linux-gnu/mosquitto" / PERSIST_PLUGIN).write_bytes(b"")
    found = find_mosquitto(tmp_path)
    assert found.command == (str(root / "run-mosquitto"),)
    assert found.persist_plugin == root / "usr/lib/x86_64-linux-gnu/mosquitto" / PERSIST_PLUGIN
