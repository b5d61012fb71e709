"""The simulator's log of dispatch: which emergencies it scripted, where and when they first
showed, the orders its crews received, and how each call went.

The platform's order names an incident the simulator has never heard of; what ties it to a
scripted emergency is the place (the person's home or the station) and the time. That gives
the dispatch wait (order received − first sign of the emergency) and the response (order
received − on scene), both in simulated time. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .summary import OrderRecord
from .water import river_class

# An order is for the scripted emergency at its place: homes and stations are further apart.
MATCH_RADIUS_M = 250.0
# What opens an incident on the platform (a cancelled fall does not).
EMERGENCY_KINDS = frozenset({"sos", "fall", "heart_rate_high", "heart_rate_low", "smoke", "gas", "pollution"})


@dataclass(slots=True)
class Trigger:
    kind: str
    device_id: str
    lat: float
    lon: float
    t: float | None  # None until it shows (pollution: the first reading worse than target)
    window: tuple[float, float]


class OrderBook:
    def __init__(self) -> None:
        self.triggers: list[Trigger] = []
        self.orders: list[OrderRecord] = []
        self._current: dict[str, OrderRecord] = {}

    def expect(self, kind: str, device_id: str, lat: float, lon: float, at: float, until: float, *, shows_at_once: bool) -> None:
        self.triggers.append(Trigger(kind, device_id, lat, lon, at if shows_at_once else None, (at, until)))

    def located(self, device_id: str, lat: float, lon: float, t: float) -> None:
        """A wearer's alert carried a fix (they were out): the platform places the incident
        there, so the order for this emergency comes to that place, not the home."""
        for trig in self.triggers:
            if trig.device_id == device_id and trig.window[0] <= t <= trig.window[1]:
                trig.lat, trig.lon = lat, lon

    def watch_water(self, station, reading: dict, t: float) -> None:  # station: county.Station
        """A pollution event shows when a normal reading first falls below the target class."""
        for trig in self.triggers:
            if trig.t is None and trig.device_id == station.station_id and trig.window[0] <= t < trig.window[1] and (
                reading.get("flag") == "N" and river_class(reading, station.water_body) > station.target_class
            ):
                trig.t = t

    def received(self, unit_id: str, incident_id: str, lat: float, lon: float, eta_s: float | None, now: float) -> OrderRecord:
        record = OrderRecord(unit_id, incident_id, now, eta_s)
        trigger = self._trigger_at(lat, lon, now)
        if trigger is not None:
            record.trigger, record.trigger_kind = trigger.t, trigger.kind
        self.orders.append(record)
        self._current[unit_id] = record
        return record

    def status(self, unit_id: str, status: str, ts: float) -> None:
        record = self._current.get(unit_id)
        if record is not None:
            record.statuses.setdefault(status, ts)

    def _trigger_at(self, lat: float, lon: float, now: float) -> Trigger | None:
        best, best_t = None, -math.inf
        for trig in self.triggers:
            dy = (trig.lat - lat) * 111_320.0
            dx = (trig.lon - lon) * 111_320.0 * math.cos(math.radians(lat))
            if trig.t is not None and trig.t <= now and math.hypot(dx, dy) <= MATCH_RADIUS_M and trig.t > best_t:
                best, best_t = trig, trig.t
        return best
