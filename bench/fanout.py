"""Websocket fan-out: alarm committed → delivered to every connected client.

    python bench/fanout.py [--clients 2000] [--consoles 200] [--alarms 100] [--slow 20] [--runs 5]
    python bench/fanout.py --clients 10000 --slow 0 --runs 5

The 10,000-client case needs file descriptors: the benchmark raises its soft limit to the
hard one (`ulimit -Hn`), which the API process and the client processes inherit. Every
console logs in as the same operator, so the benchmark raises the per-user websocket cap
(`WATCHPOST_API__WS_PER_USER`, 8 by default, close code 4029 past it) to the number of
consoles; family members are generated as real users, a registry of clients ÷ 4 persons
giving each family user at most a few pages open.

Needs WATCHPOST_DATABASE_URL. Starts one `watchpost serve` on a free port over a generated
registry (1,000 persons, so most clients are family members watching their own relative),
connects the clients from a separate process (asyncio, `websockets`), then commits a burst of
alarms — half about persons (reaching consoles and the linked families), half about stations
(consoles only) — and measures commit → receive per delivered message. Twice in the same run:
without slow clients (the baseline) and with `--slow` clients that read one message a second,
which must not raise the others' latency. `--runs` repeats each round on the same open
sockets and reports the spread of the p99s (min / median / max). Memory per connection is
the API process's resident memory with every client connected, less before, ÷ clients.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import resource
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

from common import ROOT_DIR, bench_database, platform_summary, socket_free
from dashboard.auth import Principal, Role, issue_token
from ingest.alarm_store import apply_transitions
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from simulators.jiashan_registry import generate_registry

SECRET = os.urandom(32).hex()
METRICS_TOKEN = os.urandom(16).hex()
# Opening handshakes in flight per client process.
HANDSHAKES_AT_ONCE = 10


def _clients(base: str, tokens: list[tuple[str, bool]], slow: int, ready, out, go, done) -> None:
    """Child process: hold the websockets; for every burst (`go` set, then cleared) record
    (event id, receive time) per message and hand the list over."""

    received: list = []

    async def one(token: str, console: bool, is_slow: bool, gate: asyncio.Semaphore) -> None:
        path = "console" if console else "family"
        announced = False
        while not done.is_set():
            try:
                async with gate:  # pages arrive over a few seconds, not all in one instant
                    # The token in the subprotocol header, as the pages send it (never in the URL).
                    ws = await websockets.connect(f"{base}/ws/{path}", subprotocols=["watchpost", token],  # type: ignore[list-item]
                                                  max_queue=None, open_timeout=120, ping_interval=None)
                async with ws:
                    if not announced:
                        ready.put(1)
                        announced = True
                    # No per-client timeout to look at `done`: ten thousand clients waking
                    # twice a second took the cores the API needed; `main` cancels them.
                    async for raw in ws:
                        if not is_slow:
                            received.append((orjson.loads(raw)["id"], time.time()))
                        else:
                            await asyncio.sleep(1.0)
                return  # closed normally
            except websockets.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 1013:  # busy or too slow: back later, as a page does
                    await asyncio.sleep(1.0 + random.random() * 2)
                    continue
                if exc.rcvd is not None and exc.rcvd.code != 1000:
                    print(f"a client was closed: {exc.rcvd.code} {exc.rcvd.reason}", flush=True)
                return
            except OSError as exc:
                print(f"a client could not connect: {exc}", flush=True)
                if not announced:
                    ready.put(0)
                return

    async def bursts() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            await loop.run_in_executor(None, go.wait, 0.5)
            if go.is_set():
                out.put(list(received))
                received.clear()
                await loop.run_in_executor(None, _wait_clear, go, done)

    async def main() -> None:
        gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
        tasks = [asyncio.create_task(one(t, c, k < slow, gate)) for k, (t, c) in enumerate(tokens)]
        await bursts()  # returns once `done` is set
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def _wait_clear(event, done) -> None:
    while event.is_set() and not done.is_set():
        time.sleep(0.05)


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


class ClientFleet:
    """The websocket clients, spread over processes so that the client side keeps up."""

    def __init__(self, base: str, tokens, slow: int, processes: int) -> None:
        ctx = mp.get_context("fork")
        self.ready, self.out, self.go, self.done = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
        shares = [tokens[k::processes] for k in range(processes)]
        self.procs = [ctx.Process(target=_clients, args=(base, share, slow if k == 0 else 0, self.ready, self.out, self.go, self.done))
                      for k, share in enumerate(shares)]
        for p in self.procs:
            p.start()
        connected = sum(self.ready.get(timeout=600) for _ in range(len(tokens)))
        if connected < len(tokens):
            raise SystemExit(f"only {connected} of {len(tokens)} clients connected")

    def collect(self) -> list:
        """Every message received since the last collection."""
        self.go.set()
        received = []
        for _ in self.procs:
            received.extend(self.out.get(timeout=120))
        self.go.clear()
        return received

    def close(self) -> None:
        self.done.set()
        self.go.clear()
        for p in self.procs:
            p.join(60)
            if p.is_alive():
                p.kill()


def run_burst(fleet: ClientFleet, url: str, persons, stations, alarms: int, tag: str) -> tuple[list[float], int]:
    committed = burst(url, persons, stations, alarms, tag)
    time.sleep(2.0)
    received = fleet.collect()
    while True:  # until a second passes with nothing more arriving
        time.sleep(1.0)
        more = fleet.collect()
        if not more:
            break
        received += more
    latencies = [(t - committed[eid]) * 1000 for eid, t in received if eid in committed]
    return latencies, len(received)


def api_metric(port: int, name: str) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                        timeout=60).raise_for_status().text
    return float(next(line.split()[1] for line in metrics.splitlines() if line.startswith(f"{name} ")))


def cpu_s(pid: int) -> float:
    """CPU seconds the process has used (user + system): what a burst costs it, whatever
    else the machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def wait_clients(port: int, n: int) -> None:
    """Until the API holds n sockets: a refused one (4029, 1008) never counts."""
    deadline = time.monotonic() + 120 + n / 20
    while (have := api_metric(port, "watchpost_ws_clients")) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"the API holds {have:.0f} of {n} websockets")
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--consoles", type=int, default=200)
    ap.add_argument("--alarms", type=int, default=100)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1, help="bursts per round, on the same sockets")
    ap.add_argument("--client-processes", type=int, default=0, help="default: one per 2,000 clients, at least two")
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the API and the clients
    if hard < args.clients + 1000:
        raise SystemExit(f"{args.clients} sockets need more file descriptors than the hard limit of {hard}")
    processes = args.client_processes or max(2, -(-args.clients // 2000))
    doc = generate_registry(persons=max(1000, args.clients // 4))
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
        with socket_free() as port:  # a port of its own: other API processes may run on this machine
            pass
        log = Path(tempfile.mkdtemp(prefix="watchpost-bench-")) / "api.log"
        # Every console is op1: the per-user cap is raised to the consoles, a bench-only setting.
        per_user = max(8, args.consoles, -(-(args.clients - args.consoles) // len(families)))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")},
               "WATCHPOST_DATABASE_URL": url, "WATCHPOST_API__TOKEN_SECRET": SECRET, "WATCHPOST_API__PORT": str(port),
               "WATCHPOST_API__METRICS_TOKEN": METRICS_TOKEN, "WATCHPOST_LOG_LEVEL": "WARNING",
               "WATCHPOST_API__WS_PER_USER": str(per_user)}
        api = subprocess.Popen([sys.executable, "-m", "watchpost.cli", "serve"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT_DIR)
        try:
            for _ in range(600):
                if api.poll() is not None:
                    raise SystemExit(f"the API exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; {args.clients} clients ({args.consoles} consoles) "
                  f"in {processes} client processes, burst of {args.alarms} alarms, {args.runs} bursts per round; "
                  f"websockets per user allowed: {per_user}", flush=True)
            base = f"ws://127.0.0.1:{port}"
            rows = []
            for slow in dict.fromkeys((0, args.slow)):
                time.sleep(1.0)
                idle_mb = rss_mb(api.pid)
                fleet = ClientFleet(base, tokens, slow, processes)
                try:
                    wait_clients(port, args.clients)
                    held_mb = rss_mb(api.pid)
                    kb = (held_mb - idle_mb) * 1024 / args.clients
                    print(f"slow clients {slow}: API RSS {idle_mb:.0f} MB → {held_mb:.0f} MB with {args.clients} sockets: "
                          f"{kb:.1f} KB per connection", flush=True)
                    time.sleep(1.0)
                    p99s = []
                    for run in range(args.runs):
                        load, cpu = os.getloadavg()[0], cpu_s(api.pid)
                        ms, n = run_burst(fleet, url, watched, stations, args.alarms, f"round-slow-{slow}-{run}")
                        p50, p99 = statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]
                        p99s.append(p99)
                        print(f"slow clients {slow}, burst {run + 1}: {n} messages delivered to normal clients, p50 {p50:.1f} ms, "
                              f"p99 {p99:.1f} ms; the API's CPU {(cpu_s(api.pid) - cpu) * 1000:.0f} ms; load average {load:.1f}", flush=True)
                    rows.append((slow, n, p99s, kb))
                finally:
                    fleet.close()
                time.sleep(2.0)
            dropped = api_metric(port, "watchpost_ws_dropped_total")
            print()
            print(f"| commit → websocket client ({args.runs} bursts) | messages per burst | memory per connection | p99 min / median / max |")
            print("|---|---|---|---|")
            for slow, n, p99s, kb in rows:
                # Only the first round grows the heap: a second one reuses what the first freed.
                memory = f"{kb:.1f} KB" if slow == rows[0][0] else "(see first row)"
                print(f"| {args.clients:,} clients, {'no' if not slow else slow} slow clients | {n:,} | {memory} | "
                      f"{min(p99s):.1f} / {statistics.median(p99s):.1f} / {max(p99s):.1f} ms |")
            print(f"\nslow clients dropped by the server: {dropped:.0f}; target p99 ≤ 250 ms at 10,000 clients, ≤ 50 ms at 2,000")
        except BaseException:
            print(f"the API's log ends:\n{log.read_text()[-3000:]}", flush=True)
            raise
        finally:
            api.terminate()
            api.wait(15)
            shutil.rmtree(log.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
