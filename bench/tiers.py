"""The three tiers' latency: an incident committed → the village doctor alerted (the post's
websocket has told the page and its board shows the incident), → the SMS on the post's duty
phone (the test SMSC took it from `watchpost notify`), and → the receiving hospital's board
updated (its websocket has told it and its board shows the patient with a live ETA); then a
crew's patient report published → the hospital board shows it (through `watchpost ingest`,
with no unit update in between).

    python bench/tiers.py [--incidents 100]

Needs WATCHPOST_DATABASE_URL. Builds the simulated Jiashan county, starts its own broker,
one `watchpost dispatch` (first-responder margin 0, so every incident at the remote post's
village alerts its doctor), one `watchpost serve`, one `watchpost ingest`, one `watchpost
notify` and the test SMSC (simulators/smsc.py). Incidents are created one at a time
within a few hundred metres of the first-aid post farthest from any ambulance base; between
incidents the unit is put back to `available` directly in the database, outside the timed
path. Each figure includes the page's re-read of its board (GET /api/tier/incidents), as a
browser would do it on the nudge.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
import websockets

from common import ROOT_DIR, TOPIC_ROOT, Broker, Workers, bench_database, platform_summary
from dashboard.auth import hash_password
from dispatch.assignment import Facility, choose_hospital
from dispatch.eta import eta_from, eta_to
from dispatch.store import create_incident, save_road_graph
from kernel.broker import API_USER, DISPATCH_USER
from simulators.jiashan_registry import DEFAULT_GEOJSON, generate_registry
from simulators.jiashan_roads import build_jiashan_network
from simulators.smsc import FakeSmsc, serve

PASSWORD = "bench-password-tiers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def p50_p99(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]


def remote_post(doc: dict, graph) -> dict:
    facilities = {f["facility_id"]: f for f in doc["facilities"]}
    bases = [graph.snap(facilities[u["base_facility_id"]]["lat"], facilities[u["base_facility_id"]]["lon"]).node
             for u in doc["units"] if u["kind"] == "ambulance"]
    scored = []
    for post in (f for f in doc["facilities"] if f["kind"] == "first_aid_post"):
        nearest = float(min(eta_to(graph, graph.snap(post["lat"], post["lon"]).node).etas_for(bases)))
        if nearest != float("inf"):
            scored.append((nearest, post["facility_id"], post))
    return max(scored)[2]


@dataclass
class Figures:
    alerted: list[float] = field(default_factory=list)
    texted: list[float] = field(default_factory=list)
    boarded: list[float] = field(default_factory=list)
    reported: list[float] = field(default_factory=list)


async def measure(api: str, url: str, points: list[tuple[float, float]], doctor: str, hospital: str, smsc: FakeSmsc,
                  crew: mqtt.Client) -> Figures:
    async with httpx.AsyncClient(base_url=api) as http:
        tokens = {}
        for user in (doctor, hospital):
            r = await http.post("/api/token", data={"username": user, "password": PASSWORD})
            r.raise_for_status()
            tokens[user] = r.json()["access_token"]
        ws_base = api.replace("http", "ws", 1)
        doc_ws = await websockets.connect(f"{ws_base}/ws/tier", subprotocols=["watchpost", tokens[doctor]])  # type: ignore[list-item]
        er_ws = await websockets.connect(f"{ws_base}/ws/tier", subprotocols=["watchpost", tokens[hospital]])  # type: ignore[list-item]
        figures = Figures()
        told: dict[str, list[float]] = {doctor: [], hospital: []}  # → the first nudge alone
        conn = psycopg.connect(url)

        async def until_on_board(ws, user: str, incident_id: str, committed: float, key: str, count: bool = True) -> float:
            first = True
            while True:
                await asyncio.wait_for(ws.recv(), 10)
                if first and count:
                    told[user].append((time.perf_counter() - committed) * 1000)
                    first = False
                r = await http.get("/api/tier/incidents", headers={"Authorization": f"Bearer {tokens[user]}"})
                for inc in r.json()["incidents"]:
                    if inc["incident_id"] == incident_id and inc.get(key):
                        return (time.perf_counter() - committed) * 1000

        async def until_texted(n: int, committed_wall: float) -> float:
            while len(smsc.received) < n:  # whole messages (the text is two or three parts)
                await asyncio.sleep(0.002)
            return (smsc.received[n - 1].at - committed_wall) * 1000  # the last part taken, on the wall clock

        for n, (lat, lon) in enumerate(points, 1):
            incident = create_incident(conn, lat=lat, lon=lon, kind="medical", priority=1, description="bench", actor="bench",
                                       now=datetime.now(UTC))
            committed, committed_wall = time.perf_counter(), time.time()  # create_incident returns after its commit
            a, t, b = await asyncio.gather(
                until_on_board(doc_ws, doctor, incident["incident_id"], committed, "first_response"),
                until_texted(n, committed_wall),
                until_on_board(er_ws, hospital, incident["incident_id"], committed, "eta_to_hospital_s"),
            )
            figures.alerted.append(a)
            figures.texted.append(t)
            figures.boarded.append(b)
            # The crew's patient report: published as the unit's terminal does, stored by ingest,
            # pushed to the hospital's board at once.
            (unit_id,) = conn.execute("SELECT unit_id FROM assignments WHERE incident_id = %s", (incident["incident_id"],)).fetchone()
            conn.commit()
            report = {"ts": datetime.now(UTC).isoformat(), "incident_id": incident["incident_id"], "gcs": 14, "spo2_pct": 94}
            published = time.perf_counter()
            crew.publish(f"{TOPIC_ROOT}/unit/{unit_id}/patient", orjson.dumps(report), qos=1)
            figures.reported.append(await until_on_board(er_ws, hospital, incident["incident_id"], published, "patient_reports", count=False))
            with conn.transaction():  # outside the timed path: the unit is free again, the incident closed
                conn.execute("UPDATE assignments SET state = 'done' WHERE incident_id = %s", (incident["incident_id"],))
                conn.execute("UPDATE unit_state SET status = 'available', incident_id = NULL WHERE status = 'dispatched'")
                conn.execute("UPDATE incidents SET state = 'closed', updated_at = now() - interval '1 day' WHERE incident_id = %s",
                             (incident["incident_id"],))
            for ws in (doc_ws, er_ws):  # the close's own nudges are not the next incident's
                while True:
                    try:
                        await asyncio.wait_for(ws.recv(), 0.3)
                    except TimeoutError:
                        break
        conn.close()
        await doc_ws.close()
        await er_ws.close()
        for user, ms in told.items():
            n50, n99 = p50_p99(ms)
            print(f"  {user}: committed → first websocket nudge p50 {n50:.1f} ms, p99 {n99:.1f} ms")
        return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incidents", type=int, default=100)
    args = ap.parse_args()
    rng = random.Random(1)
    doc = generate_registry(persons=20)
    network = build_jiashan_network(DEFAULT_GEOJSON)
    graph = network.graph
    post = remote_post(doc, graph)
    hospitals = [Facility(f["facility_id"], graph.snap(f["lat"], f["lon"]).node) for f in doc["facilities"] if f["kind"] == "hospital"]
    points = []
    while len(points) < args.incidents:  # within ~300 m of the post, all bound for the same hospital
        lat, lon = post["lat"] + rng.uniform(-0.003, 0.003), post["lon"] + rng.uniform(-0.003, 0.003)
        points.append((lat, lon))
    choices = {choose_hospital(hospitals, eta_from(graph, graph.snap(lat, lon).node)).facility_id for lat, lon in points}  # type: ignore[union-attr]
    if len(choices) != 1:
        raise SystemExit(f"the points go to several hospitals: {choices}")
    hospital_id = choices.pop()
    with bench_database(doc) as url:
        with psycopg.connect(url) as conn:
            save_road_graph(conn, graph, datetime.now(UTC))
            pw = hash_password(PASSWORD)
            conn.execute("INSERT INTO users (username, display_name, role, scope_id, password_hash) VALUES "
                         "('bench-doc', 'doctor', 'first_aid', %s, %s), ('bench-er', 'hospital', 'hospital', %s, %s)",
                         (post["facility_id"], pw, hospital_id, pw))
            conn.execute("UPDATE facilities SET duty_phone = '+8657384000001' WHERE facility_id = %s", (post["facility_id"],))
        broker = Broker()
        smsc = FakeSmsc(report="")
        smsc_server = serve(smsc)
        logs = Path(tempfile.mkdtemp(prefix="watchpost-bench-logs-"))
        port = free_port()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHPOST_")}
        dispatch = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "dispatch"],
            env={**base_env, "WATCHPOST_DATABASE_URL": url, "WATCHPOST_MQTT_URL": broker.url(DISPATCH_USER),
                 "WATCHPOST_TOPIC_ROOT": TOPIC_ROOT, "WATCHPOST_DISPATCH__FIRST_RESPONDER_MARGIN_S": "0"},
            stdout=(logs / "dispatch.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT_DIR)
        api = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "serve"],
            env={**base_env, "WATCHPOST_DATABASE_URL": url, "WATCHPOST_MQTT_URL": broker.url(API_USER), "WATCHPOST_TOPIC_ROOT": TOPIC_ROOT,
                 "WATCHPOST_API__PORT": str(port), "WATCHPOST_API__TOKEN_SECRET": os.urandom(24).hex()},
            stdout=(logs / "api.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT_DIR)
        notify = subprocess.Popen(
            [sys.executable, "-m", "watchpost.cli", "notify"],
            env={**base_env, "WATCHPOST_DATABASE_URL": url, "WATCHPOST_TOPIC_ROOT": TOPIC_ROOT,
                 "WATCHPOST_NOTIFY__SMPP_URL": f"smpp://watchpost:secret@127.0.0.1:{smsc_server.server_address[1]}"},
            stdout=(logs / "notify.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT_DIR)
        ingest = Workers(broker, url, 1, logs)
        ingest.start()
        crew = broker.device("crew")
        crew.connect("127.0.0.1", broker.port)
        crew.loop_start()
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while "dispatcher connected" not in (logs / "dispatch.log").read_text():
                if dispatch.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((logs / "dispatch.log").read_text())
                time.sleep(0.1)
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if api.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((logs / "api.log").read_text())
                time.sleep(0.1)
            print(f"machine: {os.cpu_count()} cores, {platform_summary()}; road graph {graph.n_nodes:,} nodes; "
                  f"post {post['facility_id']}, hospital {hospital_id}", flush=True)
            ingest.wait_connected()
            f = asyncio.run(measure(base, url, points, "bench-doc", "bench-er", smsc, crew))
            rows = [
                (f"village doctor alerted (post's websocket told, its board shows the alert; {len(f.alerted)} incidents)", f.alerted),
                ("the SMS on the post's duty phone (the SMSC accepted it from the notifier)", f.texted),
                ("hospital board updated (hospital's websocket told, its board shows the patient with a live ETA)", f.boarded),
            ]
            print()
            print("| committed incident → | p50 | p99 |")
            print("|---|---|---|")
            for what, ms in rows:
                p50, p99 = p50_p99(ms)
                print(f"| {what} | {p50:.1f} ms | {p99:.1f} ms |")
            p50, p99 = p50_p99(f.reported)
            print(f"| crew's patient report published → on the hospital board (ingest stored it, the board was told) | {p50:.1f} ms | {p99:.1f} ms |")
        finally:
            crew.loop_stop()
            crew.disconnect()
            ingest.stop()
            for p in (api, dispatch, notify):
                p.terminate()
                p.wait(15)
            smsc_server.shutdown()
            smsc_server.server_close()
            broker.close()
            shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
