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
