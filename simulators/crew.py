"""An ambulance or river-patrol crew: parked at its base until an order comes, then the
whole run of the call as the platform expects to hear it.

On an order the crew turns out and reports en_route, drives the fastest road route to the
scene (the road graph's own edge times: the dispatcher's ETA and the drive agree), reports
on_scene and treats for a few minutes, then either transports to the order's hospital
(transporting, at_hospital, handover) or is done on scene, and drives back to base
(returning, available). The vehicle's GPS reports every few seconds of simulated time,
moving or not. A new order while busy (a priority-1 call for a returning unit) replaces
what is left of the current run; a repeated order is ignored. Pure: the rng and `now` come
in, and the road graph is only read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from dispatch.eta import Unreachable, route, route_travel_s
from dispatch.geometry import haversine_m
from dispatch.roads import RoadGraph

from .county import Facility, Unit

# Off the graph (no route) the crew drives cross-country at this pace rather than not at all.
FALLBACK_SPEED_KMH = 30.0


class OrderError(ValueError):
    """An order payload the crew cannot act on."""


@dataclass(frozen=True, slots=True)
class Order:
    incident_id: str
    priority: int | None
    lat: float
    lon: float
    address: str
    eta_s: float | None
    hospital_id: str | None
    kind: str = "incident"  # or "relocate": move up to a standby point and stay available

    @classmethod
    def parse(cls, payload: bytes) -> Order:
        try:
            doc = orjson.loads(payload)
            if isinstance(doc, dict) and doc.get("kind") == "relocate" and isinstance(doc.get("order_id"), str):
                return cls(doc["order_id"], None, float(doc["lat"]), float(doc["lon"]), str(doc.get("facility_id") or ""),
                           doc.get("eta_s"), None, "relocate")
            if not isinstance(doc, dict) or not isinstance(doc.get("incident_id"), str):
                raise OrderError("an order needs incident_id")
            return cls(
                doc["incident_id"], doc.get("priority"), float(doc["lat"]), float(doc["lon"]),
                str(doc.get("address") or ""), doc.get("eta_s"), doc.get("hospital_id"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise OrderError(f"unusable order: {exc}") from None


@dataclass(frozen=True, slots=True)
class CrewTimes:
    turnout_s: tuple[float, float] = (20.0, 45.0)  # order to wheels rolling (< the 60 s re-dispatch)
    on_scene_s: tuple[float, float] = (300.0, 720.0)
    handover_s: tuple[float, float] = (300.0, 900.0)


class Drive:
    """A drive along points with cumulative times; position at any time by interpolation."""

    def __init__(self, start_t: float, lat: np.ndarray, lon: np.ndarray, leg_s: np.ndarray) -> None:
        self.start_t = start_t
        self.lat, self.lon = lat, lon
        self.times = np.concatenate([[0.0], np.cumsum(leg_s)]) + start_t
        self.end_t = float(self.times[-1])
        dist = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]) if len(lat) > 1 else np.zeros(0)
        self.speed = np.minimum(dist / np.maximum(leg_s, 1e-3) * 3.6, 299.0)
        y = np.sin(np.radians(lon[1:] - lon[:-1])) * np.cos(np.radians(lat[1:]))
        x = np.cos(np.radians(lat[:-1])) * np.sin(np.radians(lat[1:])) - np.sin(np.radians(lat[:-1])) * np.cos(
            np.radians(lat[1:])
        ) * np.cos(np.radians(lon[1:] - lon[:-1]))
        self.heading = np.degrees(np.arctan2(y, x)) % 360.0

    def at(self, t: float) -> tuple[float, float, float, float]:
        """(lat, lon, speed_kmh, heading_deg) at `t`; parked at either end outside the drive."""
        if len(self.lat) == 1 or t >= self.end_t:
            return float(self.lat[-1]), float(self.lon[-1]), 0.0, float(self.heading[-1]) if len(self.heading) else 0.0
        i = max(0, min(int(np.searchsorted(self.times, t, side="right")) - 1, len(self.lat) - 2))
        span = self.times[i + 1] - self.times[i]
        f = 0.0 if span <= 0 else min(1.0, max(0.0, (t - self.times[i]) / span))
        lat = self.lat[i] + f * (self.lat[i + 1] - self.lat[i])
        lon = self.lon[i] + f * (self.lon[i + 1] - self.lon[i])
        return float(lat), float(lon), float(self.speed[i]), float(self.heading[i])

    def next_node_after(self, t: float) -> int:
        """Index of the first point not yet reached at `t`."""
        return min(int(np.searchsorted(self.times, t, side="right")), len(self.lat) - 1)


class Roads:
    """The road graph as the crews use it: snap, route, and drive a route."""

    def __init__(self, graph: RoadGraph) -> None:
        self.graph = graph

    def drive(self, start_t: float, lat: float, lon: float, to_lat: float, to_lon: float, nodes: list[int] | None = None) -> Drive:
        """From a point (off the graph, or at the head of `nodes` already on the way) to the
        node nearest the destination, at the graph's edge times."""
        g = self.graph
        target = g.snap(to_lat, to_lon).node
        first = nodes[0] if nodes else g.snap(lat, lon).node
        try:
            path = route(g, first, target)
            legs = route_travel_s(g, path)
        except Unreachable:
            d = float(haversine_m(lat, lon, to_lat, to_lon))
            return Drive(start_t, np.array([lat, to_lat]), np.array([lon, to_lon]), np.array([d / (FALLBACK_SPEED_KMH / 3.6)]))
        access = float(haversine_m(lat, lon, g.lat[first], g.lon[first])) / (FALLBACK_SPEED_KMH / 3.6)
        return Drive(
            start_t,
            np.concatenate([[lat], g.lat[path]]),
            np.concatenate([[lon], g.lon[path]]),
            np.array([access, *legs]),
        )


