"""Inactivity: no sign of motion for hours inside the person's active window.

Motion is a home motion sensor reporting true, or the wearable's step counter moving.
Only time inside the active window counts: the quiet hours outside it (night, by default)
pause the clock, so a person who goes to bed at 21:00 and is not seen moving again by
10:00 the next morning is 4 h "inactive" (21:00-22:00 and 07:00-10:00).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ._codec import dt_to_json
from ._evolve import evolve
from .alarms import AlarmLedger, AlarmType
from .person_config import PersonConfig
from .person_state import PersonState
from .timewindows import accumulated_deadline


def begin_monitoring(state: PersonState, at: datetime) -> PersonState:
    """Without any motion seen yet, the clock runs from the first thing we hear (or the
    first tick): a person is not "inactive since forever" on their first day."""
    if state.inactive_since is not None:
        return state
    return evolve(state, inactive_since=at)


def record_motion(
    state: PersonState, ts: datetime, ledger: AlarmLedger, source: str
) -> PersonState:
    if state.inactive_since is not None and ts <= state.inactive_since:
        return state  # older than what we already know: changes nothing
    # A motion older than the alarm itself (a delayed message) still proves the alarm was
    # wrong; the clock restarts from it and may well fire again at the next tick.
    ledger.clear(AlarmType.INACTIVITY, ts, detail={"motion_at": dt_to_json(ts), "source": source})
    return evolve(state, inactive_since=ts)


def inactivity_deadline(state: PersonState, config: PersonConfig) -> datetime | None:
    if state.inactive_since is None or AlarmType.INACTIVITY in state.alarms:
        return None
    return accumulated_deadline(
        config.active_window,
        config.tz,
        state.inactive_since,
        timedelta(seconds=config.inactivity_s),
    )
