"""`watchpost simulate`: a simulated Jiashan county that talks to the platform only over MQTT.

This is the simulator's composition root: it reads its arguments (never the environment),
builds the county, the road network, the simulation and the broker connections, runs, and
prints the summary.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .county import RegistryError, county_from_registry, read_registry, scaled_registry
from .faults import FaultConfigError, FaultRates
from .scenario import DEFAULT_FALL_CANCEL_WINDOW_S, SCENARIO_DIR, Scenario, ScenarioError, load_scenario
from .simclock import ClockError, parse_duration, resolve_start
from .summary import SimulationSummary

DEFAULT_GEOJSON = Path(__file__).resolve().parent / "data" / "jiashan-region.geojson"
# After the run a doctor still driving to the scene gets this long (real seconds) to arrive.
DOCTORS_DRAIN_S = 10.0
PER_DEVICE_LIMIT = 1000  # a connection (and a paho thread) per device: small counties only


def build_parser() -> argparse.ArgumentParser:
    shipped = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
    p = argparse.ArgumentParser(
        prog="watchpost simulate",
        description="Simulate Jiashan's devices (water stations, elderly persons' wearables and home sensors, "
        "ambulances and river patrols) over MQTT, then print what was sent.",
    )
    p.add_argument("--scenario", default="demo", help=f"a scenario name ({shipped}) or a YAML file (default demo)")
    p.add_argument("--mqtt-url", help="mqtt://user:password@host:port of the gateway account (mqtts:// for TLS)")
    p.add_argument("--root", default="jiashan", help="topic root (default jiashan)")
    reg = p.add_argument_group("county")
    reg.add_argument("--registry", type=Path, help="registry YAML/JSON as the platform loaded it (default: generate one)")
    reg.add_argument("--persons", type=int, help="persons to simulate: the first N of --registry, or the size of a generated county")
    reg.add_argument("--stations", type=int, help="water stations: the first N, or more (copies, for load tests) in a generated county")
    reg.add_argument("--seed", type=int, help="seed of a generated registry (default: that of simulators.jiashan_registry, as `make up` loads)")
    reg.add_argument("--write-registry", type=Path, help="write the registry in use to this YAML file (for `watchpost registry load`)")
    reg.add_argument("--geojson", type=Path, default=DEFAULT_GEOJSON, help="region boundaries the road network is built in")
    run = p.add_argument_group("run")
    run.add_argument("--scenario-seed", type=int, help="override the scenario's seed (behaviour, events, faults)")
    run.add_argument("--acceleration", type=float, help="simulated seconds per real second; 0 = as fast as possible")
    run.add_argument("--duration", help="simulated duration, e.g. 90m, 2h, 1d")
    run.add_argument("--start", help="auto (end at the wall clock), now, or an RFC 3339 time")
    run.add_argument("--rate", type=float, default=0.0, help="publish at most this many messages per second (default: no limit)")
    run.add_argument("--no-faults", action="store_true", help="inject no faults, whatever the scenario says")
    run.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE", help="override a fault rate, e.g. malformed=0.01 (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="run the models without a broker (counts only)")
    run.add_argument("--quiet", action="store_true", help="no progress display on stderr")
    run.add_argument("--summary-json", type=Path, help="also write the summary as JSON to this file")
    run.add_argument(
        "--database-url",
        help="after the run, read the platform's alarms from this database and print the detection table "
        "(what was injected against what was raised)",
    )
    run.add_argument("--settle", type=float, default=30.0, help="with --database-url: wait at most this many seconds for the platform to catch up (default 30)")
    doc = p.add_argument_group("village doctors")
    doc.add_argument("--api-url", help="the platform's API: the posts' doctors answer their alerts on the post's page "
                     "(logged in as doc-FAP-nnn; without it no doctor answers)")
    doc.add_argument("--doctor-password-file", type=Path, help="a file holding the doctors' password (with --api-url)")
    conn = p.add_argument_group("connections")
    conn.add_argument("--connections", type=int, default=2, help="gateway connections the devices share (default 2)")
    conn.add_argument("--window", type=int, default=500, help="unacknowledged QoS 1 messages per connection (default 500)")
    conn.add_argument("--per-device-connections", action="store_true", help=f"one connection per device with its own last will (up to {PER_DEVICE_LIMIT} devices)")
    conn.add_argument("--device-secret", type=Path, help="with --per-device-connections: the deployment's MQTT secret, to log in as each device")
    hj = p.add_argument_group("HJ 212 stations")
    hj.add_argument("--station-protocol", choices=("json", "hj212"), help="override the scenario's devices.stations: json (MQTT) or hj212 (stations with an MN over TCP)")
    hj.add_argument("--hj212", metavar="HOST:PORT", help="the HJ 212 gateway (`watchpost hj212`) the stations connect to")
    hj.add_argument("--station-secret", type=Path, help="the deployment's secret (mqtt-secret) the stations' HJ 212 passwords are derived from")
    return p


def simulate(argv: list[str]) -> int:
    """Entry point: parse `argv`, run, print the summary. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except (ScenarioError, RegistryError, ClockError, FaultConfigError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # GatewayError: the broker cannot be reached or refused us
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    print(summary.format())
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> SimulationSummary:
    """Everything `simulate` does but printing: for callers that merge the summary."""
    from .engine import Simulation
    from .runner import DryRun, Runner, default_progress

    if not args.dry_run and not args.mqtt_url:
        raise ValueError("--mqtt-url is required (or --dry-run)")
    scenario = configured_scenario(args)
    doc = registry_document(args, scenario)
    if args.write_registry:
        args.write_registry.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    county = county_from_registry(doc)
    _check_cancel_window(doc, scenario)
    if args.per_device_connections and county.device_count > PER_DEVICE_LIMIT:
        raise ValueError(f"--per-device-connections: {county.device_count} devices, the limit is {PER_DEVICE_LIMIT}")
    start = resolve_start(scenario.start, duration_s=scenario.duration_s, acceleration=scenario.acceleration, wall_now=datetime.now(UTC))
    roads = _roads(args.geojson) if county.units else None
    hj212 = scenario.stations == "hj212" and any(s.hj212_mn for s in county.stations)
    sim = Simulation(county, scenario, start=start, root=args.root, roads=roads, explicit_presence=not args.per_device_connections,
                     station_password=_station_passwords(args) if hj212 and not args.dry_run else lambda mn: "simulate")
    stations = None if args.dry_run or not hj212 else _station_links(args)
    orders: queue.Queue[tuple[str, bytes]] = queue.Queue()
    receipts: queue.Queue[tuple[str, bytes]] = queue.Queue()
    doctors = None
    if args.api_url and not args.dry_run:
        from .doctors import VillageDoctors

        if args.doctor_password_file is None:
            raise ValueError("--api-url needs --doctor-password-file (the village doctors log in)")
        password = args.doctor_password_file.read_text(encoding="utf-8").strip()
        doctors = VillageDoctors(args.api_url, password, acceleration=scenario.acceleration, seed=scenario.seed)

    def on_order(unit_id: str, payload: bytes) -> None:
        orders.put((unit_id, payload))
        if doctors is not None:
            doctors.order(payload)

    gateway = None if args.dry_run else _gateway(
        args, sim, on_order, lambda person_id, payload: receipts.put((person_id, payload))
    )
    stop = stop or threading.Event()
    previous = _stop_on_signals(stop)
    try:
        if gateway is not None:
            gateway.start()
        if doctors is not None:
            doctors.start()
        runner = Runner(
            sim, gateway or DryRun(), acceleration=scenario.acceleration, scenario=scenario.name, seed=scenario.seed,
            orders=orders, rate=args.rate, progress=default_progress(args.quiet), stop=stop,
            receipts=receipts if gateway is not None else None, stations=stations,
        )
        summary = runner.run()
        if doctors is not None:
            doctors.close(drain_s=DOCTORS_DRAIN_S)
            doctors = None
        if args.database_url:
            from dataclasses import replace

            from .platform_alarms import detection_of_run

            live = 0 < scenario.acceleration <= 1
            detection = detection_of_run(sim, args.database_url, settle_s=args.settle, stop=stop, live=live,
                                         cancel_window_s=scenario.fall_cancel_window_s)
            summary = replace(summary, detection=detection)
        return summary
    finally:
        _restore_signals(previous)
        if doctors is not None:
            doctors.close()
        if gateway is not None:
            gateway.close()
        if stations is not None:
            stations.close()


def configured_scenario(args: argparse.Namespace) -> Scenario:
    from dataclasses import replace

    scenario = load_scenario(args.scenario)
    changes: dict[str, Any] = {}
    if args.scenario_seed is not None:
        changes["seed"] = args.scenario_seed
    if args.acceleration is not None:
        changes["acceleration"] = args.acceleration
    if args.duration is not None:
        changes["duration_s"] = parse_duration(args.duration)
    if args.start is not None:
        changes["start"] = args.start
    if args.station_protocol is not None:
        changes["stations"] = args.station_protocol
    faults = FaultRates() if args.no_faults else scenario.faults
    for item in args.fault:
        name, _, value = item.partition("=")
        if name not in FaultRates.__dataclass_fields__ or name in ("malformed_kinds", "silent_s"):
            raise ValueError(f"--fault {item!r}: expected NAME=VALUE with NAME one of malformed, duplicate, out_of_order, silent_per_device_day, disconnects_per_hour")
        rate: dict[str, Any] = {name: float(value)}
        faults = replace(faults, **rate)
    changes["faults"] = faults
    return replace(scenario, **changes)


def registry_document(args: argparse.Namespace, scenario: Scenario) -> dict:
    if args.registry:
        return scaled_registry(read_registry(args.registry), persons=args.persons, stations=args.stations, extend=False)
    from .jiashan_registry import DEFAULT_SEED, generate_registry

    doc = generate_registry(args.persons if args.persons is not None else scenario.persons, seed=args.seed if args.seed is not None else DEFAULT_SEED, geojson_path=args.geojson)
    if scenario.fall_cancel_window_s != DEFAULT_FALL_CANCEL_WINDOW_S:
        # A county generated for this scenario has its cancel window (--write-registry keeps it).
        for p in doc["persons"]:
            p["thresholds"] = {**(p.get("thresholds") or {}), "fall_cancel_window_s": scenario.fall_cancel_window_s}
    return scaled_registry(doc, persons=None, stations=args.stations, extend=True)


def _roads(geojson: Path):  # -> crew.Roads
    from simulators.jiashan_roads import build_jiashan_network

    from .crew import Roads

    return Roads(build_jiashan_network(geojson).graph)


def _gateway(args: argparse.Namespace, sim, on_order, on_receipt):  # -> gateway.Gateway
    from kernel.settings import MqttEndpoint

    from .gateway import Gateway

    endpoint = MqttEndpoint.parse(args.mqtt_url)
    per_device = [d.key for d in sim.devices] if args.per_device_connections else None
    passwords = None
    if args.device_secret:
        from kernel.broker import device_password, load_or_create_secret

        if not args.device_secret.is_file():
            raise ValueError(f"--device-secret {args.device_secret}: no such file (the deployment's mqtt-secret)")
        secret = load_or_create_secret(args.device_secret)
        passwords = lambda device_id: device_password(secret, device_id)
    return Gateway(
        endpoint, root=args.root, on_order=on_order, connections=args.connections, window=args.window, per_device=per_device,
        device_passwords=passwords, on_receipt=on_receipt,
    )


def _check_cancel_window(doc: dict, scenario: Scenario) -> None:
    """The scenario presses "I'm OK" inside its fall cancel window and waits for the window to
    run out: the platform must have the same one, from the registry."""
    for p in doc.get("persons") or []:
        window = float((p.get("thresholds") or {}).get("fall_cancel_window_s", DEFAULT_FALL_CANCEL_WINDOW_S))
        if window != scenario.fall_cancel_window_s:
            raise ValueError(
                f"scenario {scenario.name}: fall_cancel_window {scenario.fall_cancel_window_s:g} s, but the registry gives "
                f"{p.get('person_id')} thresholds.fall_cancel_window_s {window:g} s: set both to the same"
            )


def _station_passwords(args: argparse.Namespace):  # -> Callable[[str], str]
    from ingest.hj212_gateway import derived_station_password
    from kernel.broker import load_or_create_secret

    if not args.station_secret or not args.station_secret.is_file():
        raise ValueError("HJ 212 stations log in with the PW `registry load` derived for them: give --station-secret "
                         "(the deployment's mqtt-secret), or --station-protocol json")
    secret = load_or_create_secret(args.station_secret)
    return lambda mn: derived_station_password(secret, mn)


def _station_links(args: argparse.Namespace):  # -> hj212_link.StationLinks
    from .hj212_link import StationLinks

    host, _, port = (args.hj212 or "").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("the scenario's stations speak HJ 212: give --hj212 HOST:PORT (the gateway), or --station-protocol json")
    return StationLinks(host, int(port), queue.Queue())


def _stop_on_signals(stop: threading.Event) -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


__all__ = ["build_parser", "run", "simulate"]
