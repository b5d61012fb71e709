"""The dispatcher owns incidents: it opens them from alarms (heard as events, or found by its
sweep), places them where the person is, moves them with newer fixes and tells the wearer's
device what happened — on the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.alarm_store import acknowledge, apply_transitions
from ingest.locations import record_fixes
from ingest.readings import WearableReading
from ingest.rules import Action, AlarmTransition, AlarmType, Severity, SourceKind
from tests.fix_db import count
from tests.fix_wait import wait_for


def rows(url: str, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def raise_alarm(url: str, person_id: str, alarm_type: AlarmType, detail: dict, *, action: Action = Action.RAISE) -> None:
    emergency = alarm_type is AlarmType.SOS
    t = AlarmTransition(action, SourceKind.PERSON, person_id, alarm_type, Severity.CRITICAL, datetime.now(UTC), emergency=emergency, detail=detail)
    with psycopg.connect(url) as conn:
        apply_transitions(conn.cursor(), [t], datetime.now(UTC))


def store_fix(url: str, person_id: str, lat: float, lon: float, at: datetime) -> None:
    """What ingest does with a batch of wearable readings that carry a fix."""
    with psycopg.connect(url) as conn:
        record_fixes(conn.cursor(), [WearableReading(person_id, at, lat=lat, lon=lon)])


def a_person(url: str) -> dict:
    return rows(url, "SELECT person_id, lat, lon FROM persons ORDER BY person_id LIMIT 1")[0]


def test_an_sos_raised_while_no_dispatcher_ran_gets_its_incident_from_the_sweep_at_the_alert_fix(
    start_dispatcher, database_url: str
) -> None:
    person = a_person(database_url)
    raise_alarm(database_url, person["person_id"], AlarmType.SOS,
                {"lat": person["lat"] + 0.01, "lon": person["lon"], "acc_m": 12.0, "event_id": "e-1"})
    assert count(database_url, "SELECT count(*) FROM incidents") == 0  # ingest opens none
    start_dispatcher(database_url)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM incidents") == 1)
    [incident] = rows(database_url, "SELECT * FROM incidents")
    assert (incident["kind"], incident["priority"], incident["location_source"]) == ("medical", 1, "alert_fix")
    assert incident["lat"] == pytest.approx(person["lat"] + 0.01) and incident["location_acc_m"] == pytest.approx(12.0)


@pytest.mark.parametrize(("fix_age_min", "source"), [(2, "recent_fix"), (30, "home")])
def test_an_sos_without_a_fix_goes_to_the_recent_fix_else_home(
    start_dispatcher, database_url: str, fix_age_min: int, source: str
) -> None:
    person = a_person(database_url)
    store_fix(database_url, person["person_id"], person["lat"] + 0.005, person["lon"] + 0.005,
              datetime.now(UTC) - timedelta(minutes=fix_age_min))
    start_dispatcher(database_url)
    raise_alarm(database_url, person["person_id"], AlarmType.SOS, {})
    wait_for(lambda: count(database_url, "SELECT count(*) FROM incidents") == 1)
    [incident] = rows(database_url, "SELECT * FROM incidents")
    assert incident["location_source"] == source
    expected = person["lat"] + 0.005 if source == "recent_fix" else person["lat"]
    assert incident["lat"] == pytest.approx(expected)


def test_a_newer_fix_moves_the_incident_and_the_crew_gets_an_order_update(
    start_dispatcher, collect, jiashan_url: str
) -> None:
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(jiashan_url)
    person = a_person(jiashan_url)
    raise_alarm(jiashan_url, person["person_id"], AlarmType.SOS, {"lat": person["lat"], "lon": person["lon"], "event_id": "e-2"})
    first = orjson.loads(orders.wait_for(1)[0][2])
    moved_to = (person["lat"] + 0.004, person["lon"] - 0.003)
    store_fix(jiashan_url, person["person_id"], *moved_to, datetime.now(UTC))
    update = orjson.loads(orders.wait_for(2)[1][2])
    assert update["update"] is True and update["incident_id"] == first["incident_id"]
    assert (update["lat"], update["lon"]) == pytest.approx(moved_to)
    [incident] = rows(jiashan_url, "SELECT * FROM incidents")
    assert (incident["lat"], incident["lon"]) == pytest.approx(moved_to) and incident["location_source"] == "recent_fix"
    # an older fix arriving late moves nothing back
    store_fix(jiashan_url, person["person_id"], person["lat"], person["lon"], datetime.now(UTC) - timedelta(minutes=1))
    assert rows(jiashan_url, "SELECT lat FROM incidents")[0]["lat"] == pytest.approx(moved_to[0])


def test_each_receipt_reaches_the_device_once_with_two_dispatchers(start_dispatcher, collect, jiashan_url: str) -> None:
    person = a_person(jiashan_url)
    receipts = collect("simulator", f"elder/{person['person_id']}/receipt")
    start_dispatcher(jiashan_url, "dispatch-a")
    start_dispatcher(jiashan_url, "dispatch-b")
    raise_alarm(jiashan_url, person["person_id"], AlarmType.SOS, {"lat": person["lat"], "lon": person["lon"], "event_id": "sos-1"})
    raise_alarm(jiashan_url, person["person_id"], AlarmType.FALL, {"lat": person["lat"], "lon": person["lon"], "event_id": "fall-1"})
    [sos] = rows(jiashan_url, "SELECT alarm_id FROM alarms WHERE alarm_type = 'sos'")
    with psycopg.connect(jiashan_url) as conn:
        acknowledge(conn.cursor(), sos["alarm_id"], "family:daughter", datetime.now(UTC))
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM receipts WHERE state = 'help_dispatched'") == 2)
    raise_alarm(jiashan_url, person["person_id"], AlarmType.FALL, {"reason": "cancelled"}, action=Action.CLEAR)
    got = receipts.wait_for(4)
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM receipts") == 4)
    with pytest.raises(TimeoutError):
        receipts.wait_for(5, timeout=1.5)  # nothing more: each went out once
    sent = sorted((d["event_id"], d["state"]) for d in (orjson.loads(m[2]) for m in got))
    assert sent == [("fall-1", "cancelled"), ("fall-1", "help_dispatched"), ("sos-1", "family_notified"), ("sos-1", "help_dispatched")]


def station_alarm(url: str, station_id: str, alarm_type: AlarmType, parameter: str, action: Action = Action.RAISE) -> int:
    """What ingest's water rules record: a raise or a clear of one station alarm."""
    t = AlarmTransition(action, SourceKind.STATION, station_id, alarm_type, Severity.MAJOR, datetime.now(UTC), detail={"parameter": parameter})
    with psycopg.connect(url) as conn:
        apply_transitions(conn.cursor(), [t], datetime.now(UTC))
    return rows(url, "SELECT alarm_id FROM alarms WHERE source_id = %s AND alarm_type = %s ORDER BY alarm_id DESC LIMIT 1",
                station_id, alarm_type.value)[0]["alarm_id"]


