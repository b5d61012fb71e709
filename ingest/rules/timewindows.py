"""Daily local-time windows ("07:00-22:00", "22:00-06:00") and the deadlines they imply.

People live by China's wall clock (Asia/Shanghai), devices and the platform by UTC:
a window is wall-clock times plus a time zone, turned into UTC intervals per local day. A
window whose end is not after its start crosses midnight; start == end means all day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._mapping import ConfigError, parse_clock

_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")

# Searching for a deadline walks day by day; a window of a few minutes a day could need
# months to accumulate hours, and beyond this horizon the rule is treated as never firing.
SEARCH_HORIZON = timedelta(days=400)


@lru_cache(maxsize=64)
def resolve_timezone(name: str) -> tzinfo:
    """An IANA name ('Asia/Shanghai') or a fixed offset ('+08:00', 'UTC+08:00')."""
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone: expected an IANA name like 'Asia/Shanghai' or an offset like '+08:00', "
            f"got {name!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class DailyWindow:
    start: time
    end: time

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> DailyWindow:
        """'22:00-06:00' or {'start': '22:00', 'end': '06:00'}."""
        if isinstance(value, str):
            parts = value.split("-")
            if len(parts) != 2:
                raise ConfigError(f"window: expected 'HH:MM-HH:MM', got {value!r}")
            start, end = parts
        elif isinstance(value, Mapping) and set(value) == {"start", "end"}:
            start, end = value["start"], value["end"]
        else:
            raise ConfigError(f"window: expected 'HH:MM-HH:MM' or {{start, end}}, got {value!r}")
        return cls(parse_clock(start, "window start"), parse_clock(end, "window end"))

    def to_text(self) -> str:
        return f"{self.start.isoformat('minutes')}-{self.end.isoformat('minutes')}"

    @property
    def all_day(self) -> bool:
        return self.start == self.end

    def contains(self, tz: tzinfo, at: datetime) -> bool:
        local = at.astimezone(tz).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight, or all day

    def occurrences(self, tz: tzinfo, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The window's [start, end) intervals in UTC that end after `since`, in order.

        Endless: callers stop on their own horizon. Starts a day early because a window
        across midnight that began yesterday may still be open at `since`.
        """
        day = since.astimezone(tz).date() - timedelta(days=1)
        while True:
            start, end = _occurrence(self, tz, day)
            if end > since:
                yield start, end
            day += timedelta(days=1)


# Every saved person state asks for its next deadline, and those of a county fall on the
# same few days: each day's interval is worked out once (a day's UTC interval depends on the
# zone's rules for that day only).
@lru_cache(maxsize=4096)
def _occurrence(window: DailyWindow, tz: tzinfo, day: date) -> tuple[datetime, datetime]:
    """The window's [start, end) in UTC for the local day it starts on."""
    end_day = day + timedelta(days=1) if window.end <= window.start else day
    return (
        datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC),
        datetime.combine(end_day, window.end, tzinfo=tz).astimezone(UTC),
    )


def accumulated_deadline(
    window: DailyWindow, tz: tzinfo, since: datetime, needed: timedelta
) -> datetime | None:
    """The instant at which the time spent inside `window` after `since` reaches `needed`:
    time outside the window does not count (it pauses the clock, not resets it)."""
    if window.all_day:
        return since + needed
    remaining = needed
    for start, end in window.occurrences(tz, since):
        if start - since > SEARCH_HORIZON:
            return None
        begin = max(start, since)
        if begin + remaining <= end:
            return begin + remaining
        remaining -= end - begin
    return None  # unreachable: occurrences() is endless


def contiguous_deadline(
    window: DailyWindow, tz: tzinfo, since: datetime, needed: timedelta
) -> datetime | None:
    """The first instant at which `needed` has elapsed after `since` without leaving the
    window: a stretch interrupted by the window's end starts over at its next start."""
    if window.all_day:
        return since + needed
    for start, end in window.occurrences(tz, since):
        if start - since > SEARCH_HORIZON:
            return None
        begin = max(start, since)
        if begin + needed <= end:
            return begin + needed
    return None  # unreachable: occurrences() is endless


def deadline_in_same_occurrence(
    window: DailyWindow, tz: tzinfo, since: datetime, needed: timedelta
) -> datetime | None:
    """since + needed, provided `since` lies inside the window and the window has not closed
    by then; otherwise None (the episode began, or would end, outside the window)."""
    if window.all_day:
        return since + needed
    if not window.contains(tz, since):
        return None
    _start, end = next(window.occurrences(tz, since))
    deadline = since + needed
    return deadline if deadline <= end else None


def next_local_time(at: time, tz: tzinfo, after: datetime) -> datetime:
    """The first instant strictly after `after` whose wall-clock time in `tz` is `at` (on a
    day when a DST change skips `at`, the instant the wall clock passes it)."""
    day = after.astimezone(tz).date() - timedelta(days=1)
    while True:
        candidate = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if candidate > after:
            return candidate
        day += timedelta(days=1)
