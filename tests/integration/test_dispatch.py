"""The dispatcher on the real broker and database, over the simulated Jiashan county."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from psycopg.rows import dict_row

from dispatch.assignment import Incident, Priority, Unit, UnitStatus, decide
from dispatch.snapping import scene_field, snap_to_edge
from dispatch.store import create_incident
from tests.fix_broker import TEST_ROOT, Publisher, free_port
from tests.fix_db import count
from tests.fix_wait import metric, wait_for

pytestmark = pytest.mark.slow


def rows(url: str, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def new_incident(url: str, lat: float, lon: float, priority: int = 2, kind: str = "medical") -> str:
    with psycopg.connect(url) as conn:
        return create_incident(conn, lat=lat, lon=lon, kind=kind, priority=priority, description="test call", actor="calltaker", now=datetime.now(UTC))["incident_id"]


def report(url: str, publisher: Publisher, unit_id: str, *statuses: str) -> None:
    """A crew reports one status at a time, each once the last has been taken in: applied
    or rejected, a report moves the unit's last report time to its own."""
    for status in statuses:
        ts = time.time()
        publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/unit/{unit_id}/status", orjson.dumps({"ts": ts, "status": status}))])
        reported = datetime.fromtimestamp(ts, UTC)
        wait_for(lambda reported=reported: last_report(url, unit_id) == reported)


def passes(port: int) -> float:
    return metric(port, "watchpost_dispatch_queue_passes_total")


def last_report(url: str, unit_id: str) -> datetime | None:
    found = rows(url, "SELECT report_ts FROM unit_state WHERE unit_id = %s", unit_id)
    return found[0]["report_ts"] if found else None


def test_an_incident_gets_an_order_for_the_nearest_unit_by_road_with_its_eta(
    start_dispatcher, collect, jiashan_url: str, jiashan_network, jiashan_registry
) -> None:
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(jiashan_url)
    lat, lon = 30.87, 120.95
    incident_id = new_incident(jiashan_url, lat, lon, priority=1)
    [(_, topic, payload)] = orders.wait_for(1)
    order = orjson.loads(payload)

    # The same decision, made here from the registry: every ambulance parked at its base.
    graph = jiashan_network.graph
    bases = {f["facility_id"]: f for f in jiashan_registry["facilities"]}
    snaps = {u["unit_id"]: snap_to_edge(graph, bases[u["base_facility_id"]]["lat"], bases[u["base_facility_id"]]["lon"])
             for u in jiashan_registry["units"]}
    units = [Unit(u["unit_id"], u["kind"], UnitStatus.AVAILABLE, snaps[u["unit_id"]].u, at_base=True) for u in jiashan_registry["units"]]
    field = scene_field(graph, snap_to_edge(graph, lat, lon))
    etas = {unit_id: field.eta_of(graph, snap) for unit_id, snap in snaps.items()}
    expected = decide(Incident(incident_id, Priority.P1, datetime.now(UTC)), units, etas, datetime.now(UTC)).chosen
    assert topic == f"{TEST_ROOT}/unit/{expected.unit_id}/order"
    assert order["incident_id"] == incident_id and order["priority"] == 1
    assert order["eta_s"] == pytest.approx(expected.eta_s, abs=0.1)
    assert order["hospital_id"] and order["first_aid_post_id"]
    [audit] = rows(jiashan_url, "SELECT * FROM dispatch_audit WHERE action = 'assigned'")
    assert audit["detail"]["chosen"]["unit_id"] == expected.unit_id and len(audit["detail"]["ranked"]) >= 2
    # Parked, never reported GPS: at its base, not stale, and the scene's walk from the road audited.
    assert audit["detail"]["rule"] == "nearest available by road time"
    assert audit["detail"]["chosen"]["at_base"] and audit["detail"]["snap"] == "edge"
    assert audit["detail"]["snap_m"] == pytest.approx(field.scene.distance_m, abs=0.1)


