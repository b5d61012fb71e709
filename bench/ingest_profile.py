"""Where an ingest batch's time goes, measured in process without MQTT.

    python bench/ingest_profile.py [--batches 40] [--batch 400] [--profile]

Parses `bench/ingest.py`'s mixed stream, then commits it batch by batch through the
worker's own `TelemetryStore` into a fresh database: once with the detection rules off and
once with them on, alternating batch by batch so both see the same load on a shared machine.
Prints the median milliseconds per batch of each, their ratio, and the part of the rules'
time spent in loading states, evaluating, saving states and recording alarms. `--profile`
adds cProfile's top functions of the rules-on commits.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from common import bench_database, message, truncate

from ingest import rule_store
from ingest.parse import Limits, parse_message
from ingest.rule_store import RuleRunner, fetch_rule_configs
from ingest.store import TelemetryStore, fetch_device_directory

ROOT = "jiashan"


def parsed_batches(url: str, batches: int, size: int, base_ts: float) -> list[list]:
    with psycopg.connect(url) as conn:
        devices = fetch_device_directory(conn)
    now = datetime.now(UTC)
    limits = Limits(max_payload_bytes=65536, max_senml_records=100, future_tolerance=timedelta(seconds=300), max_age=timedelta(days=7))
    out = []
    for b in range(batches):
        readings = []
        for i in range(b * size, (b + 1) * size):
            topic, payload = message(i, base_ts)
            readings.extend(parse_message(topic, payload, root=ROOT, devices=devices, now=now, limits=limits))
        out.append(readings)
    return out


class Phases:
    """Wraps the rule store's steps to time them."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {"load": 0.0, "save": 0.0, "alarms": 0.0}

    def wrap(self) -> None:
        for name, attr in (("load", "load_states"), ("save", "save_states"), ("alarms", "apply_transitions")):
            original = getattr(rule_store, attr)

            def timed(*a, _orig=original, _name=name, **k):
                t = time.perf_counter()
                try:
                    return _orig(*a, **k)
                finally:
                    self.ms[_name] += (time.perf_counter() - t) * 1000

            setattr(rule_store, attr, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch", type=int, default=400, help="messages per batch")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    with bench_database() as url:
        off_conn, on_conn = psycopg.connect(url), psycopg.connect(url)
        runner = RuleRunner()
        runner.configs, _ = fetch_rule_configs(on_conn)
        off = TelemetryStore(off_conn)
        on = TelemetryStore(on_conn, lambda cur, readings: runner.on_stored(cur, readings))
        base = time.time() - 3600
        # Two copies of the stream one day apart, so both stores insert new rows; the
        # rules-on copy goes second in time so its states advance as they would live.
        off_batches = parsed_batches(url, args.batches, args.batch, base - 86400)
        on_batches = parsed_batches(url, args.batches, args.batch, base)
        phases = Phases()
        phases.wrap()
        profiler = cProfile.Profile() if args.profile else None
        off_ms, on_ms = [], []
        for k in range(args.batches):
            t = time.perf_counter()
            off.write(off_batches[k], [])
            off_ms.append((time.perf_counter() - t) * 1000)
            if profiler:
                profiler.enable()
            t = time.perf_counter()
            on.write(on_batches[k], [])
            on_ms.append((time.perf_counter() - t) * 1000)
            if profiler:
                profiler.disable()
        skip = min(5, args.batches // 4)  # the first batches create every state
        off_med, on_med = statistics.median(off_ms[skip:]), statistics.median(on_ms[skip:])
        print(f"batch of {args.batch} messages ({sum(map(len, on_batches)) // args.batches} readings), median of {args.batches - skip}:")
        print(f"  rules off {off_med:.1f} ms, rules on {on_med:.1f} ms; rules add {on_med - off_med:.1f} ms (off/on = {off_med / on_med:.2f})")
        total = sum(on_ms)
        print("  rules-on time, all batches: " + ", ".join(f"{n} {v / total:.0%}" for n, v in phases.ms.items()))
        cache = runner.cache
        print(f"  state cache: {cache.hits:,} hits, {cache.misses:,} misses, {len(cache):,} states held")
        with psycopg.connect(url) as conn:
            for kind, count, stored, text in conn.execute(
                "SELECT split_part(source_key, ':', 1), count(*), avg(pg_column_size(state))::int, "
                "avg(octet_length(state::text))::int FROM rule_state GROUP BY 1 ORDER BY 1"
            ):
                print(f"  {kind} states: {count:,}, {stored:,} bytes stored, {text:,} bytes as text")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        off_conn.close()
        on_conn.close()
        truncate(url)


if __name__ == "__main__":
    main()
