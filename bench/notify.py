"""Reaching families: 100 severe alarms committed at once → each family's SMS accepted by the
SMSC and each family phone ringing, with real telephony (an SMPP SMSC, baresip phones).

    python bench/notify.py [--alarms 100] [--lines 4 8 16]

Needs WATCHPOST_DATABASE_URL, baresip, espeak-ng and sox. For each number of lines (calls in
progress at once) it starts a fresh database, as many simulated phones as lines (each
answers after 0.5 s and presses 1 a second later), a test SMSC and a notifier, commits one
SOS per person in one transaction, and prints alarm committed → SMS accepted and → phone
ringing, p50/p99/max, with the calls' throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
import time
from collections.abc import Iterator

import psycopg

from common import bench_database, platform_summary
from ingest.alarm_store import apply_transitions  # after common, which puts the project on the path
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from kernel.clock import SystemClock
from kernel.db import connect
from notify.baresip import BaresipCaller
from notify.notifier import Notifier, run
from notify.outcomes import RetryPolicy
from notify.smpp import SmppEndpoint, SmppSender
from simulators.phone import FamilyPhone
from simulators.smsc import FakeSmsc, serve


def registry(n: int) -> dict:
    return {
        "persons": [{"person_id": f"P-{i:04d}", "name": f"老人{i}", "lat": 30.83, "lon": 120.92, "address": f"魏塘街道{i}号"}
                    for i in range(n)],
        "users": [{"username": f"fam-{i:04d}", "display_name": f"家属{i}", "role": "family", "phone": f"+86139{i:08d}",
                   "persons": [{"person_id": f"P-{i:04d}", "channels": ["app", "sms", "voice"], "voice_after_s": 60}]}
                  for i in range(n)],
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(n: int, lines: int) -> None:
    with bench_database(registry(n)) as url:
        smsc = FakeSmsc(report="")
        server = serve(smsc)
        phones = [FamilyPhone("answer", key="1", answer_after_s=0.5, key_after_s=1.0) for _ in range(lines)]
        book = {f"+86139{i:08d}": phones[i % lines].uri for i in range(n)}

        @contextlib.contextmanager
        def connections() -> Iterator[psycopg.Connection]:
            with connect(url, application_name="bench-notify") as conn:
                yield conn

        sms = SmppSender(SmppEndpoint("127.0.0.1", server.server_address[1], "bench", "bench"), sender="Watchpost",
                         on_report=lambda *_: None)
        voice = BaresipCaller(binary="baresip", lines=lines, domain="invalid", phonebook=book, ring_timeout_s=20)
        notifier = Notifier(connections, SystemClock(), sms=sms, voice=voice, family_url="http://127.0.0.1:8000/family",
                            policy=RetryPolicy(max_attempts=3, base_s=2), batch=100, max_calls=lines, lease_s=150)
        voice.start_lines()  # as `watchpost notify` does when it starts
        stop, wake = threading.Event(), threading.Event()
        loop = threading.Thread(target=run, args=(notifier, wake, stop, 0.05), daemon=True)
        loop.start()
        now = SystemClock().now()
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            apply_transitions(cur, [AlarmTransition(Action.RAISE, SourceKind.PERSON, f"P-{i:04d}", AlarmType.SOS, Severity.CRITICAL,
                                                    now, emergency=True) for i in range(n)], now)
        committed = time.monotonic()
        wake.set()
        smsc.wait_for(n, timeout=120)
        deadline = time.monotonic() + 600
        while sum(len(p.calls) for p in phones) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                left = conn.execute("SELECT count(*) FROM notifications WHERE channel = 'voice' AND state NOT IN ('acked', 'cancelled')").fetchone()[0]
            if not left:
                break
            time.sleep(0.5)
        done = time.monotonic()
        stop.set()
        wake.set()
        loop.join(30)
        notifier.wait_for_calls(60)
        sms_ms = [(t - committed) * 1000 for t in smsc.submits[:n]]
        rings = sorted(c.rang_at for p in phones for c in p.calls)
        ring_ms = [(t - committed) * 1000 for t in rings[:n]]
        with psycopg.connect(url) as conn:
            states = dict(conn.execute("SELECT state, count(*) FROM notifications WHERE channel = 'voice' GROUP BY state").fetchall())
            attempts = conn.execute("SELECT sum(attempt) FROM notifications WHERE channel = 'voice'").fetchone()[0]
        print(f"\n{n} SOS alarms committed at once, {lines} lines (calls in parallel), {len(phones)} phones")
        print(f"  → SMS accepted by the SMSC:  p50 {pct(sms_ms, 0.5):7.0f} ms  p99 {pct(sms_ms, 0.99):7.0f} ms  max {max(sms_ms):7.0f} ms")
        print(f"  → phone ringing:             p50 {pct(ring_ms, 0.5):7.0f} ms  p99 {pct(ring_ms, 0.99):7.0f} ms  max {max(ring_ms):7.0f} ms"
              f"  (first {min(ring_ms):.0f} ms)")
        print(f"  all {n} calls answered and acknowledged in {done - committed:.1f} s: "
              f"{n / (done - committed):.1f} calls/s; voice states {states}, attempts {attempts}; "
              f"mean ring gap {statistics.mean(b - a for a, b in zip(rings, rings[1:])) * 1000:.0f} ms")
        voice.close()
        sms.close()
        for p in phones:
            p.close()
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=100)
    parser.add_argument("--lines", type=int, nargs="+", default=[4, 8, 16])
    args = parser.parse_args()
    print(platform_summary())
    for lines in args.lines:
        measure(args.alarms, lines)


if __name__ == "__main__":
    main()
