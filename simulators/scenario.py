"""Scenario files: a reproducible simulated day, in YAML (simulators/scenarios/*.yaml).

    name: demo
    seed: 330421                 # every random draw of the run follows from it
    acceleration: 10             # simulated seconds per real second; 0 = as fast as possible
    start: auto                  # auto | now | RFC 3339 (see simclock.resolve_start)
    duration: 2h
    registry: {persons: 200}     # when no --registry file is given: generate this county
    crew: {turnout_s: [20, 45], on_scene_s: [300, 720], handover_s: [300, 900]}
    devices: {wearables: registry,  # each person's wearable profile from the registry
              terminals: ignition,  # (defaults: continuous vitals, terminals always at 5 s,
              stations: hj212}      # stations JSON over MQTT; hj212: those with an MN over TCP)
    faults: {malformed: 0.001, duplicate: 0.001, out_of_order: 0.001,
             silent_per_device_day: 0.05, silent_s: [600, 1800], disconnects_per_hour: 0.5}
    events:
      - {at: 10m, kind: fall, person: random, cancelled: true}   # "I'm OK" after 30 s
      - {at: 15m, kind: fall, person: P-0007}                   # not cancelled: lies 45 min
      - {at: 20m, kind: pollution, station: cross-border, duration: 60m, peak_class: 5}

Event kinds and their target: fall, sos, heart_rate_high, heart_rate_low, spo2_low,
inactivity, smoke, gas, water_leak (`person`); pollution, maintenance (`station`); silent
(`device`: a station or person); rain (none). A target is an id, `random`, or for stations
`cross-border` (a station shared with a partner district). Every problem is reported at
once, as `events[2].person: …`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .county import County
from .crew import CrewTimes
from .faults import FaultConfigError, FaultRates
from .profiles import STATION_CHOICES, TERMINAL_CHOICES, WEARABLE_CHOICES
from .simclock import ClockError, parse_duration

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
PERSON_EVENTS = ("fall", "sos", "heart_rate_high", "heart_rate_low", "spo2_low", "inactivity", "smoke", "gas", "water_leak")
STATION_EVENTS = ("pollution", "maintenance")
DEFAULT_DURATION_S = {
    "fall": 45 * 60.0,  # lying on the floor when not cancelled
    "heart_rate_high": 300.0, "heart_rate_low": 300.0, "spo2_low": 300.0,
    "inactivity": 5 * 3600.0, "smoke": 600.0, "gas": 600.0, "water_leak": 1800.0,
    "pollution": 3600.0, "maintenance": 5400.0, "rain": 3 * 3600.0, "silent": 1200.0, "sos": 0.0,
}
_TARGET_KEY = {**{k: "person" for k in PERSON_EVENTS}, **{k: "station" for k in STATION_EVENTS}, "silent": "device", "rain": None}
_EVENT_OPTIONS = {"at", "kind", "person", "station", "device", "duration", "cancelled", "cancel_after_s", "peak_class", "intensity"}
DEFAULT_FALL_CANCEL_WINDOW_S = 60.0  # the platform's default (ingest.rules.PersonConfig)


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message lists every problem found."""


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    kind: str
    at_s: float  # seconds after the start of the run
    target: str | None  # an id, "random", "cross-border", or None (rain)
    duration_s: float
    options: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    acceleration: float
    start: str
    duration_s: float
    persons: int  # size of a generated county
    faults: FaultRates
    crew: CrewTimes
    events: tuple[ScriptedEvent, ...]
    description: str = ""
    # Device profiles (simulators.profiles): "registry" gives each person the wearable their
    # registry entry describes, "continuous" a continuous sensor to everyone.
    wearables: str = "continuous"
    terminals: str = "always"  # vehicle terminals: "always" every 5 s, "ignition" parked rarely
    # Water stations: "json" every station publishes JSON telemetry over MQTT each minute;
    # "hj212" a station with an MN in the registry speaks HJ 212 to the gateway over TCP.
    stations: str = "json"
    # The persons' fall cancel window ("I'm OK" in time), as the registry gives it to the
    # platform: a cancelled fall presses "I'm OK" half-way through it, and the detection
    # table waits for it to run out. Both sides must agree (checked against the registry).
    fall_cancel_window_s: float = DEFAULT_FALL_CANCEL_WINDOW_S


def find_scenario(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str) -> Scenario:
    path = find_scenario(name_or_path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror} (shipped scenarios: {known})") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path} is not valid YAML: {exc}") from None
    return parse_scenario(doc if isinstance(doc, dict) else {}, default_name=path.stem)


