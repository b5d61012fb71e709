"""Scenario files, simulated time, the county view of a registry, and the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from simulators.cli import simulate
from simulators.county import RegistryError, county_from_registry, scaled_registry
from simulators.scenario import SCENARIO_DIR, ScenarioError, load_scenario, parse_scenario, resolve
from simulators.simclock import ClockError, SimClock, parse_duration, resolve_start

NOW = datetime(2026, 5, 10, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
def test_every_shipped_scenario_loads_and_binds_to_a_generated_county(name: str, registry_doc: dict) -> None:
    scenario = load_scenario(name)
    resolved = resolve(scenario.events, county_from_registry(registry_doc), scenario.seed)
    assert len(resolved) == len(scenario.events)
    resolve_start(scenario.start, duration_s=scenario.duration_s, acceleration=scenario.acceleration, wall_now=NOW)


def test_the_demo_scripts_every_kind_of_emergency_and_a_cross_border_pollution(registry_doc: dict) -> None:
    scenario = load_scenario("demo")
    kinds = {e.kind for e in scenario.events}
    assert {"fall", "sos", "heart_rate_high", "smoke", "gas", "inactivity", "pollution", "rain", "maintenance"} <= kinds
    falls = [e for e in scenario.events if e.kind == "fall"]
    assert {"cancel_after_s" in e.options for e in falls} == {True, False}
    county = county_from_registry(registry_doc)
    [pollution] = [r for r in resolve(scenario.events, county, scenario.seed) if r.event.kind == "pollution"]
    assert next(s for s in county.stations if s.station_id == pollution.device_id).partner_id


def test_random_targets_can_have_the_event_and_differ_where_possible(registry_doc: dict) -> None:
    county = county_from_registry(registry_doc)
    events = parse_scenario({"events": [{"at": k, "kind": "smoke"} for k in range(5)]}).events
    chosen = [r.device_id for r in resolve(events, county, seed=1)]
    assert len(set(chosen)) == 5
    assert all(next(p for p in county.persons if p.person_id == pid).sensors_of("smoke") for pid in chosen)
    assert chosen == [r.device_id for r in resolve(events, county, seed=1)]


def test_every_problem_in_a_scenario_is_reported_at_once() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({
            "duration": "soon", "speed": 3, "faults": {"malformed": 2},
            "events": [{"at": 5, "kind": "earthquake"}, {"kind": "sos"}, {"at": "1h", "kind": "fall", "person": "P-0001", "colour": "red"}],
        })
    text = str(caught.value)
    for expected in ("duration:", "speed: not a scenario setting", "faults:", "events[0]", "earthquake", "events[1]", "events[2]", "colour"):
        assert expected in text


def test_an_unknown_target_says_which_event_and_why(registry_doc: dict) -> None:
    county = county_from_registry(registry_doc)
    events = parse_scenario({"events": [{"at": 1, "kind": "pollution", "station": "WS-999"}]}).events
    with pytest.raises(ScenarioError, match=r"events\[0\].station: 'WS-999'"):
        resolve(events, county, seed=1)


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("1h30m", 5400), ("2d", 172800), ("45s", 45), (15, 900), ("1.5h", 5400)])
def test_durations_read_as_people_write_them(text, seconds) -> None:
    assert parse_duration(text) == seconds


def test_an_accelerated_run_replays_the_recent_past_and_ends_at_the_wall_clock() -> None:
    start = resolve_start("auto", duration_s=7200, acceleration=10, wall_now=NOW)
    real_s = 720
    assert start + 7200 == NOW.timestamp() + real_s
    clock = SimClock(start, 7200, 10, real_origin=100.0)
    for elapsed in (0, 60, 500, real_s):
        assert clock.scheduled(100.0 + elapsed) <= NOW.timestamp() + elapsed  # never ahead of the wall clock
    assert clock.scheduled(100.0 + real_s) == clock.end
    assert clock.real_at(start + 600) == pytest.approx(160.0)


def test_a_start_that_would_run_into_the_future_or_the_too_distant_past_is_refused() -> None:
    with pytest.raises(ClockError, match="ahead of the wall clock"):
        resolve_start("now", duration_s=3600, acceleration=60, wall_now=NOW)
    assert resolve_start("now", duration_s=3600, acceleration=1, wall_now=NOW) == NOW.timestamp()
    with pytest.raises(ClockError, match="30 days"):
        resolve_start((NOW - timedelta(days=40)).isoformat(), duration_s=3600, acceleration=60, wall_now=NOW)
    with pytest.raises(ClockError, match="UTC offset"):
        resolve_start("2026-05-09T08:00:00", duration_s=3600, acceleration=60, wall_now=NOW)


def test_a_county_can_be_cut_down_or_given_extra_stations_for_load_tests(registry_doc: dict) -> None:
    small = scaled_registry(registry_doc, persons=3, stations=5, extend=False)
    assert len(small["persons"]) == 3 and len(small["stations"]) == 5
    assert {link["person_id"] for u in small["users"] if u["role"] == "family" for link in u["persons"]} <= {p["person_id"] for p in small["persons"]}
    big = scaled_registry(registry_doc, persons=None, stations=45, extend=True)
    ids = [s["station_id"] for s in big["stations"]]
    assert len(ids) == len(set(ids)) == 45 and not any(s.get("partner_id") for s in big["stations"][30:])
    with pytest.raises(RegistryError, match="only 30 stations"):
        scaled_registry(registry_doc, persons=None, stations=45, extend=False)
    assert len(registry_doc["stations"]) == 30  # the caller's document is left alone


def test_a_dry_run_from_the_command_line_prints_and_writes_its_summary(tmp_path, capsys) -> None:
    out = tmp_path / "summary.json"
    written = tmp_path / "registry.yaml"
    status = simulate([
        "--scenario", "short-e2e", "--dry-run", "--quiet", "--acceleration", "0", "--duration", "5m",
        "--summary-json", str(out), "--write-registry", str(written),
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "scenario short-e2e" in printed and "messages sent" in printed
    doc = json.loads(out.read_text())
    assert doc["messages_total"] > 1000 and doc["scripted"]
    assert "P-0006:" not in written.read_text() and "person_id: P-0006" in written.read_text()


def test_the_command_line_explains_what_is_wrong(capsys) -> None:
    assert simulate(["--scenario", "no-such-scenario", "--dry-run"]) == 2
    assert "shipped scenarios" in capsys.readouterr().err
    assert simulate(["--scenario", "short-e2e"]) == 2
    assert "--mqtt-url" in capsys.readouterr().err


def test_a_scenario_chooses_its_device_profiles_and_a_wrong_one_is_named() -> None:
    assert load_scenario("demo").wearables == "registry" and load_scenario("demo").terminals == "ignition"
    assert load_scenario("short-e2e").wearables == "continuous"
    with pytest.raises(ScenarioError, match="devices.wearables: expected one of continuous, registry, got 'spotty'"):
        parse_scenario({"devices": {"wearables": "spotty"}})
    with pytest.raises(ScenarioError, match="devices: expected"):
        parse_scenario({"devices": {"watches": "registry"}})


def test_a_fall_cancel_window_sets_when_im_ok_is_pressed_and_must_be_the_registrys(registry_doc: dict) -> None:
    from simulators.cli import _check_cancel_window

    scenario = parse_scenario({"fall_cancel_window": "10s", "devices": {"stations": "hj212"},
                               "events": [{"at": "1m", "kind": "fall", "cancelled": True}]})
    assert scenario.fall_cancel_window_s == 10 and scenario.stations == "hj212"
    assert scenario.events[0].options["cancel_after_s"] == 5  # half-way through the window
    assert parse_scenario({"events": [{"at": "1m", "kind": "fall", "cancelled": True}]}).events[0].options["cancel_after_s"] == 30
    with pytest.raises(ValueError, match=r"P-0001 thresholds.fall_cancel_window_s 60 s"):
        _check_cancel_window(registry_doc, scenario)
    agreed = {**registry_doc, "persons": [{**p, "thresholds": {**p.get("thresholds", {}), "fall_cancel_window_s": 10}}
                                          for p in registry_doc["persons"]]}
    _check_cancel_window(agreed, scenario)
    with pytest.raises(ScenarioError, match="devices.stations"):
        parse_scenario({"devices": {"stations": "modbus"}})
    with pytest.raises(ScenarioError, match="fall_cancel_window"):
        parse_scenario({"fall_cancel_window": "0s"})
