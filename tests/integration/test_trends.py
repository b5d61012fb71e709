"""The chart endpoints on a real API process: bucket sizes and bounds, class limits, episodes,
thresholds, family isolation, the service dashboard, and clear 422s for bad parameters.

`seed_trends` (data written straight with SQL) is shared with the browser and report tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

pytestmark = pytest.mark.slow

STATION = "WS-003"  # river, target class III in the simulated county
PERSON = "P-0001"


def seed_trends(url: str, now: datetime | None = None) -> datetime:
    """30 days of hourly NH3-N (with an exceedance), 7 days of per-minute vitals, a day of home
    events, alarms, and three incidents with assignments and unit transitions."""
    now = now or datetime.now(UTC)
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO water_hourly (station_id, bucket, readings, flagged, n_nh3n_mg_l, sum_nh3n_mg_l, min_nh3n_mg_l, max_nh3n_mg_l,
                                         n_do_mg_l, sum_do_mg_l, min_do_mg_l, max_do_mg_l)
               SELECT %(s)s, h, 60, CASE WHEN extract(hour FROM h) = 3 THEN 6 ELSE 0 END,
                      CASE WHEN extract(hour FROM h) = 3 THEN 54 ELSE 60 END,
                      v * CASE WHEN extract(hour FROM h) = 3 THEN 54 ELSE 60 END, v - 0.1, v + 0.1,
                      60, 60 * (6 + sin(extract(epoch FROM h) / 20000)), 5.5, 7.2
               FROM generate_series(date_trunc('hour', %(now)s::timestamptz) - interval '31 days', %(now)s::timestamptz, interval '1 hour') h,
                    LATERAL (SELECT CASE WHEN h BETWEEN %(now)s::timestamptz - interval '10 hours' AND %(now)s::timestamptz - interval '6 hours'
                                         THEN 1.3 ELSE 0.6 + 0.2 * sin(extract(epoch FROM h) / 30000) END AS v) x
               ON CONFLICT DO NOTHING""",
            {"s": STATION, "now": now},
        )
        conn.execute(
            """INSERT INTO alarms (source_kind, source_id, alarm_type, severity, state, first_seen, last_seen, cleared_at, detail)
               VALUES ('station', %(s)s, 'water_class_exceeded', 'major', 'cleared', %(now)s::timestamptz - interval '10 hours',
                       %(now)s::timestamptz - interval '6 hours', %(now)s::timestamptz - interval '6 hours', '{"parameter": "nh3n_mg_l", "class": "IV"}'),
                      ('station', %(s)s, 'water_class_exceeded', 'major', 'cleared', %(now)s::timestamptz - interval '40 days',
                       %(now)s::timestamptz - interval '39 days', %(now)s::timestamptz - interval '39 days', '{}')""",
            {"s": STATION, "now": now},
        )
        conn.execute(
            """INSERT INTO wearable_readings (person_id, ts, hr_bpm, spo2_pct, steps)
               SELECT %(p)s, ts, 72 + 12 * sin(extract(epoch FROM ts) / 4000) + CASE WHEN ts > %(now)s::timestamptz - interval '3 hours'
                        AND ts < %(now)s::timestamptz - interval '150 minutes' THEN 70 ELSE 0 END,
                      95 + 2 * cos(extract(epoch FROM ts) / 5000), (extract(epoch FROM ts)::bigint / 60) %% 5000
               FROM generate_series(%(now)s::timestamptz - interval '7 days', %(now)s::timestamptz, interval '1 minute') ts
               ON CONFLICT DO NOTHING""",
            {"p": PERSON, "now": now},
        )
        conn.execute(
            """INSERT INTO home_events (person_id, sensor_id, ts, kind, value_bool)
               SELECT %(p)s, k || '-1', ts, k, true
               FROM generate_series(%(now)s::timestamptz - interval '23 hours', %(now)s::timestamptz, interval '7 minutes') ts,
                    unnest(ARRAY['motion', 'door', 'bed']) k
               WHERE k = 'motion' OR extract(minute FROM ts) < 10 ON CONFLICT DO NOTHING""",
            {"p": PERSON, "now": now},
        )
        conn.execute(
            """INSERT INTO alarms (source_kind, source_id, alarm_type, severity, state, person_id, first_seen, last_seen, cleared_at)
               VALUES ('person', %(p)s, 'hr_high', 'major', 'cleared', %(p)s, %(now)s::timestamptz - interval '179 minutes',
                       %(now)s::timestamptz - interval '150 minutes', %(now)s::timestamptz - interval '149 minutes')""",
            {"p": PERSON, "now": now},
        )
        # Three incidents: dispatch 60 / 120 / 240 s, on scene 300 / 400 / 600 s after the order.
        for k, (dispatch_s, response_s, prio, person) in enumerate([(60, 300, 1, "P-0001"), (120, 400, 2, "P-0002"), (240, 600, 2, None)], 1):
            created = now - timedelta(hours=5 - k)
            ordered = created + timedelta(seconds=dispatch_s)
            scene = ordered + timedelta(seconds=response_s)
            iid, unit = f"INC-T{k:04d}", f"AMB-0{k}"
            conn.execute(
                """INSERT INTO incidents (incident_id, kind, priority, state, lat, lon, person_id, station_id, description,
                                          created_at, created_by, updated_at, loop_stage)
                   VALUES (%s, %s, %s, 'closed', 30.84, 120.92, %s, %s, 'test', %s, 'op1', %s, %s)""",
                (iid, "medical" if person else "water", prio, person, None if person else STATION, created, scene,
                 None if person else "verified"),
            )
            conn.execute(
                "INSERT INTO assignments (incident_id, unit_id, state, ordered_at, eta_s, created_by) VALUES (%s, %s, 'done', %s, 300, 'dispatcher')",
                (iid, unit, ordered),
            )
            for at, action, detail in [(ordered, "assigned", {}), (ordered + timedelta(seconds=20), "transition", {"from": "dispatched", "to": "en_route"}),
                                       (scene, "transition", {"from": "en_route", "to": "on_scene"}),
                                       (scene + timedelta(minutes=20), "transition", {"from": "on_scene", "to": "available"})]:
                conn.execute(
                    "INSERT INTO dispatch_audit (at, incident_id, unit_id, action, actor, detail) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                    (at, iid, unit, action, f"unit:{unit}", psycopg.types.json.Jsonb(detail)),
                )
    return now


