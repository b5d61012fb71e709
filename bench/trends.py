"""Chart endpoint latency on a month of a county's data.

    python bench/trends.py [--days 30] [--persons 200] [--calls 40]

Needs WATCHPOST_DATABASE_URL. Makes a fresh database with the simulated Jiashan registry
(30 stations), loads `--days` of 1/min water readings per station (and the hourly rollup
built from them), 1/min wearable readings per person, home events every 5 min, and a few
hundred incidents with assignments and unit transitions — all with SQL generate_series —
then serves the API in-process (uvicorn) and times each chart endpoint over repeated calls
with a control-room token. Prints a markdown table (target p95 <= 300 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_database, platform_summary

from dashboard.auth import Principal, Role, issue_token
from ingest.readings import WATER_PARAMETERS
from simulators.jiashan_registry import generate_registry

TARGET_P95_MS = 300


def load(url: str, days: int, now: datetime) -> dict[str, float]:
    took = {}
    lo = now - timedelta(days=days)
    with psycopg.connect(url, autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute(
            """INSERT INTO water_readings (station_id, ts, flag, temp_c, ph, do_mg_l, codmn_mg_l, cod_mg_l, nh3n_mg_l, tp_mg_l, tn_mg_l, turbidity_ntu, cond_us_cm)
               SELECT s.station_id, ts, CASE WHEN random() < 0.01 THEN 'D' ELSE 'N' END,
                      18 + 4 * sin(e / 43200), 7.2 + 0.3 * sin(e / 9000), 6 + sin(e / 20000), 4 + sin(e / 30000), 18 + 3 * sin(e / 25000),
                      0.6 + 0.3 * sin(e / 30000 + h), 0.12 + 0.05 * sin(e / 40000), 1.2 + 0.3 * sin(e / 50000), 20 + 5 * random(), 400 + 20 * random()
               FROM stations s, generate_series(%s::timestamptz, %s::timestamptz, interval '1 minute') ts,
                    LATERAL (SELECT extract(epoch FROM ts) AS e, hashtext(s.station_id) %% 7 AS h) x""",
            (lo, now),
        )
        took["water_readings"] = time.perf_counter() - t
        t = time.perf_counter()
        cols = ", ".join(f"n_{p}, sum_{p}, min_{p}, max_{p}" for p in WATER_PARAMETERS)
        aggs = ", ".join(
            f"count({p}) FILTER (WHERE flag = 'N'), sum({p}) FILTER (WHERE flag = 'N'), min({p}) FILTER (WHERE flag = 'N'), max({p}) FILTER (WHERE flag = 'N')"
            for p in WATER_PARAMETERS
        )
        conn.execute(
            f"""INSERT INTO water_hourly (station_id, bucket, readings, flagged, {cols})
                SELECT station_id, time_bucket('1 hour', ts), count(*), count(*) FILTER (WHERE flag <> 'N'), {aggs}
                FROM water_readings GROUP BY 1, 2"""
        )
        took["water_hourly"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute(
            """INSERT INTO wearable_readings (person_id, ts, hr_bpm, spo2_pct, steps)
               SELECT p.person_id, ts, 72 + 10 * sin(extract(epoch FROM ts) / 4000), 96 + sin(extract(epoch FROM ts) / 5000),
                      (extract(epoch FROM ts)::bigint / 60) %% 6000
               FROM persons p, generate_series(%s::timestamptz, %s::timestamptz, interval '1 minute') ts""",
            (lo, now),
        )
        took["wearable_readings"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute(
            """INSERT INTO home_events (person_id, sensor_id, ts, kind, value_bool)
               SELECT p.person_id, 'motion-1', ts, 'motion', true
               FROM persons p, generate_series(%s::timestamptz, %s::timestamptz, interval '5 minutes') ts""",
            (lo, now),
        )
        conn.execute(
            """INSERT INTO incidents (incident_id, kind, priority, state, lat, lon, person_id, description, created_at, created_by, updated_at)
               SELECT 'INC-B' || k, 'medical', 1 + k %% 4, 'closed', 30.84, 120.92, 'P-' || lpad((1 + k %% 200)::text, 4, '0'), '',
                      %s::timestamptz + k * interval '2 hours', 'op1', %s::timestamptz + k * interval '2 hours'
               FROM generate_series(1, %s) k""",
            (lo, lo, days * 12 - 1),
        )
        conn.execute(
            """INSERT INTO assignments (incident_id, unit_id, state, ordered_at, created_by)
               SELECT i.incident_id, u.unit_id, 'done', i.created_at + (30 + random() * 200) * interval '1 second', 'dispatcher'
               FROM incidents i JOIN LATERAL (SELECT unit_id FROM units ORDER BY unit_id OFFSET (hashtext(i.incident_id) & 15) LIMIT 1) u ON TRUE"""
        )
        conn.execute(
            """INSERT INTO dispatch_audit (at, incident_id, unit_id, action, actor, detail)
               SELECT a.ordered_at + s.off * interval '1 second', a.incident_id, a.unit_id, 'transition', 'unit:' || a.unit_id,
                      jsonb_build_object('to', s.st)
               FROM assignments a, LATERAL (VALUES (20, 'en_route'), (200 + (hashtext(a.incident_id) & 511), 'on_scene'),
                                                   (2400, 'available')) s(off, st)"""
        )
        took["events_incidents"] = time.perf_counter() - t
        conn.execute("VACUUM ANALYZE")
    return took


class Server:
    def __init__(self, url: str, secret: str) -> None:
        import uvicorn

        from dashboard.app import create_app

        self.port = _free_port()
        app = create_app(database_url=url, token_secret=secret, pool_size=10)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("API did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--persons", type=int, default=200)
    ap.add_argument("--calls", type=int, default=40)
    args = ap.parse_args()
    now = datetime.now(UTC)
    secret = os.urandom(16).hex()
    with bench_database(generate_registry(persons=args.persons)) as url:
        t = time.perf_counter()
        took = load(url, args.days, now)
        load_s = time.perf_counter() - t
        with psycopg.connect(url) as conn:
            counts = {tb: conn.execute(f"SELECT count(*) FROM {tb}").fetchone()[0]
                      for tb in ("water_readings", "water_hourly", "wearable_readings", "home_events", "incidents")}
            version = conn.execute("SELECT token_version FROM users WHERE username = 'op1'").fetchone()[0]
        server = Server(url, secret)
        # A token names the user's token version, as a login's does.
        token = issue_token(secret, Principal("op1", Role.OPERATOR, version), datetime.now(UTC), timedelta(hours=1))
        endpoints = [
            ("station trend 24h", "/api/stations/WS-003/trend?param=nh3n_mg_l&range=24h"),
            ("station trend 7d", "/api/stations/WS-003/trend?param=nh3n_mg_l&range=7d"),
            ("station trend 30d", "/api/stations/WS-003/trend?param=nh3n_mg_l&range=30d"),
            ("person trend 24h", "/api/persons/P-0007/trend?range=24h"),
            ("person trend 7d", "/api/persons/P-0007/trend?range=7d"),
        ]
        for label, span in (("service 24h", timedelta(days=1)), ("service 7d", timedelta(days=7)), ("service 30d", timedelta(days=30))):
            q = httpx.QueryParams({"from": (now - span).isoformat(), "to": now.isoformat()})
            endpoints.append((label, f"/api/service?{q}"))
        rows = []
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                for label, path in endpoints:
                    r = c.get(path)
                    r.raise_for_status()
                    size = len(r.content)
                    calls = args.calls if not label.startswith("service") else max(5, args.calls // 4)
                    times = []
                    for _ in range(calls):
                        t0 = time.perf_counter()
                        c.get(path).raise_for_status()
                        times.append((time.perf_counter() - t0) * 1000)
                    times.sort()
                    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                    rows.append((label, calls, statistics.median(times), p95, size))
        finally:
            server.stop()
    print(f"\n{platform_summary()}")
    print(f"data: {', '.join(f'{k} {v:,}' for k, v in counts.items())}; load {load_s:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in took.items())})\n")
    print("| endpoint | calls | p50 ms | p95 ms | body bytes | p95 ≤ 300 ms |")
    print("|---|---:|---:|---:|---:|:---:|")
    for label, calls, p50, p95, size in rows:
        print(f"| {label} | {calls} | {p50:.1f} | {p95:.1f} | {size:,} | {'yes' if p95 <= TARGET_P95_MS else 'NO'} |")


if __name__ == "__main__":
    main()
