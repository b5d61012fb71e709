"""A fall and the "I'm OK" that answers it: the cancel window, shared by the person's state
(the `fall` and `cancel` flags of wearable telemetry) and the alert lane's own state (falls
and cancels on the alert topic, `ingest.rules.alert_state`).

Events, not values: a delayed fall is still a fall. An "I'm OK" that arrives before the fall
it answers (redelivery, two consumers) is remembered and cancels that fall when it comes. A
fall from the alert topic with a sane clock has its cancel window counted from its own time,
so a backlog adds no minutes before help is sent; with a suspect clock (the alert then
carries its receive time) or from a telemetry flag, from when the platform learnt of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ingest.readings import WearableReading

from ._codec import dt_to_json
from .alarms import AlarmLedger, AlarmType, RaisedAlarm, Severity
from .person_config import PersonConfig
from .person_state import RECENT_CANCELS, FallEpisode

# The fall nobody cancelled in time: an emergency (an ambulance), not just the family.
UNCANCELLED_SEVERITY = Severity.CRITICAL

Cancels = tuple[datetime, ...]


def open_fall(
    fall: FallEpisode | None,
    recent_cancels: Cancels,
    config: PersonConfig,
    reading: WearableReading,
    now: datetime,
    ledger: AlarmLedger,
) -> tuple[FallEpisode | None, Cancels]:
    """A new fall: raise `fall` and open its cancel window, unless an episode is open (one at
    a time; the open one already alerted everyone) or an "I'm OK" pressed within the window
    after it has already arrived."""
    if fall is not None:
        return fall, recent_cancels
    early = [c for c in recent_cancels if reading.ts <= c <= reading.ts + config.fall_cancel_window]
    if early:
        # The wearer said "I'm OK" in time; the message saying so merely arrived first.
        return None, tuple(c for c in recent_cancels if c != early[0])
    episode = FallEpisode(fall_ts=reading.ts, deadline=cancel_deadline(config, reading, now))
    ledger.raise_(
        AlarmType.FALL,
        Severity.MAJOR,
        reading.ts,
        detail={**where(reading), "cancel_deadline": dt_to_json(episode.deadline)},
    )
    return episode, recent_cancels


def cancel_deadline(config: PersonConfig, reading: WearableReading, now: datetime) -> datetime:
    """An alert with a sane clock: the fall's own time + the window (a late message has used
    up part of it). A suspect clock's alert carries its receive time as `ts`, so this is the
    receive time + the window. A telemetry flag keeps the platform's time + the window."""
    if reading.event_id is not None:
        return reading.ts + config.fall_cancel_window
    return now + config.fall_cancel_window


def cancel_fall(
    fall: FallEpisode | None,
    recent_cancels: Cancels,
    config: PersonConfig,
    reading: WearableReading,
    now: datetime,
    ledger: AlarmLedger,
) -> tuple[FallEpisode | None, Cancels]:
    """An "I'm OK": ends the open fall if pressed in time; with no fall open (yet), it is
    remembered for the fall that may still be on its way."""
    if fall is None or reading.ts < fall.fall_ts:
        if reading.ts in recent_cancels:
            return fall, recent_cancels
        return fall, (*recent_cancels, reading.ts)[-RECENT_CANCELS:]
    # In time if pressed within the window by the wearable's clock (a delayed message), or
    # received within it by ours (a wearable clock running behind).
    pressed_in_time = reading.ts - fall.fall_ts <= config.fall_cancel_window
    if not (pressed_in_time or now <= fall.deadline):
        return fall, recent_cancels  # too late: the emergency stands until an operator resolves it
    detail: dict[str, Any] = {"reason": "cancelled", "cancelled_at": dt_to_json(reading.ts)}
    if reading.event_id is not None:
        detail["event_id"] = reading.event_id
    ledger.clear(AlarmType.FALL, reading.ts, detail=detail)
    # Raised only if the tick ran before a delayed in-time cancel arrived.
    ledger.clear(AlarmType.FALL_UNCANCELLED, reading.ts, detail=detail)
    return None, recent_cancels


def uncancelled_deadline(fall: FallEpisode | None, alarms: Mapping[AlarmType, RaisedAlarm]) -> datetime | None:
    """When the open fall becomes an emergency, unless it already has."""
    if fall is None or AlarmType.FALL_UNCANCELLED in alarms:
        return None
    return fall.deadline


def where(reading: WearableReading) -> dict[str, Any]:
    """What an alarm records about the reading that raised it: the fix, and for an alert the
    event id and whether the device's clock was trusted."""
    detail: dict[str, Any] = {}
    if reading.lat is not None and reading.lon is not None:
        detail = {"lat": reading.lat, "lon": reading.lon}
        if reading.acc_m is not None:
            detail["acc_m"] = reading.acc_m
    if reading.event_id is not None:
        detail["event_id"] = reading.event_id
        detail["clock_suspect"] = reading.clock_suspect
        if reading.clock_suspect:
            detail["device_ts"] = dt_to_json(reading.device_ts)
    return detail
