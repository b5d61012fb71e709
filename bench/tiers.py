"""The three tiers' latency: an incident committed → the village doctor alerted (the post's
websocket has told the page and its board shows the incident) and → the receiving
hospital's board updated (its websocket has told it and its board shows the patient with a
live ETA).

    python bench/tiers.py [--incidents 100]

Needs WATCHPOST_DATABASE_URL. Builds the simulated Jiashan county, starts its own broker,
one `watchpost dispatch` (first-responder margin 0, so every incident at the remote post's
village alerts its doctor) and one `watchpost serve`. Incidents are created one at a time
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
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import websockets

from common import ROOT_DIR, TOPIC_ROOT, Broker, bench_database, platform_summary
from dashboard.auth import hash_password
from dispatch.assignment import Facility, choose_hospital
from dispatch.eta import eta_from, eta_to
from dispatch.store import create_incident, save_road_graph
from kernel.broker import API_USER, DISPATCH_USER
from simulators.jiashan_registry import DEFAULT_GEOJSON, generate_registry
from simulators.jiashan_roads import build_jiashan_network

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


async def measure(api: str, url: str, points: list[tuple[float, float]], doctor: str, hospital: str) -> tuple[list[float], list[float]]:
    async with httpx.AsyncClient(base_url=api) as http:
        tokens = {}
        for user in (doctor, hospital):
            r = await http.post("/api/token", data={"username": user, "password": PASSWORD})
            r.raise_for_status()
            tokens[user] = r.json()["access_token"]
        ws_base = api.replace("http", "ws", 1)
        doc_ws = await websockets.connect(f"{ws_base}/ws/tier", subprotocols=["watchpost", tokens[doctor]])  # type: ignore[list-item]
        er_ws = await websockets.connect(f"{ws_base}/ws/tier", subprotocols=["watchpost", tokens[hospital]])  # type: ignore[list-item]
        alerted, boarded = [], []
        told: dict[str, list[float]] = {doctor: [], hospital: []}  # → the first nudge alone
        conn = psycopg.connect(url)

        async def until_on_board(ws, user: str, incident_id: str, committed: float, key: str) -> float:
            first = True
            while True:
                await asyncio.wait_for(ws.recv(), 10)
                if first:
                    told[user].append((time.perf_counter() - committed) * 1000)
                    first = False
                r = await http.get("/api/tier/incidents", headers={"Authorization": f"Bearer {tokens[user]}"})
                for inc in r.json()["incidents"]:
                    if inc["incident_id"] == incident_id and inc.get(key) is not None:
                        return (time.perf_counter() - committed) * 1000

        for lat, lon in points:
            incident = create_incident(conn, lat=lat, lon=lon, kind="medical", priority=1, description="bench", actor="bench",
                                       now=datetime.now(UTC))
            committed = time.perf_counter()  # create_incident returns after its commit
            a, b = await asyncio.gather(
                until_on_board(doc_ws, doctor, incident["incident_id"], committed, "first_response"),
                until_on_board(er_ws, hospital, incident["incident_id"], committed, "eta_to_hospital_s"),
            )
            alerted.append(a)
            boarded.append(b)
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
        return alerted, boarded


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
        broker = Broker()
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
            alerted, boarded = asyncio.run(measure(base, url, points, "bench-doc", "bench-er"))
            (a50, a99), (b50, b99) = p50_p99(alerted), p50_p99(boarded)
            print()
            print("| committed incident → | p50 | p99 |")
            print("|---|---|---|")
            print(f"| village doctor alerted (post's websocket told, its board shows the alert; {len(alerted)} incidents) | {a50:.1f} ms | {a99:.1f} ms |")
            print(f"| hospital board updated (hospital's websocket told, its board shows the patient with a live ETA) | {b50:.1f} ms | {b99:.1f} ms |")
        finally:
            for p in (api, dispatch):
                p.terminate()
                p.wait(15)
            broker.close()
            shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
