"""Detection rules: pure functions from (state, config, reading, now) to (new state, alarm
transitions). No I/O and no clock: the caller passes `now`, persists each source's state
(`encode_state`/`from_json`) with its readings, and ticks at `next_deadline`.

Sources and their state: a water station (`WaterState`), a person (`PersonState`: wearable
and home sensors), a device (`DeviceState`: silence and battery), and the alert lane's own
memory of a person's alert-topic falls (`AlertState`, `ingest.rules.alert_state`).
"""

from __future__ import annotations

from ._mapping import ConfigError
from .alarms import Action, AlarmTransition, AlarmType, RaisedAlarm, Severity, SourceKind
from .anomaly import AnomalyConfig
from .deadlines import next_deadline
from .elderly import (
    LATCHED,
    evaluate_home_sensor,
    evaluate_wearable,
    next_person_deadline,
    resolve_person_alarm,
    tick_person,
)
from .gb3838 import WaterBody, WaterClass, classify, classify_parameter
from .person_config import PersonConfig
from .person_state import PersonState
from .supervision import (
    DeviceConfig,
    DeviceState,
    device_key,
    device_key_of,
    evaluate_device,
    next_device_deadline,
    tick_device,
)
from .timewindows import DailyWindow
from .water import WaterConfig, WaterState, evaluate_water, next_water_deadline

__all__ = [
    "LATCHED",
    "Action",
    "AlarmTransition",
    "AlarmType",
    "AnomalyConfig",
    "ConfigError",
    "DailyWindow",
    "DeviceConfig",
    "DeviceState",
    "PersonConfig",
    "PersonState",
    "RaisedAlarm",
    "Severity",
    "SourceKind",
    "WaterBody",
    "WaterClass",
    "WaterConfig",
    "WaterState",
    "classify",
    "classify_parameter",
    "device_key",
    "device_key_of",
    "evaluate_device",
    "evaluate_home_sensor",
    "evaluate_water",
    "evaluate_wearable",
    "next_deadline",
    "next_device_deadline",
    "next_person_deadline",
    "next_water_deadline",
    "resolve_person_alarm",
    "tick_device",
    "tick_person",
]