def test_status_messages_drive_the_unit_and_incident_lifecycle(start_dispatcher, collect, broker, jiashan_url: str) -> None:
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(jiashan_url)
    incident_id = new_incident(jiashan_url, 30.83, 120.92)
    [(_, topic, _)] = orders.wait_for(1)
    unit_id = topic.split("/")[-2]
    crew = Publisher(broker)
    try:
        report(jiashan_url, crew, unit_id, "en_route", "on_scene")
        wait_for(lambda: rows(jiashan_url, "SELECT state FROM incidents WHERE incident_id = %s", incident_id)[0]["state"] == "on_scene")
        report(jiashan_url, crew, unit_id, "at_hospital")  # illegal: on_scene → at_hospital skips transporting
        report(jiashan_url, crew, unit_id, "transporting", "at_hospital", "returning", "available")
    finally:
        crew.close()
    wait_for(lambda: rows(jiashan_url, "SELECT status FROM unit_state WHERE unit_id = %s", unit_id)[0]["status"] == "available")
    [incident] = rows(jiashan_url, "SELECT * FROM incidents WHERE incident_id = %s", incident_id)
    assert incident["state"] == "closed"
    [rejected] = rows(jiashan_url, "SELECT * FROM dispatch_audit WHERE action = 'rejected_transition'")
    assert rejected["detail"]["reported"] == "at_hospital" and "on_scene" in rejected["detail"]["reason"]
    steps = [r["detail"]["to"] for r in rows(jiashan_url, "SELECT detail FROM dispatch_audit WHERE action = 'transition' ORDER BY at")]
    assert steps == ["en_route", "on_scene", "transporting", "at_hospital", "returning", "available"]
    [assignment] = rows(jiashan_url, "SELECT state FROM assignments")
    assert assignment["state"] == "done"
    # Every status change sampled the coverage once: the dispatched unit left fewer villages covered.
    wait_for(lambda: len(rows(jiashan_url, "SELECT 1 FROM coverage_samples")) >= 7)
    shares = [r["within_15"] for r in rows(jiashan_url, "SELECT within_15 FROM coverage_samples ORDER BY at")]
    assert min(shares) <= shares[-1] and 0 < shares[-1] <= 1


def test_100_incidents_and_two_dispatchers_never_double_book_and_serve_by_priority(
    start_dispatcher, broker, jiashan_url: str, jiashan_registry
) -> None:
    rng = random.Random(7)
    priorities = [1] * 10 + [2] * 20 + [3] * 30 + [4] * 40
    rng.shuffle(priorities)
    stations = [s for s in jiashan_registry["stations"]]
    for p in priorities:  # spread over the county: near random water stations
        s = rng.choice(stations)
        new_incident(jiashan_url, s["lat"] + rng.uniform(-0.01, 0.01), s["lon"] + rng.uniform(-0.01, 0.01), priority=p)
    ambulances = [u["unit_id"] for u in jiashan_registry["units"] if u["kind"] == "ambulance"]
    ports = [free_port(), free_port()]
    start_dispatcher(jiashan_url, "dispatch-a", metrics_port=str(ports[0]))
    start_dispatcher(jiashan_url, "dispatch-b", metrics_port=str(ports[1]))
    wait_for(lambda: len(rows(jiashan_url, "SELECT 1 FROM assignments")) == len(ambulances))
    # Two more passes each: at least one whole pass over the queue after every unit was booked.
    for port, seen in [(p, passes(p)) for p in ports]:
        wait_for(lambda port=port, seen=seen: passes(port) >= seen + 2, timeout=15)

    booked = rows(jiashan_url, "SELECT a.unit_id, i.priority FROM assignments a JOIN incidents i USING (incident_id)")
    assert len(booked) == len({b["unit_id"] for b in booked}) == len(ambulances)
    waiting = rows(jiashan_url, "SELECT priority FROM incidents WHERE state = 'new'")
    assert max(b["priority"] for b in booked) <= min(w["priority"] for w in waiting)

    # Free the units twice over: each time, the most urgent waiting incidents go first.
    crew = Publisher(broker)
    try:
        for _ in range(2):
            for unit_id in ambulances:
                wait_for(lambda: rows(jiashan_url, "SELECT status FROM unit_state WHERE unit_id = %s", unit_id)[0]["status"] == "dispatched")
                report(jiashan_url, crew, unit_id, "en_route", "on_scene", "returning", "available")
        wait_for(lambda: len(rows(jiashan_url, "SELECT 1 FROM assignments")) == 3 * len(ambulances), timeout=60)
    finally:
        crew.close()
    served = [r["priority"] for r in rows(jiashan_url, "SELECT i.priority FROM assignments a JOIN incidents i USING (incident_id) ORDER BY a.assignment_id")]
    waves = [served[k * len(ambulances):(k + 1) * len(ambulances)] for k in range(3)]
    for earlier, later in zip(waves, waves[1:]):
        assert max(earlier) <= min(later)  # no wave serves a less urgent call than a later one
    assert rows(jiashan_url, "SELECT count(*) AS n FROM assignments a1 JOIN assignments a2 ON a1.unit_id = a2.unit_id "
                "AND a1.assignment_id < a2.assignment_id AND a1.state IN ('ordered','en_route','on_scene') "
                "AND a2.state IN ('ordered','en_route','on_scene')")[0]["n"] == 0


