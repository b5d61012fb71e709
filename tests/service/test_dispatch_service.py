"""The dispatcher's decisions over time, driven with a FakeClock and in-memory fakes: re-
dispatch after the timeout and the queue's order, in milliseconds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch import handlers
from dispatch.assignment import REDISPATCH_AFTER_S, IncidentStatus, UnitStatus
from ingest.readings import UnitStatusReport
from kernel.clock import FakeClock
from tests.service.fakes import FakePublisher, FakeStore

AFTER_S = REDISPATCH_AFTER_S


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_an_order_not_answered_in_time_goes_to_the_next_nearest_unit(clock: FakeClock) -> None:
    store, publish = FakeStore(), FakePublisher()
    store.add_unit("AMB-01", eta_s=120)
    store.add_unit("AMB-02", eta_s=300)
    store.add_incident("INC-1", priority=2, created_at=clock.now())

    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)
    assert publish.sent() == [("AMB-01", "INC-1")]

    clock.advance(AFTER_S - 0.001)
    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)
    assert publish.sent() == [("AMB-01", "INC-1")]  # still within the window

    clock.advance(0.001)
    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)
    assert publish.sent() == [("AMB-01", "INC-1"), ("AMB-02", "INC-1")]
    assert store.unit_status("AMB-01") is UnitStatus.AVAILABLE  # released, and not asked again
    assert store.states["INC-1"] is IncidentStatus.DISPATCHED


async def test_an_order_answered_with_en_route_in_time_is_not_re_dispatched(clock: FakeClock) -> None:
    store, publish = FakeStore(), FakePublisher()
    store.add_unit("AMB-01", eta_s=120)
    store.add_unit("AMB-02", eta_s=300)
    store.add_incident("INC-1", priority=2, created_at=clock.now())
    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)

    clock.advance(30)
    await handlers.apply_report(store, publish, clock, UnitStatusReport("AMB-01", clock.now(), "en_route"))
    clock.advance(AFTER_S * 5)
    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)

    assert publish.sent() == [("AMB-01", "INC-1")]
    assert store.unit_status("AMB-01") is UnitStatus.EN_ROUTE


async def test_when_every_unit_refused_the_incident_waits_in_the_queue(clock: FakeClock) -> None:
    store, publish = FakeStore(), FakePublisher()
    store.add_unit("AMB-01", eta_s=120)
    store.add_incident("INC-1", priority=1, created_at=clock.now())
    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)
    clock.advance(AFTER_S)
    await handlers.tick(store, publish, clock, redispatch_after_s=AFTER_S)

    assert publish.sent() == [("AMB-01", "INC-1")]
    assert store.states["INC-1"] is IncidentStatus.NEW


async def test_the_queue_gives_a_freed_unit_to_the_most_urgent_call_then_the_longest_waiting(clock: FakeClock) -> None:
    store, publish = FakeStore(), FakePublisher()
    store.add_unit("AMB-01", eta_s=120)
    start = clock.now()
    store.add_incident("P3-old", priority=3, created_at=start)
    store.add_incident("P2-new", priority=2, created_at=start + timedelta(seconds=20))
    store.add_incident("P2-old", priority=2, created_at=start + timedelta(seconds=10))
    store.add_incident("P1", priority=1, created_at=start + timedelta(seconds=30))

    await handlers.serve_queue(store, publish, clock)
    assert publish.sent() == [("AMB-01", "P1")]

    for incident in ("P2-old", "P2-new", "P3-old"):
        for status in ("en_route", "on_scene", "returning", "available"):
            clock.advance(1)
            await handlers.apply_report(store, publish, clock, UnitStatusReport("AMB-01", clock.now(), status))
        # Back in service: served at once (a returning unit takes only a priority-1 call).
        assert publish.sent()[-1] == ("AMB-01", incident)


async def test_a_less_urgent_call_does_not_take_a_unit_kind_a_more_urgent_one_is_waiting_for(clock: FakeClock) -> None:
    store, publish = FakeStore(), FakePublisher()
    store.add_unit("PATROL-1", eta_s=200, kind="river_patrol")
    store.add_incident("P1-medical", priority=1, created_at=clock.now())  # no ambulance at all
    store.add_incident("P2-water", priority=2, created_at=clock.now(), unit_kind="river_patrol")
    store.add_incident("P3-medical", priority=3, created_at=clock.now())

    await handlers.serve_queue(store, publish, clock)

    # The medical calls wait for an ambulance; the water call's kind was free, so it went.
    assert publish.sent() == [("PATROL-1", "P2-water")]
    assert store.states["P3-medical"] is IncidentStatus.NEW


async def test_decision_times_are_measured_on_the_clock_it_was_given(clock: FakeClock) -> None:
    store, publish = FakeStore(), FakePublisher()
    store.add_unit("AMB-01", eta_s=120)
    store.add_incident("INC-1", priority=2, created_at=clock.now())
    observed: list[float] = []

    await handlers.serve_queue(store, publish, clock, observed.append)

    assert observed == [0.0]  # a FakeClock does not move by itself
