"""What the benchmarks share: a broker with the project's configuration on a free port, a
fresh migrated database with a benchmark registry, QoS 1 publishers that check every PUBACK,
and `watchpost ingest` workers as child processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT_DIR))

from kernel.broker import (  # noqa: E402
    ALERTS_USER,
    DISPATCH_USER,
    INGEST_ROLE,
    SIMULATOR_ROLE,
    find_mosquitto,
    password_for,
    service_account,
    write_broker_files,
)
from kernel.topics import Topics  # noqa: E402
from watchpost import registry  # noqa: E402
from watchpost.cli import watchpost_home  # noqa: E402
from watchpost.db import migrate  # noqa: E402

TOPIC_ROOT = "jiashan"
TOPICS = Topics(TOPIC_ROOT)
STATIONS, PERSONS, UNITS = 100, 5000, 40


def bench_registry() -> dict:
    return {
        "stations": [{"station_id": f"WS-{i:03d}", "name": f"station {i}", "lat": 30.8, "lon": 120.9} for i in range(STATIONS)],
        "persons": [
            {
                "person_id": f"P-{i:05d}",
                "name": f"person {i}",
                "lat": 30.8,
                "lon": 120.9,
                "home_sensors": [{"sensor_id": "motion-1", "kind": "motion"}, {"sensor_id": "door-1", "kind": "door"}],
            }
            for i in range(PERSONS)
        ],
        "units": [{"unit_id": f"AMB-{i:02d}", "kind": "ambulance", "name": f"unit {i}"} for i in range(UNITS)],
    }


def message(i: int, base_ts: float) -> tuple[str, bytes]:
    """Message i of the mixed stream: half wearables, then home sensors, water, GPS, status.
    Each (device, ts) is unique, so every message must become exactly one row."""
    ts = base_ts + i * 0.001
    k = i % 20
    if k < 10:
        p = f"P-{i % PERSONS:05d}"
        return TOPICS.wearable(p), orjson.dumps(
            {"ts": ts, "seq": i, "hr_bpm": 60 + i % 40, "spo2_pct": 96.5, "skin_temp_c": 33.1, "steps": i % 5000, "battery_pct": 80}
        )
    if k < 14:
        p = f"P-{i % PERSONS:05d}"
        return TOPICS.home(p, "motion-1"), orjson.dumps({"ts": ts, "kind": "motion", "value": bool(i % 2)})
    if k < 17:
        s = f"WS-{i % STATIONS:03d}"
        return TOPICS.water_telemetry(s), orjson.dumps(
            {"ts": ts, "seq": i, "temp_c": 18.2, "ph": 7.3, "do_mg_l": 6.4, "codmn_mg_l": 4.1, "nh3n_mg_l": 0.6, "tp_mg_l": 0.12, "turbidity_ntu": 12, "cond_us_cm": 540}
        )
    u = f"AMB-{i % UNITS:02d}"
    if k < 19:
        return TOPICS.unit_gps(u), orjson.dumps({"ts": ts, "lat": 30.83, "lon": 120.92, "speed_kmh": 42.0, "heading_deg": 90})
    return TOPICS.unit_status(u), orjson.dumps({"ts": ts, "status": "en_route"})


# --- broker -------------------------------------------------------------------------------


class Broker:
    """Mosquitto with the project's configuration. The broker takes a client's account as
    its client id, so every connection a benchmark opens needs an account of its own:
    `accounts` hands out numbered accounts of a role, the same ones again for the same use
    (a persistent session must come back under its own account)."""

    # Numbered accounts written per role: the publishers, probes and loads of one run.
    INSTANCES = 32

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="watchpost-bench-broker-"))
        self.dir.chmod(0o711)
        self.secret = os.urandom(32)
        with socket_free() as port:
            self.port = port
        mosquitto = find_mosquitto(watchpost_home())
        self.files = write_broker_files(
            self.dir, port=self.port, root=TOPIC_ROOT, secret=self.secret, device_users=[], instances=self.INSTANCES,
            persist_plugin=mosquitto.persist_plugin,
        )
        self._given: dict[str, int] = {}
        self._uses: dict[tuple[str, str], list[str]] = {}
        self.proc = subprocess.Popen(
            [*mosquitto.command, "-c", str(self.files.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)

    def accounts(self, role: str, count: int, use: str) -> list[str]:
        """`count` accounts of `role` for `use`: new ones the first time, the same after."""
        if (role, use) not in self._uses:
            first = self._given.get(role, 0) + 1
            if first + count - 1 > self.INSTANCES:
                raise SystemExit(f"more than {self.INSTANCES} {role} connections: raise Broker.INSTANCES")
            self._given[role] = first + count - 1
            self._uses[role, use] = [service_account(role, n) for n in range(first, first + count)]
        return self._uses[role, use]

    def account(self, role: str, use: str) -> str:
        return self.accounts(role, 1, use)[0]

    def password(self, user: str) -> str:
        return password_for(self.secret, user)

    def url(self, user: str) -> str:
        return f"mqtt://{user}:{self.password(user)}@127.0.0.1:{self.port}"

    def device(self, use: str, **kwargs: object) -> mqtt.Client:
        """A client standing in for devices (the simulator's role: any device's topics, and
        their receipts and orders), not yet connected."""
        return client(self.port, self.account(SIMULATOR_ROLE, use), self.password(self.account(SIMULATOR_ROLE, use)), **kwargs)

    def consumer(self, use: str, **kwargs: object) -> mqtt.Client:
        """A client of an ingest account (reads every device topic), not yet connected."""
        user = self.account(INGEST_ROLE, use)
        return client(self.port, user, self.password(user), **kwargs)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def client(port: int, user: str, password: str, **kwargs: object) -> mqtt.Client:
    """An MQTT v5 client logged in as `user`, which is also its client id."""
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5, **kwargs)  # type: ignore[arg-type]
    c.username_pw_set(user, password)
    return c


class socket_free:
    def __enter__(self) -> int:

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return self.s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.s.close()


def _publish_range(port: int, user: str, password: str, start: int, stop: int, base_ts: float, window: int) -> None:
    """One publisher process: QoS 1 with at most `window` unacknowledged, every PUBACK checked."""
    done = threading.Semaphore(0)
    failures = []

    def on_publish(_c, _u, _mid, reason_code, _p):
        if reason_code.is_failure:
            failures.append(reason_code)
        done.release()

    c = client(port, user, password)
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    outstanding = 0
    for i in range(start, stop):
        topic, payload = message(i, base_ts)
        c.publish(topic, payload, qos=1)
        outstanding += 1
        if outstanding >= window:
            done.acquire()
            outstanding -= 1
    for _ in range(outstanding):
        if not done.acquire(timeout=120):
            raise SystemExit("publisher: PUBACKs missing")
    c.disconnect()
    c.loop_stop()
    if failures:
        raise SystemExit(f"publisher: {len(failures)} messages refused: {failures[:3]}")


def publish(broker: Broker, n: int, base_ts: float, processes: int = 4, window: int = 200) -> float:
    """Publish messages 0..n-1 from several processes; returns seconds taken."""
    ctx = mp.get_context("fork")
    per = (n + processes - 1) // processes
    users = broker.accounts(SIMULATOR_ROLE, processes, "publish")
    started = time.perf_counter()
    procs = [
        ctx.Process(target=_publish_range, args=(broker.port, user, broker.password(user), k * per, min(n, (k + 1) * per), base_ts, window))
        for k, user in enumerate(users)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit("a publisher failed")
    return time.perf_counter() - started


def consumer_client(broker: Broker, user: str, manual_ack: bool = False) -> mqtt.Client:
    """A client of ingest account `user` (reads every device topic): its session's."""
    return client(broker.port, user, broker.password(user), manual_ack=manual_ack)


