"""Per-person thresholds for the elderly rules, with DOMAIN.md's defaults.

Every field can be overridden from the registry (`PersonConfig.from_mapping`), because real
deployments tune them per person: a resting heart rate of 45 is normal for some, an SpO2
alarm at 88 % is right for chronic lung disease, a night-shift worker sleeps by day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta, tzinfo
from typing import Any

from ._mapping import ConfigError, config_from_mapping
from .timewindows import DailyWindow, resolve_timezone

DEFAULT_ACTIVE_WINDOW = DailyWindow(time(7, 0), time(22, 0))
DEFAULT_NIGHT_WINDOW = DailyWindow(time(22, 0), time(6, 0))


@dataclass(frozen=True, slots=True)
class PersonConfig:
    # Wall clock the person lives by: an IANA name or a fixed offset such as "+08:00".
    timezone: str = "Asia/Shanghai"

    # A fall alerts the family at once; "I'm OK" within this window cancels it, otherwise
    # it becomes an emergency.
    fall_cancel_window_s: float = 60.0

    # Vitals alarm when every reading over `vitals_sustain_s` is out of range, and clear
    # once readings have been back in range for `vitals_clear_s`. A gap between readings
    # longer than `vitals_max_gap_s` (2x the sustain window) starts the span over.
    hr_low_bpm: float = 40.0  # alarm below
    hr_high_bpm: float = 130.0  # alarm above
    # The cardiac range that makes a heart-rate alarm an emergency; equal to the alarm
    # thresholds by default, so a person's looser thresholds still alarm (as major).
    hr_emergency_low_bpm: float = 40.0
    hr_emergency_high_bpm: float = 130.0
    spo2_low_pct: float = 90.0  # alarm below
    vitals_sustain_s: float = 60.0
    vitals_clear_s: float = 60.0
    vitals_max_gap_s: float = 120.0

    # No motion for this long, counting only time inside the active window (the quiet
    # hours outside it pause the count rather than reset it).
    inactivity_s: float = 4 * 3600.0
    active_window: DailyWindow = DEFAULT_ACTIVE_WINDOW

    night_window: DailyWindow = DEFAULT_NIGHT_WINDOW
    bed_exit_s: float = 30 * 60.0  # out of bed at night
    door_open_s: float = 2 * 60.0  # front door open at night

    def __post_init__(self) -> None:
        resolve_timezone(self.timezone)  # fail at load time, not at 3 a.m.
        durations = {
            "fall_cancel_window_s": self.fall_cancel_window_s,
            "vitals_sustain_s": self.vitals_sustain_s,
            "vitals_clear_s": self.vitals_clear_s,
            "inactivity_s": self.inactivity_s,
            "bed_exit_s": self.bed_exit_s,
            "door_open_s": self.door_open_s,
        }
        negative = [name for name, value in durations.items() if value < 0]
        if negative:
            raise ConfigError(f"person: durations must be >= 0: {', '.join(negative)}")
        if self.vitals_max_gap_s <= 0:
            raise ConfigError("person: vitals_max_gap_s must be > 0")
        if self.hr_low_bpm >= self.hr_high_bpm:
            raise ConfigError(
                f"person: hr_low_bpm ({self.hr_low_bpm}) must be below hr_high_bpm "
                f"({self.hr_high_bpm})"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PersonConfig:
        return config_from_mapping(cls, data)

    @property
    def tz(self) -> tzinfo:
        return resolve_timezone(self.timezone)

    @property
    def fall_cancel_window(self) -> timedelta:
        return timedelta(seconds=self.fall_cancel_window_s)
