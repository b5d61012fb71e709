"""The HTTP API and websockets on real processes: authorisation on every route, family
isolation, clear 4xx for bad input, live events with catch-up, several API processes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import orjson
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from dashboard.auth import Principal, Role, issue_token
from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_db import count
from tests.fix_wait import wait_for

pytestmark = pytest.mark.slow

ROUTES = [
    ("GET", "/api/alarms"), ("POST", "/api/alarms/1/ack"), ("GET", "/api/incidents"), ("POST", "/api/incidents"),
    ("POST", "/api/incidents/INC-000001/assign"), ("POST", "/api/incidents/INC-000001/close"),
    ("GET", "/api/incidents/INC-000001/candidates"), ("GET", "/api/units"), ("GET", "/api/stations"),
    ("GET", "/api/stations/WS-001/readings?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"),
    ("GET", "/api/persons"), ("GET", "/api/persons/P-0001"), ("GET", "/api/me"), ("GET", "/api/map"),
    ("POST", "/api/incidents/INC-000001/verification"),
]
CONTROL_ROOM_ONLY = {"/api/units", "/api/stations", "/api/map", "/api/incidents/INC-000001/candidates",
                     "/api/incidents/INC-000001/assign", "/api/incidents/INC-000001/close",
                     "/api/incidents/INC-000001/verification"}


def family_users(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT username, person_id FROM family_links").fetchall()
    out: dict[str, set[str]] = {}
    for user, person in rows:
        out.setdefault(user, set()).add(person)
    return out


def two_families(url: str) -> tuple[str, set[str], str]:
    """A family user, their persons, and a person they are not linked to."""
    links = family_users(url)
    user = sorted(links)[0]
    everyone = set().union(*links.values())
    return user, links[user], sorted(everyone - links[user])[0]


def test_every_route_refuses_missing_bad_expired_and_wrong_role_tokens(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    family = next(iter(family_users(jiashan_url)))
    expired = issue_token(api.secret, Principal("op1", Role.OPERATOR), datetime.now(UTC) - timedelta(days=2), timedelta(hours=1))
    forged = issue_token("not-the-secret-but-long-enough-for-hs256", Principal("op1", Role.ADMIN), datetime.now(UTC), timedelta(hours=1))
    family_token = api.token(family)
    with httpx.Client(base_url=api.base) as http:
        for method, path in ROUTES:
            for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {expired}"},
                            {"Authorization": f"Bearer {forged}"}):
                r = http.request(method, path, headers=headers, json={"unit_id": "AMB-01"} if method == "POST" else None)
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.json()["detail"]
            if path.split("?")[0] in CONTROL_ROOM_ONLY:
                r = http.request(method, path, headers={"Authorization": f"Bearer {family_token}"}, json={"unit_id": "AMB-01"})
                assert r.status_code == 403 and "family" in r.json()["detail"], (path, r.text)
        operator = {"Authorization": f"Bearer {api.token('op1')}"}
        r = http.post("/api/incidents/INC-000001/assign", headers=operator, json={"unit_id": "AMB-01"})
        assert r.status_code == 403  # assigning is the dispatcher's


def test_a_family_member_reaches_only_their_own_relative(start_api, start_ingest, publisher: Publisher, jiashan_url: str) -> None:
    user_a, persons_a, other = two_families(jiashan_url)
    mine = sorted(persons_a)[0]
    start_ingest(db_url=jiashan_url)
    api = start_api(jiashan_url)
    publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/elder/{p}/wearable", orjson.dumps({"ts": time.time(), "sos": True})) for p in (mine, other)])
    with api.client("op1") as op:
        wait_for(lambda: len(op.get("/api/alarms", params={"state": "active"}).json()) >= 2)
        other_alarm = next(a for a in op.get("/api/alarms").json() if a["person_id"] == other)
    with api.client(user_a) as fam:
        assert fam.get(f"/api/persons/{mine}").status_code == 200
        r = fam.get(f"/api/persons/{other}")
        assert r.status_code == 404 and r.json()["detail"] == f"no person {other}"  # same as a person who does not exist
        assert {a["person_id"] for a in fam.get("/api/alarms").json()} <= persons_a
        assert {i["person_id"] for i in fam.get("/api/incidents").json()} <= persons_a
        assert fam.post(f"/api/alarms/{other_alarm['alarm_id']}/ack").status_code == 404
        assert fam.get("/api/persons").json() == [p for p in fam.get("/api/persons").json() if p["person_id"] in persons_a]


def test_the_control_room_records_the_verification_call_and_an_injury_sends_an_ambulance(start_api, jiashan_url: str) -> None:
    from dispatch.incidents import open_for_alarm
    from ingest.alarm_store import apply_transitions
    from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind

    smoke = AlarmTransition(Action.RAISE, SourceKind.PERSON, "P-0001", AlarmType.SMOKE, Severity.CRITICAL, datetime.now(UTC),
                            emergency=True, detail={"sensor_id": "smoke-1"})
    with psycopg.connect(jiashan_url) as conn:
        apply_transitions(conn.cursor(), [smoke], datetime.now(UTC))
        conn.commit()
        [alarm_id] = conn.execute("SELECT alarm_id FROM alarms WHERE alarm_type = 'smoke'").fetchone()
        fire = open_for_alarm(conn, alarm_id, datetime.now(UTC))
    assert fire is not None and fire["kind"] == "fire" and fire["verify_by"] is not None
    api = start_api(jiashan_url)
    path = f"/api/incidents/{fire['incident_id']}/verification"
    with api.client("op1") as op:
        assert op.post(path, json={"outcome": "maybe"}).status_code == 422
        answered = op.post(path, json={"outcome": "ok"})
        assert answered.status_code == 200 and answered.json()["companion"] is None
        assert answered.json()["incident"]["verified_by"] == "op1"
        hurt = op.post(path, json={"outcome": "hurt"}).json()
        assert hurt["companion"]["kind"] == "medical" and hurt["companion"]["parent_incident_id"] == fire["incident_id"]
        r = op.post("/api/incidents/INC-999999/verification", json={"outcome": "ok"})
        assert r.status_code == 409 and "fire or gas" in r.json()["detail"]


def test_bad_input_gets_a_clear_4xx_never_a_500(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    with api.client("disp1") as http:
        cases = [
            http.post("/api/incidents", content=b"x" * 1_000_000, headers={"Content-Type": "application/json"}),
            http.post("/api/incidents", content=b"{not json", headers={"Content-Type": "application/json"}),
            http.post("/api/incidents", json={"lat": "north", "lon": 120.9}),
            http.post("/api/incidents", json={"lat": 95, "lon": 120.9}),
            http.post("/api/incidents", json={"lat": 30.8, "lon": 120.9, "priority": "urgent"}),
            http.post("/api/incidents", json=[1, 2, 3]),
            http.post("/api/incidents/INC-999999/assign", json={"unit_id": "AMB-01"}),
            http.post("/api/incidents/INC-999999/assign", json={}),
            http.post("/api/alarms/notanumber/ack"),
            http.post("/api/alarms/99999/ack"),
            http.get("/api/alarms", params={"state": "exploded"}),
            http.get("/api/stations/WS-001/readings", params={"from": "yesterday", "to": "today"}),
            http.get("/api/stations/WS-001/readings", params={"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"}),
            http.get("/api/stations/WS-001/readings", params={"from": "2020-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "bucket": 60}),
            http.get("/api/stations/NOPE/readings", params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}),
            http.get("/api/stations/WS-001/readings", params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "series": "week"}),
            http.get("/api/stations/WS-001/readings", params={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "series": "minute"}),
            http.get("/api/persons/'; DROP TABLE persons; --"),
            http.post("/api/token", data={"username": "x" * 1000, "password": "y"}),
        ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"], r.text


def test_a_stations_own_hour_averages_are_read_apart_from_its_real_time_readings(start_api, jiashan_url: str) -> None:
    hour = datetime(2026, 1, 1, 10, tzinfo=UTC)
    with psycopg.connect(jiashan_url) as conn:
        conn.execute(
            "INSERT INTO station_averages (station_id, period, period_start, nh3n_mg_l, nh3n_mg_l_flag, tp_mg_l, tp_mg_l_min, "
            "tp_mg_l_max, tp_mg_l_flag) VALUES ('WS-001', 'hour', %s, 2.0, 'T', 0.09, 0.07, 0.12, 'M')", (hour,),
        )
        conn.execute("INSERT INTO water_readings (station_id, ts, ph) VALUES ('WS-001', %s, 7.2)", (hour,))
    api = start_api(jiashan_url)
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    with api.client("op1") as http:
        [row] = http.get("/api/stations/WS-001/readings", params={**window, "series": "hour"}).json()
        assert (row["period"], row["nh3n_mg_l"], row["nh3n_mg_l_flag"], row["tp_mg_l_min"], row["tp_mg_l_flag"]) == ("hour", 2.0, "T", 0.07, "M")
        assert datetime.fromisoformat(row["bucket"]) == hour
        assert http.get("/api/stations/WS-001/readings", params={**window, "series": "day"}).json() == []
        [realtime] = http.get("/api/stations/WS-001/readings", params=window).json()
        assert realtime["ph"] == 7.2 and realtime["nh3n_mg_l"] is None


def test_a_stations_grade_over_a_day_is_the_mean_of_its_normal_hours_and_says_what_it_covers(start_api, jiashan_url: str) -> None:
    day = datetime(2026, 1, 2, tzinfo=UTC)
    with psycopg.connect(jiashan_url) as conn:
        for h, (nh3n, tp, tp_flag) in enumerate([(1.2, 0.1, "N"), (1.4, 0.9, "M"), (1.3, 0.1, "N")]):
            conn.execute(
                "INSERT INTO station_averages (station_id, period, period_start, nh3n_mg_l, nh3n_mg_l_flag, tp_mg_l, tp_mg_l_flag) "
                "VALUES ('WS-001', 'hour', %s, %s, 'N', %s, %s)", (day + timedelta(hours=h), nh3n, tp, tp_flag),
            )
    api = start_api(jiashan_url)
    with api.client("op1") as http:
        doc = http.get("/api/stations/WS-001/grade", params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-03T00:00:00Z"}).json()
        assert (doc["hours"], doc["class"], doc["worst_parameter"], doc["covers"]) == (3, "IV", "nh3n_mg_l", ["nh3n_mg_l", "tp_mg_l"])
        assert doc["means"]["tp_mg_l"] == pytest.approx(0.1)  # the hour in maintenance is not in the mean
        assert http.get("/api/stations/NOPE/grade", params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-03T00:00:00Z"}).status_code == 404


def test_a_stations_daily_and_monthly_classes_are_graded_per_county_day_and_month(start_api, jiashan_url: str) -> None:
    cst = timezone(timedelta(hours=8))
    # 23:00 and 00:00 China Standard Time are two days; the 1st of February another month.
    hours = [(datetime(2026, 1, 1, 23, tzinfo=cst), 0.4), (datetime(2026, 1, 2, 0, tzinfo=cst), 1.8),
             (datetime(2026, 1, 2, 1, tzinfo=cst), 1.6), (datetime(2026, 2, 1, 9, tzinfo=cst), 0.1)]
    with psycopg.connect(jiashan_url) as conn:
        for at, nh3n in hours:
            conn.execute("INSERT INTO station_averages (station_id, period, period_start, nh3n_mg_l, nh3n_mg_l_flag, do_mg_l, do_mg_l_flag) "
                         "VALUES ('WS-001', 'hour', %s, %s, 'N', 7.6, 'N')", (at, nh3n))
        # A spill day: NH3-N over the analyser's range for two hours, one hour normal; TP in maintenance all day.
        for h, (nh3n, flag) in enumerate([(2.5, "T"), (2.5, "T"), (1.0, "N")]):
            conn.execute("INSERT INTO station_averages (station_id, period, period_start, nh3n_mg_l, nh3n_mg_l_flag, tp_mg_l, tp_mg_l_flag) "
                         "VALUES ('WS-001', 'hour', %s, %s, %s, 0.3, 'M')", (datetime(2026, 1, 3, 8 + h, tzinfo=cst), nh3n, flag))
    api = start_api(jiashan_url)
    window = {"from": "2026-01-01T00:00:00+08:00", "to": "2026-03-01T00:00:00+08:00"}
    with api.client("op1") as http:
        days = http.get("/api/stations/WS-001/grade", params={**window, "period": "day"}).json()
        assert days["period"] == "day" and days["hours"] == 7
        assert [(datetime.fromisoformat(d["start"]).astimezone(cst).date().isoformat(), d["hours"], d["class"]) for d in days["periods"]] == [
            ("2026-01-01", 1, "II"), ("2026-01-02", 2, "V"), ("2026-01-03", 3, "V"), ("2026-02-01", 1, "I")]
        # The over-range hours count as lower bounds: the day is at least class V, never graded by its quiet hour alone.
        spill = days["periods"][2]
        assert spill["at_least"] is True and spill["means"]["nh3n_mg_l"] == pytest.approx(2.0)
        assert spill["left_out"] == {"tp_mg_l": "M"} and "tp_mg_l" not in spill["means"]
        jan2 = days["periods"][1]
        assert jan2["covers"] == ["do_mg_l", "nh3n_mg_l"] and jan2["worst_parameter"] == "nh3n_mg_l"
        assert datetime.fromisoformat(jan2["end"]) - datetime.fromisoformat(jan2["start"]) == timedelta(days=1)
        months = http.get("/api/stations/WS-001/grade", params={**window, "period": "month"}).json()["periods"]
        assert [(datetime.fromisoformat(m["start"]).astimezone(cst).strftime("%Y-%m"), m["hours"]) for m in months] == [("2026-01", 6), ("2026-02", 1)]
        assert months[0]["means"]["nh3n_mg_l"] == pytest.approx((0.4 + 1.8 + 1.6 + 2.5 + 2.5 + 1.0) / 6)
        assert http.get("/api/stations/WS-001/grade", params={**window, "period": "week"}).status_code == 422


def test_logins_are_rate_limited(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    codes = [httpx.post(f"{api.base}/api/token", data={"username": "op1", "password": "wrong"}).status_code for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    assert httpx.post(f"{api.base}/api/token", data={"username": "op1", "password": "correct-horse-battery"}).status_code == 429


def test_operator_reads_of_a_persons_health_data_are_logged(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    with api.client("op1") as op:
        assert op.get("/api/persons/P-0001").status_code == 200
    with psycopg.connect(jiashan_url) as conn:
        assert conn.execute("SELECT username, person_id FROM access_log").fetchall() == [("op1", "P-0001")]


def test_websockets_refuse_missing_bad_and_wrong_role_tokens(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    family = next(iter(family_users(jiashan_url)))
    for path in ("/ws/console", "/ws/console?token=bad", f"/ws/console?token={api.token(family)}",
                 "/ws/family", f"/ws/family?token={api.token('op1')}"):
        with pytest.raises(ConnectionClosed) as closed:
            with ws_connect(api.ws_base + path) as ws:
                ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1008, path


def test_console_gets_events_live_catches_up_after_a_blip_and_sees_events_from_another_api(
    start_api, start_dispatcher, jiashan_url: str
) -> None:
    api_a = start_api(jiashan_url, "api-a")
    api_b = start_api(jiashan_url, "api-b")
    token = api_a.token("op1")
    with ws_connect(f"{api_a.ws_base}/ws/console?token={token}") as ws:
        with api_b.client("disp1") as disp:
            created = disp.post("/api/incidents", json={"lat": 30.85, "lon": 120.93, "kind": "medical", "priority": 2}).json()
        event = orjson.loads(ws.recv(timeout=5))
        assert event["type"] == "incident.created" and event["data"]["incident_id"] == created["incident_id"]
        assert set(event) >= {"type", "ts", "data"}
        last_id = event["id"]
    # While the console is away, two more incidents happen.
    with api_b.client("disp1") as disp:
        missed = [disp.post("/api/incidents", json={"lat": 30.85, "lon": 120.93}).json()["incident_id"] for _ in range(2)]
    with ws_connect(f"{api_a.ws_base}/ws/console?token={token}&last_event_id={last_id}") as ws:
        caught = [orjson.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert [e["data"]["incident_id"] for e in caught] == missed
    assert all(e["id"] > last_id for e in caught)


def test_family_websocket_gets_only_its_relatives_alerts(
    start_api, start_ingest, start_dispatcher, publisher: Publisher, jiashan_url: str
) -> None:
    user_a, persons_a, other = two_families(jiashan_url)
    mine = sorted(persons_a)[0]
    start_dispatcher(jiashan_url)  # it opens the SOS's incident
    start_ingest(db_url=jiashan_url)
    api = start_api(jiashan_url)
    with ws_connect(f"{api.ws_base}/ws/family?token={api.token(user_a)}") as ws:
        publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/elder/{other}/wearable", orjson.dumps({"ts": time.time(), "sos": True}))])
        # The other family's events are in the stream before ours: were they let through,
        # they would be what the socket gets first.
        wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM events WHERE person_id = %s", other) > 0)
        publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/elder/{mine}/wearable", orjson.dumps({"ts": time.time(), "sos": True}))])
        # alarm.raised and incident.created, then the dispatcher's incident.updated (a unit sent);
        # everything until the stream has been quiet for a second.
        got = [orjson.loads(ws.recv(timeout=5)) for _ in range(2)]
        while True:
            try:
                got.append(orjson.loads(ws.recv(timeout=1)))
            except TimeoutError:
                break
    assert {e["data"]["person_id"] for e in got} == {mine}
    assert {"alarm.raised", "incident.created"} <= {e["type"] for e in got}


def test_the_public_cap_feed_carries_a_valid_cap_alert_per_open_water_alarm(start_api, jiashan_url: str) -> None:
    from xml.etree import ElementTree as ET

    from ingest.alarm_store import apply_transitions
    from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind

    with psycopg.connect(jiashan_url) as conn:
        stations = [r[0] for r in conn.execute("SELECT station_id FROM stations ORDER BY station_id LIMIT 2")]
        now = datetime.now(UTC)
        apply_transitions(conn.cursor(), [
            AlarmTransition(Action.RAISE, SourceKind.STATION, s, AlarmType.WATER_CLASS_EXCEEDED, Severity.MAJOR, now, detail={"class": 4})
            for s in stations
        ], now)
    api = start_api(jiashan_url)
    r = httpx.get(f"{api.base}/api/cap")  # public: no token
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    ns = {"atom": "http://www.w3.org/2005/Atom", "cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    feed = ET.fromstring(r.content)
    alerts = feed.findall("atom:entry/atom:content/cap:alert", ns)
    assert len(alerts) == 2
    for alert in alerts:
        for field in ("identifier", "sender", "sent", "status", "msgType", "scope"):
            assert alert.findtext(f"cap:{field}", namespaces=ns), field
        assert alert.findtext("cap:scope", namespaces=ns) == "Public"
        info = alert.find("cap:info", ns)
        for field in ("category", "event", "urgency", "severity", "certainty"):
            assert info.findtext(f"cap:{field}", namespaces=ns), field
        area = info.find("cap:area", ns)
        assert area.findtext("cap:areaDesc", namespaces=ns) and area.findtext("cap:circle", namespaces=ns)


def test_readiness_reports_the_database_and_the_event_stream(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    wait_for(lambda: httpx.get(f"{api.base}/readyz").status_code == 200, timeout=10)
    assert httpx.get(f"{api.base}/readyz").json() == {"ready": True, "database": "ok", "event_stream": "ok"}


def test_a_console_catch_up_that_replays_a_persons_alarm_is_logged(start_api, jiashan_url: str) -> None:
    from kernel.events import EventType, emit

    api = start_api(jiashan_url)
    with psycopg.connect(jiashan_url) as conn, conn.cursor() as cur:
        emit(cur, EventType.ALARM_RAISED, "P-0001", {"alarm_id": 1, "person_id": "P-0001", "alarm_type": "sos"}, datetime.now(UTC))
    with ws_connect(f"{api.ws_base}/ws/console?token={api.token('op1')}&last_event_id=0") as ws:
        replayed = orjson.loads(ws.recv(timeout=5))
    assert replayed["type"] == "alarm.raised"
    with psycopg.connect(jiashan_url) as conn:
        logged = conn.execute("SELECT username, person_id, what FROM access_log").fetchall()
    assert logged == [("op1", "P-0001", "console catch-up")]
