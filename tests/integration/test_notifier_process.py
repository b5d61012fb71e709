"""`watchpost notify` as a process: killed outright while a family phone rings, it loses
nothing and places no second call in a burst — the next notifier calls again only once the
dead one's lease has passed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from kernel.clock import SystemClock
from notify.baresip import free_port
from tests.fix_notify import needs_baresip
from tests.fix_wait import wait_for
from tests.integration.test_notifications import DAUGHTER, notifications

pytestmark = pytest.mark.slow

LEASE_S = 6


def start_notifier(database_url: str, phonebook: Path, log: Path, metrics_port: int = 0) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")}
    env.update({
        "WATCHPOST_DATABASE_URL": database_url,
        "WATCHPOST_NOTIFY__SIP_AGENT": "baresip",
        "WATCHPOST_NOTIFY__SIP_PHONEBOOK": str(phonebook),
        "WATCHPOST_NOTIFY__LEASE_S": str(LEASE_S),
        "WATCHPOST_NOTIFY__RING_TIMEOUT_S": "20",
        "WATCHPOST_NOTIFY__POLL_INTERVAL_S": "0.2",
        "WATCHPOST_METRICS_PORT": str(metrics_port),
    })
    return subprocess.Popen([sys.executable, "-m", "watchpost.cli", "notify"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


@needs_baresip
def test_a_notifier_killed_while_the_phone_rings_calls_again_after_its_lease_and_only_once(
    database_url: str, family_phones, tmp_path: Path,
) -> None:
    from ingest.alarm_store import apply_transitions
    from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind

    phone = family_phones("answer", key="1", answer_after_s=3.0, key_after_s=1.0)
    phonebook = tmp_path / "phonebook.json"
    phonebook.write_bytes(orjson.dumps({DAUGHTER: phone.uri}))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE users SET phone = %s WHERE username = 'fam1'", (DAUGHTER,))
        conn.execute("UPDATE family_links SET channels = '{voice}' WHERE username = 'fam1'")
    first = start_notifier(database_url, phonebook, tmp_path / "notify.log")
    try:
        now = SystemClock().now()
        with psycopg.connect(database_url) as conn, conn.cursor() as cur:
            apply_transitions(cur, [AlarmTransition(Action.RAISE, SourceKind.PERSON, "P-0001", AlarmType.FALL,
                                                    Severity.MAJOR, now)], now)
        phone.wait_for_calls(1, timeout=20)
        first.send_signal(signal.SIGKILL)  # mid-call: ringing, not answered
        first.wait(10)
        killed_at = time.monotonic()
    finally:
        if first.poll() is None:
            first.kill()
    port = free_port()
    second = start_notifier(database_url, phonebook, tmp_path / "notify.log", metrics_port=port)
    try:
        wait_for(lambda: ("fam1", "voice", "acked", 2) in notifications(database_url), 40, what="the call placed again and acknowledged")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert ready["ready"] and ready["voice"] == "ok" and ready["database"] == "ok", ready
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    calls = phone.calls
    assert len(calls) == 2, f"{len(calls)} calls"
    assert calls[1].rang_at - calls[0].rang_at >= LEASE_S - 0.5
    assert calls[1].rang_at > killed_at
