"""Waiting on conditions, never on the clock: a test says what it waits for, and goes on the
moment it holds. A timeout is a failure with a message, not a pause."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable

# Short enough that a test resumes within a few milliseconds of the condition holding, long
# enough that polling a database or a metrics endpoint costs the services under test little.
POLL_INTERVAL_S = 0.05


def wait_for(predicate: Callable[[], object], timeout: float = 30, interval: float = POLL_INTERVAL_S, what: str = "") -> None:
    """Return as soon as `predicate()` is true; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'condition'} not reached within {timeout:g} s")
        time.sleep(interval)


async def until(predicate: Callable[[], object], timeout: float = 10, interval: float = 0.02, what: str = "") -> None:
    """`wait_for` for a test running on the event loop: the loop keeps serving meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'condition'} not reached within {timeout:g} s")
        await asyncio.sleep(interval)


def metric(port: int, name: str) -> float:
    """One sample of a service's Prometheus `/metrics` on 127.0.0.1:`port`: a progress signal
    to wait on (the first sample of `name`, labels included in `name` when it has any)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(f"{name} ")))
