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
    # Station, person and unit ids a registry sync retired: their devices are refused with
    # that reason (an installer who forgot to switch one off sees why in the dead letters).
    retired: frozenset[str] = frozenset()
