"""Alert latency: an SOS on the alert topic → its `alarm.raised` event (PostgreSQL NOTIFY)
and → the `received` receipt back at the device, with the alert lane beside one ingest
worker. Three conditions in one run: no other traffic (the baseline), a paced background
load of routine telemetry, and a backlog of queued readings draining after the ingest
worker was down; plus the backlog's drain rate with and without alerts arriving.

    python bench/alert_latency.py [--load 5000] [--probes 300] [--backlog 500000]

Needs WATCHPOST_DATABASE_URL. Starts its own broker and database, one `watchpost ingest`
and `--consumers` `watchpost alerts` processes. Probes are SOS alerts of distinct persons
(each raises a new alarm), 10 per second.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from common import (
    GATEWAY_USER,
    PERSONS,
    ROOT_DIR,
    TOPIC_ROOT,
    Broker,
    Workers,
    bench_database,
    device_password,
    platform_summary,
    publish,
    stored,
    truncate,
)
from alarm_latency import _paced_load, percentiles
from kernel.broker import ALERTS_USER


class AlertLane:
    def __init__(self, broker: Broker, url: str, count: int, log_dir: Path) -> None:
        self.procs: list[subprocess.Popen] = []
        self.logs = [log_dir / f"alerts-{k}.log" for k in range(count)]
        self.broker, self.url = broker, url

    def start(self) -> None:
        for k, log in enumerate(self.logs):
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")},
                "WATCHPOST_DATABASE_URL": self.url,
                "WATCHPOST_MQTT_URL": self.broker.url(ALERTS_USER),
                "WATCHPOST_TOPIC_ROOT": TOPIC_ROOT,
                "WATCHPOST_ALERTS__CLIENT_ID": f"bench-alerts-{k}",
            }
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "watchpost.cli", "alerts"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, cwd=ROOT_DIR
            ))
        deadline = time.monotonic() + 60
        for log in self.logs:
            while "connected to the broker" not in (log.read_text() if log.exists() else ""):
                if time.monotonic() > deadline:
                    raise SystemExit(f"alert lane did not connect: {log.read_text()}")
                time.sleep(0.05)

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(60)


def probe(broker: Broker, url: str, probes: int, first_person: int, tag: str) -> tuple[list[float], list[float]]:
    """Send SOS alerts; returns (publish → alarm.raised ms, publish → receipt ms)."""
    sent: dict[str, float] = {}
    raised: list[float] = []
    receipted: list[float] = []
    done = threading.Event()
    ready = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("LISTEN watchpost_events")
            ready.set()
            for note in conn.notifies(timeout=probes / 10 + 60):
                at = time.time()
                event = orjson.loads(note.payload)
                data = event.get("data") or {}
                if event["type"] == "alarm.raised" and data.get("alarm_type") == "sos" and data.get("source_id") in sent:
                    raised.append((at - sent[data["source_id"]]) * 1000)
                    if len(raised) == probes:
                        break
        done.set()

    threading.Thread(target=listen, daemon=True).start()
    ready.wait(10)
    got_receipts = threading.Event()

    def on_message(_c, _u, msg) -> None:
        at = time.time()
        person = msg.topic.split("/")[-2]
        if person in sent and orjson.loads(msg.payload).get("event_id") == f"{tag}-{person}":
            receipted.append((at - sent[person]) * 1000)
            if len(receipted) == probes:
                got_receipts.set()

    subscribed = threading.Event()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-device-{tag}", protocol=mqtt.MQTTv5)
    c.username_pw_set(GATEWAY_USER, device_password(broker.secret, GATEWAY_USER))
    c.on_message = on_message
    c.on_subscribe = lambda *_: subscribed.set()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.subscribe(f"{TOPIC_ROOT}/elder/+/receipt", qos=1)
    subscribed.wait(10)
    for k in range(probes):
        person = f"P-{first_person + k:05d}"
        sent[person] = time.time()
        payload = {"event_id": f"{tag}-{person}", "type": "sos", "ts": time.time(), "lat": 30.85, "lon": 120.95, "acc_m": 10}
        c.publish(f"{TOPIC_ROOT}/elder/{person}/alert", orjson.dumps(payload), qos=1)
        time.sleep(0.1)
    done.wait(60)
    got_receipts.wait(10)
    c.disconnect()
    c.loop_stop()
    if len(raised) < probes or len(receipted) < probes:
        print(f"warning ({tag}): {probes - len(raised)} alarms and {probes - len(receipted)} receipts not seen", flush=True)
    return raised, receipted


def readings_stored(url: str) -> int:
    """Telemetry rows (and dead letters), not counting the alerts' own readings."""
    with psycopg.connect(url) as conn:
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    return stored(url) - alerts


