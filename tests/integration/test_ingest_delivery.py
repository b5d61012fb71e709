"""Every message the broker accepted is stored once or dead-lettered, on real services."""

from __future__ import annotations

import orjson

from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_db import count
from tests.fix_ingest import stored_total
from tests.fix_wait import wait_for

NOW = 1_790_000_000  # replaced per test by a recent time


def water(station: str, ts: float, **values: float) -> tuple[str, bytes]:
    return f"{TEST_ROOT}/water/{station}/telemetry", orjson.dumps({"ts": ts, "ph": 7.2, "do_mg_l": 6.1, **values})


def test_n_published_messages_become_exactly_n_rows(start_ingest, publisher: Publisher, database_url: str) -> None:
    import time

    start_ingest()
    base = time.time() - 3600
    mids = []
    for i in range(1000):
        topic, payload = water("WS-001" if i % 2 else "WS-002", base + i)
        mids.append(publisher.publish(topic, payload))
    publisher.wait_acked(mids)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") == 1000)
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert count(database_url, "SELECT sum(n_ph) FROM water_hourly") == 1000


def test_a_redelivered_message_is_stored_once(start_ingest, publisher: Publisher, database_url: str) -> None:
    import time

    start_ingest()
    topic, payload = water("WS-001", time.time() - 10)
    publisher.wait_acked([publisher.publish(topic, payload) for _ in range(3)])
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") == 1)
    publisher.wait_acked([publisher.publish(f"{TEST_ROOT}/water/WS-001/telemetry", b"not json")])
    wait_for(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 1)
    assert count(database_url, "SELECT count(*) FROM water_readings") == 1
    assert count(database_url, "SELECT readings FROM water_hourly") == 1


def test_every_stream_of_the_contract_is_stored(start_ingest, publisher: Publisher, database_url: str) -> None:
    import time

    start_ingest()
    ts = time.time() - 5
    messages = [
        (f"{TEST_ROOT}/elder/P-0001/wearable", {"ts": ts, "hr_bpm": 72, "spo2_pct": 97, "fall": False}),
        (f"{TEST_ROOT}/elder/P-0001/home/motion-1", {"ts": ts, "kind": "motion", "value": True}),
        (f"{TEST_ROOT}/elder/P-0001/home/temp-1", {"ts": ts, "kind": "temperature", "value": 21.5}),
        (f"{TEST_ROOT}/unit/AMB-01/gps", {"ts": ts, "lat": 30.83, "lon": 120.92, "speed_kmh": 40, "heading_deg": 90}),
        (f"{TEST_ROOT}/unit/AMB-01/status", {"ts": ts, "status": "en_route", "incident_id": "INC-1"}),
        (f"{TEST_ROOT}/water/WS-002/telemetry", [{"bn": "", "bt": ts, "n": "ph", "v": 7.0}, {"n": "nh3n_mg_l", "v": 0.4}]),
    ]
    mids = [publisher.publish(t, orjson.dumps(p)) for t, p in messages]
    mids.append(publisher.publish(f"{TEST_ROOT}/unit/AMB-01/online", b"1", retain=True))
    publisher.wait_acked(mids)
    wait_for(lambda: stored_total(database_url) == 6)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM device_presence WHERE online") == 1)
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert count(database_url, "SELECT count(*) FROM water_readings WHERE nh3n_mg_l = 0.4 AND ph = 7.0") == 1


def test_a_device_cannot_publish_under_another_id(broker, start_ingest, database_url: str) -> None:
    import time

    start_ingest()
    station = Publisher(broker, username="WS-001")
    try:
        ok = station.publish(*water("WS-001", time.time()))
        forged = station.publish(*water("WS-002", time.time()))
        # Published after the forgery: once it is stored, the forgery would be too.
        after = station.publish(*water("WS-001", time.time() + 0.001))
        codes = station.wait_acked([ok, forged, after])
    finally:
        station.close()
    assert codes[ok] == codes[after] == 0
    assert codes[forged] == 135  # MQTT v5 "not authorized": the broker never accepted it
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings WHERE station_id = 'WS-001'") == 2)
    assert count(database_url, "SELECT count(*) FROM water_readings WHERE station_id = 'WS-002'") == 0


def test_retention_drops_chunks_older_than_their_policy_and_keeps_the_rest(database_url: str) -> None:
    import psycopg

    from ingest.store import drop_expired_chunks

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO dead_letters VALUES (now() - interval '60 days', 't', 'x', 'not_json', 'old'), "
            "(now(), 't', 'x', 'not_json', 'new')"
        )
        conn.execute("INSERT INTO events (ts, type, data) VALUES (now() - interval '100 days', 'alarm.raised', '{}'), (now(), 'alarm.raised', '{}')")
        conn.commit()
        assert drop_expired_chunks(conn) >= 1
        assert conn.execute("SELECT detail FROM dead_letters").fetchall() == [("new",)]
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_an_ingest_worker_reports_alive_and_ready(start_ingest) -> None:
    import urllib.request

    import orjson

    from tests.fix_broker import free_port

    port = free_port()
    start_ingest(metrics_port=str(port))
    base = f"http://127.0.0.1:{port}"
    assert urllib.request.urlopen(f"{base}/healthz").status == 200
    wait_for(lambda: urllib.request.urlopen(f"{base}/readyz").status == 200)
    assert orjson.loads(urllib.request.urlopen(f"{base}/readyz").read()) == {"ready": True, "broker": "ok", "database": "ok", "lag": "ok"}
    assert b"watchpost_ingest_messages_total" in urllib.request.urlopen(f"{base}/metrics").read()
