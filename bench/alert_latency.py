"""Alert latency: an SOS on the alert topic → its `alarm.raised` event (PostgreSQL NOTIFY)
and → the `received` receipt back at the device, with the alert lane beside one ingest
worker. Three conditions in one run: no other traffic (the baseline), a paced background
load of routine telemetry, and a backlog of queued readings draining after the ingest
worker was down; plus the backlog's drain rate with and without alerts arriving.

    python bench/alert_latency.py [--load 5000] [--probes 300] [--backlog 500000] [--drains 3] [--kill-every 3]
    python bench/alert_latency.py --quick [--compare-nice 5]      # the three cases in <= 10 minutes

Needs WATCHPOST_DATABASE_URL. Starts its own broker and database, one `watchpost ingest`
and `--consumers` `watchpost alerts --instance N` processes (two, as `watchpost run` starts
them). Probes are SOS alerts of distinct persons (each raises a new alarm), 10 per second,
repeated by the device until receipted. The backlog drains alternate with and without
alerts, `--drains` of each; the drain rates compared are their medians. With `--kill-every`,
a last round sends alerts while the consumers are SIGKILLed in turn and restarted as the
supervisor does.

`--quick` runs the three measured cases in one pass of at most ten minutes and prints one
summary table: the idle baseline, 5,000 msg/s of routine telemetry, and one backlog of
500,000 readings whose drain is measured in alternating windows with and without alerts
(`--window-s` each, for at most `--drain-budget-s`), so the drain-rate ratio comes from one
drain on the same machine state rather than from two drains minutes apart. With
`--compare-nice N` the loaded case alternates the ingest worker's scheduling niceness between
0 and N (as `watchpost run` sets it, `ingest.nice`), in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg

from common import (
    ALERTS_USER,
    PERSONS,
    ROOT_DIR,
    SIMULATOR_ROLE,
    TOPIC_ROOT,
    Broker,
    Workers,
    bench_database,
    platform_summary,
    publish,
    stored,
    truncate,
)
from alarm_latency import _paced_load, percentiles
from simulators.alert_retry import FIRST_RETRY_S, MAX_RETRY_S
from watchpost.supervisor import restart_delay


class AlertLane:
    """`count` alert consumers as `watchpost run` starts them: `watchpost alerts --instance N`,
    all given the pool's first account, each logging in as the N-th."""

    def __init__(self, broker: Broker, url: str, count: int, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.procs: dict[int, subprocess.Popen] = {}
        self.extra_env = env or {}
        self.logs = {n: log_dir / f"alerts-{n}.log" for n in range(1, count + 1)}
        self.broker, self.url = broker, url

    def start(self, instance: int | None = None) -> None:
        for n, log in self.logs.items():
            if instance is not None and n != instance:
                continue
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")},
                "WATCHPOST_DATABASE_URL": self.url,
                "WATCHPOST_MQTT_URL": self.broker.url(ALERTS_USER),
                "WATCHPOST_TOPIC_ROOT": TOPIC_ROOT,
                **self.extra_env,
            }
            self.procs[n] = subprocess.Popen(
                [sys.executable, "-m", "watchpost.cli", "alerts", "--instance", str(n)],
                env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, cwd=ROOT_DIR,
            )

    def wait_connected(self, instance: int, times: int = 1) -> None:
        deadline = time.monotonic() + 60
        log = self.logs[instance]
        while (log.read_text() if log.exists() else "").count("connected to the broker") < times:
            if time.monotonic() > deadline:
                raise SystemExit(f"alert consumer {instance} did not connect: {log.read_text()}")
            time.sleep(0.05)

    def kill(self, instance: int) -> None:
        self.procs[instance].send_signal(signal.SIGKILL)
        self.procs[instance].wait()

    def stop(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait(60)


def probe(broker: Broker, url: str, probes: int, first_person: int, tag: str, rate: float = 10.0,
          kind: str = "sos") -> tuple[list[float], list[float]]:
    """Send alerts, `rate` a second, as a wearable does: the same event id again after
    1 s, 2 s, 4 s … until its `received` receipt arrives. Returns (first publish →
    alarm.raised ms, first publish → receipt ms). A fall raises its alarm only after its
    cancel window, so for falls only receipts are timed: its commit takes the alert lane's own
    state of the person (one more row than an SOS), never the one an ingest batch holds."""
    sent: dict[str, float] = {}
    raised: list[float] = []
    receipted: dict[str, float] = {}
    done = threading.Event()
    ready = threading.Event()
    lock = threading.Lock()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("LISTEN watchpost_events")
            ready.set()
            for note in conn.notifies(timeout=probes / rate + 60):
                at = time.time()
                event = orjson.loads(note.payload)
                data = event.get("data") or {}
                if event["type"] == "alarm.raised" and data.get("alarm_type") == "sos" and data.get("source_id") in sent:
                    raised.append((at - sent[data["source_id"]]) * 1000)
                    if len(raised) == probes:
                        break
        done.set()

    if kind == "sos":
        threading.Thread(target=listen, daemon=True).start()
        ready.wait(10)
    else:
        done.set()
    got_receipts = threading.Event()

    def on_message(_c, _u, msg) -> None:
        at = time.time()
        person = msg.topic.split("/")[-2]
        doc = orjson.loads(msg.payload)
        with lock:
            if person in sent and person not in receipted and doc.get("state") == "received" and doc.get("event_id") == f"{tag}-{person}":
                receipted[person] = (at - sent[person]) * 1000
                if len(receipted) == probes:
                    got_receipts.set()

    subscribed = threading.Event()
    c = broker.device("device")
    c.on_message = on_message
    c.on_subscribe = lambda *_: subscribed.set()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.subscribe(f"{TOPIC_ROOT}/elder/+/receipt", qos=1)
    subscribed.wait(10)
    retries: dict[str, tuple[float, float, bytes]] = {}  # person → (due, delay, payload)
    repeated = 0

    def repeat_due(now: float) -> int:
        count = 0
        with lock:
            for person, (due, delay, payload) in list(retries.items()):
                if person in receipted:
                    del retries[person]
                elif now >= due:
                    c.publish(f"{TOPIC_ROOT}/elder/{person}/alert", payload, qos=1)
                    retries[person] = (now + min(2 * delay, MAX_RETRY_S), min(2 * delay, MAX_RETRY_S), payload)
                    count += 1
        return count

    for k in range(probes):
        person = f"P-{first_person + k:05d}"
        now = time.time()
        payload = orjson.dumps({"event_id": f"{tag}-{person}", "type": kind, "ts": now, "lat": 30.85, "lon": 120.95, "acc_m": 10})
        with lock:
            sent[person] = now
            retries[person] = (now + FIRST_RETRY_S, FIRST_RETRY_S, payload)
        c.publish(f"{TOPIC_ROOT}/elder/{person}/alert", payload, qos=1)
        repeated += repeat_due(now)
        time.sleep(1 / rate)
    deadline = time.time() + 60
    while not got_receipts.is_set() and time.time() < deadline:
        repeated += repeat_due(time.time())
        time.sleep(0.05)
    done.wait(max(0.0, deadline - time.time()))
    c.disconnect()
    c.loop_stop()
    missing = (probes - len(raised) if kind == "sos" else 0, probes - len(receipted))
    if any(missing):
        print(f"warning ({tag}): {missing[0]} alarms and {missing[1]} receipts not seen", flush=True)
    if repeated:
        print(f"  ({tag}: the device repeated {repeated} alerts before their receipt)", flush=True)
    return raised, list(receipted.values())


def kill_run(broker: Broker, url: str, lane: AlertLane, probes: int, first_person: int, every_s: float) -> tuple[list[float], list[float], int]:
    """SOS alerts while the two consumers are SIGKILLed in turn every `every_s` seconds, each
    restarted after the supervisor's first quick-restart delay."""
    stop = threading.Event()
    kills = [0]

    def killer() -> None:
        instance = 1
        while not stop.wait(every_s):
            lane.kill(instance)
            kills[0] += 1
            time.sleep(restart_delay(0, quick=True))
            lane.start(instance)
            instance = 3 - instance

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        raised, receipted = probe(broker, url, probes, first_person, "kill")
    finally:
        stop.set()
        t.join()
    return raised, receipted, kills[0]


def readings_stored(url: str) -> int:
    """Telemetry rows (and dead letters), not counting the alerts' own readings."""
    with psycopg.connect(url) as conn:
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    return stored(url) - alerts


def backlog_run(broker: Broker, url: str, workers: Workers, connects: int, n: int, publishers: int, probes: int,
                first_person: int | None, tag: str) -> tuple[float, list[float], list[float]]:
    """Stop ingest, queue n readings for its session, bring it back (its `connects`-th
    connection) and time the drain (connection → last row); with `first_person`, SOS probes
    are sent while it drains."""
    workers.stop()
    truncate(url)
    base_ts = time.time() - 3 * 86400
    took = publish(broker, n, base_ts, processes=publishers)
    print(f"  backlog of {n:,} queued in {took:.0f} s ({n / took:,.0f} msg/s)", flush=True)
    workers.start()
    t0 = workers.wait_connected(connects)
    result: dict[str, tuple[list[float], list[float]]] = {}
    prober = None
    if first_person is not None:
        prober = threading.Thread(target=lambda: result.setdefault("p", probe(broker, url, probes, first_person, tag)))
        prober.start()
    deadline = time.monotonic() + 1800
    while readings_stored(url) < n:
        if time.monotonic() > deadline:
            raise SystemExit("backlog not drained in 30 min")
        time.sleep(0.05)
    rate = n / (time.time() - t0)
    if prober is not None:
        prober.join()
    raised, receipted = result.get("p", ([], []))
    print(f"  drained at {rate:,.0f} msg/s {'with' if first_person is not None else 'without'} alerts", flush=True)
    return rate, raised, receipted


def renice(pids: list[int], niceness: int) -> bool:
    """Set the processes' niceness; False when this user may not lower it (not root)."""
    try:
        for pid in pids:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
    except PermissionError:
        return False
    return True


def stored_now(url: str) -> int:
    """Readings stored (the ingest tables only: the alerts' own readings are few)."""
    return readings_stored(url)


def windowed_drain(broker: Broker, url: str, workers: Workers, connects: int, n: int, publishers: int,
                   window_s: float, budget_s: float, persons: Iterator[int]) -> dict[str, object]:
    """Queue n readings while ingest is down, bring it back, and measure the drain in
    alternating windows: SOS probes (10/s) for `window_s`, then none for `window_s`. The
    rows stored per second in each kind of window give the drain rate with and without
    alerts, from one drain."""
    workers.stop()
    truncate(url)
    took = publish(broker, n, time.time() - 3 * 86400, processes=publishers)
    print(f"  backlog of {n:,} queued in {took:.0f} s ({n / took:,.0f} msg/s)", flush=True)
    workers.start()
    workers.wait_connected(connects)
    alerts_on = threading.Event()
    stop = threading.Event()
    per_mode: dict[bool, list[float]] = {True: [0.0, 0.0], False: [0.0, 0.0]}  # mode → [rows, seconds]
    raised_all: list[float] = []
    receipted_all: list[float] = []

    def sample() -> None:
        last_t, last_n = time.monotonic(), stored_now(url)
        while not stop.wait(1.0):
            mode = alerts_on.is_set()
            t, k = time.monotonic(), stored_now(url)
            per_mode[mode][0] += k - last_n
            per_mode[mode][1] += t - last_t
            last_t, last_n = t, k
            if k >= n:
                stop.set()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    k = 0
    while not stop.is_set() and time.monotonic() - started < budget_s:
        alerts_on.set()
        first = next(persons)
        if first + 100 > PERSONS:
            break  # no fresh persons left for new alarms
        raised, receipted = probe(broker, url, min(100, int(window_s * 10)), first, f"drain{k}")
        raised_all += raised
        receipted_all += receipted
        alerts_on.clear()
        stop.wait(window_s)
        k += 1
    stop.set()
    sampler.join()
    left = n - stored_now(url)
    rate = {mode: rows / secs if secs else 0.0 for mode, (rows, secs) in per_mode.items()}
    print(f"  drain with alerts {rate[True]:,.0f} msg/s, without {rate[False]:,.0f} msg/s "
          f"({k} windows of each, {left:,} readings still queued at the end)", flush=True)
    return {"raised": raised_all, "receipted": receipted_all, "with": rate[True], "without": rate[False], "left": left}


def quick(args: argparse.Namespace, ingest_env: dict[str, str], lane_env: dict[str, str]) -> None:
    """The three measured cases in at most ten minutes, one summary table."""
    t_start = time.monotonic()
    with bench_database() as url:
        broker = Broker()
        log_dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-logs-"))
        workers = Workers(broker, url, 1, log_dir, ingest_env)
        workers.niceness = args.ingest_nice
        lane = AlertLane(broker, url, args.consumers, log_dir, lane_env)
        next_person = itertools.count(0, 100)  # each probe round takes the next 100 persons (≤ 100 probes)
        try:
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; load average {os.getloadavg()[0]:.1f}; "
                  f"1 ingest worker {ingest_env or ''}, {args.consumers} alert consumer(s) {lane_env or ''}", flush=True)
            workers.start()
            workers.wait_connected(1)
            lane.start()
            for n in lane.logs:
                lane.wait_connected(n)
            time.sleep(2)
            rows: list[tuple[str, list[float], list[float]]] = []
            rows.append(("no other traffic (baseline)", *probe(broker, url, 100, next(next_person), "idle")))
            arms = [0, args.compare_nice, 0, args.compare_nice] if args.compare_nice else [args.ingest_nice]
            per_arm = 150 if args.compare_nice else 300
            loader = broker.account(SIMULATOR_ROLE, "load")
            stop_at = time.time() + len(arms) * (per_arm / 20 + 3) + 5
            load = mp.get_context("fork").Process(target=_paced_load, args=(broker.port, loader, broker.password(loader), args.load, stop_at))
            load.start()
            time.sleep(3)
            by_arm: dict[int, tuple[list[float], list[float]]] = {}
            for k, nice in enumerate(arms):
                if not renice([p.pid for p in workers.procs], nice):
                    print(f"  (may not lower the worker's niceness to {nice} without privileges: arm skipped)", flush=True)
                    continue
                time.sleep(1)
                raised, receipted = probe(broker, url, per_arm // 2, next(next_person), f"load{k}")
                got = by_arm.setdefault(nice, ([], []))
                got[0].extend(raised)
                got[1].extend(receipted)
            load.join()
            renice([p.pid for p in workers.procs], args.ingest_nice)
            for nice, (raised, receipted) in by_arm.items():
                rows.append((f"{args.load:,} msg/s routine telemetry, ingest nice {nice}", raised, receipted))
            for _ in range(30):  # the broker and ingest catch up with the load before the backlog
                time.sleep(1)
            drain = windowed_drain(broker, url, workers, 2, args.backlog, args.publishers, args.window_s,
                                   args.drain_budget_s, next_person)
            rows.append((f"backlog of {args.backlog:,} draining (alerts in {args.window_s:g} s windows)",
                         drain["raised"], drain["receipted"]))  # type: ignore[arg-type]
            print()
            print(f"load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
                  f"the run took {(time.monotonic() - t_start) / 60:.1f} min")
            print()
            print("| condition | probes | alarm.raised p50 | p95 | p99 | `received` receipt p50 | p95 | p99 |")
            print("|---|---|---|---|---|---|---|---|")
            for name, raised, receipted in rows:
                a = " | ".join(f"{v:.1f} ms" for v in percentiles(raised)) if len(raised) > 1 else "– | – | –"
                r = " | ".join(f"{v:.1f} ms" for v in percentiles(receipted)) if len(receipted) > 1 else "– | – | –"
                print(f"| {name} | {len(receipted)} | {a} | {r} |")
            ratio = drain["with"] / drain["without"] if drain["without"] else float("nan")  # type: ignore[operator]
            print()
            print(f"backlog drain rate with alerts {drain['with']:,.0f} msg/s, without {drain['without']:,.0f} msg/s: "
                  f"with ÷ without {ratio:.3f} (target ≥ 0.90); {drain['left']:,} readings not drained within the budget")
        finally:
            lane.stop()
            workers.stop()
            broker.close()
            shutil.rmtree(log_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", type=int, default=5000, help="background msg/s (0: skip the loaded runs)")
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--backlog", type=int, default=500_000, help="queued readings (0: skip the backlog runs)")
    ap.add_argument("--drains", type=int, default=3, help="backlog drains with alerts, and as many without (median rate)")
    ap.add_argument("--publishers", type=int, default=6, help="connections that queue the backlog")
    ap.add_argument("--consumers", type=int, default=2, help="alert-lane consumers")
    ap.add_argument("--kill-every", type=float, default=0.0, help="also run SOS alerts while a consumer is SIGKILLed every this many seconds (0: skip)")
    ap.add_argument("--falls", action="store_true", help="also time falls' receipts under the load (they take the lane's own state row)")
    ap.add_argument("--ingest", action="append", default=[], metavar="NAME=VALUE",
                    help="an ingest setting for the worker, e.g. receive_maximum=2000 (repeatable)")
    ap.add_argument("--alerts", action="append", default=[], metavar="NAME=VALUE",
                    help="an alert-lane setting for the consumers, e.g. session_expiry_s=0 (repeatable)")
    ap.add_argument("--quick", action="store_true", help="the three measured cases in at most ten minutes, one summary table")
    ap.add_argument("--window-s", type=float, default=5.0, help="--quick: length of each drain window with and without alerts")
    ap.add_argument("--drain-budget-s", type=float, default=240.0, help="--quick: the longest the drain is measured")
    ap.add_argument("--ingest-nice", type=int, default=0, help="the ingest worker's scheduling niceness (watchpost run: ingest.nice)")
    ap.add_argument("--compare-nice", type=int, default=0, help="--quick: the loaded case alternates the worker's niceness 0 and this")
    args = ap.parse_args()
    lane_env = {f"WATCHPOST_ALERTS__{name.upper()}": value for name, _, value in (kv.partition("=") for kv in args.alerts)}
    ingest_env = {f"WATCHPOST_INGEST__{name.upper()}": value for name, _, value in (kv.partition("=") for kv in args.ingest)}
    if args.quick:
        quick(args, ingest_env, lane_env)
        return
    assert (3 + args.drains + (args.kill_every > 0) + args.falls) * args.probes <= PERSONS
    with bench_database() as url:
        broker = Broker()
        log_dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-logs-"))
        workers = Workers(broker, url, 1, log_dir, ingest_env)
        workers.niceness = args.ingest_nice
        lane = AlertLane(broker, url, args.consumers, log_dir, lane_env)
        try:
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; 1 ingest worker {ingest_env or ''}, "
                  f"{args.consumers} alert consumer(s) {lane_env or ''}", flush=True)
            workers.start()
            workers.wait_connected(1)
            lane.start()
            for n in lane.logs:
                lane.wait_connected(n)
            time.sleep(2)  # past the start-up registry passes
            persons = iter(range(0, PERSONS, args.probes))
            rows: list[tuple[str, list[float], list[float]]] = []
            rows.append(("no other traffic", *probe(broker, url, args.probes, next(persons), "idle")))
            if args.load:
                stop_at = time.time() + (1 + args.falls) * (args.probes / 10 + 5) + 3
                loader = broker.account(SIMULATOR_ROLE, "load")
                load = mp.get_context("fork").Process(target=_paced_load, args=(broker.port, loader, broker.password(loader), args.load, stop_at))
                load.start()
                time.sleep(3)
                rows.append((f"{args.load:,} msg/s routine telemetry", *probe(broker, url, args.probes, next(persons), "load")))
                if args.falls:
                    rows.append((f"falls (receipt only), {args.load:,} msg/s routine telemetry", [],
                                 probe(broker, url, args.probes, next(persons), "fall", kind="fall")[1]))
                load.join()
            rates: dict[str, list[float]] = {"with alerts": [], "without alerts": []}
            if args.backlog:
                raised_all: list[float] = []
                receipted_all: list[float] = []
                connects = itertools.count(2)
                for k in range(args.drains):
                    rate, raised, receipted = backlog_run(
                        broker, url, workers, next(connects), args.backlog, args.publishers, args.probes, next(persons), f"backlog{k}"
                    )
                    rates["with alerts"].append(rate)
                    raised_all += raised
                    receipted_all += receipted
                    print(f"  alerts during drain {k + 1}: p99 {percentiles(raised)[2]:.1f} ms, receipt p99 {percentiles(receipted)[2]:.1f} ms", flush=True)
                    rate, _, _ = backlog_run(broker, url, workers, next(connects), args.backlog, args.publishers, 0, None, "")
                    rates["without alerts"].append(rate)
                rows.append((f"backlog of {args.backlog:,} readings draining, {args.drains} drains", raised_all, receipted_all))
            kills = 0
            if args.kill_every:
                raised, receipted, kills = kill_run(broker, url, lane, args.probes, next(persons), args.kill_every)
                rows.append((f"a consumer SIGKILLed every {args.kill_every:g} s ({kills} kills)", raised, receipted))
            print()
            print("| condition | alarm.raised p50 | p95 | p99 | `received` receipt p50 | p95 | p99 |")
            print("|---|---|---|---|---|---|---|")
            for name, raised, receipted in rows:
                a = " | ".join(f"{v:.1f} ms" for v in percentiles(raised)) if raised else "– | – | –"
                r = " | ".join(f"{v:.1f} ms" for v in percentiles(receipted))
                print(f"| {name} ({len(receipted)} probes) | {a} | {r} |")
            if rates["with alerts"]:
                print()
                for name, got in rates.items():
                    print(f"backlog drain rate {name}: median {statistics.median(got):,.0f} msg/s ({', '.join(f'{r:,.0f}' for r in got)})")
                ratio = statistics.median(rates["with alerts"]) / statistics.median(rates["without alerts"])
                print(f"with ÷ without (medians): {ratio:.3f} (target ≥ 0.90)")
        finally:
            lane.stop()
            workers.stop()
            broker.close()
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
