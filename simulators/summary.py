"""What a simulation run sent and saw, as a value the caller can print, store or merge with
the platform's own account of the same run (dead letters, alarms, incidents)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .detection import DetectionTable
from .simclock import utc_text

MAX_ORDER_LINES = 20  # orders listed one by one in the printed summary


@dataclass(slots=True)
class OrderRecord:
    """One order as the crew lived it, in simulated Unix seconds."""

    unit_id: str
    incident_id: str
    received: float
    eta_s: float | None
    trigger: float | None = None  # when the scripted emergency behind it first showed
    trigger_kind: str | None = None
    statuses: dict[str, float] = field(default_factory=dict)  # first time of each status

    @property
    def dispatch_wait_min(self) -> float | None:
        return None if self.trigger is None else (self.received - self.trigger) / 60

    @property
    def response_min(self) -> float | None:
        """Order received to on scene."""
        at = self.statuses.get("on_scene")
        return None if at is None else (at - self.received) / 60

    @property
    def completed(self) -> bool:
        return "available" in self.statuses


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    scenario: str
    seed: int
    sim_start: float
    sim_end: float  # how far simulated time got
    acceleration: float
    real_seconds: float
    messages: dict[str, int]  # by stream kind: water, wearable, home, gps, status, online
    faults: dict[str, int]  # "malformed:<variant>", duplicate, out_of_order, silent, disconnect
    expected_dead_letters: dict[str, int]  # reason -> malformed messages the broker accepted
    suppressed: int  # readings not sent because their device was silent
    scripted: dict[str, int]  # event kind (falls split into cancelled / uncancelled)
    orders: tuple[OrderRecord, ...]
    publish_acked: int
    publish_refused: dict[str, int]  # broker reason -> count
    unacknowledged: int
    reconnects: int
    unusable_orders: int = 0
    # HJ 212 stations over TCP: frames sent, acknowledged (9014), times set (1012), unsent…
    hj212: dict[str, int] = field(default_factory=dict)
    detection: DetectionTable | None = None  # with the platform's alarms (--database-url)

    @property
    def messages_total(self) -> int:
        return sum(self.messages.values())

    @property
    def rate_msg_s(self) -> float:
        return self.messages_total / self.real_seconds if self.real_seconds > 0 else 0.0

    @property
    def orders_completed(self) -> int:
        return sum(o.completed for o in self.orders)

    def dispatch_wait_min(self) -> list[float]:
        return [w for o in self.orders if (w := o.dispatch_wait_min) is not None]

    def response_min(self) -> list[float]:
        return [r for o in self.orders if (r := o.response_min) is not None]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["detection"] = None if self.detection is None else self.detection.as_dict()
        doc["orders"] = [
            {**asdict(o), "dispatch_wait_min": o.dispatch_wait_min, "response_min": o.response_min, "completed": o.completed}
            for o in self.orders
        ]
        doc.update(
            messages_total=self.messages_total, rate_msg_s=round(self.rate_msg_s, 1), orders_completed=self.orders_completed,
            dispatch_wait_p90_min=percentile(self.dispatch_wait_min(), 90), response_p90_min=percentile(self.response_min(), 90),
        )
        return doc

    def format(self) -> str:
        def counts(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"

        def minutes(values: list[float]) -> str:
            if not values:
                return "none known"
            return f"n {len(values)}, median {percentile(values, 50):.1f}, p90 {percentile(values, 90):.1f}, max {max(values):.1f}"

        lines = [
            (
                f"scenario {self.scenario} (seed {self.seed}), simulated {utc_text(self.sim_start)} → {utc_text(self.sim_end)} "
                f"({(self.sim_end - self.sim_start) / 60:.1f} min) in {self.real_seconds:.1f} s real"
                + (f" at {self.acceleration:g}×" if self.acceleration > 0 else " unpaced")
            ),
            f"messages sent: {self.messages_total} ({self.rate_msg_s:.0f} msg/s): {counts(self.messages)}",
            (
                f"broker: {self.publish_acked} acknowledged, refused {counts(self.publish_refused)}, "
                f"{self.unacknowledged} never acknowledged, {self.reconnects} reconnects"
            ),
            *([f"HJ 212 stations → gateway: {counts(self.hj212)}"] if self.hj212 else []),
            f"faults injected: {counts(self.faults)}; readings withheld by silent devices: {self.suppressed}",
            f"dead letters to expect: {counts(self.expected_dead_letters)}",
            f"scripted events: {counts(self.scripted)}",
            (
                f"orders: {len(self.orders)} received, {self.orders_completed} completed"
                + (f", {self.unusable_orders} unusable" if self.unusable_orders else "")
            ),
            f"  dispatch wait (order − trigger), simulated min: {minutes(self.dispatch_wait_min())}",
            f"  response (order → on_scene), simulated min: {minutes(self.response_min())}",
        ]
        for o in self.orders[:MAX_ORDER_LINES]:
            wait = f"{o.dispatch_wait_min:.1f}" if o.dispatch_wait_min is not None else "?"
            resp = f"{o.response_min:.1f}" if o.response_min is not None else "-"
            eta = f"{o.eta_s / 60:.1f}" if isinstance(o.eta_s, int | float) else "?"
            lines.append(
                f"  {o.incident_id} → {o.unit_id}: {o.trigger_kind or 'unknown trigger'}, wait {wait} min, "
                f"ETA {eta} min, response {resp} min, reached {', '.join(o.statuses) or 'nothing'}"
            )
        if len(self.orders) > MAX_ORDER_LINES:
            lines.append(f"  … and {len(self.orders) - MAX_ORDER_LINES} more orders (all in --summary-json)")
        if self.detection is not None:
            lines.append(self.detection.format())
        return "\n".join(lines)
