"""Which devices the platform knows: the part of the registry that validation needs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DeviceDirectory:
    stations: frozenset[str] = frozenset()
    persons: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()
    # (person_id, sensor_id) -> the sensor's kind as registered
    home_sensors: dict[tuple[str, str], str] = field(default_factory=dict)
