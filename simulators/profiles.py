"""Device profiles: how a kind of device really behaves, by name (docs/simulation.md).

A wearable's profile decides when it measures, how its clock goes wrong and what it does
without coverage; the county mixes them through the registry (a person whose thresholds
carry `vitals_sample_interval_s` wears a spot-sampling watch with that interval), and a
scenario picks `devices: {wearables: registry}` for that mix or `continuous` for the kind
world of the early tests. Home hubs and ambulance terminals have one profile each, described
with their models (simulators.elder, simulators.crew).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# 2000-01-01T00:00:00Z: where a watch's real-time clock starts after its battery ran flat.
CLOCK_RESET_EPOCH = 946_684_800.0
WEARABLE_CHOICES = ("continuous", "registry")
# Vehicle terminals: "always" reports every 5 s, "ignition" only every few minutes when
# parked with the engine off (simulators.crew.PARKED_GPS_S).
TERMINAL_CHOICES = ("always", "ignition")
# Water stations: "json" minute telemetry over MQTT from every station (the probe buoys a
# county may run); "hj212" every station with an MN runs as an automatic station speaking
# HJ 212 to the gateway (simulators.hj212_station), the others stay JSON probes.
STATION_CHOICES = ("json", "hj212")


@dataclass(frozen=True, slots=True)
class WearableProfile:
    name: str
    # Heart rate and SpO2 every this many seconds (0: on every report, a continuous sensor);
    # continuous anyway while out walking (the watch's workout mode).
    spot_every_s: float = 0.0
    # After an out-of-range sample the watch measures again this soon, to confirm it.
    confirm_after_s: float = 60.0
    # Coverage gaps a day (out of the house mostly); readings taken meanwhile are stored and
    # forwarded in one burst, shuffled, when coverage is back. Alerts go at once (SMS fallback).
    gaps_per_day: float = 0.0
    gap_s: tuple[float, float] = (600.0, 2400.0)
    # The watch clock's offset from true time, drawn once per watch (network time is coarse).
    drift_s: tuple[float, float] = (0.0, 0.0)
    # After the battery ran flat the clock restarts at 2000-01-01 until network time is back.
    reset_after_flat: bool = False
    resync_s: float = 600.0


CONTINUOUS = WearableProfile("continuous")


def spot_profile(every_s: float) -> WearableProfile:
    return WearableProfile(
        "spot",
        spot_every_s=every_s,
        gaps_per_day=1.5,
        drift_s=(-240.0, 180.0),
        reset_after_flat=True,
    )


def wearable_profile(thresholds: Mapping[str, Any], choice: str) -> WearableProfile:
    """The profile of a person's wearable: from the registry, or continuous for everyone."""
    if choice not in WEARABLE_CHOICES:
        raise ValueError(f"devices.wearables: expected one of {', '.join(WEARABLE_CHOICES)}, got {choice!r}")
    every = float(thresholds.get("vitals_sample_interval_s", 0.0) or 0.0)
    if choice == "continuous" or every <= 0:
        return CONTINUOUS
    return spot_profile(every)
