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

    # Vitals alarm on at least `vitals_confirm_samples` consecutive out-of-range samples
    # spanning at least `vitals_sustain_s`, and clear once samples have been back in range
    # for `vitals_clear_s`. Two samples are consecutive when the second came within
    # `vitals_max_gap_s`, or within two sampling intervals of a wearable that spot-samples
    # every `vitals_sample_interval_s` (0: a continuous sensor). See docs/alarms.md.
    hr_low_bpm: float = 40.0  # alarm below
    hr_high_bpm: float = 130.0  # alarm above
    # The range that makes a vitals alarm an emergency (a priority-1/2 incident): stricter
    # than the alarm thresholds, so that a sustained 38 bpm or 135 bpm tells the family and
    # the control room without sending an ambulance, while 30 bpm or 160 bpm does.
    hr_emergency_low_bpm: float = 35.0
    hr_emergency_high_bpm: float = 150.0
    spo2_low_pct: float = 90.0  # alarm below
    spo2_emergency_low_pct: float = 85.0  # emergency below (severe hypoxaemia)
    vitals_sustain_s: float = 60.0
    vitals_clear_s: float = 60.0
    vitals_max_gap_s: float = 120.0
    vitals_sample_interval_s: float = 0.0
    vitals_confirm_samples: int = 2

    # No motion for this long, counting only time inside the active window (the quiet
    # hours outside it pause the count rather than reset it).
    inactivity_s: float = 4 * 3600.0
    active_window: DailyWindow = DEFAULT_ACTIVE_WINDOW

    night_window: DailyWindow = DEFAULT_NIGHT_WINDOW
    bed_exit_s: float = 30 * 60.0  # out of bed at night
    door_open_s: float = 2 * 60.0  # front door open at night
    # With a bed sensor: the bed must be occupied by `bed_by` (local time) and left by
    # `up_by`; None turns the rule off for the person. Someone who collapses in the evening
    # is found at `bed_by`, not after the night's pause of the inactivity clock.
    bed_by: time | None = time(23, 30)
    up_by: time | None = time(9, 0)

    def __post_init__(self) -> None:
        resolve_timezone(self.timezone)  # fail at load time, not at 3 a.m.
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every inconsistency, each naming its field (the registry prefixes the person)."""
        problems: list[str] = []
        durations = {
            "fall_cancel_window_s": self.fall_cancel_window_s,
            "vitals_sustain_s": self.vitals_sustain_s,
            "vitals_clear_s": self.vitals_clear_s,
            "vitals_sample_interval_s": self.vitals_sample_interval_s,
            "inactivity_s": self.inactivity_s,
            "bed_exit_s": self.bed_exit_s,
            "door_open_s": self.door_open_s,
        }
        problems += [f"{name}: must be >= 0, got {v}" for name, v in durations.items() if v < 0]
        if self.vitals_max_gap_s <= 0:
            problems.append(f"vitals_max_gap_s: must be > 0, got {self.vitals_max_gap_s}")
        if self.vitals_confirm_samples < 1:
            problems.append(
                f"vitals_confirm_samples: must be >= 1, got {self.vitals_confirm_samples}"
            )
        ordered = (
            # (lower field, lower value, upper field, upper value, strictly below)
            ("hr_low_bpm", self.hr_low_bpm, "hr_high_bpm", self.hr_high_bpm, True),
            ("hr_emergency_low_bpm", self.hr_emergency_low_bpm, "hr_low_bpm", self.hr_low_bpm, False),
            ("hr_high_bpm", self.hr_high_bpm, "hr_emergency_high_bpm", self.hr_emergency_high_bpm, False),
            ("spo2_emergency_low_pct", self.spo2_emergency_low_pct, "spo2_low_pct", self.spo2_low_pct, False),
        )
        for low_name, low, high_name, high, strict in ordered:
            if low > high or (strict and low == high):
                relation = "below" if strict else "at most"
                problems.append(f"{low_name}: {low} must be {relation} {high_name} ({high})")
        if not 50.0 <= self.spo2_low_pct <= 100.0:
            problems.append(f"spo2_low_pct: must be within 50-100 %, got {self.spo2_low_pct}")
        if self.bed_by is not None and self.up_by is not None and self.bed_by == self.up_by:
            problems.append(f"up_by: must differ from bed_by ({self.bed_by.isoformat('minutes')})")
        return problems

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PersonConfig:
        return config_from_mapping(cls, data)

    @property
    def tz(self) -> tzinfo:
        return resolve_timezone(self.timezone)

    @property
    def vitals_gap(self) -> timedelta:
        """The longest gap between two samples that still counts them as consecutive."""
        return timedelta(seconds=max(self.vitals_max_gap_s, 2 * self.vitals_sample_interval_s))

    @property
    def fall_cancel_window(self) -> timedelta:
        return timedelta(seconds=self.fall_cancel_window_s)