@pytest.fixture
def trends_api(jiashan_url: str, start_api):
    seed_trends(jiashan_url)
    return start_api(jiashan_url)


def test_station_trend_buckets_limits_and_episodes(trends_api) -> None:
    with trends_api.client("op1") as c:
        for rng, n, width in [("24h", 24, 3600), ("7d", 42, 4 * 3600), ("30d", 60, 12 * 3600)]:
            r = c.get(f"/api/stations/{STATION}/trend", params={"param": "nh3n_mg_l", "range": rng})
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["bucket_s"] == width and len(doc["points"]) == n
            ts = [datetime.fromisoformat(p["t"]) for p in doc["points"]]
            assert all((b - a).total_seconds() == width for a, b in itertools.pairwise(ts))
            assert ts[0] == datetime.fromisoformat(doc["from"])
            assert ts[-1] + timedelta(seconds=width) == datetime.fromisoformat(doc["to"])
            assert datetime.fromisoformat(doc["to"]) > datetime.now(UTC) >= datetime.fromisoformat(doc["to"]) - timedelta(seconds=width)
            filled = [p for p in doc["points"] if p["avg"] is not None]
            assert len(filled) >= n - 1
            assert all(p["min"] <= p["avg"] <= p["max"] for p in filled)
            # hourly rows: 60 readings each; 6 flagged at 03:00 UTC
            assert sum(p["flagged"] for p in doc["points"]) > 0 or rng == "24h"
        assert doc["limits"] == {"kind": "ceiling", "classes": {"I": 0.15, "II": 0.5, "III": 1.0, "IV": 1.5, "V": 2.0}}
        assert doc["target_class"] == "III" and doc["target_limit"] == 1.0
        day = c.get(f"/api/stations/{STATION}/trend", params={"param": "nh3n_mg_l", "range": "24h"}).json()
        assert len(day["episodes"]) == 1 and day["episodes"][0]["cleared_at"]
        assert max(p["max"] for p in day["points"] if p["max"] is not None) > 1.3  # the spike is in the data
        do = c.get(f"/api/stations/{STATION}/trend", params={"param": "do_mg_l"}).json()
        assert do["limits"]["kind"] == "floor" and do["limits"]["classes"]["I"] == 7.5 and do["target_limit"] == 5.0
        ph = c.get(f"/api/stations/{STATION}/trend", params={"param": "ph"}).json()
        assert ph["limits"]["kind"] == "range"
        temp = c.get(f"/api/stations/{STATION}/trend", params={"param": "temp_c"}).json()
        assert temp["limits"] == {"kind": None, "classes": {}} and all(p["avg"] is None for p in temp["points"])