def connect_persistent(c: mqtt.Client, port: int, receive_maximum: int = 20000, clean_start: bool = False) -> None:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = receive_maximum
    c.connect("127.0.0.1", port, clean_start=clean_start, properties=props)


def make_session(broker: Broker, user: str) -> None:
    """Create a persistent session of ingest account `user` subscribed to the device
    topics, then leave. It starts empty: the session of an earlier measurement holds every
    message published since (the other measurements' too)."""
    c = consumer_client(broker, user)
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    connect_persistent(c, broker.port, clean_start=True)
    c.loop_start()
    c.subscribe(TOPICS.everything(), qos=1)
    subscribed.wait(10)
    c.disconnect()
    c.loop_stop()


def drain_with(broker: Broker, user: str, n: int, handle) -> float:
    """Reconnect a preloaded session and time until `handle` has seen n messages."""
    done = threading.Event()
    seen = [0]
    started = [0.0]

    def on_message(client, _u, msg):
        if seen[0] == 0:
            started[0] = time.perf_counter()
        handle(client, msg)
        seen[0] += 1
        if seen[0] >= n:
            done.set()

    c = consumer_client(broker, user, manual_ack=handle is not None and getattr(handle, "manual", False))
    c.on_message = on_message
    connect_persistent(c, broker.port)
    c.loop_start()
    if not done.wait(600):
        raise SystemExit(f"{user}: only {seen[0]} of {n} drained")
    elapsed = time.perf_counter() - started[0]
    c.disconnect()
    c.loop_stop()
    return elapsed