def test_a_real_time_and_an_hourly_alarm_of_one_exceedance_are_one_patrol_incident_verified_when_both_clear(database_url: str) -> None:
    from dispatch.incidents import open_for_alarm, verify_water

    real_time = station_alarm(database_url, "WS-001", AlarmType.WATER_CLASS_EXCEEDED, "nh3n_mg_l")
    with psycopg.connect(database_url) as conn:
        opened = open_for_alarm(conn, real_time, datetime.now(UTC))
        hourly = station_alarm(database_url, "WS-001", AlarmType.WATER_HOURLY_EXCEEDED, "nh3n_mg_l")
        attached = open_for_alarm(conn, hourly, datetime.now(UTC))
        assert opened is not None and attached is not None and attached["incident_id"] == opened["incident_id"]
        [incident] = rows(database_url, "SELECT * FROM incidents WHERE station_id = 'WS-001'")
        assert incident["alarm_id"] == real_time  # it keeps the alarm that opened it
        linked = {r["alarm_id"] for r in rows(database_url, "SELECT alarm_id FROM incident_alarms WHERE incident_id = %s", incident["incident_id"])}
        assert linked == {real_time, hourly}
        [audit] = rows(database_url, "SELECT detail FROM dispatch_audit WHERE action = 'alarm_attached'")
        assert audit["detail"] == {"alarm_id": hourly, "alarm_type": "water_hourly_exceeded", "parameter": "nh3n_mg_l"}

        # The real-time readings are back in class while the hourly uploads are not: not verified yet.
        station_alarm(database_url, "WS-001", AlarmType.WATER_CLASS_EXCEEDED, "nh3n_mg_l", Action.CLEAR)
        assert verify_water(conn, real_time, datetime.now(UTC)) is None
        station_alarm(database_url, "WS-001", AlarmType.WATER_HOURLY_EXCEEDED, "nh3n_mg_l", Action.CLEAR)
        verified = verify_water(conn, hourly, datetime.now(UTC))
        assert verified is not None and verified["loop_stage"] == "verified"


