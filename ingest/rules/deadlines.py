"""`next_deadline(state, config)` for any source: when its timers next need a tick.

Deadlines are derived from the persisted state, never held in memory, so after a restart
the caller recomputes them and no timer is lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .alert_state import AlertState, next_alert_deadline
from .elderly import next_person_deadline
from .person_state import PersonState
from .supervision import DeviceState, next_device_deadline
from .water import WaterState, next_water_deadline


def next_deadline(state: Any, config: Any) -> datetime | None:
    # A match, not functools.singledispatch: this runs for every state ingest saves, and
    # the dispatch wrapper cost more than most of the deadlines it chose.
    match state:
        case PersonState():
            return next_person_deadline(state, config)
        case DeviceState():
            return next_device_deadline(state, config)
        case WaterState():
            return next_water_deadline(state, config)
        case AlertState():
            return next_alert_deadline(state, config)
    raise TypeError(f"no rules state: {type(state).__name__}")
