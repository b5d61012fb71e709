"""End to end: the simulated county through the real broker, database, ingest, dispatcher
and API — the expected alarms and incidents, ambulances driving the road route there and
back, and family websockets that get their relative's alerts and no one else's."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from dashboard.report import collect, render_html
from simulators.cli import build_parser, run
from tests.fix_api import TEST_PASSWORD
from tests.fix_broker import TEST_ROOT, Broker
from tests.fix_wait import wait_for
from kernel.broker import SIMULATOR_USER
from kernel.settings import RegionSettings

pytestmark = pytest.mark.slow


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 111_320
    dx = (a[1] - b[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def test_a_simulated_county_run_end_to_end(
    broker: Broker, start_ingest, start_alerts, start_dispatcher, start_api, jiashan_url: str, jiashan_registry: dict, tmp_path: Path
) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(jiashan_registry, allow_unicode=True))
    start_ingest(db_url=jiashan_url)
    start_alerts(db_url=jiashan_url)
    start_dispatcher(jiashan_url)
    api = start_api(jiashan_url)

    # Every family member watches their own page's websocket during the run.
    links: dict[str, set[str]] = {}
    for user in jiashan_registry["users"]:
        if user["role"] == "family":
            links[user["username"]] = {p["person_id"] for p in user.get("persons", [])}
    received: dict[str, list[dict]] = {u: [] for u in links}
    stop = threading.Event()

    # Logged in one after another, not all at once: a login's password hash is deliberately
    # slow, and a handful at once on a loaded machine outlast the client's timeout.
    tokens = {user: api.token(user) for user in links}

    def listen(user: str) -> None:
        with ws_connect(f"{api.ws_base}/ws/family?token={tokens[user]}") as ws:
            while not stop.is_set():
                try:
                    received[user].append(orjson.loads(ws.recv(timeout=0.5)))
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return

    listeners = [threading.Thread(target=listen, args=(u,), daemon=True) for u in links]
    for t in listeners:
        t.start()

    # 40 simulated minutes at 60×: long enough for a crew to get there, hand over and return.
    # The posts' village doctors answer their alerts on the post's page.
    password_file = tmp_path / "doctors"
    password_file.write_text(TEST_PASSWORD)
    args = build_parser().parse_args([
        "--mqtt-url", broker.url(SIMULATOR_USER), "--root", TEST_ROOT, "--quiet", "--scenario", "short-e2e",
        "--registry", str(registry_file), "--duration", "40m", "--no-faults",
        "--api-url", api.base, "--doctor-password-file", str(password_file),
    ])
    run_started = datetime.now(UTC)
    summary = run(args)
    print(summary.format())

    with psycopg.connect(jiashan_url) as conn:
        def raised() -> set[str]:
            return {r[0] for r in conn.execute("SELECT DISTINCT alarm_type FROM alarms")}

        wait_for(lambda: {"sos", "smoke", "fall", "water_class_exceeded", "heart_rate_high"} <= raised(), timeout=30)
        kinds = {r[0] for r in conn.execute("SELECT kind FROM incidents")}
        assert {"medical", "fire", "water"} <= kinds
        cancelled_fall = conn.execute(
            "SELECT count(*) FROM alarms WHERE alarm_type = 'fall' AND cleared_by = 'rule:fall'"
        ).fetchone()[0]
        assert cancelled_fall >= 1  # the fall cancelled with "I'm OK" cleared itself

        # Every ambulance order the crews received: there along the road, and back.
        ambulance_orders = [o for o in summary.orders if o.unit_id.startswith("AMB")]
        assert ambulance_orders, summary.format()
        for order in ambulance_orders:
            assert {"en_route", "on_scene"} <= set(order.statuses), order
            incident = conn.execute("SELECT lat, lon FROM incidents WHERE incident_id = %s", (order.incident_id,)).fetchone()
            fixes = conn.execute(
                "SELECT lat, lon, speed_kmh FROM unit_positions WHERE unit_id = %s AND ts >= to_timestamp(%s) AND ts <= to_timestamp(%s) ORDER BY ts",
                (order.unit_id, order.statuses["en_route"], order.statuses["on_scene"]),
            ).fetchall()
            assert len(fixes) >= 2, order
            # Consecutive 5 s fixes never jump further than a fast ambulance drives in 5 s.
            for (a_lat, a_lon, _), (b_lat, b_lon, _) in zip(fixes, fixes[1:]):
                assert metres((a_lat, a_lon), (b_lat, b_lon)) <= 130 / 3.6 * 5 + 1
            assert metres(fixes[-1][:2], incident) < 400  # arrived where the incident is (snapped to the road)
        completed = [o for o in ambulance_orders if "available" in o.statuses]
        assert completed, "no crew came back available within the run"
        def free_again(incident_id: str, unit_id: str) -> bool:
            """Available now, or sent out anew after it came back (at any stage of that order)."""
            status, newer_orders = conn.execute(
                "SELECT s.status, (SELECT count(*) FROM assignments a WHERE a.unit_id = s.unit_id AND a.ordered_at > "
                "(SELECT max(ordered_at) FROM assignments WHERE unit_id = s.unit_id AND incident_id = %s)) "
                "FROM unit_state s WHERE s.unit_id = %s",
                (incident_id, unit_id),
            ).fetchone()
            return status == "available" or newer_orders > 0

        for order in completed:  # once the dispatcher took the crew's report in
            wait_for(lambda o=order: free_again(o.incident_id, o.unit_id), timeout=30, what=f"{order.unit_id} free again")

        # The three tiers: every ambulance assignment decided whether to alert the village
        # post, and an alerted post has its alert; a crew that reached hospital handed over.
        for incident_id, detail in conn.execute(
            "SELECT a.incident_id, a.detail FROM dispatch_audit a JOIN incidents i USING (incident_id) "
            "WHERE a.action = 'assigned' AND i.kind = 'medical'"
        ).fetchall():
            verdict = detail["first_responder"]
            assert verdict["reason"], detail
            alerted_post = conn.execute("SELECT post_id FROM first_responses WHERE incident_id = %s", (incident_id,)).fetchone()
            assert (alerted_post is not None) >= verdict["alert"], (incident_id, verdict)
        # First responders in the shift report: doctors alerted answered (or not), some drove
        # there, and how often and by how much they beat the ambulance is computed.
        report = collect(conn, run_started, datetime.now(UTC) + timedelta(minutes=1))
        f = report.first_responders
        assert f is not None and f.alerted >= 1, "no village doctor was alerted in the run"
        answers = dict(conn.execute("SELECT answer, count(*) FROM first_responses GROUP BY 1").fetchall())
        assert answers.get("accepted", 0) == f.accepted >= 1, answers
        assert f.arrived >= 1 and f.both_arrived >= 1, f
        assert 0 <= f.first <= f.arrived <= f.accepted <= f.alerted
        # A run of 40 simulated minutes at 60× lasts 40 real seconds: no lead can be longer.
        assert f.median_lead_s is not None and abs(f.median_lead_s) < 40 * 60 / 60 + 5, f
        if f.first > f.arrived - f.both_arrived:  # a doctor was ahead of an ambulance that came too
            assert f.ahead_median_s is not None and f.ahead_p90_s is not None, f
            assert 0 < f.ahead_median_s <= f.ahead_p90_s < 45, f
        html = render_html(report, RegionSettings())
        assert "Village doctors as first responders" in html and "ahead by (p90)" in html
        print(f"first responders: {f}")
        for order in ambulance_orders:
            if "at_hospital" in order.statuses:
                wait_for(lambda o=order: conn.execute(
                    "SELECT handed_over_at FROM assignments WHERE incident_id = %s AND unit_id = %s ORDER BY ordered_at DESC LIMIT 1",
                    (o.incident_id, o.unit_id)).fetchone()[0] is not None, timeout=30, what=f"{order.unit_id} hand-over recorded")

    stop.set()
    for t in listeners:
        t.join(5)
    alerted = {u for u, events in received.items() if events}
    assert alerted, "no family websocket received anything"
    for user, events in received.items():
        assert {e["data"].get("person_id") for e in events} <= links[user], user  # no one else's
        assert all(e["type"].startswith(("alarm.", "incident.")) for e in events)
