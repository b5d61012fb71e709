"""`watchpost registry load` as a county IT team runs it, against a real database: bad files
refused with every problem and its line and nothing written, a dry run that changes nothing,
a sync that retires what the file no longer lists, and the demo county kept apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import yaml
from typer.testing import CliRunner

from dispatch.store import load_facilities
from ingest.store import fetch_device_directory
from tests.fix_db import SMALL_REGISTRY, count
from watchpost.cli import app

CORPUS = Path(__file__).parents[1] / "fixtures" / "registry-bad"


def watchpost(database_url: str, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"WATCHPOST_DATABASE_URL": database_url})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def small() -> dict:
    return yaml.safe_load(SMALL_REGISTRY.read_text())


def write(tmp_path: Path, doc: dict, name: str = "county.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def version(url: str) -> int:
    return count(url, "SELECT version FROM registry_version")


def test_a_bad_file_is_refused_with_every_problem_at_its_line_and_nothing_is_loaded(database_url: str) -> None:
    before = version(database_url)
    names = sorted(p.name for p in CORPUS.iterdir() if not p.name.endswith(".expected"))
    assert len(names) == 5
    for name in names:
        result = watchpost(database_url, "registry", "load", str(CORPUS / name))
        expected = (CORPUS / f"{name}.expected").read_text().splitlines()
        assert result.exit_code == 1, name
        header, *problems = result.stderr.splitlines()
        assert header == f"{CORPUS / name}: {len(expected)} problems, nothing was loaded:"
        assert [p.strip() for p in problems] == [e.replace(f"{name}:", f"{CORPUS / name}:", 1) for e in expected]
        assert "Traceback" not in result.output
    assert version(database_url) == before


def test_a_dry_run_prints_the_difference_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    doc = small()
    doc["stations"][0]["name"] = "Weitang canal (renamed)"
    doc["persons"].append({"person_id": "P-0003", "name": "Zhao Hua", "lat": 30.85, "lon": 120.91})
    doc["units"] = doc["units"][:1]
    before = version(database_url)
    result = watchpost(database_url, "registry", "load", "--dry-run", write(tmp_path, doc))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stations: 0 added, 1 changed, 1 unchanged, 0 not in the file, kept\n    changed: WS-001" in out
    assert "persons: 1 added, 0 changed, 2 unchanged, 0 not in the file, kept\n    added: P-0003" in out
    assert "units: 0 added, 0 changed, 1 unchanged, 1 not in the file, kept\n    kept: AMB-02" in out
    assert "dry run: nothing was changed" in out
    assert version(database_url) == before and count(database_url, "SELECT count(*) FROM persons") == 2

    synced = watchpost(database_url, "registry", "load", "--dry-run", "--sync", write(tmp_path, doc))
    assert "1 retired\n    retired: AMB-02" in synced.stdout
    assert count(database_url, "SELECT count(*) FROM units WHERE retired_at IS NOT NULL") == 0


def test_a_sync_retires_what_the_file_omits_keeping_its_history_and_its_devices_are_refused(database_url: str, tmp_path: Path) -> None:
    doc = small()
    doc["units"] = [u for u in doc["units"] if u["unit_id"] != "AMB-02"]
    doc["persons"] = [p for p in doc["persons"] if p["person_id"] != "P-0002"]
    result = watchpost(database_url, "registry", "load", "--sync", write(tmp_path, doc))
    assert result.exit_code == 0, result.output
    assert "retired 0 users, 1 units, 1 persons, 0 stations, 0 facilities, 0 partners" in result.stdout
    # Kept, with its history; no longer a device ingest accepts, nor a unit dispatch sees.
    assert count(database_url, "SELECT count(*) FROM units WHERE unit_id = 'AMB-02' AND retired_at IS NOT NULL") == 1
    with psycopg.connect(database_url) as conn:
        devices = fetch_device_directory(conn)
        assert "P-0002" not in devices.persons and {"P-0002", "AMB-02"} <= devices.retired
        assert ("P-0002", "door-1") not in devices.home_sensors
        # Nor supervised: a retired wearable's silence raises no alarm.
        from ingest.rule_store import fetch_rule_configs

        _, supervised = fetch_rule_configs(conn)
        assert "elder:P-0001" in supervised and not [d for d in supervised if "P-0002" in d or "AMB-02" in d]
        from dispatch.roads import RoadGraph

        graph = RoadGraph.from_edges([30.83, 30.84], [120.92, 120.93], [0, 1], [1, 0], [1400.0, 1400.0], ["primary", "primary"])
        assert set(load_facilities(conn, graph).base_location) == {"AMB-01"}

    # Listed again, it is back.
    again = watchpost(database_url, "registry", "load", write(tmp_path, small()))
    assert again.exit_code == 0, again.output
    assert count(database_url, "SELECT count(*) FROM units WHERE retired_at IS NOT NULL") == 0


def test_a_retired_unit_is_never_dispatched(database_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from dispatch.roads import RoadGraph
    from dispatch.store import Order, assign, create_incident

    doc = small()
    doc["units"] = [u for u in doc["units"] if u["unit_id"] != "AMB-01"]
    assert watchpost(database_url, "registry", "load", "--sync", write(tmp_path, doc)).exit_code == 0
    graph = RoadGraph.from_edges([30.83, 30.84], [120.92, 120.93], [0, 1], [1, 0], [1400.0, 1400.0], ["primary", "primary"])
    with psycopg.connect(database_url) as conn:
        facilities = load_facilities(conn, graph)
        orders = []
        for _ in range(2):
            incident = create_incident(conn, lat=30.84, lon=120.93, kind="medical", priority=2, description="call",
                                       actor="calltaker", now=datetime.now(UTC))
            orders.append(assign(conn, incident["incident_id"], graph, facilities, datetime.now(UTC)))
    assert isinstance(orders[0], Order) and orders[0].unit_id == "AMB-02"
    assert not isinstance(orders[1], Order)  # AMB-02 is busy; AMB-01 is retired, so the second call waits


def test_a_county_registry_is_not_loaded_beside_the_demo_unless_asked(database_url: str, tmp_path: Path) -> None:
    demo = {"demo": True, **small()}
    demo["units"] = [*demo["units"], {"unit_id": "SIM-AMB-9", "kind": "ambulance", "name": "Simulated 9"}]
    assert watchpost(database_url, "registry", "load", write(tmp_path, demo, "demo.yaml")).exit_code == 0

    county = write(tmp_path, small())
    refused = watchpost(database_url, "registry", "load", county)
    assert refused.exit_code == 1
    assert "holds the simulated demo registry, and this file does not list 1 units of it" in refused.stderr
    assert "--sync to retire them" in refused.stderr and "--keep-demo" in refused.stderr
    assert count(database_url, "SELECT count(*) FROM units WHERE retired_at IS NULL") == 3

    kept = watchpost(database_url, "registry", "load", "--keep-demo", county)
    assert kept.exit_code == 0, kept.output
    assert count(database_url, "SELECT count(*) FROM registry_version WHERE demo") == 1  # demo records remain

    assert watchpost(database_url, "registry", "load", "--sync", county).exit_code == 0
    assert count(database_url, "SELECT count(*) FROM units WHERE unit_id = 'SIM-AMB-9' AND retired_at IS NOT NULL") == 1
    assert count(database_url, "SELECT count(*) FROM registry_version WHERE demo") == 0
    # No demo left: a later county file that omits records just keeps them.
    fewer = small()
    fewer["units"] = fewer["units"][:1]
    assert watchpost(database_url, "registry", "load", write(tmp_path, fewer, "fewer.yaml")).exit_code == 0


def test_a_retired_persons_wearable_is_dead_lettered_with_the_reason(start_ingest, publisher, database_url: str, tmp_path: Path) -> None:
    import time

    import orjson

    from tests.fix_broker import TEST_ROOT
    from tests.fix_wait import wait_for

    doc = small()
    doc["persons"] = [p for p in doc["persons"] if p["person_id"] != "P-0002"]
    doc["users"] = [u for u in doc["users"] if not u.get("persons")] + [
        {**u, "persons": [link for link in u["persons"] if link["person_id"] != "P-0002"]} for u in doc["users"] if u.get("persons")
    ]
    assert watchpost(database_url, "registry", "load", "--sync", write(tmp_path, doc)).exit_code == 0
    start_ingest()
    now = time.time()
    publisher.wait_acked([
        publisher.publish(f"{TEST_ROOT}/elder/P-0002/wearable", orjson.dumps({"ts": now, "hr_bpm": 70})),
        publisher.publish(f"{TEST_ROOT}/elder/P-0001/wearable", orjson.dumps({"ts": now, "hr_bpm": 70})),
    ])
    wait_for(lambda: count(database_url, "SELECT count(*) FROM wearable_readings") == 1, what="P-0001's reading stored")
    wait_for(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 1, what="P-0002's reading dead-lettered")
    assert count(database_url, "SELECT count(*) FROM dead_letters WHERE reason = 'retired_device' AND detail LIKE %s",
                 "%'P-0002' was retired from the registry%") == 1


def test_an_unmigrated_or_unreachable_database_is_one_line_not_a_traceback() -> None:
    import subprocess
    import sys

    from tests.fix_broker import process_environment
    from tests.fix_db import empty_database

    def run(url: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "watchpost.cli", "registry", "load", str(SMALL_REGISTRY)],
                              env={**process_environment(), "WATCHPOST_DATABASE_URL": url}, capture_output=True, text=True, timeout=60)

    with empty_database() as url:
        result = run(url)
        assert result.returncode == 3 and "run `watchpost db migrate`" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    down = run("postgresql://x@127.0.0.1:1/x?connect_timeout=2")
    assert down.returncode == 3 and "is unavailable" in down.stderr and "Traceback" not in down.stderr
