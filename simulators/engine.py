"""The simulated county: every device model on one simulated clock, in time order.

`advance(until)` wakes each device whose next report is due, turns what it reports into
contract messages (topic, `ts`, per-stream `seq`, JSON), passes them through fault
injection, and returns them with the control actions due (drop a connection, a device going
silent). Crew orders come in through `receive_order`. No I/O and no wall clock: the caller
paces `until` against real time, publishes, and feeds orders back.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from kernel.topics import Topics

from .county import County
from .crew import Order, OrderError, Roads, UnitModel
from .elder import VITALS, PersonModel
from .faults import FaultInjector, Wire, disconnect_times, silent_spells
from .hj212_station import StationProtocol
from .detection import Injected
from .orderbook import EMERGENCY_KINDS, OrderBook
from .profiles import wearable_profile
from .scenario import STATION_EVENTS, Resolved, Scenario, resolve
from .simclock import LOCAL_TZ
from .summary import OrderRecord
from .water import WaterStationModel, Weather

# The broker publishes a dead connection's will once its keepalive (60 s) has run 1.5 times.
WILL_DELAY_S = 90.0
# Supervision calls a device silent after 3 missed reports; a silence needs a little more
# to be noticed by a timer pass.
SILENCE_NOTICED = 4.0


class StationFrame(NamedTuple):
    """An HJ 212 frame for a station's TCP connection to the gateway, not for the broker."""

    station_id: str
    kind: str  # hj212_minute | hj212_hour | hj212_day | hj212_realtime | hj212_calibration
    data: bytes


class Control(NamedTuple):
    """An action for the connection layer, not a message."""

    action: str  # disconnect | silence | resume
    device: str | None  # the device connection concerned ("elder/P-0001"), None: any
    pick: int  # which connection, modulo the number there are


@dataclass(slots=True)
class _Device:
    kind: str  # water | elder | unit
    device_id: str
    model: Any
    interval_s: float
    version: int = 0

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.device_id}"