def test_station_trend_of_the_stations_own_hourly_uploads_marks_over_range_and_flagged_hours(trends_api, jiashan_url: str) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    with psycopg.connect(jiashan_url) as conn:
        for h, (value, flag) in enumerate([(0.4, "N"), (2.0, "T"), (9.0, "M")]):
            conn.execute(
                "INSERT INTO station_averages (station_id, period, period_start, nh3n_mg_l, nh3n_mg_l_flag, chla_ug_l, chla_ug_l_flag, "
                "sd_m, sd_m_flag) VALUES (%s, 'hour', %s, %s, %s, 12.5, 'N', 0.45, 'N')", (STATION, hour + timedelta(hours=h), value, flag),
            )
    with trends_api.client("op1") as c:
        doc = c.get(f"/api/stations/{STATION}/trend", params={"param": "nh3n_mg_l", "series": "hour"}).json()
        filled = {p["t"]: p for p in doc["points"] if p["readings"]}
        assert doc["series"] == "hour" and len(filled) == 3
        assert [(p["avg"], p["over_range"], p["flagged"]) for p in filled.values()] == [(0.4, 0, 0), (2.0, 1, 0), (None, 0, 1)]
        chla = c.get(f"/api/stations/{STATION}/trend", params={"param": "chla_ug_l", "series": "hour"})
        assert chla.status_code == 200 and any(p["avg"] == 12.5 for p in chla.json()["points"])
        assert c.get(f"/api/stations/{STATION}/trend", params={"param": "chla_ug_l"}).status_code == 422
        sd = c.get(f"/api/stations/{STATION}/trend", params={"param": "sd_m", "series": "hour"})
        assert sd.status_code == 200 and any(p["avg"] == 0.45 for p in sd.json()["points"]) and sd.json()["limits"]["kind"] is None


def test_person_trend_thresholds_alarms_strip_and_access_log(trends_api, jiashan_url: str) -> None:
    with psycopg.connect(jiashan_url) as conn:
        conn.execute("""UPDATE persons SET thresholds = '{"hr_high_bpm": 120}' WHERE person_id = %s""", (PERSON,))
    with trends_api.client("op1") as c:
        doc = c.get(f"/api/persons/{PERSON}/trend", params={"range": "24h"}).json()
        assert doc["bucket_s"] == 900 and len(doc["points"]) == 96
        assert doc["thresholds"] == {"hr_low_bpm": 40.0, "hr_high_bpm": 120.0, "spo2_low_pct": 90.0}
        assert [a["alarm_type"] for a in doc["alarms"]] == ["hr_high"]
        assert max(p["hr_max"] for p in doc["points"] if p["hr_max"]) > 130
        assert all(p["hr_min"] <= p["hr_avg"] <= p["hr_max"] for p in doc["points"] if p["hr_avg"] is not None)
        strip = doc["home_strip"]
        assert strip["bucket_s"] == 600 and len(strip["points"]) == 144
        assert sum(p["motion"] for p in strip["points"]) > 150 and sum(p["door"] for p in strip["points"]) > 0
        week = c.get(f"/api/persons/{PERSON}/trend", params={"range": "7d"}).json()
        assert week["bucket_s"] == 7200 and len(week["points"]) == 84
    with psycopg.connect(jiashan_url) as conn:
        assert conn.execute("SELECT count(*) FROM access_log WHERE person_id = %s AND what = 'person trend' AND username = 'op1'",
                            (PERSON,)).fetchone()[0] == 2


