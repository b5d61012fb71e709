"""The three tiers against the real dispatcher, API, broker and database, over the simulated
Jiashan county: the village doctor alerted and answering, the hospital's board and its
"no capacity" flag, the crew's statuses taking the crews' own path — each seeing only its
own incidents."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
import pytest
from psycopg.rows import dict_row
from websockets.sync.client import connect as ws_connect

from dispatch.eta import eta_to
from dispatch.store import create_incident
from tests.fix_wait import wait_for

pytestmark = pytest.mark.slow


def rows(url: str, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def remote_post(registry: dict, graph) -> dict:
    """The first-aid post farthest by road from every ambulance base: there the village
    doctor surely beats the ambulance."""
    facilities = {f["facility_id"]: f for f in registry["facilities"]}
    bases = [graph.snap(facilities[u["base_facility_id"]]["lat"], facilities[u["base_facility_id"]]["lon"]).node
             for u in registry["units"] if u["kind"] == "ambulance"]
    best, best_eta = None, -1.0
    for post in (f for f in registry["facilities"] if f["kind"] == "first_aid_post"):
        field = eta_to(graph, graph.snap(post["lat"], post["lon"]).node)
        nearest = float(min(field.etas_for(bases)))
        if nearest != float("inf") and nearest > best_eta:
            best, best_eta = post, nearest
    assert best is not None
    return best


def call_for(url: str, person_id: str, lat: float, lon: float) -> str:
    """A call about a registered person, waiting in the queue for the dispatcher."""
    with psycopg.connect(url) as conn:
        incident = create_incident(conn, lat=lat, lon=lon, kind="medical", priority=1, description="fell, head wound",
                                   actor="calltaker", now=datetime.now(UTC))
        conn.execute("UPDATE incidents SET person_id = %s WHERE incident_id = %s", (person_id, incident["incident_id"]))
        conn.execute("UPDATE persons SET conditions = %s, medications = %s WHERE person_id = %s",
                     (["atrial fibrillation"], ["warfarin 3 mg"], person_id))
    return incident["incident_id"]


def add_users(url: str, *users: tuple[str, str, str]) -> None:
    with psycopg.connect(url) as conn:
        for username, role, scope in users:
            conn.execute("INSERT INTO users (username, display_name, role, scope_id) VALUES (%s, %s, %s, %s)",
                         (username, username, role, scope))


@pytest.fixture
def county(jiashan_url, jiashan_registry, jiashan_network, start_dispatcher, start_api):
    """An incident at the remote post's village, dispatched with its doctor alerted; users
    for that post, another post, the chosen hospital, another hospital and the unit sent."""
    post = remote_post(jiashan_registry, jiashan_network.graph)
    other_post = next(f for f in jiashan_registry["facilities"] if f["kind"] == "first_aid_post" and f is not post)
    person = jiashan_registry["persons"][0]["person_id"]
    incident_id = call_for(jiashan_url, person, post["lat"], post["lon"])
    with psycopg.connect(jiashan_url) as conn:
        conn.execute("UPDATE facilities SET duty_phone = '+8613812340069' WHERE facility_id = %s", (post["facility_id"],))
    start_dispatcher(jiashan_url, dispatch__first_responder_margin_s="0", dispatch__first_responder_answer_s="600")
    wait_for(lambda: rows(jiashan_url, "SELECT 1 FROM assignments WHERE incident_id = %s", incident_id), what="assignment")
    [assignment] = rows(jiashan_url, "SELECT * FROM assignments WHERE incident_id = %s", incident_id)
    hospitals = [f["facility_id"] for f in jiashan_registry["facilities"] if f["kind"] == "hospital"]
    other_hospital = next(h for h in hospitals if h != assignment["hospital_id"])
    add_users(jiashan_url, ("doc", "first_aid", post["facility_id"]), ("doc2", "first_aid", other_post["facility_id"]),
              ("er", "hospital", assignment["hospital_id"]), ("er2", "hospital", other_hospital),
              ("crew", "crew", assignment["unit_id"]), ("crew2", "crew", "AMB-NONE"))
    api = start_api(jiashan_url)
    return {"api": api, "url": jiashan_url, "incident_id": incident_id, "post": post["facility_id"], "person": person,
            "unit": assignment["unit_id"], "hospital": assignment["hospital_id"], "other_hospital": other_hospital}


def board(c: httpx.Client) -> list[dict]:
    r = c.get("/api/tier/incidents")
    r.raise_for_status()
    return r.json()["incidents"]


def test_the_village_doctor_of_the_post_is_alerted_and_sees_what_they_need(county) -> None:
    api, url, incident_id = county["api"], county["url"], county["incident_id"]
    [response] = rows(url, "SELECT * FROM first_responses WHERE incident_id = %s", incident_id)
    assert response["post_id"] == county["post"] and response["post_eta_s"] < response["unit_eta_s"]
    # The post's duty phone: texted at once, rung if still unanswered after 30 s (till the answer time).
    queued = rows(url, "SELECT username, channel, due_at, expires_at FROM notifications WHERE incident_id = %s ORDER BY channel",
                  incident_id)
    assert [(q["username"], q["channel"]) for q in queued] == [(county["post"], "sms"), (county["post"], "voice")]
    assert queued[0]["due_at"] == response["alerted_at"] and (queued[1]["due_at"] - response["alerted_at"]).total_seconds() == 30
    assert queued[1]["expires_at"] == response["answer_by"]
    with api.client("doc") as doc:
        [incident] = board(doc)
        assert incident["incident_id"] == incident_id
        assert incident["person"]["conditions"] == ["atrial fibrillation"] and incident["person"]["medications"] == ["warfarin 3 mg"]
        assert incident["first_response"]["state"] == "waiting"
        assert incident["eta_to_scene_s"] > 0 and "hospital" not in incident
    assert rows(url, "SELECT * FROM access_log WHERE username = 'doc' AND person_id = %s", county["person"])


def test_a_village_doctor_never_sees_nor_answers_another_posts_incident(county) -> None:
    api, incident_id = county["api"], county["incident_id"]
    with api.client("doc2") as other:
        assert board(other) == []
        assert other.post(f"/api/tier/incidents/{incident_id}/answer", json={"answer": "accepted"}).status_code == 404
        assert other.get("/api/alarms").status_code == 403 and other.get(f"/api/persons/{county['person']}").status_code == 403


def test_the_doctors_answer_arrival_and_note_reach_the_console_and_the_crew(county) -> None:
    api, url, incident_id = county["api"], county["url"], county["incident_id"]
    with api.client("doc") as doc:
        assert doc.post(f"/api/tier/incidents/{incident_id}/on-scene").status_code == 409  # not accepted yet
        assert doc.post(f"/api/tier/incidents/{incident_id}/answer", json={"answer": "accepted"}).json()["state"] == "accepted"
        assert doc.post(f"/api/tier/incidents/{incident_id}/on-scene").json()["on_scene_at"]
        note = "conscious, breathing, bleeding controlled"
        assert doc.post(f"/api/tier/incidents/{incident_id}/note", json={"text": note}).status_code == 200
    with api.client("crew") as crew:
        [incident] = board(crew)
        assert incident["first_response"]["note"] == note and incident["first_response"]["state"] == "accepted"
        assert len(incident["route"]) >= 2
    with api.client("op1") as op:
        [row] = [r for r in op.get("/api/incidents?state=open").json() if r["incident_id"] == incident_id]
    events = rows(url, "SELECT data FROM events WHERE type = 'incident.updated' AND data ? 'first_response' ORDER BY event_id")
    assert [e["data"]["first_response"]["state"] for e in events][-1] == "accepted"
    assert events[-1]["data"]["first_response"]["note"] == note
    actions = [r["action"] for r in rows(url, "SELECT action FROM dispatch_audit WHERE incident_id = %s ORDER BY at", incident_id)]
    assert {"first_responder_alerted", "first_responder_accepted", "first_responder_on_scene", "first_responder_note"} <= set(actions)
    assert row["incident_id"] == incident_id


def test_each_hospital_sees_only_its_incoming_patients_and_no_capacity_diverts_them(county) -> None:
    api, url, incident_id = county["api"], county["url"], county["incident_id"]
    with api.client("er") as er, api.client("er2") as er2:
        [incident] = board(er)
        assert incident["incident_id"] == incident_id and incident["eta_to_hospital_s"] > incident["eta_to_scene_s"]
        assert incident["person"]["medications"] == ["warfarin 3 mg"] and "vitals" in incident
        assert board(er2) == []
        r = er.post("/api/tier/capacity", json={"no_capacity": True})
        assert r.status_code == 200 and r.json()["diverted"][0]["incident_id"] == incident_id
        assert board(er) == []
        [diverted] = board(er2) if r.json()["diverted"][0]["to_hospital"] == county["other_hospital"] else [None]
        assert diverted is None or diverted["incident_id"] == incident_id
    [audit] = rows(url, "SELECT detail FROM dispatch_audit WHERE incident_id = %s AND action = 'diverted'", incident_id)
    assert audit["detail"]["from"] == county["hospital"]


def test_the_crew_terminal_reports_through_the_crews_path_and_the_hand_over_is_recorded(county) -> None:
    api, url, incident_id, unit = county["api"], county["url"], county["incident_id"], county["unit"]
    with api.client("crew") as crew, api.client("crew2") as stranger:
        assert board(stranger) == []
        for status in ("en_route", "on_scene", "transporting", "at_hospital"):
            ts = datetime.now(UTC)
            assert crew.post("/api/tier/status", json={"status": status, "ts": ts.isoformat()}).status_code == 202
            wait_for(lambda s=status: rows(url, "SELECT status FROM unit_state WHERE unit_id = %s", unit)[0]["status"] == s,
                     what=f"unit {status}")
            time.sleep(0.01)  # each report's time is its own
    [assignment] = rows(url, "SELECT handed_over_at FROM assignments WHERE incident_id = %s", incident_id)
    assert assignment["handed_over_at"] is not None
    with api.client("er") as er:
        [incident] = board(er)
        assert incident["handed_over_at"] is not None


def test_the_control_room_and_families_have_no_tier_board(county) -> None:
    with county["api"].client("op1") as op:
        assert op.get("/api/tier/incidents").status_code == 403


def test_a_doctor_who_declines_no_longer_sees_the_patient(county) -> None:
    api, url, incident_id = county["api"], county["url"], county["incident_id"]
    with api.client("doc") as doc:
        assert doc.post(f"/api/tier/incidents/{incident_id}/answer", json={"answer": "declined"}).json()["state"] == "declined"
        assert board(doc) == []
    assert rows(url, "SELECT 1 FROM dispatch_audit WHERE incident_id = %s AND action = 'first_responder_declined'", incident_id)


def test_an_unanswered_alert_becomes_no_answer_and_the_console_is_told(county) -> None:
    from datetime import timedelta

    from dispatch import tier_store

    api, url, incident_id = county["api"], county["url"], county["incident_id"]
    with psycopg.connect(url) as conn:
        assert tier_store.expire_unanswered(conn, datetime.now(UTC) + timedelta(hours=1)) == [incident_id]
    with api.client("op1") as op:
        [row] = [r for r in op.get("/api/incidents?state=open").json() if r["incident_id"] == incident_id]
    assert row["first_response"]["state"] == "no_answer" and row["state"] == "dispatched"  # the ambulance never waited


def test_a_crew_reports_only_on_its_own_patients(county) -> None:
    with county["api"].client("crew2") as stranger:
        r = stranger.post("/api/tier/patient", json={"ts": datetime.now(UTC).isoformat(), "incident_id": county["incident_id"], "gcs": 15})
        assert r.status_code == 404


def test_a_crews_patient_report_reaches_the_hospital_board_at_once(county, start_ingest) -> None:
    """No unit moves or reports a status here: the board hears of the report itself."""
    api, url, incident_id = county["api"], county["url"], county["incident_id"]
    start_ingest(db_url=url)
    with ws_connect(f"{api.ws_base}/ws/tier", subprotocols=["watchpost", api.token("er")]) as ws:  # type: ignore[list-item]
        while True:  # what the socket says on opening
            try:
                ws.recv(timeout=0.5)
            except TimeoutError:
                break
        with api.client("crew") as crew:
            sent = time.monotonic()
            r = crew.post("/api/tier/patient", json={"ts": datetime.now(UTC).isoformat(), "incident_id": incident_id,
                                                     "gcs": 13, "spo2_pct": 91, "suspected": "hip fracture"})
            assert r.status_code == 202
        nudge = orjson.loads(ws.recv(timeout=5))
        told_s = time.monotonic() - sent
    assert nudge["type"] == "incident.updated" and nudge["data"] == {"incident_id": incident_id}
    assert told_s < 5
    with api.client("er") as er:
        [incident] = board(er)
    assert [(r["gcs"], r["suspected"]) for r in incident["patient_reports"]] == [(13, "hip fracture")]
    [event] = rows(url, "SELECT person_id, data FROM events WHERE data ? 'patient_report_at'")
    assert event["person_id"] is None and event["data"]["unit_id"] == county["unit"]  # no family page hears of it
