"""Fault injection: what goes wrong between real devices and the platform, on purpose.

Per telemetry message, with configured rates: a malformed payload (each variant with the
dead-letter reason the platform must give it), a duplicate (the same bytes twice: stored
once), or an out-of-order delivery (held back and sent after the device's next message).
Per device: spells of silence. Per connection: broker disconnects. Scripted emergencies and
crew status reports are never tampered with, so a scenario's outcome does not depend on
the dice. Pure: the rng comes in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import orjson

from kernel.topics import Topics, parse_topic

# variant -> the dead-letter reason the platform gives it (docs/delivery.md)
MALFORMED_KINDS: dict[str, str] = {
    "not_json": "not_json",
    "out_of_range": "out_of_range",
    "unknown_field": "unknown_field",
    "wrong_type": "wrong_type",
    "missing_ts": "missing_field",
    "future_ts": "time_in_future",
    "unknown_device": "unknown_device",
}
FUTURE_SHIFT_S = 60 * 86400.0  # beyond any clock drift, whatever the replay window
_UNTOUCHED_KINDS = frozenset({"status", "online"})
# Per stream kind: (field set out of range, field given an unknown name, field given text)
_FIELDS: dict[str, tuple[tuple[str, float] | None, str, str]] = {
    "water": (("ph", 15.5), "chlorophyll_ug_l", "ph"),
    "wearable": (("battery_pct", 180.0), "blood_pressure_mmhg", "steps"),
    "home": (None, "battery", "value"),
    "gps": (("speed_kmh", 480.0), "altitude_m", "lat"),
}


class FaultConfigError(ValueError):
    """Fault rates that make no sense."""


@dataclass(frozen=True, slots=True)
class FaultRates:
    malformed: float = 0.0  # share of telemetry messages
    malformed_kinds: tuple[str, ...] = tuple(MALFORMED_KINDS)
    duplicate: float = 0.0
    out_of_order: float = 0.0
    silent_per_device_day: float = 0.0  # chance per device per simulated day of a silent spell
    silent_s: tuple[float, float] = (600.0, 1800.0)
    disconnects_per_hour: float = 0.0  # broker connections dropped, per simulated hour

    def __post_init__(self) -> None:
        unknown = sorted(set(self.malformed_kinds) - set(MALFORMED_KINDS))
        if unknown:
            raise FaultConfigError(f"no malformed variant {unknown[0]!r}; expected some of {', '.join(MALFORMED_KINDS)}")
        shares = (self.malformed, self.duplicate, self.out_of_order)
        if min(shares) < 0 or sum(shares) > 1:
            raise FaultConfigError("malformed, duplicate and out_of_order are shares of messages: each >= 0, together <= 1")
        if min(self.silent_per_device_day, self.disconnects_per_hour) < 0 or not 0 < self.silent_s[0] <= self.silent_s[1]:
            raise FaultConfigError("silence and disconnect rates must be >= 0 and silent_s a [min, max] of seconds")

    @property
    def none(self) -> bool:
        return not (self.malformed or self.duplicate or self.out_of_order or self.silent_per_device_day or self.disconnects_per_hour)


class Wire(NamedTuple):
    """A message ready for the broker. (A NamedTuple: a county makes thousands a second.)"""

    topic: str
    payload: bytes
    retain: bool
    kind: str  # water | wearable | home | gps | status | online
    device: str  # the connection it belongs to: "water/WS-001", "elder/P-0001", "unit/AMB-01"
    fault: str | None = None  # "malformed:<variant>", "duplicate", "out_of_order"
    reason: str | None = None  # the dead-letter reason a malformed message must get


class FaultInjector:
    def __init__(self, rates: FaultRates, rng: random.Random) -> None:
        self.rates = rates
        self.rng = rng
        self.held: dict[str, Wire] = {}  # topic -> message waiting for the device's next one

    def apply(self, wire: Wire, payload: dict[str, Any], t: float, critical: bool) -> list[Wire]:
        """The messages to send in place of `wire` (whose decoded `payload` measured at `t`)."""
        rates = self.rates
        if critical or wire.kind in _UNTOUCHED_KINDS or rates.none:
            return self._release([wire], wire.topic)
        r = self.rng.random()
        if r < rates.malformed:
            bad = self.malformed(wire, payload, t)
            return self._release([bad] if bad else [wire], wire.topic)
        r -= rates.malformed
        if r < rates.duplicate:
            return self._release([wire, wire._replace(fault="duplicate")], wire.topic)
        r -= rates.duplicate
        if r < rates.out_of_order and wire.topic not in self.held:
            self.held[wire.topic] = wire._replace(fault="out_of_order")
            return []
        return self._release([wire], wire.topic)

    def flush(self) -> list[Wire]:
        """Messages still held back at the end of a run."""
        held, self.held = list(self.held.values()), {}
        return held

    def malformed(self, wire: Wire, payload: dict[str, Any], t: float) -> Wire | None:
        variants = [v for v in self.rates.malformed_kinds if self._applies(v, wire, payload)]
        if not variants:
            return None
        variant = self.rng.choice(variants)
        topic, body = wire.topic, dict(payload)
        out_of_range, unknown, textual = _FIELDS[wire.kind]
        if variant == "out_of_range":
            if out_of_range is None:
                body["value"] = 120.0  # a home thermometer reading hotter than any room
            else:
                body[out_of_range[0]] = out_of_range[1]
        elif variant == "unknown_field":
            body[unknown] = 1
        elif variant == "wrong_type":
            body[textual] = str(body.get(textual, "1"))
        elif variant == "missing_ts":
            body.pop("ts", None)
        elif variant == "future_ts":
            body["ts"] = round(t + FUTURE_SHIFT_S, 3)
        elif variant == "unknown_device":
            topics = Topics(topic.split("/", 1)[0])  # the root is one topic level
            address = parse_topic(topic, topics.root)
            assert address is not None  # the simulator publishes only topics of the scheme
            if wire.kind == "home":
                address = replace(address, sensor_id=f"ghost-{self.rng.randrange(100)}")
            else:
                address = replace(address, id=f"GHOST-{self.rng.randrange(1000):03d}")
            topic = topics.of(address)
        data = orjson.dumps(body)
        if variant == "not_json":
            data = data[: max(1, len(data) // 2)]
        return wire._replace(topic=topic, payload=data, fault=f"malformed:{variant}", reason=MALFORMED_KINDS[variant])

    @staticmethod
    def _applies(variant: str, wire: Wire, payload: dict[str, Any]) -> bool:
        if variant == "out_of_range" and wire.kind == "home":
            return payload.get("kind") == "temperature"
        return wire.kind in _FIELDS

    def _release(self, wires: list[Wire], topic: str) -> list[Wire]:
        held = self.held.pop(topic, None)
        return wires if held is None else [*wires, held]


def silent_spells(rng: random.Random, rates: FaultRates, start: float, end: float) -> list[tuple[float, float]]:
    """When one device goes quiet, as (from, to) in simulated time."""
    if rates.silent_per_device_day <= 0:
        return []
    spells: list[tuple[float, float]] = []
    t = start
    while True:
        t += rng.expovariate(rates.silent_per_device_day / 86400.0)
        if t >= end:
            return spells
        spells.append((t, t + rng.uniform(*rates.silent_s)))
        t = spells[-1][1]


def disconnect_times(rng: random.Random, rates: FaultRates, start: float, end: float) -> list[float]:
    if rates.disconnects_per_hour <= 0:
        return []
    times, t = [], start
    while (t := t + rng.expovariate(rates.disconnects_per_hour / 3600.0)) < end:
        times.append(t)
    return times
