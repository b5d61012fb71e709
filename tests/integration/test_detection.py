"""The detection table in CI: a short accelerated county run on realistic devices, through
the real broker, ingest, alert lane and HJ 212 gateway; what the simulator injected against
what the platform raised, and the water stations' own uploads stored and graded."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from kernel.broker import SIMULATOR_USER
from simulators.cli import build_parser, run
from simulators.scenario import load_scenario
from tests.fix_broker import TEST_ROOT, Broker
from tests.fix_wait import wait_for
from watchpost import registry
from watchpost.cli import hj212_digests

pytestmark = pytest.mark.slow


def same_phase_of_the_hour() -> datetime:
    """The run begins 8 minutes past an hour, two hours back, whenever the test runs: what
    the stations upload at the hours within it (and so whether the spill's hour falls inside
    it) must not depend on the wall clock's minute."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(hours=2) + timedelta(minutes=8)


def test_the_platform_detects_what_the_simulator_injects(
    broker: Broker, start_ingest, start_alerts, start_hj212_gateway, jiashan_url: str, jiashan_registry: dict, tmp_path: Path
) -> None:
    scenario = load_scenario("detection-ci")
    doc = copy.deepcopy(jiashan_registry)
    # Both sides agree on the fall cancel window: the scenario's, given to the platform here.
    for person in doc["persons"]:
        person["thresholds"] = {**person.get("thresholds", {}), "fall_cancel_window_s": scenario.fall_cancel_window_s}
    # The scenario scripts a gas leak: someone in the 6-person county has a gas detector.
    if not any(h["kind"] == "gas" for p in doc["persons"] for h in p.get("home_sensors", [])):
        doc["persons"][0].setdefault("home_sensors", []).append({"sensor_id": "gas-1", "kind": "gas"})
    # An hour out of class raises at a cross-border section (3 h by default: a run of 80
    # simulated minutes holds one or two hourly uploads).
    for station in doc["stations"]:
        if station.get("partner_id"):
            station["thresholds"] = {**station.get("thresholds", {}), "hourly_raise_hours": 1}
    gateway = start_hj212_gateway(jiashan_url)
    with psycopg.connect(jiashan_url) as conn:
        registry.load(conn, doc, hj212_digest=hj212_digests(gateway.home))
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(doc, allow_unicode=True))
    start_ingest(db_url=jiashan_url)
    start_alerts(db_url=jiashan_url)
    args = build_parser().parse_args([
        "--mqtt-url", broker.url(SIMULATOR_USER), "--root", TEST_ROOT, "--quiet", "--scenario", "detection-ci",
        "--registry", str(registry_file), "--database-url", jiashan_url, "--settle", "60",
        "--start", same_phase_of_the_hour().isoformat(),
        "--hj212", gateway.address, "--station-secret", str(gateway.deployment_secret),
    ])
    summary = run(args)
    print(summary.format())
    table = summary.detection
    assert table is not None
    detected, injected = table.life_safety
    assert injected >= 6, table.format()
    assert table.missed_sos == 0, table.format()
    assert table.detection_pct is not None and table.detection_pct >= 99.0, table.format()
    assert table.false_per_person_week is not None

    # Every automatic station logged in with its derived PW and had its uploads acknowledged.
    hj212_stations = {s["station_id"] for s in doc["stations"] if s.get("hj212_mn")}
    assert summary.hj212.get("acked", 0) >= len(hj212_stations) * 60, summary.hj212
    assert summary.hj212.get("unacknowledged", 0) == 0 and not summary.hj212.get("unsent"), summary.hj212
    assert summary.hj212.get("set_time", 0) >= 1, summary.hj212  # calibration requests answered
    with psycopg.connect(jiashan_url) as conn:
        by_period = dict(conn.execute(
            "SELECT period, count(DISTINCT station_id) FROM station_averages GROUP BY 1"
        ).fetchall())
        assert by_period.get("minute") == len(hj212_stations) and by_period.get("hour") == len(hj212_stations), by_period
        # Real-time readings: the probe buoys' JSON telemetry, and the cross-border sections'
        # real-time uploads (CN 2011) through the gateway.
        realtime = {r[0] for r in conn.execute("SELECT DISTINCT station_id FROM water_readings")}
        cross_border = {s["station_id"] for s in doc["stations"] if s.get("partner_id")}
        assert cross_border <= hj212_stations
        assert realtime == ({s["station_id"] for s in doc["stations"]} - hj212_stations) | cross_border
        # The spill at a cross-border section, seen by the analysers in an hourly upload.
        wait_for(lambda: conn.execute(
            "SELECT count(*) FROM alarms a JOIN stations s ON s.station_id = a.source_id "
            "WHERE a.alarm_type = 'water_hourly_exceeded' AND s.partner_id IS NOT NULL"
        ).fetchone()[0] >= 1, timeout=30, what="water_hourly_exceeded at a cross-border section")
    assert "Traceback" not in gateway.log(), gateway.log()
