"""Alarm latency: publish of an alarm-raising message → its `alarm.raised` event delivered
to a PostgreSQL NOTIFY listener, under a background load.

    python bench/alarm_latency.py [--load 5000] [--probes 300] [--workers 2]

Needs WATCHPOST_DATABASE_URL. Starts its own broker and database and two ingest workers
(rules on). Probes are SOS presses of distinct persons (each raises a new alarm), sent at
10 per second. Measured twice in the same run: with no other traffic (the baseline), and with
a paced background load of ordinary readings from another process.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psycopg

from common import PERSONS, SIMULATOR_ROLE, TOPICS, Broker, Workers, bench_database, client, message, platform_summary
from kernel.events import EVENTS_CHANNEL  # after common, which puts the project on the path


def _paced_load(port: int, user: str, password: str, rate: int, stop_at: float) -> None:
    """Ordinary readings at `rate` msg/s (QoS 1), none of which raises an alarm."""
    c = client(port, user, password)
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    i, start = 0, time.time()
    base_ts = start - 7200
    while time.time() < stop_at:
        due = int((time.time() - start) * rate)
        while i < due:
            topic, payload = message(i, base_ts)
            if "/wearable" in topic:  # keep every reading ordinary: no falls, SOS or low battery
                payload = orjson.dumps({"ts": base_ts + i * 0.001, "hr_bpm": 72, "spo2_pct": 97})
            c.publish(topic, payload, qos=1)
            i += 1
        time.sleep(0.002)
    c.disconnect()
    c.loop_stop()
    print(f"background load: {i / (time.time() - start):,.0f} msg/s offered", flush=True)


def measure(broker: Broker, url: str, probes: int, first_person: int) -> list[float]:
    """Send SOS probes and return publish → NOTIFY latencies in ms."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {EVENTS_CHANNEL}")
            ready.set()
            for note in conn.notifies(timeout=probes / 10 + 30):
                received = time.time()
                event = orjson.loads(note.payload)
                data = event.get("data") or {}
                if event["type"] == "alarm.raised" and data.get("alarm_type") == "sos" and data.get("source_id") in sent:
                    latencies.append((received - sent[data["source_id"]]) * 1000)
                    if len(latencies) == probes:
                        break
        done.set()

    ready = threading.Event()
    threading.Thread(target=listen, daemon=True).start()
    ready.wait(10)
    c = broker.device("probe")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    for k in range(probes):
        person = f"P-{first_person + k:05d}"
        sent[person] = time.time()
        c.publish(TOPICS.wearable(person), orjson.dumps({"ts": time.time(), "sos": True}), qos=1)
        time.sleep(0.1)
    done.wait(60)
    c.disconnect()
    c.loop_stop()
    if len(latencies) < probes:
        print(f"warning: {probes - len(latencies)} probes not seen", flush=True)
    return latencies


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return statistics.median(ms), q[94], q[98]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", type=int, default=5000, help="background msg/s")
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch-wait", type=float, default=None, help="ingest batch_max_wait_s (default: the product default)")
    args = ap.parse_args()
    env = {} if args.batch_wait is None else {"WATCHPOST_INGEST__BATCH_MAX_WAIT_S": str(args.batch_wait)}
    assert 2 * args.probes <= PERSONS
    with bench_database() as url:
        broker = Broker()
        log_dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-logs-"))
        workers = Workers(broker, url, args.workers, log_dir, env)
        try:
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; {args.workers} ingest worker(s), {env or 'default batching'}", flush=True)
            workers.start()
            workers.wait_connected(1)
            time.sleep(2)  # past the workers' start-up registry pass
            idle = measure(broker, url, args.probes, 0)
            stop_at = time.time() + args.probes / 10 + 8
            loader = broker.account(SIMULATOR_ROLE, "load")
            load = mp.get_context("fork").Process(
                target=_paced_load, args=(broker.port, loader, broker.password(loader), args.load, stop_at)
            )
            load.start()
            time.sleep(3)  # let the load reach its pace
            loaded = measure(broker, url, args.probes, args.probes)
            load.join()
            print()
            print("| publish → alarm.raised NOTIFY | p50 | p95 | p99 |")
            print("|---|---|---|---|")
            for name, ms in ((f"no other traffic ({len(idle)} probes)", idle), (f"{args.load:,} msg/s background load ({len(loaded)} probes)", loaded)):
                p50, p95, p99 = percentiles(ms)
                print(f"| {name} | {p50:.1f} ms | {p95:.1f} ms | {p99:.1f} ms |")
            print(f"\nratio of p99 under load to idle p99: {percentiles(loaded)[2] / percentiles(idle)[2]:.2f}; target p99 ≤ 100 ms")
        finally:
            workers.stop()
            broker.close()
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
