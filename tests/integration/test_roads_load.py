"""`watchpost roads load` against a real database and a running dispatcher: an unroutable
file is refused and the loaded network stays; what is dropped is reported; a dispatcher
routes on a new network without a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from typer.testing import CliRunner

import yaml

from dispatch.store import create_incident
from tests.fix_api import TEST_PASSWORD
from tests.fix_db import SMALL_REGISTRY, count
from tests.fix_wait import wait_for
from tests.unit.dispatch.test_road_components import collection, grid, line
from watchpost.cli import app

# The small registry's ambulance station is at 30.83, 120.92: the grid's corner.
STATION = (30.83, 120.92)


def roads_load(database_url: str, *args: str) -> Any:
    result = CliRunner().invoke(app, ["roads", "load", *args], env={"WATCHPOST_DATABASE_URL": database_url})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def geojson(tmp_path: Path, name: str, features: list[dict]) -> str:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(collection(features)))
    return str(path)


def network(url: str) -> tuple[int, int, int]:
    return (count(url, "SELECT count(*) FROM road_nodes"), count(url, "SELECT count(*) FROM road_edges"),
            count(url, "SELECT roads_version FROM registry_version"))


def test_a_network_keeps_its_routable_part_and_an_unroutable_file_is_refused(database_url: str, tmp_path: Path) -> None:
    features = [*grid(8), line((30.83, 120.92), (30.82, 120.92), oneway="yes")]
    result = roads_load(database_url, "--geojson", geojson(tmp_path, "county.geojson", features))
    assert result.exit_code == 0, result.output
    assert "dropped 1 nodes and 1 edges outside the largest strongly connected part" in result.stdout
    assert "road network: 64 nodes, 224 edges (version 1)" in result.stdout
    assert "reading " in result.stderr and "writing 64 nodes" in result.stderr  # progress
    assert network(database_url) == (64, 224, 1)

    # An unroutable file is refused and the loaded network stays.
    loaded = network(database_url)
    footpaths = geojson(tmp_path, "paths.geojson", grid(8, highway="footway"))
    refused = roads_load(database_url, "--geojson", footpaths)
    assert refused.exit_code == 1
    assert "refused, the loaded road network is unchanged: no drivable road in the file" in refused.stderr
    tiny = roads_load(database_url, "--geojson", geojson(tmp_path, "tiny.geojson", grid(3)))
    assert tiny.exit_code == 1 and "has 9 nodes (of 9, in 1 parts); at least 50 are needed" in tiny.stderr
    empty = tmp_path / "empty.osm"
    empty.write_text("<osm/>")
    assert roads_load(database_url, "--osm", str(empty)).exit_code == 1
    assert network(database_url) == loaded
    assert "Traceback" not in refused.output + tiny.output


def test_a_running_dispatcher_routes_on_a_new_network_without_a_restart(
    start_dispatcher, collect, database_url: str, tmp_path: Path
) -> None:
    assert roads_load(database_url, "--geojson", geojson(tmp_path, "slow.geojson", grid(8, maxspeed="20"))).exit_code == 0
    orders = collect("simulator", "unit/+/order")
    dispatcher = start_dispatcher(database_url)
    wait_for(lambda: "road network: 64 nodes" in dispatcher.log(), what="the dispatcher read the network")

    def call() -> float:
        with psycopg.connect(database_url) as conn:
            create_incident(conn, lat=30.844, lon=120.934, kind="medical", priority=2, description="call",
                            actor="calltaker", now=datetime.now(UTC))
        n = len(orders.messages) + 1
        return float(orjson.loads(orders.wait_for(n)[n - 1][2])["eta_s"])

    slow_eta = call()
    fast = roads_load(database_url, "--geojson", geojson(tmp_path, "fast.geojson", grid(8, maxspeed="60")))
    assert fast.exit_code == 0, fast.output
    wait_for(lambda: "road network version 2" in dispatcher.log(), what="the dispatcher read the new network")
    fast_eta = call()
    # The same place, the same base, three times the speed on every road.
    assert fast_eta < slow_eta / 2, (slow_eta, fast_eta)


def test_a_running_api_ranks_on_a_new_network_and_drops_retired_records_without_a_restart(
    start_api, database_url: str, tmp_path: Path
) -> None:
    assert roads_load(database_url, "--geojson", geojson(tmp_path, "slow.geojson", grid(8, maxspeed="20"))).exit_code == 0
    api = start_api(database_url)
    with psycopg.connect(database_url) as conn:
        incident = create_incident(conn, lat=30.844, lon=120.934, kind="medical", priority=2, description="call",
                                   actor="calltaker", now=datetime.now(UTC))
    client = api.client("op1")

    def best_eta() -> float:
        r = client.get(f"/api/incidents/{incident['incident_id']}/candidates")
        assert r.status_code == 200, r.text
        return min(c["eta_s"] for c in r.json()["ranked"])

    slow_eta = best_eta()
    assert roads_load(database_url, "--geojson", geojson(tmp_path, "fast.geojson", grid(8, maxspeed="60"))).exit_code == 0
    wait_for(lambda: best_eta() < slow_eta / 2, timeout=10, what="the API ranks on the new network")

    # A registry sync that retires a unit and a station: gone from the console's lists and
    # from the ranking, at once.
    assert api.token("fam1")  # logs in while listed
    doc = yaml.safe_load(SMALL_REGISTRY.read_text())
    doc["units"] = [u for u in doc["units"] if u["unit_id"] != "AMB-02"]
    doc["stations"] = [s for s in doc["stations"] if s["station_id"] != "WS-002"]
    doc["users"] = [u for u in doc["users"] if u["username"] != "fam1"]
    (tmp_path / "county.yaml").write_text(yaml.safe_dump(doc))
    synced = CliRunner().invoke(app, ["registry", "load", "--sync", str(tmp_path / "county.yaml")],
                                env={"WATCHPOST_DATABASE_URL": database_url})
    assert synced.exit_code == 0, synced.output
    assert [u["unit_id"] for u in client.get("/api/units").json()] == ["AMB-01"]
    assert [s["station_id"] for s in client.get("/api/stations").json()] == ["WS-001"]
    assert [c["unit_id"] for c in client.get(f"/api/incidents/{incident['incident_id']}/candidates").json()["ranked"]] == ["AMB-01"]
    # A retired user cannot log in.
    import httpx

    assert httpx.post(f"{api.base}/api/token", data={"username": "fam1", "password": TEST_PASSWORD}).status_code == 401