def test_an_hourly_alarm_after_its_real_time_incident_was_closed_out_attaches_and_sends_no_second_patrol(database_url: str) -> None:
    from dispatch.incidents import open_for_alarm

    real_time = station_alarm(database_url, "WS-001", AlarmType.WATER_CLASS_EXCEEDED, "nh3n_mg_l")
    with psycopg.connect(database_url) as conn:
        first = open_for_alarm(conn, real_time, datetime.now(UTC))
        assert first is not None
        conn.execute("UPDATE incidents SET state = 'closed' WHERE incident_id = %s", (first["incident_id"],))
        conn.commit()
        # Hours later the hourly uploads show the same NH3-N exceedance: the same water, the same incident.
        hourly = station_alarm(database_url, "WS-001", AlarmType.WATER_HOURLY_EXCEEDED, "nh3n_mg_l")
        assert open_for_alarm(conn, hourly, datetime.now(UTC))["incident_id"] == first["incident_id"]
        assert count(database_url, "SELECT count(*) FROM incidents WHERE station_id = 'WS-001'") == 1
        # Another parameter is another exceedance: a new patrol incident.
        station_alarm(database_url, "WS-001", AlarmType.WATER_HOURLY_EXCEEDED, "nh3n_mg_l", Action.CLEAR)
        tp = station_alarm(database_url, "WS-001", AlarmType.WATER_HOURLY_EXCEEDED, "tp_mg_l")
        second = open_for_alarm(conn, tp, datetime.now(UTC))
        assert second is not None and second["incident_id"] != first["incident_id"]
        assert count(database_url, "SELECT count(*) FROM incidents WHERE station_id = 'WS-001' AND state <> 'closed'") == 1
def test_an_sos_fix_far_outside_the_county_is_not_trusted_and_the_console_is_told(
    start_dispatcher, collect, jiashan_url: str
) -> None:
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(jiashan_url)
    person = a_person(jiashan_url)
    # A receiver that lost its almanac reports 0, 0: help goes home, not to the Gulf of Guinea.
    raise_alarm(jiashan_url, person["person_id"], AlarmType.SOS, {"lat": 0.0, "lon": 0.0, "acc_m": 5.0, "event_id": "e-far"})
    order = orjson.loads(orders.wait_for(1)[0][2])
    [incident] = rows(jiashan_url, "SELECT * FROM incidents")
    assert (incident["location_source"], incident["untrusted_fix"]) == ("home", "alert_fix")
    assert (order["lat"], order["lon"]) == pytest.approx((person["lat"], person["lon"]))
    [audit] = rows(jiashan_url, "SELECT detail FROM dispatch_audit WHERE action = 'untrusted_fix'")
    assert audit["detail"]["source"] == "alert_fix" and audit["detail"]["lat"] == 0.0

    # A newer fix 300 km away is not followed either, and is reported once however often the
    # sweep finds it; a newer fix in the county moves the incident and clears the flag.
    store_fix(jiashan_url, person["person_id"], 33.5, 118.0, datetime.now(UTC))
    wait_for(lambda: rows(jiashan_url, "SELECT untrusted_fix FROM incidents")[0]["untrusted_fix"] == "recent_fix")
    assert rows(jiashan_url, "SELECT lat FROM incidents")[0]["lat"] == pytest.approx(person["lat"])
    nearby = (person["lat"] + 0.003, person["lon"] + 0.002)
    store_fix(jiashan_url, person["person_id"], *nearby, datetime.now(UTC) + timedelta(seconds=1))
    update = orjson.loads(orders.wait_for(2)[1][2])
    assert (update["lat"], update["lon"]) == pytest.approx(nearby)
    [incident] = rows(jiashan_url, "SELECT * FROM incidents")
    assert (incident["location_source"], incident["untrusted_fix"]) == ("recent_fix", None)
    assert count(jiashan_url, "SELECT count(*) FROM dispatch_audit WHERE action = 'untrusted_fix'") == 2


