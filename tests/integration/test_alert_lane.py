"""The alert lane on the real broker and database: receipts, repeats, a consumer killed
between commit and receipt, suspect clocks, cancel-before-fall, bad alerts, and alerts
overtaking a loaded or backlogged telemetry queue."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from psycopg.rows import dict_row

from ingest.rule_store import RuleRunner, fetch_rule_configs, load_states
from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_db import count
from tests.fix_ingest import stored_total
from tests.fix_wait import wait_for
from kernel.broker import SIMULATOR_USER as GATEWAY_USER


def rows(url: str, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def alarms(url: str, alarm_type: str, person_id: str = "P-0001") -> list[dict]:
    return rows(url, "SELECT * FROM alarms WHERE alarm_type = %s AND person_id = %s ORDER BY alarm_id", alarm_type, person_id)


def now_iso(offset_s: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


def test_a_retried_alert_makes_one_alarm_and_is_answered_twice(start_alerts, device_factory, database_url) -> None:
    start_alerts()
    wearable = device_factory("P-0001", receipts_of="P-0001")  # the device's own account
    wearable.send("P-0001", event_id="sos-1", type="sos", ts=now_iso(), lat=30.85, lon=120.95, acc_m=15)
    [first] = wearable.wait_receipts("sos-1")
    wearable.send("P-0001", event_id="sos-1", type="sos", ts=now_iso())
    receipts = wearable.wait_receipts("sos-1", 2)
    [alarm] = alarms(database_url, "sos")
    assert [r["state"] for r in receipts] == ["received", "received"]
    assert {r["alarm_id"] for r in receipts} == {alarm["alarm_id"]} == {first["alarm_id"]}
    assert alarm["detail"]["event_id"] == "sos-1" and alarm["detail"]["clock_suspect"] is False
    assert (alarm["detail"]["lat"], alarm["detail"]["acc_m"]) == (30.85, 15)
    assert rows(database_url, "SELECT repeats FROM alerts")[0]["repeats"] == 1


def test_a_second_press_on_an_open_sos_is_counted_and_renotified(start_alerts, device_factory, database_url) -> None:
    start_alerts()
    wearable = device_factory("P-0001", receipts_of="P-0001")
    wearable.send("P-0001", event_id="a", type="sos", ts=now_iso())
    wearable.wait_receipts("a")
    wearable.send("P-0001", event_id="b", type="sos", ts=now_iso(-60))  # the watch's clock went backwards
    [receipt] = wearable.wait_receipts("b")
    [alarm] = alarms(database_url, "sos")
    assert alarm["repeat_count"] == 2 and receipt["alarm_id"] == alarm["alarm_id"]
    changes = [r["data"].get("change") for r in rows(database_url, "SELECT data FROM events WHERE type = 'alarm.updated'")]
    assert "repeated" in changes


def test_a_consumer_killed_between_commit_and_receipt_loses_nothing_and_doubles_nothing(
    start_alerts, device_factory, database_url, tmp_path
) -> None:
    marker = tmp_path / "crash-once"
    marker.touch()
    lane = start_alerts(WATCHPOST_TEST_ALERT_CRASH_ONCE=str(marker))
    wearable = device_factory("P-0001", receipts_of="P-0001")
    wearable.send("P-0001", event_id="sos-k", type="sos", ts=now_iso())
    assert lane.wait_exit() == 137  # died after its commit, before the PUBACK and the receipt
    assert wearable.receipts_for("sos-k") == []
    lane.start()  # as the supervisor would, within a second
    wearable.send("P-0001", event_id="sos-k", type="sos", ts=now_iso())  # the device's retry
    [receipt, *_] = wearable.wait_receipts("sos-k")
    [alarm] = alarms(database_url, "sos")
    assert receipt["alarm_id"] == alarm["alarm_id"]
    assert count(database_url, "SELECT count(*) FROM alerts") == 1


def test_an_alert_from_a_wrong_clock_raises_its_alarm_marked_clock_suspect(start_alerts, device_factory, database_url) -> None:
    start_alerts()
    gateway = device_factory(GATEWAY_USER)
    gateway.send("P-0001", event_id="ahead", type="sos", ts=now_iso(600))
    gateway.send("P-0002", event_id="reset", type="sos", ts="2000-01-01T00:00:00Z")
    gateway.wait_receipts("ahead")
    gateway.wait_receipts("reset")
    for person, device_ts in (("P-0001", None), ("P-0002", "2000-01-01T00:00:00+00:00")):
        [alarm] = alarms(database_url, "sos", person)
        assert alarm["detail"]["clock_suspect"] is True
        assert abs(alarm["first_seen"] - datetime.now(UTC)) < timedelta(seconds=30)  # the receive time
        if device_ts:
            assert alarm["detail"]["device_ts"] == device_ts
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


def test_an_im_ok_that_arrives_before_its_fall_cancels_it(start_alerts, device_factory, database_url) -> None:
    start_alerts()
    wearable = device_factory("P-0001", receipts_of="P-0001")
    fall_ts = datetime.now(UTC) - timedelta(seconds=20)
    wearable.send("P-0001", event_id="ok-1", type="cancel", ts=(fall_ts + timedelta(seconds=10)).isoformat())
    wearable.wait_receipts("ok-1")
    wearable.send("P-0001", event_id="fall-1", type="fall", ts=fall_ts.isoformat())
    wearable.wait_receipts("fall-1")
    runner = RuleRunner()
    with psycopg.connect(database_url) as conn:
        runner.configs, _ = fetch_rule_configs(conn)
        runner.run_due_timers(conn, datetime.now(UTC) + timedelta(minutes=10))
    assert alarms(database_url, "fall") == [] and alarms(database_url, "fall_uncancelled") == []


def test_falls_cancels_and_hazards_are_receipted_while_an_ingest_batch_holds_the_persons_state(
    start_alerts, device_factory, database_url
) -> None:
    start_alerts()
    hub = device_factory(GATEWAY_USER)
    fall_ts = datetime.now(UTC) - timedelta(seconds=5)
    with psycopg.connect(database_url) as batch, batch.cursor() as cur:
        # What an ingest batch holding this person does until it commits.
        load_states(cur, ["person:P-0001", "device:elder:P-0001", "device:elder:P-0001/home/smoke-1"], datetime.now(UTC))
        hub.send("P-0001", event_id="f-locked", type="fall", ts=fall_ts.isoformat())
        hub.send("P-0001", event_id="s-locked", type="smoke", ts=now_iso(), sensor_id="smoke-1")
        hub.send("P-0001", event_id="ok-locked", type="cancel", ts=(fall_ts + timedelta(seconds=3)).isoformat())
        [fall] = hub.wait_receipts("f-locked", timeout=10)
        [smoke] = hub.wait_receipts("s-locked", timeout=10)
        [ok] = hub.wait_receipts("ok-locked", timeout=10)
        assert batch.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS  # still holding it
        [fall_alarm] = alarms(database_url, "fall")
        [smoke_alarm] = alarms(database_url, "smoke")
    assert fall["alarm_id"] == ok["alarm_id"] == fall_alarm["alarm_id"] and fall_alarm["state"] == "cleared"
    assert smoke["alarm_id"] == smoke_alarm["alarm_id"] and smoke_alarm["state"] == "active"


def test_an_uncancelled_alert_fall_becomes_an_emergency_from_the_lanes_own_timers(
    start_alerts, device_factory, database_url
) -> None:
    start_alerts()
    wearable = device_factory("P-0001", receipts_of="P-0001")
    # Its cancel window (60 s) counted from the fall's own time, so it is due at once.
    wearable.send("P-0001", event_id="f-late", type="fall", ts=now_iso(-59))
    wearable.wait_receipts("f-late")
    wait_for(lambda: len(alarms(database_url, "fall_uncancelled")) == 1, timeout=10)  # no ingest running
    [emergency] = alarms(database_url, "fall_uncancelled")
    assert emergency["emergency"] is True


def test_a_hazard_raised_on_the_alert_topic_clears_when_its_detector_reports_clear_but_not_on_a_stale_report(
    start_ingest, start_alerts, device_factory, publisher, database_url
) -> None:
    start_ingest()
    start_alerts()
    hub = device_factory(GATEWAY_USER)
    hub.send("P-0001", event_id="fire", type="smoke", ts=now_iso(), sensor_id="smoke-1")
    hub.wait_receipts("fire")
    topic = f"{TEST_ROOT}/elder/P-0001/home/smoke-1"
    # An hourly check-in from before the fire, forwarded late: it must not end the alarm.
    publisher.wait_acked([publisher.publish(topic, orjson.dumps({"ts": time.time() - 120, "kind": "smoke", "value": False}))])
    wait_for(lambda: count(database_url, "SELECT count(*) FROM home_events") == 2)  # the alert's own and the check-in
    assert alarms(database_url, "smoke")[0]["state"] == "active"
    publisher.wait_acked([publisher.publish(topic, orjson.dumps({"ts": time.time(), "kind": "smoke", "value": False}))])
    wait_for(lambda: alarms(database_url, "smoke")[0]["state"] == "cleared")


def test_bad_alerts_are_dead_lettered_with_their_reasons(start_alerts, device_factory, database_url) -> None:
    start_alerts()
    gateway = device_factory(GATEWAY_USER)
    for person, payload in (
        ("P-0001", b"{not json"),
        ("P-9999", orjson.dumps({"event_id": "x", "type": "sos", "ts": now_iso()})),
        ("P-0001", orjson.dumps({"type": "sos", "ts": now_iso()})),
        ("P-0001", orjson.dumps({"event_id": "y", "type": "panic", "ts": now_iso()})),
    ):
        gateway.client.publish(f"{TEST_ROOT}/elder/{person}/alert", payload, qos=1).wait_for_publish(10)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 4)
    reasons = {r["reason"] for r in rows(database_url, "SELECT reason FROM dead_letters")}
    assert reasons == {"malformed", "unknown_person", "missing_event_id", "unknown_type"}
    # …and the lane carries on.
    gateway.send("P-0001", event_id="after", type="sos", ts=now_iso())
    gateway.wait_receipts("after")


def _flood(publisher: Publisher, n: int) -> None:
    start = time.time() - n * 0.01
    mids = [
        publisher.publish(f"{TEST_ROOT}/elder/P-0002/wearable", orjson.dumps({"ts": start + i * 0.01, "hr_bpm": 70}))
        for i in range(n)
    ]
    publisher.wait_acked(mids, timeout=120)


def test_an_sos_overtakes_a_loaded_telemetry_queue(start_ingest, start_alerts, device_factory, publisher, database_url) -> None:
    # A slow ingest (tiny batches) so that the telemetry is certainly still queued.
    start_ingest(INGEST__BATCH_MAX_MESSAGES="5", INGEST__RECEIVE_MAXIMUM="50")
    start_alerts()
    gateway = device_factory(GATEWAY_USER)
    _flood(publisher, 5000)
    sent = time.monotonic()
    gateway.send("P-0001", event_id="load-1", type="sos", ts=now_iso())
    wait_for(lambda: len(alarms(database_url, "sos")) == 1, timeout=10)
    assert time.monotonic() - sent < 5
    assert stored_total(database_url) < 5000  # the telemetry is still waiting


def test_an_sos_overtakes_a_backlog_draining_after_an_ingest_outage(
    start_ingest, start_alerts, device_factory, publisher, database_url
) -> None:
    ingest = start_ingest(INGEST__BATCH_MAX_MESSAGES="5", INGEST__RECEIVE_MAXIMUM="50")
    ingest.kill()  # down: the broker queues its share for its persistent session
    start_alerts()
    gateway = device_factory(GATEWAY_USER)
    _flood(publisher, 5000)
    ingest.start()  # back: draining the backlog
    sent = time.monotonic()
    gateway.send("P-0001", event_id="backlog-1", type="sos", ts=now_iso())
    gateway.wait_receipts("backlog-1", timeout=10)
    assert time.monotonic() - sent < 5
    assert len(alarms(database_url, "sos")) == 1
    assert stored_total(database_url) < 5000