def test_a_cross_border_water_alarm_sends_cap_to_the_partner_and_opens_a_patrol_incident(
    start_ingest, start_dispatcher, collect, publisher: Publisher, jiashan_url: str, jiashan_registry
) -> None:
    station = next(s for s in jiashan_registry["stations"] if s.get("partner_id") == "qingpu")
    alerts = collect("qingpu", "partner/qingpu/water-alert")
    start_ingest(db_url=jiashan_url)
    start_dispatcher(jiashan_url)
    topic = f"{TEST_ROOT}/water/{station['station_id']}/telemetry"
    base = time.time() - 900
    stored_before = len(rows(jiashan_url, "SELECT 1 FROM water_readings WHERE station_id = %s", station["station_id"]))
    for i, nh3n in enumerate([1.8] * 3 + [0.1] * 3):  # class V (worse than its target) × 3, then class I × 3
        publisher.wait_acked([publisher.publish(topic, orjson.dumps({"ts": base + 60 * i, "ph": 7.2, "do_mg_l": 7.6, "nh3n_mg_l": nh3n}))])
        # One reading per batch, as stations report: the next goes out once this one is stored.
        wait_for(lambda stored=stored_before + i + 1: len(rows(jiashan_url, "SELECT 1 FROM water_readings WHERE station_id = %s", station["station_id"])) == stored)
    messages = alerts.wait_for(2, timeout=30)
    from xml.etree import ElementTree as ET

    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    docs = [ET.fromstring(m[2]) for m in messages]
    assert [d.findtext("cap:msgType", namespaces=ns) for d in docs] == ["Alert", "Cancel"]
    for d in docs:
        for field in ("identifier", "sender", "sent", "status", "scope"):
            assert d.findtext(f"cap:{field}", namespaces=ns)
        info = d.find("cap:info", ns)
        for field in ("category", "event", "urgency", "severity", "certainty"):
            assert info.findtext(f"cap:{field}", namespaces=ns)
        assert info.find("cap:area/cap:areaDesc", ns) is not None
    assert docs[1].findtext("cap:references", namespaces=ns).split(",")[1] == docs[0].findtext("cap:identifier", namespaces=ns)
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM incidents WHERE kind = 'water' AND loop_stage = 'verified'") == 1)
    [incident] = rows(jiashan_url, "SELECT * FROM incidents WHERE kind = 'water'")
    assert incident["station_id"] == station["station_id"] and incident["loop_stage"] == "verified"
    [assignment] = rows(jiashan_url, "SELECT a.*, u.kind FROM assignments a JOIN units u USING (unit_id)")
    assert assignment["kind"] == "river_patrol"


def test_an_order_not_answered_with_en_route_goes_to_the_next_candidate(start_dispatcher, collect, jiashan_url: str) -> None:
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(jiashan_url, dispatch__redispatch_after_s="2")
    incident_id = new_incident(jiashan_url, 30.87, 120.95, priority=1)
    first, second = orders.wait_for(2, timeout=15)
    assert orjson.loads(first[2])["incident_id"] == orjson.loads(second[2])["incident_id"] == incident_id
    assert first[1] != second[1]  # another unit
    assert 2.0 <= second[0] - first[0] <= 5.0
    [refused] = rows(jiashan_url, "SELECT * FROM dispatch_audit WHERE action = 'refused'")
    assert refused["unit_id"] == first[1].split("/")[-2] and "en_route" in refused["detail"]["reason"]
    second_decision = rows(jiashan_url, "SELECT decision FROM assignments WHERE state = 'ordered'")[0]["decision"]
    assert refused["unit_id"] in second_decision["refused"]