class Workers:
    def __init__(self, broker: Broker, url: str, count: int, log_dir: Path, env: dict | None = None) -> None:
        self.extra_env = env or {}
        self.procs: list[subprocess.Popen] = []
        self.logs = [log_dir / f"ingest-{k}.log" for k in range(count)]
        self.broker, self.url, self.count = broker, url, count
        self.niceness = 0  # the scheduling niceness each worker starts with (watchpost run: ingest.nice)
        # The same accounts on every start: each worker's persistent session is its account's.
        self.accounts = broker.accounts(INGEST_ROLE, count, "workers")

    def start(self) -> None:
        for log, account in zip(self.logs, self.accounts, strict=True):
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")},
                "WATCHPOST_DATABASE_URL": self.url,
                "WATCHPOST_MQTT_URL": self.broker.url(account),
                "WATCHPOST_TOPIC_ROOT": TOPIC_ROOT,
                **self.extra_env,
            }
            self.procs.append(
                subprocess.Popen([sys.executable, "-m", "watchpost.cli", "ingest"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, cwd=ROOT_DIR)
            )
            if self.niceness:
                os.setpriority(os.PRIO_PROCESS, self.procs[-1].pid, self.niceness)

    def wait_connected(self, times: int = 1) -> float:
        """Wall-clock time of the latest of the workers' `times`-th connection."""
        stamps: list[float] = []
        deadline = time.monotonic() + 60
        for log in self.logs:
            while True:
                found = re.findall(r"^(\S+ \S+) INFO .*connected to the broker", log.read_text() if log.exists() else "", re.M)
                if len(found) >= times:
                    stamps.append(datetime.strptime(found[times - 1], "%Y-%m-%d %H:%M:%S,%f").timestamp())
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker did not connect: {log.read_text()}")
                time.sleep(0.05)
        return min(stamps)

    def peak_rss_mb(self) -> list[float]:
        out = []
        for p in self.procs:
            status = Path(f"/proc/{p.pid}/status").read_text()
            out.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
        return out

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:  # still committing a backlog on a slow box
                p.kill()
                p.wait()
        self.procs = []


def stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM wearable_readings) + (SELECT count(*) FROM home_events) + "
            "(SELECT count(*) FROM water_readings) + (SELECT count(*) FROM unit_positions) + "
            "(SELECT count(*) FROM unit_status_reports) + (SELECT count(*) FROM dead_letters)"
        ).fetchone()[0]


def settle(url: str, quiet_s: float = 1.0, timeout: float = 120) -> None:
    """Wait until nothing more is being stored: workers reconnecting to their persistent
    sessions first take what the sessions kept from other measurements (the relay's
    messages reach every session subscribed to the device topics)."""
    deadline = time.monotonic() + timeout
    previous = -1
    while (have := stored(url)) != previous and time.monotonic() < deadline:
        previous = have
        time.sleep(quiet_s)


def wait_stored(url: str, n: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while (have := stored(url)) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {have} of {n} stored")
        time.sleep(0.02)
    return time.time()


def truncate(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "TRUNCATE wearable_readings, home_events, water_readings, water_hourly, unit_positions, "
            "unit_status_reports, dead_letters, rule_state, alarm_audit, escalations, incident_alarms, incidents, alarms, events CASCADE"
        )


def platform_summary() -> str:
    try:
        model = re.search(r"model name\s+: (.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        model = "unknown CPU"
    return f"{model}, Python {sys.version.split()[0]}"




class bench_database:
    """A fresh migrated database with the benchmark registry; dropped on exit."""

    def __init__(self, registry_doc: dict | None = None) -> None:
        self.server = os.environ.get("WATCHPOST_DATABASE_URL")
        if not self.server:
            raise SystemExit("set WATCHPOST_DATABASE_URL (scripts/timescaledb.sh start prints it)")
        self.name = f"wp_bench_{uuid.uuid4().hex[:8]}"
        self.doc = registry_doc or bench_registry()

    def __enter__(self) -> str:
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        url = psycopg.conninfo.make_conninfo(self.server, dbname=self.name)
        migrate(url)
        with psycopg.connect(url) as conn:
            registry.load(conn, self.doc)
        return url

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