# The "ignition" terminal profile: a vehicle terminal reports every `interval_s` (5 s) with
# the engine running, but parked at its base with the ignition off only this often (and with
# each status change): its last fix may be minutes old, and its station is where it is.
PARKED_GPS_S = 300.0
IGNITION_MARGIN_S = 60.0  # engine on this long before a drive and after it


class UnitModel:
    def __init__(
        self, unit: Unit, rng: random.Random, start: float, roads: Roads, facilities: dict[str, Facility], times: CrewTimes,
        *, ignition: bool = False,
    ) -> None:
        self.unit, self.rng, self.roads, self.facilities, self.times = unit, rng, roads, facilities, times
        self.ignition = ignition
        self.status = "available"
        self.incident_id: str | None = None
        self.drives: list[Drive] = []  # the run's drives in order; parked between and after them
        self.parked = (unit.base_lat, unit.base_lon)
        self.steps: list[tuple[float, str]] = []  # (time, status) still to report, in order
        self.next_gps = start + rng.uniform(0, unit.interval_s)
        self.unknown_hospitals = 0
        self.handled: set[str] = set()

    def receive(self, order: Order, now: float) -> bool:
        """Plan the run for `order`. Returns False for a repeat of the current order."""
        if order.incident_id in self.handled:
            return False  # QoS 1 may deliver an order twice
        self.handled.add(order.incident_id)
        if order.kind == "relocate":
            return self._relocate(order, now)
        rng, times = self.rng, self.times
        lat, lon, nodes = self._departure(now)
        self.incident_id = order.incident_id
        # A crew already on the road turns round at once; a parked one walks to the vehicle.
        t = now + (rng.uniform(1.0, 3.0) if nodes else rng.uniform(*times.turnout_s))
        self.steps = [(t, "en_route")]
        self.next_gps = min(self.next_gps, now + self.unit.interval_s)  # the engine starts
        to_scene = self.roads.drive(t, lat, lon, order.lat, order.lon, nodes)
        self.drives = [d for d in self.drives if d.end_t <= now] + [to_scene]
        t = to_scene.end_t
        self.steps.append((t, "on_scene"))
        here = (float(to_scene.lat[-1]), float(to_scene.lon[-1]))
        t += rng.uniform(*times.on_scene_s)
        hospital = self.facilities.get(order.hospital_id or "")
        if order.hospital_id and hospital is None:
            self.unknown_hospitals += 1  # treated on scene instead
        if hospital is not None:
            self.steps.append((t, "transporting"))
            to_hospital = self.roads.drive(t, *here, hospital.lat, hospital.lon)
            self.drives.append(to_hospital)
            self.steps.append((to_hospital.end_t, "at_hospital"))
            here = (float(to_hospital.lat[-1]), float(to_hospital.lon[-1]))
            t = to_hospital.end_t + rng.uniform(*times.handover_s)
        self.steps.append((t, "returning"))
        home = self.roads.drive(t, *here, self.unit.base_lat, self.unit.base_lon)
        self.drives.append(home)
        self.steps.append((home.end_t + 1.0, "available"))  # parked in the bay
        self.parked = (self.unit.base_lat, self.unit.base_lon)
        return True

    def _relocate(self, order: Order, now: float) -> bool:
        """A move-up: drive to the standby point and wait there, available throughout (the
        dispatcher may send the crew on from the road). A busy crew ignores it."""
        if self.status != "available" or self.steps:
            return False
        lat, lon, nodes = self._departure(now)
        move = self.roads.drive(now + self.rng.uniform(*self.times.turnout_s), lat, lon, order.lat, order.lon, nodes)
        self.drives = [d for d in self.drives if d.end_t <= now] + [move]
        self.parked = (float(move.lat[-1]), float(move.lon[-1]))
        return True

    def next_due(self) -> float:
        return min(self.next_gps, self.steps[0][0]) if self.steps else self.next_gps

    def wake(self, now: float) -> list[tuple[str, dict[str, Any], bool]]:
        out: list[tuple[str, dict[str, Any], bool]] = []
        while self.steps and self.steps[0][0] <= now:
            t, status = self.steps.pop(0)
            self.status = status
            report: dict[str, Any] = {"ts": t, "status": status}
            if status != "available" and self.incident_id:
                report["incident_id"] = self.incident_id
            out.append(("status", report, True))
        while self.next_gps <= now:
            lat, lon, speed, heading = self.position(self.next_gps)
            fix = {"ts": self.next_gps, "lat": round(lat, 6), "lon": round(lon, 6), "speed_kmh": round(speed, 1), "heading_deg": round(heading, 1)}
            out.append(("gps", fix, False))
            moving = not self.ignition or self._engine_on(self.next_gps)
            self.next_gps += self.unit.interval_s if moving else PARKED_GPS_S
        out.sort(key=lambda item: item[1]["ts"])
        return out

    def _engine_on(self, t: float) -> bool:
        if self.status != "available" or any(s != "available" for _, s in self.steps):
            return True
        return any(d.start_t - IGNITION_MARGIN_S <= t < d.end_t + IGNITION_MARGIN_S for d in self.drives)

    def position(self, t: float) -> tuple[float, float, float, float]:
        for d in self.drives:
            if t < d.end_t:
                return d.at(t) if t >= d.start_t else (float(d.lat[0]), float(d.lon[0]), 0.0, 0.0)
        if self.drives:
            return self.drives[-1].at(t)
        return self.parked[0], self.parked[1], 0.0, 0.0

    def _departure(self, now: float) -> tuple[float, float, list[int] | None]:
        """Where a new run starts: mid-drive, at the next node of the road being driven."""
        for d in self.drives:
            if d.start_t <= now < d.end_t:
                i = d.next_node_after(now)
                lat, lon, _, _ = d.at(now)
                node = self.roads.graph.snap(float(d.lat[i]), float(d.lon[i])).node
                return lat, lon, [node]
        lat, lon, _, _ = self.position(now)
        return lat, lon, None