def backlog_run(broker: Broker, url: str, workers: Workers, n: int, connects: int, probes: int, first_person: int | None) -> tuple[float, list[float], list[float]]:
    """Stop ingest, queue n readings for its session, bring it back and time the drain
    (connection → last row); with `first_person`, SOS probes are sent while it drains."""
    workers.stop()
    truncate(url)
    base_ts = time.time() - 3 * 86400
    took = publish(broker, n, base_ts)
    print(f"  backlog of {n:,} queued in {took:.0f} s", flush=True)
    workers.start()
    t0 = workers.wait_connected(connects)
    result: dict[str, tuple[list[float], list[float]]] = {}
    prober = None
    if first_person is not None:
        prober = threading.Thread(target=lambda: result.setdefault("p", probe(broker, url, probes, first_person, f"backlog{connects}")))
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
    return rate, raised, receipted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", type=int, default=5000, help="background msg/s")
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--backlog", type=int, default=500_000, help="queued readings (0: skip the backlog runs)")
    ap.add_argument("--consumers", type=int, default=1, help="alert-lane consumers")
    args = ap.parse_args()
    assert 3 * args.probes <= PERSONS
    with bench_database() as url:
        broker = Broker()
        log_dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-logs-"))
        workers = Workers(broker, url, 1, log_dir)
        lane = AlertLane(broker, url, args.consumers, log_dir)
        try:
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; 1 ingest worker, {args.consumers} alert consumer(s)", flush=True)
            workers.start()
            workers.wait_connected(1)
            lane.start()
            time.sleep(2)  # past the start-up registry passes
            rows: list[tuple[str, list[float], list[float]]] = []
            rows.append(("no other traffic", *probe(broker, url, args.probes, 0, "idle")))
            stop_at = time.time() + args.probes / 10 + 8
            load = mp.get_context("fork").Process(
                target=_paced_load, args=(broker.port, device_password(broker.secret, GATEWAY_USER), args.load, stop_at)
            )
            load.start()
            time.sleep(3)
            rows.append((f"{args.load:,} msg/s routine telemetry", *probe(broker, url, args.probes, args.probes, "load")))
            load.join()
            rates = {}
            if args.backlog:
                rate, raised, receipted = backlog_run(broker, url, workers, args.backlog, 2, args.probes, 2 * args.probes)
                rows.append((f"backlog of {args.backlog:,} readings draining", raised, receipted))
                rates["with alerts"] = rate
                rates["without alerts"], _, _ = backlog_run(broker, url, workers, args.backlog, 3, 0, None)
            print()
            print("| condition | alarm.raised p50 | p95 | p99 | `received` receipt p50 | p95 | p99 |")
            print("|---|---|---|---|---|---|---|")
            for name, raised, receipted in rows:
                a, r = percentiles(raised), percentiles(receipted)
                print(f"| {name} ({len(raised)} probes) | {a[0]:.1f} ms | {a[1]:.1f} ms | {a[2]:.1f} ms | {r[0]:.1f} ms | {r[1]:.1f} ms | {r[2]:.1f} ms |")
            if rates:
                print()
                for name, rate in rates.items():
                    print(f"backlog drain rate {name}: {rate:,.0f} msg/s")
                print(f"with ÷ without: {rates['with alerts'] / rates['without alerts']:.3f} (target ≥ 0.90)")
        finally:
            lane.stop()
            workers.stop()
            broker.close()
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
