"""Websocket fan-out: alarm committed → delivered to every connected client.

    python bench/fanout.py [--clients 2000] [--consoles 200] [--alarms 100] [--slow 20]

Needs WATCHPOST_DATABASE_URL. Starts one `watchpost serve` on a free port over a generated
registry (1,000 persons, so most clients are family members watching their own relative),
connects the clients from a separate process (asyncio, `websockets`), then commits a burst of
alarms — half about persons (reaching consoles and the linked families), half about stations
(consoles only) — and measures commit → receive per delivered message. Twice in the same run:
without slow clients (the baseline) and with `--slow` clients that read one message a second,
which must not raise the others' latency.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
import websockets

from common import ROOT_DIR, bench_database, platform_summary
from dashboard.auth import Principal, Role, issue_token
from ingest.alarm_store import apply_transitions
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from simulators.jiashan_registry import generate_registry

SECRET = os.urandom(32).hex()
METRICS_TOKEN = os.urandom(16).hex()


def _clients(base: str, tokens: list[tuple[str, bool]], slow: int, ready, out, done) -> None:
    """Child process: hold the websockets, record (event id, receive time) per message."""

    async def one(token: str, console: bool, is_slow: bool, received: list) -> None:
        path = "console" if console else "family"
        try:
            # The token in the subprotocol header, as the pages send it (never in the URL).
            async with websockets.connect(f"{base}/ws/{path}", subprotocols=["watchpost", token], max_queue=None) as ws:  # type: ignore[list-item]
                ready.put(1)
                while not done.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                    except TimeoutError:
                        continue
                    if not is_slow:
                        received.append((orjson.loads(raw)["id"], time.time()))
                    else:
                        await asyncio.sleep(1.0)
        except websockets.ConnectionClosed:
            pass

    async def main() -> None:
        received: list = []
        tasks = [one(t, c, k < slow, received) for k, (t, c) in enumerate(tokens)]
        await asyncio.gather(*tasks)
        out.put(received)

    asyncio.run(main())


def burst(url: str, persons: list[str], stations: list[str], n: int, tag: str) -> dict[int, float]:
    """Commit n alarms, one transaction each; returns event id → commit time."""
    committed: dict[int, float] = {}
    with psycopg.connect(url) as conn:
        previous = conn.execute("SELECT coalesce(max(event_id), 0) FROM events").fetchone()[0]
        conn.commit()
        for k in range(n):
            kind, source = (SourceKind.PERSON, persons[k % len(persons)]) if k % 2 == 0 else (SourceKind.STATION, stations[k % len(stations)])
            alarm = AlarmType.INACTIVITY if kind is SourceKind.PERSON else AlarmType.WATER_ANOMALY
            t = AlarmTransition(Action.RAISE, kind, source, alarm, Severity.MINOR, datetime.now(UTC), detail={"bench": tag})
            with conn.transaction(), conn.cursor() as cur:
                apply_transitions(cur, [t], datetime.now(UTC))
            done = time.time()  # the transaction has committed: NOTIFY is on its way
            # Events take their ids as their transaction commits; this is the only writer.
            last = conn.execute("SELECT max(event_id) FROM events").fetchone()[0]
            conn.commit()
            committed.update(dict.fromkeys(range(previous + 1, last + 1), done))
            previous = last
            time.sleep(0.005)
    return committed


def run_round(base: str, url: str, tokens, slow: int, persons, stations, alarms: int, tag: str) -> tuple[list[float], int]:
    ctx = mp.get_context("fork")
    ready, out, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    # Clients split over two processes: one Python process cannot both hold 2,000 sockets and
    # timestamp arrivals promptly.
    halves = [tokens[: len(tokens) // 2], tokens[len(tokens) // 2:]]
    procs = [ctx.Process(target=_clients, args=(base, h, slow if k == 0 else 0, ready, out, done)) for k, h in enumerate(halves)]
    for p in procs:
        p.start()
    for _ in range(len(tokens)):
        ready.get(timeout=120)
    time.sleep(1.0)
    committed = burst(url, persons, stations, alarms, tag)
    time.sleep(3.0)
    done.set()
    received = []
    for _ in procs:
        received.extend(out.get(timeout=60))
    for p in procs:
        p.join()
    latencies = [(t - committed[eid]) * 1000 for eid, t in received if eid in committed]
    return latencies, len(received)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--consoles", type=int, default=200)
    ap.add_argument("--alarms", type=int, default=100)
    ap.add_argument("--slow", type=int, default=20)
    args = ap.parse_args()
    doc = generate_registry(persons=1000)
    with bench_database(doc) as url:
        with psycopg.connect(url) as conn:
            links = conn.execute("SELECT username, person_id FROM family_links ORDER BY username").fetchall()
            stations = [r[0] for r in conn.execute("SELECT station_id FROM stations")]
            versions = dict(conn.execute("SELECT username, token_version FROM users").fetchall())
        now = datetime.now(UTC)
        families = sorted({u for u, _ in links})

        def token(username: str, role: Role) -> str:  # a token names the user's token version, as a login's does
            return issue_token(SECRET, Principal(username, role, versions[username]), now, timedelta(hours=1))

        tokens = [(token("op1", Role.OPERATOR), True) for _ in range(args.consoles)]
        tokens += [(token(families[k % len(families)], Role.FAMILY), False) for k in range(args.clients - args.consoles)]
        watched = sorted({p for u, p in links if u in set(families[: args.clients - args.consoles])})
        port = 8000 + os.getpid() % 1000
        log = Path(tempfile.mkdtemp(prefix="watchpost-bench-")) / "api.log"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")},
               "WATCHPOST_DATABASE_URL": url, "WATCHPOST_API__TOKEN_SECRET": SECRET, "WATCHPOST_API__PORT": str(port),
               "WATCHPOST_API__METRICS_TOKEN": METRICS_TOKEN, "WATCHPOST_LOG_LEVEL": "WARNING"}
        api = subprocess.Popen([sys.executable, "-m", "watchpost.cli", "serve"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT_DIR)
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; {args.clients} clients ({args.consoles} consoles), "
                  f"burst of {args.alarms} alarms", flush=True)
            base = f"ws://127.0.0.1:{port}"
            rows = []
            for slow in (0, args.slow):
                ms, n = run_round(base, url, tokens, slow, watched, stations, args.alarms, f"round-slow-{slow}")
                p50, p99 = statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]
                rows.append((slow, n, p50, p99))
                print(f"slow clients {slow}: {n} messages delivered to normal clients, p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).raise_for_status().text
            dropped = next(line.split()[1] for line in metrics.splitlines() if line.startswith("watchpost_ws_dropped_total "))
            print()
            print("| commit → websocket client | messages | p50 | p99 |")
            print("|---|---|---|---|")
            for slow, n, p50, p99 in rows:
                print(f"| {args.clients} clients, {'no' if not slow else slow} slow clients | {n:,} | {p50:.1f} ms | {p99:.1f} ms |")
            print(f"\nslow clients dropped by the server: {float(dropped):.0f}; ratio p99 with/without slow clients: "
                  f"{rows[1][3] / rows[0][3]:.2f}; target p99 ≤ 250 ms")
        finally:
            api.terminate()
            api.wait(15)
            shutil.rmtree(log.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
