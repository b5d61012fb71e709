"""HJ 212 gateway throughput: frames/s through one gateway process with many connected
stations, and the time from a frame's send to its reading stored.

    python bench/hj212.py [--stations 500] [--frames 20] [--workers 1]

Needs WATCHPOST_DATABASE_URL. Starts its own broker, database (a registry of `--stations`
water stations) and ingest workers, and one gateway in a child process (its own event loop
and CPU, as `watchpost hj212` runs). The stations live in this process: each connects,
then sends `--frames` real-time uploads (CN 2011, Flag=5), each after the 9014 reply to the
previous one, as a station waits for its reply before the next upload.

Figures: acknowledged frames per second through the gateway (all stations connected at
once), and frame → stored latency percentiles, where "stored" is the reading's
`received_at` (the storing transaction's start) and the send time is taken just before the
frame is written to the socket. Both clocks are this machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from common import GATEWAY_USER, Broker, Workers, bench_database, platform_summary  # noqa: I001
from ingest.hj212 import CST, CommandParameters, Frame, Pollutant, build_frame  # after common: the project's path
from ingest.hj212_gateway import GatewayLimits, Hj212Gateway, StationCredential, password_digest
from kernel.settings import MqttEndpoint

SECRET = b"bench-hj212-secret"
PASSWORD = "123456"


def mn_of(i: int) -> str:
    return f"33042100WS{i:014d}"


def registry(n: int) -> dict:
    return {"stations": [{"station_id": f"WS-{i:03d}", "name": f"station {i}", "lat": 30.8, "lon": 120.9} for i in range(n)]}


def _gateway_process(mqtt_url: str, stations: int, port_out: mp.Queue, stop_evt: mp.Event, counts: mp.Queue) -> None:
    creds = {mn_of(i): StationCredential(f"WS-{i:03d}", password_digest(SECRET, mn_of(i), PASSWORD)) for i in range(stations)}

    async def main() -> None:
        gateway = Hj212Gateway(
            host="127.0.0.1", port=0, mqtt=MqttEndpoint.parse(mqtt_url), topic_root="jiashan", stations=creds,
            password_secret=SECRET, client_id=GATEWAY_USER,
            limits=GatewayLimits(max_connections=stations + 10, max_connections_per_address=stations + 10),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.serve(stop))
        await gateway.ready.wait()
        port_out.put(gateway.port)
        while not stop_evt.is_set():
            await asyncio.sleep(0.2)
        counts.put(gateway.snapshot())
        stop.set()
        await task

    asyncio.run(main())


async def _station(i: int, port: int, frames: int, base: datetime, sent_at: dict[tuple[str, datetime], float],
                   start: asyncio.Event) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await start.wait()
    acked = 0
    for k in range(frames):
        ts = base + timedelta(seconds=k)
        frame = build_frame(Frame(
            qn=f"{ts.astimezone(CST):%Y%m%d%H%M%S}{i % 1000:03d}", st="21", cn="2011", pw=PASSWORD, mn=mn_of(i), flag=5,
            cp=CommandParameters(data_time=ts, pollutants=(
                Pollutant("w01001", rtd=7.4, flag="N"), Pollutant("w01009", rtd=6.8, flag="N"),
                Pollutant("w21003", rtd=0.31, flag="N"),
            )),
        ))
        sent_at[(f"WS-{i:03d}", ts)] = time.time()
        writer.write(frame)
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)
        acked += 1
    writer.close()
    return acked


async def _stations(n: int, port: int, frames: int, sent_at: dict) -> tuple[int, float]:
    start = asyncio.Event()
    # Whole seconds, recent enough for ingest: the readings' key is (station, ts).
    base = (datetime.now(UTC) - timedelta(minutes=20)).replace(microsecond=0)
    tasks = [asyncio.create_task(_station(i, port, frames, base, sent_at, start)) for i in range(n)]
    await asyncio.sleep(1.0)  # every station connected before the clock starts
    t0 = time.perf_counter()
    start.set()
    acked = sum(await asyncio.gather(*tasks))
    return acked, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with bench_database(registry(args.stations)) as url:
        broker = Broker()
        log_dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-hj212-"))
        workers = Workers(broker, url, args.workers, log_dir)
        workers.start()
        workers.wait_connected()
        ctx = mp.get_context("spawn")
        port_q, counts_q, stop_evt = ctx.Queue(), ctx.Queue(), ctx.Event()
        gateway = ctx.Process(target=_gateway_process, args=(broker.url(GATEWAY_USER), args.stations, port_q, stop_evt, counts_q))
        gateway.start()
        try:
            port = port_q.get(timeout=60)
            sent_at: dict[tuple[str, datetime], float] = {}
            acked, elapsed = asyncio.run(_stations(args.stations, port, args.frames, sent_at))
            expected = args.stations * args.frames
            deadline = time.monotonic() + 120
            while True:
                with psycopg.connect(url) as conn:
                    rows = conn.execute("SELECT station_id, ts, extract(epoch FROM received_at) FROM water_readings").fetchall()
                if len(rows) >= expected or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            stop_evt.set()
            snapshot = counts_q.get(timeout=30)
        finally:
            stop_evt.set()
            gateway.join(30)
            workers.stop()
            broker.close()
    latencies = sorted(float(r[2]) - sent_at[(r[0], r[1])] for r in rows if (r[0], r[1]) in sent_at)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 100 else [float("nan")] * 99
    print(f"HJ 212 gateway, {platform_summary()}")
    print(f"stations connected: {args.stations}, frames acknowledged: {acked} of {args.stations * args.frames}, stored: {len(rows)}")
    print(f"throughput: {acked / elapsed:,.0f} frames/s through one gateway process ({elapsed:.1f} s)")
    print(f"frame → stored: p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    print(f"gateway counters: {snapshot}")


if __name__ == "__main__":
    main()