def test_a_dispatcher_can_override_the_choice_and_the_first_unit_is_stood_down(jiashan_url: str, jiashan_network) -> None:
    from dispatch.store import assign, load_facilities

    with psycopg.connect(jiashan_url) as conn:
        facilities = load_facilities(conn, jiashan_network.graph)
        incident_id = new_incident(jiashan_url, 30.85, 120.93, priority=2)
        first = assign(conn, incident_id, jiashan_network.graph, facilities, datetime.now(UTC))
        override = "AMB-01" if first.unit_id != "AMB-01" else "AMB-02"
        second = assign(conn, incident_id, jiashan_network.graph, facilities, datetime.now(UTC), actor="disp1", forced_unit=override)
    assert second.unit_id == override and second.incident_id == incident_id
    states = {r["unit_id"]: r["state"] for r in rows(jiashan_url, "SELECT unit_id, state FROM assignments")}
    assert states == {first.unit_id: "stood_down", override: "ordered"}
    assert rows(jiashan_url, "SELECT status FROM unit_state WHERE unit_id = %s", first.unit_id)[0]["status"] == "available"
    [audit] = rows(jiashan_url, "SELECT detail FROM dispatch_audit WHERE action = 'assigned' AND actor = 'disp1'")
    assert audit["detail"]["rule"] == "manual override by disp1"


def test_the_dispatcher_rides_out_a_broker_restart(start_dispatcher, collect, broker, jiashan_url: str) -> None:
    dispatcher = start_dispatcher(jiashan_url)
    broker.stop()
    broker.start()
    wait_for(lambda: dispatcher.log().count("dispatcher connected to the broker") >= 2, timeout=40)
    orders = collect("simulator", "unit/+/order")
    incident_id = new_incident(jiashan_url, 30.86, 120.94)
    [(_, _, payload)] = orders.wait_for(1)
    assert orjson.loads(payload)["incident_id"] == incident_id
    assert dispatcher.process.poll() is None


def test_a_dispatcher_reports_ready_once_connected_to_broker_database_and_events(start_dispatcher, jiashan_url: str) -> None:
    import urllib.request

    from tests.fix_broker import free_port

    port = free_port()
    start_dispatcher(jiashan_url, metrics_port=str(port))

    def ready() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200
        except OSError:
            return False

    wait_for(ready, timeout=20)
    body = orjson.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").read())
    assert body == {"ready": True, "broker": "ok", "database": "ok", "event_stream": "ok"}


def test_smoke_and_gas_go_to_the_fire_service_and_someone_hurt_adds_an_ambulance(jiashan_url: str, jiashan_network) -> None:
    from dispatch.store import add_companion, assign, load_facilities

    graph = jiashan_network.graph
    with psycopg.connect(jiashan_url) as conn:
        facilities = load_facilities(conn, graph)
        fire_id = new_incident(jiashan_url, 30.944, 120.888, priority=1, kind="fire")  # in Xitang
        fire = assign(conn, fire_id, graph, facilities, datetime.now(UTC))
        gas_id = new_incident(jiashan_url, 30.85, 120.93, priority=2, kind="gas")
        gas = assign(conn, gas_id, graph, facilities, datetime.now(UTC))
        assert fire.unit_id.startswith("FIRE-") and gas.unit_id.startswith("FIRE-")
        assert fire.hospital_id is None and fire.first_aid_post_id is None  # a fire crew takes no patient
        handoffs = {(r["incident_id"], r["detail"]["service"]): r["detail"]["facility_id"]
                    for r in rows(jiashan_url, "SELECT incident_id, detail FROM dispatch_audit WHERE action = 'handoff'")}
        assert handoffs == {(fire_id, "fire_service_119"): "FS-XITANG", (gas_id, "fire_service_119"): "FS-WEITANG",
                            (gas_id, "gas_company"): "GAS-JIASHAN"}

        companion = add_companion(conn, fire_id, "hurt", "op1", datetime.now(UTC))
        assert companion is not None and companion["kind"] == "medical" and companion["priority"] == 1
        assert companion["parent_incident_id"] == fire_id
        assert add_companion(conn, fire_id, "no_answer", "op1", datetime.now(UTC)) is None  # one ambulance is enough
        ambulance = assign(conn, companion["incident_id"], graph, facilities, datetime.now(UTC))
        assert ambulance.unit_id.startswith("AMB-") and ambulance.hospital_id is not None
        medical_id = new_incident(jiashan_url, 30.85, 120.93, priority=2)
        assert add_companion(conn, medical_id, "hurt", "op1", datetime.now(UTC)) is None  # already an ambulance's


