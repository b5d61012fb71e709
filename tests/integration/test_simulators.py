"""The county simulator against the real broker, ingest and dispatcher."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from simulators.cli import build_parser, run
from tests.fix_broker import TEST_ROOT, Broker
from tests.fix_db import count
from tests.fix_ingest import stored_total
from tests.fix_wait import wait_for
from kernel.broker import SIMULATOR_USER

pytestmark = pytest.mark.slow


def simulator_args(broker: Broker, *extra: str):
    return build_parser().parse_args(["--mqtt-url", broker.url(SIMULATOR_USER), "--root", TEST_ROOT, "--quiet", *extra])


def dead_letters(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason").fetchall())


def test_a_short_county_run_is_stored_with_only_the_injected_dead_letters_and_crews_answer_orders(
    broker: Broker, start_ingest, start_alerts, start_dispatcher, jiashan_url: str, jiashan_registry: dict, tmp_path: Path
) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(jiashan_registry, allow_unicode=True))
    start_ingest(db_url=jiashan_url)
    start_alerts(db_url=jiashan_url)
    start_dispatcher(jiashan_url)

    summary = run(simulator_args(broker, "--scenario", "short-e2e", "--registry", str(registry_file)))
    print(summary.format())  # shown when the test fails

    assert summary.publish_refused == {} and summary.unacknowledged == 0
    malformed = sum(n for fault, n in summary.faults.items() if fault.startswith("malformed:"))
    assert malformed > 0 and summary.faults.get("duplicate", 0) > 0 and summary.faults.get("out_of_order", 0) > 0
    # Every alert (SOS, fall, "I'm OK") is receipted, and stored once however often it was sent.
    assert summary.messages.get("alert", 0) > 0
    wait_for(lambda: count(jiashan_url, "SELECT count(*) FROM alerts") == summary.messages["alert"], timeout=30)
    readings = sum(n for kind, n in summary.messages.items() if kind not in ("online", "alert_repeat"))
    expected_rows = readings - summary.faults["duplicate"] - malformed
    expected_dead = summary.expected_dead_letters
    assert sum(expected_dead.values()) == malformed
    wait_for(lambda: stored_total(jiashan_url) >= expected_rows and sum(dead_letters(jiashan_url).values()) >= malformed, timeout=30)
    assert stored_total(jiashan_url) == expected_rows  # every reading once: duplicates stored once
    got = dead_letters(jiashan_url)
    # Exactly the injected reasons; a malformed message resent after a dropped connection
    # may be dead-lettered twice (dead letters are not deduplicated), never fewer.
    assert set(got) == set(expected_dead) and all(got[r] >= n for r, n in expected_dead.items())
    assert count(jiashan_url, "SELECT count(*) FROM water_readings WHERE station_id IN (SELECT station_id FROM stations)") > 0

    # The scripted SOS became an incident, its order reached a simulated crew, and the
    # crew's reports moved the platform's assignment along.
    assert summary.orders, summary.format()
    sos = [o for o in summary.orders if o.trigger_kind == "sos"]
    assert sos and "en_route" in sos[0].statuses and sos[0].dispatch_wait_min is not None
    states = {r[0] for r in psycopg.connect(jiashan_url).execute("SELECT state FROM assignments WHERE incident_id = %s", (sos[0].incident_id,))}
    assert states & {"en_route", "on_scene", "transporting", "at_hospital", "done"}, states  # moved past "ordered"


def test_with_a_connection_per_device_the_broker_publishes_a_silent_devices_last_will(broker: Broker, collect, tmp_path: Path) -> None:
    scenario = tmp_path / "silence.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "silence", "seed": 1, "acceleration": 60, "duration": "4m", "registry": {"persons": 6},
        "events": [{"at": 1, "kind": "silent", "device": "P-0002", "duration": 2}],
    }))
    flags = collect("ingest", "elder/P-0002/online")
    summary = run(simulator_args(broker, "--scenario", str(scenario), "--per-device-connections"))
    wait_for(lambda: [p for _, _, p in flags.messages][-3:] == [b"1", b"0", b"1"], timeout=10)
    assert summary.reconnects >= 1 and summary.publish_refused == {}