def parse_scenario(doc: Mapping[str, Any], default_name: str = "scenario") -> Scenario:
    problems: list[str] = []

    def check(where: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (ClockError, FaultConfigError, TypeError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            return None

    unknown = sorted(set(doc) - {"name", "description", "seed", "acceleration", "start", "duration", "registry", "crew", "faults", "events", "devices",
                                 "fall_cancel_window"})
    problems += [f"{k}: not a scenario setting" for k in unknown]
    duration = check("duration", parse_duration, doc.get("duration", "1h"))
    faults = check("faults", _faults, doc.get("faults") or {})
    crew = check("crew", _crew, doc.get("crew") or {})
    window = check("fall_cancel_window", parse_duration, doc.get("fall_cancel_window", f"{DEFAULT_FALL_CANCEL_WINDOW_S:g}s"))
    if window is not None and window <= 0:
        problems.append("fall_cancel_window: must be longer than 0 s")
    events = []
    for i, item in enumerate(doc.get("events") or []):
        event = check(f"events[{i}]", _event, item, window or DEFAULT_FALL_CANCEL_WINDOW_S)
        if event is not None:
            events.append(event)
    acceleration = check("acceleration", float, doc.get("acceleration", 60))
    devices = doc.get("devices") or {}
    wearables = str(devices.get("wearables", "continuous")) if isinstance(devices, dict) else ""
    terminals = str(devices.get("terminals", "always")) if isinstance(devices, dict) else ""
    stations = str(devices.get("stations", "json")) if isinstance(devices, dict) else ""
    if not isinstance(devices, dict) or set(devices) - {"wearables", "terminals", "stations"}:
        problems.append("devices: expected {wearables: registry | continuous, terminals: always | ignition, stations: json | hj212}")
    else:
        if wearables not in WEARABLE_CHOICES:
            problems.append(f"devices.wearables: expected one of {', '.join(WEARABLE_CHOICES)}, got {wearables!r}")
        if terminals not in TERMINAL_CHOICES:
            problems.append(f"devices.terminals: expected one of {', '.join(TERMINAL_CHOICES)}, got {terminals!r}")
        if stations not in STATION_CHOICES:
            problems.append(f"devices.stations: expected one of {', '.join(STATION_CHOICES)}, got {stations!r}")
    if acceleration is not None and acceleration < 0:
        problems.append("acceleration: must be >= 0 (0 runs as fast as possible)")
    if problems:
        raise ScenarioError("; ".join(problems))
    return Scenario(
        name=str(doc.get("name", default_name)), seed=int(doc.get("seed", 330421)), acceleration=acceleration,
        start=str(doc.get("start", "auto")), duration_s=duration, persons=int((doc.get("registry") or {}).get("persons", 200)),
        faults=faults, crew=crew, events=tuple(sorted(events, key=lambda e: e.at_s)), description=str(doc.get("description", "")),
        wearables=wearables, terminals=terminals, stations=stations, fall_cancel_window_s=window,
    )


def _faults(doc: Mapping[str, Any]) -> FaultRates:
    allowed = set(FaultRates.__dataclass_fields__)
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ValueError(f"no fault setting {unknown[0]!r}; expected some of {', '.join(sorted(allowed))}")
    values = dict(doc)
    for key in ("malformed_kinds", "silent_s"):
        if key in values:
            values[key] = tuple(values[key])
    return FaultRates(**values)


def _crew(doc: Mapping[str, Any]) -> CrewTimes:
    return CrewTimes(**{k: (float(v[0]), float(v[1])) for k, v in doc.items()})


def _event(item: Any, cancel_window_s: float) -> ScriptedEvent:
    if not isinstance(item, dict) or "kind" not in item or "at" not in item:
        raise ValueError("an event is a mapping with at least `at` and `kind`")
    kind = item["kind"]
    if kind not in _TARGET_KEY:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(_TARGET_KEY)}")
    extra = sorted(set(item) - _EVENT_OPTIONS)
    if extra:
        raise ValueError(f"{extra[0]!r} is not an event option")
    key = _TARGET_KEY[kind]
    target = None if key is None else str(item.get(key, "random"))
    options = {k: float(item[k]) for k in ("cancel_after_s", "peak_class", "intensity") if k in item}
    if item.get("cancelled") is True:
        options.setdefault("cancel_after_s", cancel_window_s / 2)  # "I'm OK" half-way through the window
    return ScriptedEvent(kind, parse_duration(item["at"]), target, parse_duration(item.get("duration", DEFAULT_DURATION_S[kind] / 60)), options)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A scripted event bound to a device of this county."""

    event: ScriptedEvent
    device_id: str | None


def resolve(events: tuple[ScriptedEvent, ...], county: County, seed: int) -> list[Resolved]:
    """Bind every event to a device: explicit ids must exist, `random` picks one that can
    have the event (a smoke event needs a smoke detector), different ones where possible."""
    rng = random.Random(f"{seed}:targets")
    persons = {p.person_id: p for p in county.persons}
    stations = {s.station_id: s for s in county.stations}
    used: set[str] = set()
    problems, out = [], []
    for i, e in enumerate(events):
        key = _TARGET_KEY[e.kind]
        if key is None:
            out.append(Resolved(e, None))
            continue
        if key == "person":
            need = e.kind if e.kind in ("smoke", "gas", "water_leak") else None
            pool = [pid for pid, p in persons.items() if need is None or p.sensors_of(need)]
        elif key == "station":
            pool = [sid for sid, s in stations.items() if e.target != "cross-border" or s.partner_id]
        else:
            pool = [*stations, *persons]
        if e.target in ("random", "cross-border"):
            fresh = [d for d in pool if d not in used] or pool
            if not fresh:
                problems.append(f"events[{i}] ({e.kind}): no {key} in this county can have it")
                continue
            chosen = rng.choice(fresh)
        elif e.target in pool:
            chosen = e.target
        else:
            problems.append(f"events[{i}].{key}: {e.target!r} is not a {key} of this county that can have {e.kind}")
            continue
        used.add(chosen)
        out.append(Resolved(e, chosen))
    if problems:
        raise ScenarioError("; ".join(problems))
    return out
