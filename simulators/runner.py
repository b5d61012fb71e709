"""Runs a Simulation against real time: paces it, publishes what it produces, feeds crew
orders back in, shows progress, and returns the summary.

Simulated time follows the schedule of the SimClock but never passes the wall clock (the
platform refuses measurement times from the future); when publishing cannot keep up, the
simulation falls behind its schedule and catches up as fast as the broker allows.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, TextIO

from .engine import Control, Simulation, StationFrame
from .alert_retry import AlertRetrier
from .faults import Wire
from .hj212_link import StationLinks
from .simclock import SimClock, local_time
from .summary import SimulationSummary

BATCH = 2000  # messages per advance: bounds the time between looks at incoming orders
IDLE_SLEEP_S = 0.05
FLUSH_TIMEOUT_S = 30.0
BURST_S = 0.5


class Publisher(Protocol):
    def publish(self, wire: Wire, stop: threading.Event) -> bool: ...
    def drop(self, pick: int) -> None: ...
    def silence(self, device: str) -> None: ...
    def resume(self, device: str) -> None: ...
    def flush(self, timeout: float) -> int: ...
    def totals(self) -> tuple[int, Counter[str], Counter[str], int, int]: ...


class DryRun:
    """A publisher that sends nothing and acknowledges everything (`--dry-run`, tests)."""

    def __init__(self) -> None:
        self.acked = 0
        self.dead: Counter[str] = Counter()
        self.sent: list[Wire] = []
        self.keep = False

    def publish(self, wire: Wire, stop: threading.Event) -> bool:
        self.acked += 1
        if wire.reason:
            self.dead[wire.reason] += 1
        if self.keep:
            self.sent.append(wire)
        return True

    def drop(self, pick: int) -> None: ...
    def silence(self, device: str) -> None: ...
    def resume(self, device: str) -> None: ...

    def flush(self, timeout: float) -> int:
        return 0

    def totals(self) -> tuple[int, Counter[str], Counter[str], int, int]:
        return self.acked, Counter(), self.dead, 0, 0


class RateLimit:
    """At most `rate` messages per second (0: unlimited). A pause (a batch being generated, a
    garbage collection) is made up for with a burst of up to BURST_S worth of messages."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.last = 0.0, clock()

    def take(self) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(self.rate * BURST_S, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1
        if self.tokens < -self.rate * 0.005:  # sleep in slices of >= 5 ms, not per message
            time.sleep(-self.tokens / self.rate)


class Runner:
    def __init__(
        self, sim: Simulation, publisher: Publisher, *, acceleration: float, scenario: str, seed: int,
        orders: queue.Queue[tuple[str, bytes]] | None = None, rate: float = 0.0, progress: TextIO | None = None,
        stop: threading.Event | None = None, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
        receipts: queue.Queue[tuple[str, bytes]] | None = None, stations: StationLinks | None = None,
    ) -> None:
        self.sim, self.publisher = sim, publisher
        self.clock = SimClock(sim.start, sim.end - sim.start, acceleration, monotonic())
        self.scenario, self.seed = scenario, seed
        self.stop = stop or threading.Event()
        # Crew orders, put here by the broker's network thread.
        self.orders: queue.Queue[tuple[str, bytes]] = orders if orders is not None else queue.Queue()
        # Alert receipts, put here by the broker's network thread; with them the wearables
        # repeat every alert until it is receipted (none in a dry run: nobody answers).
        self.receipts = receipts
        self.retrier = AlertRetrier() if receipts is not None else None
        # HJ 212 stations' TCP connections to the gateway (None: a dry run counts the frames).
        self.stations = stations
        self.monotonic, self.wall = monotonic, wall
        self.limit = RateLimit(rate, monotonic)
        self.published: Counter[str] = Counter()
        self.progress = progress
        self._tty = bool(progress and progress.isatty())
        self._shown_at = self._shown_count = 0.0

    def run(self) -> SimulationSummary:
        sim = self.sim
        started = self.monotonic()
        clock = self.clock = SimClock(sim.start, sim.end - sim.start, self.clock.acceleration, started)
        self._send(sim.opening())
        while not self.stop.is_set():
            self._take_orders()
            self._take_station_replies()
            self._repeat_unanswered_alerts()
            target = min(clock.scheduled(self.monotonic()), self.wall())
            items = sim.advance(target, BATCH)
            self._send(items)
            self._show(started)
            if sim.now >= sim.end:
                break
            if not items:
                wait = clock.real_at(min(sim.next_event_time, sim.end)) - self.monotonic()
                if wait > 0:
                    time.sleep(min(wait, IDLE_SLEEP_S))
        self._send(sim.finish())
        self._wait_for_receipts(FLUSH_TIMEOUT_S if not self.stop.is_set() else 2.0)
        unacknowledged = self.publisher.flush(FLUSH_TIMEOUT_S if not self.stop.is_set() else 2.0)
        if self.stations is not None:
            self.stations.flush(FLUSH_TIMEOUT_S if not self.stop.is_set() else 2.0)
            self._take_station_replies()
        real_s = self.monotonic() - started
        self._show(started, final=True)
        acked, refused, dead, presence, reconnects = self.publisher.totals()
        messages = dict(self.published)
        if presence:
            messages["online"] = messages.get("online", 0) + presence
        return SimulationSummary(
            scenario=self.scenario, seed=self.seed, sim_start=sim.start, sim_end=sim.now,
            acceleration=clock.acceleration, real_seconds=real_s, messages=messages,
            faults=dict(sim.fault_counts), expected_dead_letters=dict(dead), suppressed=sim.suppressed,
            scripted=dict(sim.scripted), orders=tuple(sim.book.orders), publish_acked=acked + presence,
            publish_refused=dict(refused), unacknowledged=unacknowledged, reconnects=reconnects,
            unusable_orders=sim.unusable_orders, hj212=self.stations.totals() if self.stations is not None else {},
        )

    def _send(self, items: Sequence[Wire | Control | StationFrame]) -> None:
        pub = self.publisher
        for item in items:
            if isinstance(item, StationFrame):
                if self.stations is not None:
                    self.stations.send(item.station_id, item.data)
                self.published[item.kind] += 1
                continue
            if isinstance(item, Control):
                if item.action == "disconnect":
                    pub.drop(item.pick)
                elif item.action == "silence" and item.device:
                    pub.silence(item.device)
                elif item.device:
                    pub.resume(item.device)
                continue
            self.limit.take()
            if not pub.publish(item, self.stop):
                return
            self.published[item.kind] += 1
            if self.retrier is not None and item.kind == "alert":
                self.retrier.sent(item, self.monotonic())

    def _repeat_unanswered_alerts(self) -> None:
        if self.retrier is None or self.receipts is None:
            return
        while True:
            try:
                person_id, payload = self.receipts.get_nowait()
            except queue.Empty:
                break
            self.retrier.receipt(person_id, payload)
        for wire in self.retrier.due(self.monotonic()):
            if not self.publisher.publish(wire, self.stop):
                return
            self.published["alert_repeat"] += 1

    def _wait_for_receipts(self, timeout: float) -> None:
        """The run is over, but a wearable still repeats what nobody has receipted."""
        deadline = self.monotonic() + timeout
        while self.retrier is not None and self.retrier.unanswered and self.monotonic() < deadline and not self.stop.is_set():
            self._repeat_unanswered_alerts()
            time.sleep(IDLE_SLEEP_S)

    def _take_station_replies(self) -> None:
        if self.stations is None:
            return
        while True:
            try:
                station_id, frame, received_at = self.stations.replies.get_nowait()
            except queue.Empty:
                return
            self.sim.receive_station_reply(station_id, frame, received_at)

    def _take_orders(self) -> None:
        while True:
            try:
                unit_id, payload = self.orders.get_nowait()
            except queue.Empty:
                return
            self.sim.receive_order(unit_id, payload)

    def _show(self, started: float, final: bool = False) -> None:
        if self.progress is None:
            return
        now = self.monotonic()
        every = 1.0 if self._tty else 10.0
        if not final and now - self._shown_at < every:
            return
        sim, clock = self.sim, self.clock
        total = sum(self.published.values())
        rate = (total - self._shown_count) / max(1e-6, now - self._shown_at) if self._shown_at else 0.0
        self._shown_at, self._shown_count = now, total
        done = (sim.now - sim.start) / max(1.0, sim.end - sim.start)
        behind = max(0.0, clock.scheduled(now) - sim.now)
        line = (
            f"{local_time(sim.now):%Y-%m-%d %H:%M:%S} (+{(sim.now - sim.start) / 60:.0f} of {(sim.end - sim.start) / 60:.0f} min, "
            f"{done:.0%}) | sent {total:,} ({rate:,.0f}/s) | orders {len(sim.book.orders)} | behind {behind / 60:.1f} sim min"
        )
        end = "\n" if final or not self._tty else ""
        print(("\r" if self._tty else "") + line + end, file=self.progress, end="", flush=True)


def default_progress(quiet: bool) -> TextIO | None:
    return None if quiet else sys.stderr