class Simulation:
    def __init__(
        self, county: County, scenario: Scenario, *, start: float, root: str, roads: Roads | None, explicit_presence: bool = True,
        station_password: Callable[[str], str] = lambda mn: "simulate",
    ) -> None:
        if county.units and roads is None:
            raise ValueError("units need the road network to drive on")
        self.root, self.start, self.end, self.now = root, start, start + scenario.duration_s, start
        self.topics = Topics(root)
        self.explicit_presence = explicit_presence
        seed = self.seed = scenario.seed
        self.weather = Weather(random.Random(f"{seed}:weather"), start, self.end)
        self.devices: list[_Device] = []
        # Stations that speak HJ 212 over TCP (devices.stations: hj212, and an MN to do it with).
        self.hj212: set[str] = set()
        for s in county.stations:
            model = WaterStationModel(s, random.Random(f"{seed}:{s.station_id}"), start, self.weather)
            if scenario.stations == "hj212" and s.hj212_mn:
                station = StationProtocol.simulated(
                    model, s.hj212_mn, station_password(s.hj212_mn), random.Random(f"{seed}:{s.station_id}:hj212"), start, self.end,
                    realtime=s.partner_id is not None,  # a cross-border section's partner watches it live
                )
                self._add("water", s.station_id, station, 60.0)
                self.hj212.add(f"water/{s.station_id}")
            else:
                self._add("water", s.station_id, model, s.interval_s)
        for p in county.persons:
            profile = wearable_profile(p.thresholds, scenario.wearables)
            elder = PersonModel(p, random.Random(f"{seed}:{p.person_id}"), start, f"{seed}:{p.person_id}", profile)
            self._add("elder", p.person_id, elder, p.interval_s)
        for u in county.units:
            assert roads is not None  # refused above: units need roads
            unit = UnitModel(
                u, random.Random(f"{seed}:{u.unit_id}"), start, roads, dict(county.facilities), scenario.crew,
                ignition=scenario.terminals == "ignition",
            )
            self._add("unit", u.unit_id, unit, u.interval_s)
        self.index = {(d.kind, d.device_id): i for i, d in enumerate(self.devices)}
        self.faults = FaultInjector(scenario.faults, random.Random(f"{seed}:faults"))
        self.silences: dict[str, list[tuple[float, float]]] = {}
        self.agenda: list[tuple[float, int, str, Any]] = []
        self.book = OrderBook()
        self.scripted: Counter[str] = Counter()
        self._injected: list[Injected] = []
        self.sent: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.suppressed = 0
        self.unusable_orders = 0
        self._last_ts: dict[str, float] = {}
        self._seq: dict[str, int] = {}
        self._n = 0
        self._started: set[str] = set()
        self._apply([r for r in resolve(scenario.events, county, seed) if r.event.at_s < scenario.duration_s])
        self._plan_faults(scenario, seed)
        self.heap = [(self._first_due(d, start), i, 0) for i, d in enumerate(self.devices)]
        heapq.heapify(self.heap)

    # --- the run -------------------------------------------------------------------------

    def opening(self) -> list[Wire]:
        """Retained online flags for every device, when the connections cannot carry wills."""
        if not self.explicit_presence:
            return []
        return [self._presence(d.key, True) for d in self.devices if d.key not in self.hj212]

    def advance(self, until: float, limit: int = 5000) -> list[Wire | Control | StationFrame]:
        until = min(until, self.end)
        out: list[Wire | Control | StationFrame] = []
        heap, agenda = self.heap, self.agenda
        while len(out) < limit:
            due = heap[0][0] if heap else math.inf
            planned = agenda[0][0] if agenda else math.inf
            t = min(due, planned)
            if t > until:
                self.now = max(self.now, until)
                break
            self.now = t
            if planned <= due:
                _, _, action, arg = heapq.heappop(agenda)
                self._agenda_item(action, arg, out)
                continue
            _, i, version = heapq.heappop(heap)
            device = self.devices[i]
            if version != device.version:
                continue  # rescheduled since (an order arrived)
            self._wake(device, t, out)
            heapq.heappush(heap, (self._next_due(device, t), i, version))
        return out

    @property
    def next_event_time(self) -> float:
        """When something is next due (possibly a stale entry: never later than the truth)."""
        return min(self.heap[0][0] if self.heap else math.inf, self.agenda[0][0] if self.agenda else math.inf)

    def finish(self) -> list[Wire]:
        """Out-of-order messages still held back at the end."""
        held = self.faults.flush()
        for w in held:
            self.sent[w.kind] += 1
            self.fault_counts[w.fault or ""] += 1
        return held

    def injected(self) -> list[Injected]:
        """Every person event the run injected, up to where it got: scripted events (abnormal
        vitals marked unmeasured when the wearable took fewer than two samples of them), and
        silences long enough for supervision to notice (3 missed reports), including the
        coverage gaps of wearables that store and forward."""
        out: list[Injected] = []
        for e in self._injected:
            if e.start >= self.now:
                continue
            model = self.devices[self.index[("elder", e.person_id)]].model
            if e.kind == "silent":
                if e.end - e.start < SILENCE_NOTICED * model.person.interval_s:
                    continue
            elif e.kind in VITALS:
                if model.episode_samples.get((e.start, e.kind), 0) < 2:
                    e = Injected(e.kind, e.person_id, e.start, e.end, observable=False)
            elif e.kind == "inactivity" and min(e.end, self.now) - e.start < _inactivity_s(model.person.thresholds):
                # Still or lying for less than the person's inactivity threshold by the run's
                # end (a 1× run shorter than it): nothing the platform could have raised yet.
                e = Injected(e.kind, e.person_id, e.start, e.end, observable=False)
            out.append(e)
        for d in self.devices:
            if d.kind == "elder":
                out += [
                    Injected("silent", d.device_id, a, b)
                    for a, b in d.model.gaps
                    if b - a >= SILENCE_NOTICED * d.interval_s
                ]
        return out

    def receive_station_reply(self, station_id: str, frame: Any, received_at: float) -> None:
        """A frame the gateway sent a station (ingest.hj212.Frame), received at `received_at`
        on the wall clock: a set-time (CN 1012) corrects the station's clock."""
        i = self.index.get(("water", station_id))
        if i is not None and isinstance(model := self.devices[i].model, StationProtocol):
            if model.apply_set_time(frame, received_at, station_now=self.now):
                self.sent["hj212_times_set"] += 1

    def receive_order(self, unit_id: str, payload: bytes) -> OrderRecord | None:
        i = self.index.get(("unit", unit_id))
        try:
            order = Order.parse(payload)
        except OrderError:
            self.unusable_orders += 1
            return None
        if i is None:
            return None  # a unit this run does not simulate
        device = self.devices[i]
        if not device.model.receive(order, self.now):
            return None
        record = self.book.received(unit_id, order.incident_id, order.lat, order.lon, order.eta_s, self.now)
        device.version += 1
        heapq.heappush(self.heap, (device.model.next_due(), i, device.version))
        return record

    # --- devices -------------------------------------------------------------------------

    def _add(self, kind: str, device_id: str, model: Any, interval_s: float) -> None:
        self.devices.append(_Device(kind, device_id, model, interval_s))

    def _first_due(self, d: _Device, start: float) -> float:
        if d.key in self.hj212:
            return start - start % 60 + 60  # a data logger works on the minute
        if d.kind == "water":
            return start + random.Random(f"{self.seed}:{d.device_id}:phase").uniform(0, d.interval_s)
        return self._next_due(d, start)

    def _next_due(self, d: _Device, t: float) -> float:
        if d.kind == "water":
            return t + d.interval_s
        return d.model.next_due(t) if d.kind == "elder" else d.model.next_due()

    def _wake(self, d: _Device, t: float, out: list[Wire | Control | StationFrame]) -> None:
        if isinstance(d.model, StationProtocol):
            spells = self.silences.get(d.key)
            if spells and any(a <= t < b for a, b in spells):
                self.suppressed += 1
                return
            for kind, data in d.model.due(t, first=d.version == 0 and d.key not in self._started):
                out.append(StationFrame(d.device_id, kind, data))
                self.sent[kind] += 1
                if kind == "hj212_hour" and self.book.triggers and d.model.last_hour:
                    self.book.watch_water(d.model.model.station, {**d.model.last_hour, "flag": "N"}, t)
            self._started.add(d.key)
        elif d.kind == "water":
            reading = d.model.reading(t)
            if self.book.triggers:
                self.book.watch_water(d.model.station, reading, t)
            self._emit(d, "water", self.topics.water_telemetry(d.device_id), {"ts": t, **reading}, False, out)
        elif d.kind == "elder":
            for channel, payload, critical in d.model.wake(t):
                if channel == "wearable":
                    self._emit(d, "wearable", self.topics.wearable(d.device_id), payload, critical, out)
                elif channel == "alert":
                    if "lat" in payload:  # out of the house: help is sent to the fix, not home
                        self.book.located(d.device_id, payload["lat"], payload["lon"], t)
                    self._emit(d, "alert", self.topics.alert(d.device_id), payload, critical, out)
                else:
                    self._emit(d, "home", self.topics.home(d.device_id, channel), payload, critical, out)
        else:
            for channel, payload, critical in d.model.wake(t):
                if channel == "status":
                    self.book.status(d.device_id, payload["status"], payload["ts"])
                self._emit(d, channel, self._unit_topic(channel, d.device_id), payload, critical, out)

    def _emit(self, d: _Device, kind: str, topic: str, payload: dict[str, Any], critical: bool, out: list[Wire | Control | StationFrame]) -> None:
        t = payload["ts"]
        spells = self.silences.get(d.key)
        if spells and not critical and any(a <= t < b for a, b in spells):
            self.suppressed += 1
            return
        # A wearable's stored-and-forwarded reading keeps its old time, and one from a clock
        # reset keeps the time the watch believed: both are what real devices send.
        stored = bool(payload.pop("_stored", False))
        reason = payload.pop("_reason", None)
        ts = round(t, 3)
        if not (stored or reason):
            # One reading per device and measurement time: keep every stream's ts strictly rising.
            last = self._last_ts.get(topic)
            if last is not None and ts <= last:
                ts = round(last + 0.001, 3)
            self._last_ts[topic] = ts
        payload["ts"] = _local_rfc3339(ts) if kind == "water" else ts
        if kind != "alert" and not stored:  # an alert is told apart by its event id
            payload["seq"] = self._seq[topic] = self._seq.get(topic, 0) + 1
        if stored:
            self.fault_counts["stored_and_forwarded"] += 1
        wire = Wire(topic, orjson.dumps(payload), False, kind, d.key, None, reason)
        for w in self.faults.apply(wire, payload, ts, critical):
            out.append(w)
            self.sent[w.kind] += 1
            if w.fault:
                self.fault_counts[w.fault] += 1

    def _presence(self, key: str, online: bool) -> Wire:
        self.sent["online"] += 1
        kind, device_id = key.split("/")
        return Wire(self.topics.online(kind, device_id), b"1" if online else b"0", True, "online", key)

    def _unit_topic(self, channel: str, unit_id: str) -> str:
        build = {"gps": self.topics.unit_gps, "status": self.topics.unit_status}[channel]
        return build(unit_id)

    # --- scripted events and faults --------------------------------------------------------

    def _apply(self, events: list[Resolved]) -> None:
        for r in events:
            e, at = r.event, self.start + r.event.at_s
            model = self._model_of(e.kind, r.device_id)
            label = e.kind
            if e.kind == "fall":
                cancel = e.options.get("cancel_after_s")
                model.add_fall(at, cancel, e.duration_s)
                label = "fall (cancelled)" if cancel is not None else "fall (not cancelled)"
            elif e.kind == "sos":
                model.add_sos(at)
            elif e.kind in ("heart_rate_high", "heart_rate_low", "spo2_low"):
                model.add_vitals(e.kind, at, e.duration_s)
            elif e.kind == "inactivity":
                model.add_inactivity(at, e.duration_s)
            elif e.kind in ("smoke", "gas", "water_leak"):
                model.add_hazard(e.kind, at, e.duration_s)
            elif e.kind == "pollution":
                model.add_pollution(at, e.duration_s, int(e.options["peak_class"]) if "peak_class" in e.options else None)
            elif e.kind == "maintenance":
                model.add_maintenance(at, e.duration_s)
            elif e.kind == "rain":
                self.weather.add_rain(at, e.duration_s, e.options.get("intensity", 0.7))
            elif e.kind == "silent":
                kind = "water" if ("water", r.device_id) in self.index else "elder"
                self._silence(f"{kind}/{r.device_id}", at, at + e.duration_s, injected=False)
            self.scripted[label] += 1
            if r.device_id is not None and ("elder", r.device_id) in self.index:
                kind = label if label in ("fall (cancelled)",) else e.kind
                self._injected.append(Injected(kind, r.device_id, at, at + e.duration_s))
            if e.kind in EMERGENCY_KINDS and not (e.kind == "fall" and "cancel_after_s" in e.options):
                where = model.station if e.kind == "pollution" else model.person
                self.book.expect(e.kind, r.device_id or "", where.lat, where.lon, at, at + e.duration_s, shows_at_once=e.kind != "pollution")

    def _model_of(self, kind: str, device_id: str | None) -> Any:
        if device_id is None or kind in ("silent", "rain"):
            return None
        model = self.devices[self.index[("water" if kind in STATION_EVENTS else "elder", device_id)]].model
        return model.model if isinstance(model, StationProtocol) else model

    def _plan_faults(self, scenario: Scenario, seed: int) -> None:
        rates = scenario.faults
        if rates.silent_per_device_day > 0:
            for d in self.devices:
                if d.kind != "unit":  # a silent crew would stall dispatch, not test it
                    for a, b in silent_spells(random.Random(f"{seed}:silence:{d.key}"), rates, self.start, self.end):
                        self._silence(d.key, a, b)
        rng = random.Random(f"{seed}:disconnects")
        for t in disconnect_times(rng, rates, self.start, self.end):
            self._schedule(t, "control", Control("disconnect", None, rng.randrange(1 << 30)))

    def _silence(self, key: str, a: float, b: float, injected: bool = True) -> None:
        self.silences.setdefault(key, []).append((a, b))
        kind, device_id = key.split("/")
        if kind == "elder" and injected:  # a scripted silence is listed with the events
            self._injected.append(Injected("silent", device_id, a, b))
        if injected:
            self.fault_counts["silent"] += 1
        if key in self.hj212:
            return  # a data logger on TCP has no presence on the broker: its uploads stop
        if self.explicit_presence:
            if b - a > WILL_DELAY_S:
                self._schedule(a + WILL_DELAY_S, "presence", (key, False))
                self._schedule(b, "presence", (key, True))
        else:
            self._schedule(a, "control", Control("silence", key, 0))
            self._schedule(b, "control", Control("resume", key, 0))

    def _schedule(self, t: float, action: str, arg: Any) -> None:
        self._n += 1
        heapq.heappush(self.agenda, (t, self._n, action, arg))

    def _agenda_item(self, action: str, arg: Any, out: list[Wire | Control | StationFrame]) -> None:
        if action == "presence":
            out.append(self._presence(*arg))
        else:
            if arg.action == "disconnect":
                self.fault_counts["disconnect"] += 1
            out.append(arg)


def _inactivity_s(thresholds: Any) -> float:
    from ingest.rules import ConfigError, PersonConfig

    try:
        return PersonConfig.from_mapping(thresholds).inactivity_s
    except ConfigError:
        return PersonConfig().inactivity_s


def _local_rfc3339(ts: float) -> str:
    # Station gateways report local time with its offset, as HJ 212 data loggers keep it.
    return datetime.fromtimestamp(ts, LOCAL_TZ).isoformat(timespec="milliseconds")