def smoke_at_home(url: str) -> tuple[dict, str]:
    person = a_person(url)
    emergency_smoke = AlarmTransition(Action.RAISE, SourceKind.PERSON, person["person_id"], AlarmType.SMOKE, Severity.CRITICAL,
                                      datetime.now(UTC), emergency=True, detail={"sensor_id": "smoke-1"})
    with psycopg.connect(url) as conn:
        apply_transitions(conn.cursor(), [emergency_smoke], datetime.now(UTC))
    wait_for(lambda: count(url, "SELECT count(*) FROM incidents WHERE kind = 'fire'") == 1)
    [fire] = rows(url, "SELECT * FROM incidents WHERE kind = 'fire'")
    return person, fire["incident_id"]


def test_smoke_at_home_with_no_answer_to_the_verification_call_in_time_sends_an_ambulance_too(
    start_dispatcher, collect, jiashan_url: str
) -> None:
    orders = collect("simulator", "unit/+/order")
    start_dispatcher(jiashan_url, dispatch__verify_answer_s="2")
    _, fire_id = smoke_at_home(jiashan_url)
    [fire] = rows(jiashan_url, "SELECT * FROM incidents WHERE incident_id = %s", fire_id)
    assert fire["verify_by"] is not None and fire["verification"] is None
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM incidents WHERE parent_incident_id = %s", fire_id) == 1, timeout=20)
    [fire] = rows(jiashan_url, "SELECT * FROM incidents WHERE incident_id = %s", fire_id)
    assert (fire["verification"], fire["verified_by"]) == ("no_answer", "dispatcher")
    [ambulance] = rows(jiashan_url, "SELECT * FROM incidents WHERE parent_incident_id = %s", fire_id)
    assert (ambulance["kind"], ambulance["priority"]) == ("medical", 1)
    sent = {orjson.loads(p)["incident_id"]: t.split("/")[-2] for _, t, p in orders.wait_for(2)}
    assert sent[fire_id].startswith("FIRE-") and sent[ambulance["incident_id"]].startswith("AMB-")
    [audit] = rows(jiashan_url, "SELECT detail FROM dispatch_audit WHERE action = 'verification'")
    assert audit["detail"] == {"outcome": "no_answer", "timed_out": True}


def test_an_answer_recorded_in_time_keeps_the_fire_crew_alone_until_someone_is_reported_hurt(jiashan_url: str, start_dispatcher) -> None:
    from dispatch.incident_policy import Verification
    from dispatch.store import record_verification, verify_overdue

    start_dispatcher(jiashan_url)  # the default answer time (2 min) does not pass in this test
    _, fire_id = smoke_at_home(jiashan_url)
    with psycopg.connect(jiashan_url) as conn:
        answered = record_verification(conn, fire_id, Verification.OK, "op1", datetime.now(UTC))
        assert answered is not None and answered.companion is None and answered.incident["verification"] == "ok"
        # Past the answer time nothing more happens: the call was answered.
        assert verify_overdue(conn, datetime.now(UTC) + timedelta(hours=1)) == []
        # The person calls back: a neighbour is hurt.
        hurt = record_verification(conn, fire_id, Verification.HURT, "op1", datetime.now(UTC))
        assert hurt is not None and hurt.companion is not None and hurt.companion["kind"] == "medical"
    assert count(jiashan_url, "SELECT count(*) FROM incidents WHERE parent_incident_id = %s", fire_id) == 1
