"""The hub hands an event only to the sockets that may receive it: the control room gets
everything, a family page only alarms and incidents about its own persons, a tier page what
its filter allows — looked up, not tested socket by socket."""

from __future__ import annotations

import asyncio

from dashboard.hub import Client, Hub
from dashboard.privacy import TierFilter
from kernel.events import Event, EventType


async def _close(_code: int, _reason: str) -> None:
    return None


async def _send(_text: str) -> None:
    return None


def client(persons: frozenset[str] | None = None, tier: TierFilter | None = None) -> Client:
    return Client(persons=persons, send=_send, close=_close, tier=tier)


def event(event_id: int, type_: EventType, person_id: str | None, data: dict | None = None) -> Event:
    return Event(event_id, type_, "2026-12-01T08:00:00+00:00", person_id, data or {})


def received(c: Client) -> list[int | None]:
    out = []
    while not c.queue.empty():
        out.append(c.queue.get_nowait()[0])
    return out


def test_each_event_reaches_the_control_room_and_only_the_families_of_its_person() -> None:
    hub = Hub("postgresql://unused")
    console, mine, other, both = client(), client(frozenset({"P-1"})), client(frozenset({"P-2"})), client(frozenset({"P-1", "P-2"}))
    crew = client(tier=TierFilter("crew", "AMB-01"))
    for c in (console, mine, other, both, crew):
        hub._register(c)

    async def burst() -> None:
        await hub._dispatch(event(1, EventType.ALARM_RAISED, "P-1"))
        await hub._dispatch(event(2, EventType.ALARM_RAISED, None, {"station_id": "WS-001"}))
        await hub._dispatch(event(3, EventType.UNIT_UPDATED, "P-1", {"unit_id": "AMB-02"}))  # not a family event

    asyncio.run(burst())
    assert received(console) == [1, 2, 3]
    assert received(mine) == [1]
    assert received(both) == [1]
    assert received(other) == []
    assert received(crew) == []


def test_a_family_page_that_leaves_is_forgotten_by_every_person_it_watched() -> None:
    hub = Hub("postgresql://unused")
    page = client(frozenset({"P-1", "P-2"}))
    hub._register(page)
    hub._unregister(page)
    asyncio.run(hub._dispatch(event(1, EventType.ALARM_RAISED, "P-1")))
    assert received(page) == []
    assert hub.client_count == 0
    assert hub._by_person == {}