def test_family_sees_only_their_relative(trends_api, jiashan_url: str) -> None:
    with psycopg.connect(jiashan_url) as conn:
        mine = conn.execute("SELECT person_id FROM family_links WHERE username = 'fam-0001-1'").fetchone()[0]
        before = conn.execute("SELECT count(*) FROM access_log").fetchone()[0]
    with trends_api.client("fam-0001-1") as c:
        assert c.get(f"/api/persons/{mine}/trend").status_code == 200
        other = c.get("/api/persons/P-0002/trend")
        unknown = c.get("/api/persons/P-9999/trend")
        assert other.status_code == unknown.status_code == 404
        assert other.json()["detail"].replace("P-0002", "X") == unknown.json()["detail"].replace("P-9999", "X")
        assert c.get(f"/api/stations/{STATION}/trend").status_code == 403
        assert c.get("/api/service", params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}).status_code == 403
    with psycopg.connect(jiashan_url) as conn:
        assert conn.execute("SELECT count(*) FROM access_log").fetchone()[0] == before  # family reads are not logged


def test_bad_parameters_are_422(trends_api) -> None:
    with trends_api.client("op1") as c:
        for path, params in [
            (f"/api/stations/{STATION}/trend", {"param": "nope"}),
            (f"/api/stations/{STATION}/trend", {"param": "sum_ph; DROP TABLE x"}),
            (f"/api/stations/{STATION}/trend", {"range": "1y"}),
            (f"/api/persons/{PERSON}/trend", {"range": "30d"}),
            ("/api/service", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            ("/api/service", {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"}),
            ("/api/service", {"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            ("/api/service", {"from": "yesterday", "to": "2026-01-01T00:00:00Z"}),
            ("/api/service", {}),
        ]:
            r = c.get(path, params=params)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["detail"]
        assert c.get("/api/stations/WS-999/trend").status_code == 404


def test_service_dashboard(trends_api) -> None:
    now = datetime.now(UTC)
    with trends_api.client("op1") as c:
        r = c.get("/api/service", params={"from": (now - timedelta(hours=24)).isoformat(), "to": now.isoformat()})
        assert r.status_code == 200, r.text
        doc = r.json()
    d, resp = doc["dispatch"]["all"], doc["response"]["all"]
    assert d["count"] == 3 and d["p50_s"] == 120 and d["within_target"] == pytest.approx(2 / 3)
    assert resp["count"] == 3 and resp["p50_s"] == 400 and resp["within_target"] == pytest.approx(2 / 3)
    assert resp["p95_s"] == pytest.approx(580)  # 400 + 0.9 * 200
    assert sum(b["count"] for b in d["histogram"]) == 3
    assert set(doc["dispatch"]["by_priority"]) == {"1", "2"} and doc["response"]["p1_mean_s"] == 300
    assert doc["targets"]["dispatch"]["seconds"] == 180 and doc["targets"]["response"]["seconds"] == 480
    assert sum(v["count"] for v in doc["dispatch"]["by_town"].values()) == 3
    amb1 = doc["availability"]["units"]["AMB-01"]
    assert amb1["on_scene"] == pytest.approx(20 * 60 / 86400, rel=0.01) and sum(amb1.values()) == pytest.approx(1)
    assert len(doc["availability"]["fleet_hourly"]) == 24
    ws = {s["id"]: s for s in doc["completeness"]["stations"]}
    assert ws[STATION]["expected"] == 1440 and 1380 <= ws[STATION]["received"] <= 1500
    wear = {s["id"]: s for s in doc["completeness"]["wearables"]}
    assert wear[PERSON]["share"] > 0.99 and wear["P-0002"]["received"] == 0
