"""Runs the rules over a batch of readings: which sources a reading touches, and the
states and transitions that result. Pure: states and configs come in, `now` is passed.

A reading touches up to two sources: the thing it measures (a station or a person) and the
device that sent it (for silence and battery supervision). Sources are keyed by strings
such as "station:WS-001", "person:P-1", "device:elder:P-1/home/door-1", which is also how
the ingest layer stores their states.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.readings import HomeSensorEvent, Reading, StationAverage, WaterReading, WearableReading

from ._codec import encode_state as encode_state  # how the store writes a state
from .alarms import AlarmTransition
from .alert_state import AlertState, tick_alert
from .deadlines import next_deadline
from .elderly import evaluate_home_sensor, evaluate_wearable, tick_person
from .person_config import PersonConfig
from .person_state import PersonState
from .supervision import DeviceConfig, DeviceState, device_key_of, evaluate_device, tick_device
from .water import WaterConfig, WaterState, evaluate_average, evaluate_water

State = WaterState | PersonState | DeviceState | AlertState

STATION = "station:"
PERSON = "person:"
DEVICE = "device:"
# The alert lane's own memory of a person's alert-topic falls (ingest.rules.alert_state):
# never a source of a reading, so an ingest batch never locks it.
ALERT = "alert:"

# Home sensors report events, not heartbeats: a door sensor may rightly say nothing all
# day. They count as silent after this interval × the device tolerance (3): half a day.
HOME_SENSOR_INTERVAL_S = 4 * 3600.0


@dataclass(frozen=True, slots=True)
class RuleConfigs:
    """Per-source thresholds, from the registry. Sources not listed get the defaults."""

    stations: Mapping[str, WaterConfig] = field(default_factory=dict)
    persons: Mapping[str, PersonConfig] = field(default_factory=dict)
    # device key -> expected reporting interval (s)
    device_intervals: Mapping[str, float] = field(default_factory=dict)

    def for_key(self, key: str) -> WaterConfig | PersonConfig | DeviceConfig:
        if key.startswith(STATION):
            return self.for_station(key)
        if key.startswith(PERSON):
            return self.for_person(key)
        if key.startswith(ALERT):
            return self.for_alert(key)
        return self.for_device(key)

    def for_station(self, key: str) -> WaterConfig:
        return self.stations.get(key[len(STATION):]) or _DEFAULT_WATER

    def for_person(self, key: str) -> PersonConfig:
        return self.persons.get(key[len(PERSON):]) or _DEFAULT_PERSON

    def for_alert(self, key: str) -> PersonConfig:
        return self.persons.get(key[len(ALERT):]) or PersonConfig()

    def for_device(self, key: str) -> DeviceConfig:
        device = key[len(DEVICE):]
        if "/home/" in device:
            return _device_config(HOME_SENSOR_INTERVAL_S)
        return _device_config(self.device_intervals.get(device, 60.0))


# Configs are immutable and validated when built: the defaults are built once, not for every
# reading of every source that keeps them (most do).
_DEFAULT_WATER = WaterConfig()
_DEFAULT_PERSON = PersonConfig()


@functools.lru_cache(maxsize=256)
def _device_config(interval_s: float) -> DeviceConfig:
    return DeviceConfig(interval_s=interval_s)


def source_keys(reading: Reading) -> list[str]:
    keys = [DEVICE + device_key_of(reading)]
    if isinstance(reading, WaterReading | StationAverage):
        keys.append(STATION + reading.station_id)
    elif isinstance(reading, WearableReading | HomeSensorEvent):
        keys.append(PERSON + reading.person_id)
    return keys


def new_state(key: str, now: datetime) -> State:
    """The state of a source seen for the first time. A device is supervised from `now`,
    so one that never reports is noticed too."""
    if key.startswith(STATION):
        return WaterState(station_id=key[len(STATION):])
    if key.startswith(PERSON):
        return PersonState(person_id=key[len(PERSON):])
    if key.startswith(ALERT):
        return AlertState(person_id=key[len(ALERT):])
    return DeviceState(device_key=key[len(DEVICE):], last_seen=now)


def state_from_json(key: str, data: Mapping[str, Any]) -> State:
    if key.startswith(STATION):
        return WaterState.from_json(data)
    if key.startswith(PERSON):
        return PersonState.from_json(data)
    if key.startswith(ALERT):
        return AlertState.from_json(data)
    return DeviceState.from_json(data)


def evaluate(
    readings: Iterable[Reading], states: dict[str, State], configs: RuleConfigs, now: datetime
) -> tuple[set[str], list[AlarmTransition]]:
    """Apply readings (in measurement-time order per source) to `states`, which is updated
    in place with the new immutable states. Returns the keys changed and the transitions."""
    changed: set[str] = set()
    transitions: list[AlarmTransition] = []
    for reading in sorted(readings, key=lambda r: r.ts):
        for key in source_keys(reading):
            state = states.get(key) or new_state(key, now)
            # `source_keys` pairs each reading with the sources it touches, so a station
            # only ever sees water readings and a person wearable or home-sensor ones.
            match state:
                case DeviceState():
                    state, out = evaluate_device(state, configs.for_device(key), reading, now)
                case WaterState() if isinstance(reading, WaterReading):
                    state, out = evaluate_water(state, configs.for_station(key), reading, now)
                case WaterState() if isinstance(reading, StationAverage):
                    state, out = evaluate_average(state, configs.for_station(key), reading, now)
                case PersonState() if isinstance(reading, WearableReading):
                    state, out = evaluate_wearable(state, configs.for_person(key), reading, now)
                case PersonState() if isinstance(reading, HomeSensorEvent):
                    state, out = evaluate_home_sensor(state, configs.for_person(key), reading, now)
                case _:
                    raise TypeError(f"{key}: no rule takes a {type(reading).__name__}")
            states[key] = state
            changed.add(key)
            transitions.extend(out)
    return changed, transitions


def tick(key: str, state: State, configs: RuleConfigs, now: datetime) -> tuple[State, list[AlarmTransition]]:
    """Fire whatever timers of this source are due at `now`."""
    match state:
        case PersonState():
            return tick_person(state, configs.for_person(key), now)
        case DeviceState():
            return tick_device(state, configs.for_device(key), now)
        case AlertState():
            return tick_alert(state, configs.for_alert(key), now)
    return state, []


def deadline_of(key: str, state: State, configs: RuleConfigs) -> datetime | None:
    return next_deadline(state, configs.for_key(key))
