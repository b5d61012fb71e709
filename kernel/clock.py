"""Time as a collaborator. A service that asks a `Clock` for the time, instead of calling
`datetime.now()` and `time.monotonic()` itself, can be driven by a test through windows,
escalations and timeouts in microseconds: the test holds a `FakeClock` and advances it.

`now()` is wall-clock time (aware, UTC), for what is stored and shown; `monotonic()` is
seconds on a clock that never goes back, for measuring intervals and deadlines, which a
wall clock stepped by NTP would get wrong.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin; never decreases."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that moves only when told to. Both readings advance together, as real time
    would; `set` moves the wall clock alone, as an NTP step or a wrong device clock does."""

    # A fixed, recognisable default start, so a test that forgets to set one is repeatable.
    DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(self, start: datetime | None = None, *, monotonic: float = 0.0) -> None:
        self._now = _aware_utc(start if start is not None else self.DEFAULT_START)
        self._monotonic = float(monotonic)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float | timedelta) -> None:
        """Let time pass: both clocks move forward by `seconds` (never backwards)."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError(f"time only moves forward: advance takes seconds >= 0, got {step}")
        self._now += timedelta(seconds=step)
        self._monotonic += step

    def set(self, now: datetime) -> None:
        """Step the wall clock to `now` (either direction); the monotonic clock stays."""
        self._now = _aware_utc(now)

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()}, monotonic={self._monotonic})"


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a clock reads aware times: expected a datetime with a timezone, got {moment!r}")
    return moment.astimezone(UTC)
