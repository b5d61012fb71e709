"""Readings become alarms, incidents, escalations and events — on the real broker and
database, with the timers driven by an explicit clock where the test needs simulated time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.alarm_store import apply_transitions
from ingest.rule_store import RuleRunner, fetch_rule_configs
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_db import count
from tests.fix_wait import wait_for

WEARABLE = f"{TEST_ROOT}/elder/P-0001/wearable"


def rows(url: str, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def tick_at(url: str, now: datetime) -> int:
    """Run one timer pass as the worker would, at a chosen instant."""
    runner = RuleRunner()
    with psycopg.connect(url) as conn:
        runner.configs, _ = fetch_rule_configs(conn)
        return runner.run_due_timers(conn, now)


def person_deadline(url: str) -> datetime:
    return rows(url, "SELECT next_deadline FROM rule_state WHERE source_key = 'person:P-0001'")[0]["next_deadline"]


def open_alarms(url: str, alarm_type: str) -> list[dict]:
    return rows(url, "SELECT * FROM alarms WHERE alarm_type = %s AND state <> 'cleared'", alarm_type)


def test_a_fall_without_cancel_raises_an_emergency_incident_60_s_later(
    start_ingest, start_dispatcher, publisher: Publisher, database_url: str
) -> None:
    start_ingest()
    start_dispatcher(database_url)  # the dispatcher opens incidents
    fall_ts = time.time()
    publisher.wait_acked([publisher.publish(WEARABLE, orjson.dumps({"ts": fall_ts, "fall": True}))])
    wait_for(lambda: len(open_alarms(database_url, "fall")) == 1)  # family is alerted at once
    deadline = person_deadline(database_url)
    assert 59.0 <= deadline.timestamp() - fall_ts <= 61.0
    tick_at(database_url, deadline - timedelta(seconds=1))
    assert open_alarms(database_url, "fall_uncancelled") == []
    tick_at(database_url, deadline + timedelta(milliseconds=500))
    [alarm] = open_alarms(database_url, "fall_uncancelled")
    assert alarm["emergency"] and alarm["person_id"] == "P-0001"
    wait_for(lambda: count(database_url, "SELECT count(*) FROM incidents") == 1)
    [incident] = rows(database_url, "SELECT * FROM incidents")
    assert (incident["kind"], incident["priority"], incident["state"], incident["person_id"]) == ("medical", 2, "new", "P-0001")
    assert incident["lat"] == pytest.approx(30.84)
    # (the same simulated minute also finds the two test ambulances silent: they never report)
    types = [r["type"] for r in rows(database_url, "SELECT type FROM events WHERE person_id = 'P-0001' ORDER BY event_id")]
    assert types == ["alarm.raised", "alarm.raised", "incident.created"]


def test_a_fall_cancelled_at_30_s_raises_no_incident(start_ingest, publisher: Publisher, database_url: str) -> None:
    start_ingest()
    fall_ts = time.time()
    publisher.wait_acked([publisher.publish(WEARABLE, orjson.dumps({"ts": fall_ts, "fall": True}))])
    wait_for(lambda: len(open_alarms(database_url, "fall")) == 1)
    deadline = person_deadline(database_url)
    publisher.wait_acked([publisher.publish(WEARABLE, orjson.dumps({"ts": fall_ts + 30, "cancel": True}))])
    wait_for(lambda: open_alarms(database_url, "fall") == [])
    tick_at(database_url, deadline + timedelta(seconds=5))
    assert count(database_url, "SELECT count(*) FROM alarms WHERE alarm_type = 'fall_uncancelled'") == 0
    assert count(database_url, "SELECT count(*) FROM incidents") == 0
    [cleared] = rows(database_url, "SELECT * FROM alarms WHERE alarm_type = 'fall'")
    assert cleared["state"] == "cleared" and cleared["cleared_by"] == "rule:fall"


def test_two_sos_5_ms_apart_through_two_workers_make_one_alarm(
    start_ingest, start_dispatcher, publisher: Publisher, database_url: str
) -> None:
    start_dispatcher(database_url)
    start_ingest("ingest-a", ingest__share_group="watchpost-ingest")
    start_ingest("ingest-b", ingest__share_group="watchpost-ingest")
    ts = time.time()
    mids = [
        publisher.publish(WEARABLE, orjson.dumps({"ts": ts, "sos": True})),
        publisher.publish(WEARABLE, orjson.dumps({"ts": ts + 0.005, "sos": True})),
    ]
    publisher.wait_acked(mids)
    # A reading and what its rules raise commit in one transaction: once both readings are
    # stored, every alarm and incident they could make is in the database too.
    wait_for(lambda: count(database_url, "SELECT count(*) FROM wearable_readings") == 2)
    assert count(database_url, "SELECT count(*) FROM incidents") == 1
    assert count(database_url, "SELECT count(*) FROM alarms WHERE alarm_type = 'sos'") == 1
    [incident] = rows(database_url, "SELECT * FROM incidents")
    assert incident["priority"] == 1


def test_concurrent_raises_of_one_alarm_become_one_alarm_and_a_repeat(database_url: str) -> None:
    """The unique partial index, not the rules, is what makes a duplicate impossible."""
    t = AlarmTransition(Action.RAISE, SourceKind.STATION, "WS-001", AlarmType.WATER_ANOMALY, Severity.MINOR, datetime.now(UTC))
    first = psycopg.connect(database_url)
    second = psycopg.connect(database_url)
    try:
        apply_transitions(first.cursor(), [t], datetime.now(UTC))  # holds the index entry, uncommitted
        done = threading.Event()

        def raise_again() -> None:
            apply_transitions(second.cursor(), [t], datetime.now(UTC))  # waits for `first`
            second.commit()
            done.set()

        worker = threading.Thread(target=raise_again)
        worker.start()
        assert not done.wait(0.5), "the second raise should wait on the first's index entry"
        first.commit()
        worker.join(10)
        assert done.is_set()
    finally:
        first.close()
        second.close()
    [alarm] = rows(database_url, "SELECT * FROM alarms")
    assert alarm["repeat_count"] == 2
    actions = [r["action"] for r in rows(database_url, "SELECT action FROM alarm_audit ORDER BY at")]
    assert sorted(actions) == ["raised", "repeated"]


def test_kill_9_during_escalation_still_escalates_on_time(start_ingest, publisher: Publisher, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE family_links SET ack_timeout_s = 3 WHERE person_id = 'P-0001'")
    ingest = start_ingest()
    publisher.wait_acked([publisher.publish(WEARABLE, orjson.dumps({"ts": time.time(), "fall": True}))])
    wait_for(lambda: len(open_alarms(database_url, "fall")) == 1)
    [alarm] = open_alarms(database_url, "fall")
    assert not alarm["control_room"]  # first the family: fam1, for 3 s
    ingest.kill()  # SIGKILL with the escalation timer running
    ingest.start()
    wait_for(lambda: open_alarms(database_url, "fall")[0]["control_room"], timeout=20)
    steps = rows(database_url, "SELECT at, detail FROM alarm_audit WHERE alarm_id = %s AND action = 'escalated' ORDER BY at", alarm["alarm_id"])
    assert [s["detail"]["notify"] for s in steps] == [["family:fam1"], ["control_room"]]
    late = (steps[1]["at"] - steps[0]["at"]).total_seconds()
    assert 3.0 <= late <= 8.0  # on time, give or take the restart and one timer pass


def test_family_acknowledgement_stops_the_escalation(start_ingest, publisher: Publisher, database_url: str) -> None:
    from ingest.alarm_store import acknowledge

    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE family_links SET ack_timeout_s = 2 WHERE person_id = 'P-0001'")
    start_ingest()
    publisher.wait_acked([publisher.publish(WEARABLE, orjson.dumps({"ts": time.time(), "fall": True}))])
    wait_for(lambda: len(open_alarms(database_url, "fall")) == 1)
    [alarm] = open_alarms(database_url, "fall")
    with psycopg.connect(database_url) as conn:
        assert acknowledge(conn.cursor(), alarm["alarm_id"], "fam1", datetime.now(UTC)) is not None
    # A timer pass at an instant past the family's 2 s: an escalation still due would go on now.
    tick_at(database_url, datetime.now(UTC) + timedelta(seconds=3.5))
    [after] = open_alarms(database_url, "fall")
    assert after["state"] == "acked" and after["acked_by"] == "fam1" and not after["control_room"]


def test_water_station_from_class_iii_to_iv_and_back_raises_one_alarm_then_clears(
    start_ingest, start_dispatcher, publisher: Publisher, database_url: str
) -> None:
    start_dispatcher(database_url)  # it opens the patrol's incident and verifies it
    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute("LISTEN watchpost_events")
    start_ingest()
    topic = f"{TEST_ROOT}/water/WS-001/telemetry"
    base = time.time() - 600
    series = [1.2] * 4 + [0.8] * 3  # NH3-N: class IV (> 1.0) for 4 readings, then III
    for i, nh3n in enumerate(series):
        publisher.wait_acked([publisher.publish(topic, orjson.dumps({"ts": base + 60 * i, "ph": 7.2, "do_mg_l": 6.5, "nh3n_mg_l": nh3n}))])
        # One reading per batch, as stations report: the next goes out once this one is stored.
        wait_for(lambda stored=i + 1: count(database_url, "SELECT count(*) FROM water_readings") == stored)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM alarms WHERE state = 'cleared'") == 1)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM incidents WHERE loop_stage = 'verified'") == 1)
    [alarm] = rows(database_url, "SELECT * FROM alarms")
    assert (alarm["alarm_type"], alarm["source_id"], alarm["severity"]) == ("water_class_exceeded", "WS-001", "major")
    assert alarm["control_room"]
    events = [(r["type"], r["data"].get("alarm_id")) for r in rows(database_url, "SELECT * FROM events ORDER BY event_id")]
    assert events == [
        ("alarm.raised", alarm["alarm_id"]),
        ("incident.created", alarm["alarm_id"]),  # the patrol's closed loop opens…
        ("alarm.cleared", alarm["alarm_id"]),
        ("incident.updated", alarm["alarm_id"]),  # …and the clear verifies it
    ]
    [incident] = rows(database_url, "SELECT * FROM incidents")
    assert (incident["kind"], incident["station_id"], incident["loop_stage"]) == ("water", "WS-001", "verified")
    notified = [orjson.loads(n.payload)["type"] for n in listener.notifies(timeout=2, stop_after=4)]
    listener.close()
    assert notified == [e[0] for e in events]