CAP_ACK = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>qingpu-ack-1</identifier><sender>duty@qingpu.example</sender><sent>{sent}</sent>
  <status>Actual</status><msgType>Ack</msgType><scope>Restricted</scope>
  <references>{references}</references><note>joint patrol on its way</note>
</alert>"""


def test_a_spill_at_a_cross_border_section_alarms_from_hourly_uploads_and_the_partner_acknowledges(
    start_ingest, start_dispatcher, collect, publisher: Publisher, jiashan_url: str, jiashan_registry, tmp_path
) -> None:
    from datetime import timedelta

    from dispatch.partner_loop import escalate_overdue

    station = next(s for s in jiashan_registry["stations"] if s.get("partner_id") == "qingpu")
    assert station["category"] == "cross_border"
    alerts = collect("qingpu", "partner/qingpu/water-alert")
    start_ingest(db_url=jiashan_url)
    start_dispatcher(jiashan_url)
    topic = f"{TEST_ROOT}/water/{station['station_id']}/averages"
    first_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    # NH3-N over the analyser's range (T) for three hours; the TP analyser in maintenance.
    for h in range(3):
        payload = {"period": "hour", "ts": (first_hour + timedelta(hours=h)).isoformat(),
                   "values": {"nh3n_mg_l": {"avg": 2.0, "flag": "T"}, "tp_mg_l": {"avg": 0.9, "flag": "M"},
                              "codmn_mg_l": {"avg": 4.5}}}
        publisher.wait_acked([publisher.publish(topic, orjson.dumps(payload))])
    [(_, _, document)] = alerts.wait_for(1, timeout=30)
    from xml.etree import ElementTree as ET

    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    alert = ET.fromstring(document)
    assert alert.findtext("cap:msgType", namespaces=ns) == "Alert"
    [alarm] = rows(jiashan_url, "SELECT * FROM alarms WHERE alarm_type = 'water_hourly_exceeded'")
    assert alarm["source_id"] == station["station_id"] and alarm["detail"]["parameter"] == "nh3n_mg_l"
    assert alarm["detail"]["at_least"] is True and alarm["detail"]["left_out"] == {"tp_mg_l": "M"}
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM incidents WHERE kind = 'water' AND station_id = %s", station["station_id"]) == 1)

    # No answer within the partner's time: escalated once to its duty contact.
    with psycopg.connect(jiashan_url) as conn:
        assert escalate_overdue(conn, datetime.now(UTC)) == []
        assert escalate_overdue(conn, datetime.now(UTC) + timedelta(minutes=11)) == [alarm["alarm_id"]]
        assert escalate_overdue(conn, datetime.now(UTC) + timedelta(minutes=30)) == []
    [escalated] = rows(jiashan_url, "SELECT data FROM events WHERE data ->> 'change' = 'partner_escalated'")
    assert escalated["data"]["duty_contact"]

    # The partner's CAP Ack references our Alert: who accepted it, and when, are recorded.
    references = f"{alert.findtext('cap:sender', namespaces=ns)},{alert.findtext('cap:identifier', namespaces=ns)},{alert.findtext('cap:sent', namespaces=ns)}"
    ack = CAP_ACK.format(sent=datetime.now(UTC).isoformat(timespec="seconds"), references=references)
    alerts.client.publish(f"{TEST_ROOT}/partner/qingpu/water-ack", ack.encode(), qos=1).wait_for_publish(10)
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM cap_alerts WHERE answer = 'Ack'") == 1)
    [answered] = rows(jiashan_url, "SELECT answered_by, answer_note, escalated_at FROM cap_alerts WHERE msg_type = 'Alert'")
    assert answered["answered_by"] == "duty@qingpu.example" and answered["answer_note"] == "joint patrol on its way"
    [accepted] = rows(jiashan_url, "SELECT data FROM events WHERE data ->> 'change' = 'partner_accepted'")
    assert accepted["data"]["after_escalation"] is True

    # Something else on the partner's topic is dead-lettered with its reason.
    alerts.client.publish(f"{TEST_ROOT}/partner/qingpu/water-ack", b"<alert/>", qos=1).wait_for_publish(10)
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM dead_letters WHERE reason = 'not_cap'") == 1)

    # The control room closes the loop out.
    from dispatch.store import close_incident

    [incident] = rows(jiashan_url, "SELECT incident_id FROM incidents WHERE kind = 'water' AND station_id = %s", station["station_id"])
    with psycopg.connect(jiashan_url) as conn:
        assert close_incident(conn, incident["incident_id"], "op1", datetime.now(UTC)) is not None

    # The month's cross-border report for the partner: the alert, who accepted it, the loop.
    from zoneinfo import ZoneInfo

    from dashboard.partner_report import build
    from kernel.settings import RegionSettings

    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    html_path, pdf_path = build(jiashan_url, "qingpu", month, tmp_path, region=RegionSettings(), pdf=False)
    text = html_path.read_text()
    assert pdf_path is None and station["station_id"] in text and "duty@qingpu.example" in text
    assert "accepted" in text and "water_hourly_exceeded" in text and "patrol assigned" in text
    from dashboard.partner_report import collect, month_window

    with psycopg.connect(jiashan_url) as conn:
        [sent] = collect(conn, "qingpu", *month_window(month)).alerts
    assert sent["answered_by"] == "duty@qingpu.example" and sent["escalated_at"] is not None
    assert all(sent["stages"][s] is not None for s in ("alert sent", "partner answered", "closed out"))


def test_the_real_time_and_hourly_alarms_of_one_exceedance_reach_the_partner_as_one_alert_and_its_update(
    start_dispatcher, collect, jiashan_url: str, jiashan_registry
) -> None:
    from datetime import timedelta
    from xml.etree import ElementTree as ET

    from dispatch.partner_loop import escalate_overdue
    from ingest.alarm_store import apply_transitions
    from ingest.rules.alarms import Action, AlarmTransition, AlarmType, Severity, SourceKind

    station = next(s for s in jiashan_registry["stations"] if s.get("partner_id") == "qingpu")
    alerts = collect("qingpu", "partner/qingpu/water-alert")
    start_dispatcher(jiashan_url)

    def raise_(alarm_type: AlarmType) -> None:
        now = datetime.now(UTC)
        with psycopg.connect(jiashan_url) as conn, conn.transaction(), conn.cursor() as cur:
            apply_transitions(cur, [AlarmTransition(Action.RAISE, SourceKind.STATION, station["station_id"], alarm_type, Severity.MAJOR, now,
                                                    detail={"parameter": "nh3n_mg_l"})], now)

    raise_(AlarmType.WATER_CLASS_EXCEEDED)
    alerts.wait_for(1, timeout=30)
    raise_(AlarmType.WATER_HOURLY_EXCEEDED)
    messages = alerts.wait_for(2, timeout=30)
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    alert, update = (ET.fromstring(m[2]) for m in messages)
    assert [d.findtext("cap:msgType", namespaces=ns) for d in (alert, update)] == ["Alert", "Update"]
    first = ",".join(alert.findtext(f"cap:{f}", namespaces=ns) for f in ("sender", "identifier", "sent"))
    assert update.findtext("cap:references", namespaces=ns) == first
    [incident] = rows(jiashan_url, "SELECT incident_id FROM incidents WHERE kind = 'water' AND station_id = %s", station["station_id"])
    assert count(jiashan_url, "SELECT count(*) FROM incident_alarms WHERE incident_id = %s", incident["incident_id"]) == 2

    # Only the Alert waits for the partner's answer: one escalation to its duty contact.
    with psycopg.connect(jiashan_url) as conn:
        assert len(escalate_overdue(conn, datetime.now(UTC) + timedelta(hours=2))) == 1
        assert escalate_overdue(conn, datetime.now(UTC) + timedelta(hours=3)) == []
    assert count(jiashan_url, "SELECT count(*) FROM events WHERE data ->> 'change' = 'partner_escalated'") == 1
