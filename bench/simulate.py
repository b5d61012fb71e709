"""County simulator benchmark: messages per second from one `watchpost simulate` process.

    python bench/simulate.py [--persons 20000] [--sim-minutes 5] [--connections 2] [--rate 5000]

Needs mosquitto on PATH (no database: the figure is the simulator's own, QoS 1 with every
PUBACK checked). Starts a broker with the project's configuration on a free port. Runs the
`load` scenario (a generated county, nothing scripted, no faults) three ways:

* models only: the behaviour models and serialisation, no broker (`--dry-run`), unpaced;
* unpaced to Mosquitto: as fast as the broker acknowledges, over the gateway connections;
* capped at --rate: the sustained rate a load test asks for, and how far the run fell
  behind its schedule (a simulator that cannot keep up shows it here).

With `--consumer` a plain subscriber drains the broker meanwhile, as ingest would.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from common import INGEST_ROLE, TOPIC_ROOT, TOPICS, Broker, platform_summary
from kernel.broker import SIMULATOR_USER
from simulators.cli import build_parser, run


def simulate(broker: Broker | None, persons: int, minutes: float, connections: int, rate: float = 0.0):
    argv = ["--scenario", "load", "--persons", str(persons), "--duration", f"{minutes}m", "--acceleration", "0", "--quiet",
            "--connections", str(connections), "--root", TOPIC_ROOT]
    argv += ["--rate", str(rate)] if rate else []
    # The simulator's pooled accounts: its connections log in as simulator-1, -2, …
    argv += ["--mqtt-url", broker.url(SIMULATOR_USER)] if broker else ["--dry-run"]
    summary = run(build_parser().parse_args(argv))
    if summary.publish_refused or summary.unacknowledged:
        raise SystemExit(f"broker refused {summary.publish_refused}, {summary.unacknowledged} unacknowledged")
    return summary


class Consumer:
    """A QoS 1 subscriber to everything, acknowledging at once: the broker's fan-out load."""

    def __init__(self, broker: Broker) -> None:
        self.received = 0
        self.client = broker.consumer("sim-consumer")
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(TOPICS.everything(), qos=1)
        subscribed.wait(5)

    def _on_message(self, *_: object) -> None:
        self.received += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--sim-minutes", type=float, default=5.0, help="simulated minutes per measurement")
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--rate", type=float, default=5000.0, help="the capped run's target, msg/s")
    ap.add_argument("--consumer", action="store_true", help="a subscriber drains the broker meanwhile")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} cores, {platform_summary()}", flush=True)
    models = simulate(None, args.persons, args.sim_minutes, args.connections)
    devices = models.messages.get("online", 0)  # every device announces itself once at the start
    print(f"county: {devices:,} devices ({args.persons:,} persons); {models.messages_total:,} messages per {args.sim_minutes:g} simulated minutes", flush=True)
    print(f"models only (no broker):                {models.rate_msg_s:,.0f} msg/s", flush=True)
    broker = Broker()
    consumer = Consumer(broker) if args.consumer else None
    try:
        unpaced = simulate(broker, args.persons, args.sim_minutes, args.connections)
        print(f"unpaced to Mosquitto, QoS 1, {args.connections} connections: {unpaced.rate_msg_s:,.0f} msg/s acknowledged", flush=True)
        started = time.monotonic()
        capped = simulate(broker, args.persons, args.sim_minutes, args.connections, rate=args.rate)
        real = time.monotonic() - started
        print(f"capped at {args.rate:,.0f} msg/s:                 {capped.rate_msg_s:,.0f} msg/s over {capped.real_seconds:.0f} s ({real:.0f} s with set-up)", flush=True)
        if consumer:
            print(f"consumer received {consumer.received:,} messages", flush=True)
        print()
        print("| measure (one simulator process) | figure |")
        print("|---|---|")
        print(f"| behaviour models + JSON, no broker | {models.rate_msg_s:,.0f} msg/s |")
        print(f"| published to Mosquitto, QoS 1, every PUBACK checked, {args.connections} connections | **{unpaced.rate_msg_s:,.0f} msg/s** |")
        print(f"| held at `--rate {args.rate:.0f}` | {capped.rate_msg_s:,.0f} msg/s |")
    finally:
        if consumer:
            consumer.close()
        broker.close()


if __name__ == "__main__":
    main()
