"""Simulated time: where the simulated day starts, how fast it runs, and how long it lasts.

Devices stamp every message with simulated time, and the platform refuses a measurement time
more than a few minutes ahead of its own clock. An accelerated run therefore replays a window
of the recent past: with `start: auto` the window is placed so that simulated time catches up
with the wall clock exactly when the run ends, and never passes it. Pure: the wall clock comes
in as an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Jiashan keeps China Standard Time: no daylight saving since 1991.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# The platform dead-letters measurement times older than 30 days (ingest max_age).
MAX_REPLAY = timedelta(days=29)

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")


class ClockError(ValueError):
    """A start time, duration or acceleration that cannot work; the message says why."""


def parse_duration(value: str | float) -> float:
    """Seconds from "90m", "1h30m", "2d", "45s", or a bare number of minutes."""
    if isinstance(value, bool):
        raise ClockError(f"a duration is a number of minutes or text like 1h30m, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ClockError(f"a duration cannot be negative, got {value}")
        return float(value) * 60.0
    match = _DURATION.match(str(value))
    if not match or not any(match.groups()):
        raise ClockError(f"a duration looks like 90m, 1h30m, 2d or 45s, got {value!r}")
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


@dataclass(frozen=True, slots=True)
class SimClock:
    """Maps the real (monotonic) clock onto simulated Unix time.

    `acceleration` 0 means unpaced: the simulator runs as fast as it can, still never past
    the wall clock."""

    start: float  # simulated Unix seconds at the first instant of the run
    duration_s: float
    acceleration: float
    real_origin: float  # monotonic seconds at which the run started

    @property
    def end(self) -> float:
        return self.start + self.duration_s

    def scheduled(self, real_now: float) -> float:
        """Where simulated time should be at monotonic time `real_now` (capped at the end)."""
        if self.acceleration <= 0:
            return self.end
        return min(self.end, self.start + (real_now - self.real_origin) * self.acceleration)

    def real_at(self, sim_t: float) -> float:
        """The monotonic time at which simulated time `sim_t` is due."""
        if self.acceleration <= 0:
            return self.real_origin
        return self.real_origin + (sim_t - self.start) / self.acceleration

    @property
    def real_duration_s(self) -> float:
        return self.duration_s / self.acceleration if self.acceleration > 0 else 0.0


def resolve_start(spec: str | datetime | None, *, duration_s: float, acceleration: float, wall_now: datetime) -> float:
    """Simulated Unix start time from a scenario's `start`: "auto", "now" or RFC 3339.

    auto: the window ends at the wall clock when the run ends (accelerated runs replay the
    recent past; real-time runs start now). An explicit start must keep every measurement
    time within the platform's accepted window for the whole run."""
    now = wall_now.timestamp()
    real_s = duration_s / acceleration if acceleration > 0 else 0.0
    if spec is None or spec == "auto":
        start = now + real_s - duration_s
    elif spec == "now":
        start = now
    else:
        try:
            when = spec if isinstance(spec, datetime) else datetime.fromisoformat(str(spec))
        except ValueError:
            raise ClockError(f"start is auto, now or an RFC 3339 time, got {spec!r}") from None
        if when.tzinfo is None:
            raise ClockError(f"start {spec!r} needs a UTC offset (e.g. +08:00)")
        start = when.timestamp()
    if start + duration_s > now + real_s + 1.0:
        ahead = timedelta(seconds=round(start + duration_s - now - real_s))
        raise ClockError(
            f"simulated time would run {ahead} ahead of the wall clock, and the platform refuses "
            f"future measurement times: start earlier, run shorter or slower, or use start: auto"
        )
    if start < now - MAX_REPLAY.total_seconds():
        raise ClockError(
            f"the run would begin {timedelta(seconds=round(now - start))} in the past; the platform "
            f"keeps measurement times of the last 30 days only"
        )
    return start


def local_time(t: float) -> datetime:
    return datetime.fromtimestamp(t, LOCAL_TZ)


def utc_text(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
