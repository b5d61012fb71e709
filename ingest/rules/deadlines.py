"""`next_deadline(state, config)` for any source: when its timers next need a tick.

Deadlines are derived from the persisted state, never held in memory, so after a restart
the caller recomputes them and no timer is lost.
"""

from __future__ import annotations

from datetime import datetime
from functools import singledispatch
from typing import Any

from .alert_state import AlertState, next_alert_deadline
from .elderly import next_person_deadline
from .person_state import PersonState
from .supervision import DeviceState, next_device_deadline
from .water import WaterState, next_water_deadline


@singledispatch
def next_deadline(state: Any, config: Any) -> datetime | None:
    raise TypeError(f"no rules state: {type(state).__name__}")


@next_deadline.register
def _(state: WaterState, config: Any) -> datetime | None:
    return next_water_deadline(state, config)


@next_deadline.register
def _(state: PersonState, config: Any) -> datetime | None:
    return next_person_deadline(state, config)


@next_deadline.register
def _(state: DeviceState, config: Any) -> datetime | None:
    return next_device_deadline(state, config)


@next_deadline.register
def _(state: AlertState, config: Any) -> datetime | None:
    return next_alert_deadline(state, config)
