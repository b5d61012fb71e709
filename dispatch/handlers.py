"""The dispatcher's decisions, apart from its I/O: what to do on a clock tick, a new
incident, or a crew's report. Each handler takes its collaborators as parameters — the store
(the database side), a publisher (orders to crews) and the clock — so the service tests drive
them with in-memory fakes and a FakeClock, and the process (dispatch/service.py) wires the
real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from dispatch.store import Order, Queued
from ingest.readings import UnitPosition, UnitStatusReport
from kernel.clock import Clock

log = logging.getLogger(__name__)

__all__ = ["DispatchStore", "Publish", "apply_report", "serve_queue", "tick"]


class DispatchStore(Protocol):
    """What the dispatcher asks of its database: each call is one transaction."""

    async def pending_incidents(self) -> list[str]: ...

    async def assign(self, incident_id: str, now: datetime, skip_kinds: frozenset[str]) -> Order | Queued | None: ...

    async def refuse_overdue(self, now: datetime, after_s: float) -> list[str]: ...

    async def apply_unit_status(self, unit_id: str, status: str, reported_at: datetime, now: datetime) -> bool: ...

    async def record_position(self, unit_id: str, lat: float, lon: float, at: datetime) -> None: ...


# Hands an order to the crew's topic; called only after the transaction that decided it.
Publish = Callable[[Order], Awaitable[None]]
# Told how long one queued incident took to decide and record (seconds), for the metrics.
ObserveDecision = Callable[[float], None]


async def serve_queue(
    store: DispatchStore, publish: Publish, clock: Clock, observe: ObserveDecision | None = None
) -> list[Order]:
    """Assign waiting incidents in queue order (the store gives them by order_pending). Once
    an incident finds no unit of the kind it needs, later ones needing that kind wait too: a
    unit freed a moment later must go to the most urgent call, which the next pass serves
    first."""
    blocked: frozenset[str] = frozenset()
    sent: list[Order] = []
    for incident_id in await store.pending_incidents():
        started = clock.monotonic()
        order = await store.assign(incident_id, clock.now(), blocked)
        if observe is not None:
            observe(clock.monotonic() - started)
        if isinstance(order, Queued):
            blocked |= {order.unit_kind}
        elif order is not None:
            await publish(order)
            sent.append(order)
    return sent


async def tick(
    store: DispatchStore, publish: Publish, clock: Clock, *, redispatch_after_s: float, observe: ObserveDecision | None = None
) -> list[Order]:
    """The clock's pass: orders not answered with en_route in time count as refused (their
    incidents return to the queue without that unit), then the queue is served — which also
    covers a new incident whose notification was missed."""
    refused = await store.refuse_overdue(clock.now(), redispatch_after_s)
    if refused:
        log.warning("no en_route within %.0f s for %s: re-dispatching", redispatch_after_s, ", ".join(refused))
    return await serve_queue(store, publish, clock, observe)


async def apply_report(
    store: DispatchStore, publish: Publish, clock: Clock, report: UnitStatusReport | UnitPosition,
    observe: ObserveDecision | None = None,
) -> list[Order]:
    """A crew's validated report. A status that frees the unit serves the queue at once."""
    if isinstance(report, UnitStatusReport):
        if await store.apply_unit_status(report.unit_id, report.status, report.ts, clock.now()):
            return await serve_queue(store, publish, clock, observe)
    else:
        await store.record_position(report.unit_id, report.lat, report.lon, report.ts)
    return []
