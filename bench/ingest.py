"""Ingest benchmark: durable MQTT → TimescaleDB throughput, and the limits around it.

    python bench/ingest.py [--messages 200000] [--workers 2] [--rules both|on|off] [--rounds 3]

Needs WATCHPOST_DATABASE_URL (a TimescaleDB server; `make up` or scripts/timescaledb.sh
prints one) and mosquitto on PATH. Starts its own broker with the project's configuration on
a free port and its own database. Every figure below is measured in the same run:

* broker relay: a plain paho consumer (auto-ack, no work) draining preloaded QoS 1 messages;
* raw COPY: rows/s of COPY into a hypertable from Python, no MQTT;
* naive: a paho consumer doing one autocommit INSERT per message, draining preloaded messages;
* watchpost drain: `watchpost ingest` workers in one shared-subscription group draining
  preloaded messages — validation, dead letters, idempotent COPY, ack after commit — timed
  from the first worker's connection to the last row committed; with the detection rules
  off and on, one after the other on an emptied database (`--rules both`), so the two and
  the relay are compared within a round: this machine's speed varies several times over
  from one minute to the next;
* watchpost live: the same workers already running while publishers send, timed from the
  first publish to the last row committed;
* with `--amqp`: the same drain with the workers reading a RabbitMQ quorum queue over AMQP
  (`ingest.source = amqp`, one node of scripts/rabbitmq.sh, the queue preloaded over AMQP)
  right after the MQTT drain of the same round, rules as the last mode.

Preloading persistent sessions, then timing the drain, keeps the publishers' own CPU out of
the figure on a 2-core machine; the live figure shows what it costs when both compete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg

from common import (
    INGEST_ROLE,
    ROOT_DIR,
    STATIONS,
    Broker,
    Workers,
    bench_database,
    drain_with,
    make_session,
    message,
    platform_summary,
    publish,
    settle,
    truncate,
    wait_stored,
)

# --- the measurements ----------------------------------------------------------------------


def broker_relay(broker: Broker, n: int) -> float:
    user = broker.account(INGEST_ROLE, "relay")
    make_session(broker, user)
    publish(broker, n, time.time() - 3600)
    return n / drain_with(broker, user, n, lambda c, m: None)


def raw_copy(url: str, n: int) -> float:
    base = time.time() - 7200
    rows = [(f"WS-{i % STATIONS:03d}", datetime.fromtimestamp(base + i * 0.001, UTC), 7.2, 6.1) for i in range(n)]
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE copy_bench (station_id text, ts timestamptz, ph double precision, do_mg_l double precision)")
        conn.execute("SELECT create_hypertable('copy_bench', by_range('ts', INTERVAL '1 day'))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy("COPY copy_bench FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE copy_bench")
        conn.commit()
    return n / elapsed


def naive(broker: Broker, url: str, n: int) -> float:
    """One autocommit INSERT per message, parsed with orjson: what a first version does."""
    user = broker.account(INGEST_ROLE, "naive")
    make_session(broker, user)
    publish(broker, n, time.time() - 5400)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("CREATE TABLE naive_bench (topic text, ts timestamptz, body jsonb)")
    conn.execute("SELECT create_hypertable('naive_bench', by_range('ts', INTERVAL '1 day'))")

    def insert(_client, msg):
        doc = orjson.loads(msg.payload)
        conn.execute("INSERT INTO naive_bench VALUES (%s, to_timestamp(%s), %s)", (msg.topic, doc["ts"], msg.payload.decode()))

    rate = n / drain_with(broker, user, n, insert)
    conn.execute("DROP TABLE naive_bench")
    conn.close()
    return rate


def fresh_dir(parent: Path) -> Path:
    """A directory of its own for one start of the workers, whose logs are read for their
    connections."""
    return Path(tempfile.mkdtemp(dir=parent))


def timed_drain(w: Workers, url: str, n: int, preload: Callable[[], None]) -> tuple[float, list[float]]:
    """Start the workers once, so that their sessions (or their queue) exist, and let them take
    what those kept from other measurements; stop them, preload n messages, start them again
    and time from their connection to the last row committed."""
    w.start()
    w.wait_connected(1)
    settle(url)
    w.stop()
    truncate(url)
    preload()
    w.start()
    t0 = w.wait_connected(2)
    t1 = wait_stored(url, n)
    rss = w.peak_rss_mb()
    w.stop()
    return n / (t1 - t0), rss


def watchpost_drain(broker: Broker, url: str, n: int, workers: int, log_dir: Path, env: dict) -> tuple[float, list[float]]:
    w = Workers(broker, url, workers, fresh_dir(log_dir), env)
    return timed_drain(w, url, n, lambda: publish(broker, n, time.time() - 3 * 3600))


def watchpost_live(broker: Broker, url: str, n: int, workers: int, log_dir: Path, env: dict) -> tuple[float, list[float]]:
    truncate(url)
    w = Workers(broker, url, workers, fresh_dir(log_dir), env)
    w.start()
    w.wait_connected(1)
    t0 = time.time()
    publish(broker, n, time.time() - 2 * 3600)
    t1 = wait_stored(url, n)
    rss = w.peak_rss_mb()
    w.stop()
    return n / (t1 - t0), rss


class RabbitMQNode:
    """One RabbitMQ node of scripts/rabbitmq.sh under a directory of its own."""

    SCRIPT = ROOT_DIR / "scripts" / "rabbitmq.sh"

    def __init__(self, parent: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(dir=parent, prefix="rmq"))
        out = subprocess.run([str(self.SCRIPT), "up", str(self.dir), "1"], check=True, capture_output=True, text=True).stdout
        self.url = f"amqp://guest:guest@127.0.0.1:{out.split()[2]}/%2F"

    def close(self) -> None:
        subprocess.run([str(self.SCRIPT), "down", str(self.dir)], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def preload_queue(url: str, queue: str, n: int, base_ts: float) -> None:
    """Messages 0..n-1 into `amq.topic` with the routing keys the MQTT plugin would give
    them, then wait until the quorum queue holds them all (the preload is not timed)."""
    import pika

    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        persistent = pika.BasicProperties(delivery_mode=2)
        for i in range(n):
            topic, payload = message(i, base_ts)
            channel.basic_publish("amq.topic", topic.replace("/", "."), payload, persistent)
        deadline = time.monotonic() + 600
        while channel.queue_declare(queue, passive=True).method.message_count < n:
            if time.monotonic() > deadline:
                raise SystemExit("the queue never held the preloaded messages")
            time.sleep(0.2)


def amqp_drain(node: RabbitMQNode, broker: Broker, url: str, n: int, workers: int, log_dir: Path, env: dict) -> tuple[float, list[float]]:
    """watchpost_drain with the workers reading a quorum queue over AMQP."""
    queue = "watchpost-ingest"
    env = {**env, "WATCHPOST_INGEST__SOURCE": "amqp", "WATCHPOST_INGEST__AMQP_URLS": node.url, "WATCHPOST_INGEST__AMQP_QUEUE": queue}
    env.pop("WATCHPOST_INGEST__SHARE_GROUP", None)  # workers reading one queue split it by themselves
    w = Workers(broker, url, workers, fresh_dir(log_dir), env)  # their first start declares the queue
    return timed_drain(w, url, n, lambda: preload_queue(node.url, queue, n, time.time() - 4 * 3600))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-messages", type=int, default=50_000, help="messages for the relay and naive baselines")
    ap.add_argument("--rules", choices=("both", "on", "off"), default="both",
                    help="drain with the detection rules on, off, or both in the same run (the default)")
    ap.add_argument("--no-rules", action="store_true", help="the same as --rules off")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of relay and drains, interleaved; medians are printed with each round's ratios")
    ap.add_argument("--drains-only", action="store_true", help="skip raw COPY, naive and live")
    ap.add_argument("--amqp", action="store_true", help="also drain a RabbitMQ quorum queue over AMQP in every round")
    args = ap.parse_args()
    modes = ["off"] if args.no_rules else ["off", "on"] if args.rules == "both" else [args.rules]
    base_env = {"WATCHPOST_INGEST__SHARE_GROUP": "watchpost-ingest"} if args.workers > 1 else {}
    # one worker subscribes plainly; several split the load in a group
    envs = {m: {**base_env, **({"WATCHPOST_INGEST__RULES_ENABLED": "false"} if m == "off" else {})} for m in modes}

    with bench_database() as url:
        broker = Broker()
        log_dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-logs-"))
        node = RabbitMQNode(log_dir) if args.amqp else None
        amqp_drains: list[float] = []
        try:
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; rules {'/'.join(modes)}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            relays: list[float] = []
            drains: dict[str, list[float]] = {m: [] for m in modes}
            rss: dict[str, list[float]] = {m: [] for m in modes}
            for k in range(args.rounds):
                relays.append(broker_relay(broker, args.baseline_messages))
                print(f"round {k + 1}: broker relay to one plain consumer: {relays[-1]:,.0f} msg/s", flush=True)
                for m in modes:
                    truncate(url)
                    rate, peak = watchpost_drain(broker, url, args.messages, args.workers, log_dir, envs[m])
                    drains[m].append(rate)
                    rss[m] += peak
                    print(f"round {k + 1}: watchpost drain, rules {m} ({args.workers} workers): {rate:,.0f} msg/s durable, "
                          f"peak RSS {', '.join(f'{r:.0f}' for r in peak)} MB; load average {os.getloadavg()[0]:.1f}", flush=True)
                if node is not None:
                    truncate(url)
                    rate, peak = amqp_drain(node, broker, url, args.messages, args.workers, log_dir, envs[modes[-1]])
                    amqp_drains.append(rate)
                    print(f"round {k + 1}: watchpost drain from a RabbitMQ quorum queue over AMQP, rules {modes[-1]} "
                          f"({args.workers} workers): {rate:,.0f} msg/s, peak RSS {', '.join(f'{r:.0f}' for r in peak)} MB; "
                          f"load average {os.getloadavg()[0]:.1f}", flush=True)
            print()
            print(f"| measure ({args.messages:,} preloaded QoS 1 msgs, {args.workers} workers, median of {args.rounds}) | figure | ratio |")
            print("|---|---|---|")
            relay = statistics.median(relays)
            print(f"| broker relay to one plain consumer | {relay:,.0f} msg/s | 1.00 |")
            for m in modes:
                ratio = statistics.median(d / r for d, r in zip(drains[m], relays, strict=True))
                print(f"| watchpost drain, rules {m} | {statistics.median(drains[m]):,.0f} msg/s | {ratio:.2f} of the relay |")
            if amqp_drains:
                ratio = statistics.median(a / d for a, d in zip(amqp_drains, drains[modes[-1]], strict=True))
                print(f"| watchpost drain from a RabbitMQ quorum queue (AMQP), rules {modes[-1]} | "
                      f"{statistics.median(amqp_drains):,.0f} msg/s | {ratio:.2f} of the MQTT drain, same round |")
            if len(modes) == 2:
                ratio = statistics.median(on / off for on, off in zip(drains["on"], drains["off"], strict=True))
                print(f"| rules on ÷ rules off, same round | | **{ratio:.2f}** |")
            for m in modes:
                print(f"| peak RSS per ingest worker, rules {m} | {max(rss[m]):.0f} MB | target < 300 MB |")
            if args.drains_only:
                return
            drain = statistics.median(drains[modes[-1]])
            copy_rate = raw_copy(url, args.messages)
            print(f"| raw COPY into a hypertable | {copy_rate:,.0f} rows/s | {copy_rate / drain:.2f} of the drain |", flush=True)
            naive_rate = naive(broker, url, min(args.baseline_messages, 20_000))
            print(f"| naive: autocommit INSERT per message | {naive_rate:,.0f} msg/s | watchpost = {drain / naive_rate:.1f}× |", flush=True)
            live, live_rss = watchpost_live(broker, url, args.messages, args.workers, log_dir, envs[modes[-1]])
            print(f"| watchpost live, rules {modes[-1]}, first publish → last commit | {live:,.0f} msg/s | {live / drain:.2f} of the drain; "
                  f"peak RSS {max(live_rss):.0f} MB |")
        finally:
            broker.close()
            if node is not None:
                node.close()
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
