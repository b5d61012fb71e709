"""The event stream's one listen loop, against a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from kernel.events import NOTIFY_LIMIT, Event, EventListener, EventType, announce, emit


async def _listen(url: str, **kwargs) -> tuple[EventListener, asyncio.Queue[Event], asyncio.Task, asyncio.Event]:
    received: asyncio.Queue[Event] = asyncio.Queue()
    stop = asyncio.Event()

    async def on_event(event: Event) -> None:
        await received.put(event)

    listener = EventListener(url, on_event, min_delay_s=0.05, max_delay_s=0.2, **kwargs)
    task = asyncio.create_task(listener.run(stop))
    async with asyncio.timeout(10):
        while not listener.listening:
            await asyncio.sleep(0.02)
    return listener, received, task, stop


def _emit(url: str, event_type: EventType, person_id: str | None, data: dict) -> None:
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cur:
        emit(cur, event_type, person_id, data, datetime.now(UTC))


async def _stop(task: asyncio.Task, stop: asyncio.Event) -> None:
    stop.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_listeners_receive_committed_events_whole_even_when_too_large_for_notify(database_url: str) -> None:
    _, received, task, stop = await _listen(database_url)
    try:
        big = {"note": "x" * (NOTIFY_LIMIT + 100)}
        await asyncio.to_thread(_emit, database_url, EventType.ALARM_RAISED, "P-1", {"alarm_id": 1})
        await asyncio.to_thread(_emit, database_url, EventType.INCIDENT_UPDATED, "P-1", big)
        async with asyncio.timeout(10):
            small, large = await received.get(), await received.get()
        assert (small.type, small.person_id, small.data) == (EventType.ALARM_RAISED, "P-1", {"alarm_id": 1})
        assert (large.type, large.person_id, large.data) == (EventType.INCIDENT_UPDATED, "P-1", big)
        assert large.id == small.id + 1
    finally:
        await _stop(task, stop)


async def test_a_rolled_back_event_is_never_heard_and_an_announced_one_has_no_id(database_url: str) -> None:
    _, received, task, stop = await _listen(database_url)
    try:
        def write() -> None:
            with psycopg.connect(database_url) as conn:
                with conn.cursor() as cur:
                    emit(cur, EventType.ALARM_RAISED, None, {"alarm_id": 1}, datetime.now(UTC))
                conn.rollback()
                announce(conn, EventType.UNIT_UPDATED, None, {"unit_id": "AMB-1"}, datetime.now(UTC))
                conn.commit()

        await asyncio.to_thread(write)
        async with asyncio.timeout(10):
            event = await received.get()
        assert (event.id, event.type, event.data) == (None, EventType.UNIT_UPDATED, {"unit_id": "AMB-1"})
        assert received.empty()
    finally:
        await _stop(task, stop)


async def test_the_listener_reconnects_after_an_outage_and_says_so(database_url: str, db_proxy) -> None:
    connected = asyncio.Queue()

    async def on_listening() -> None:
        await connected.put(True)

    listener, received, task, stop = await _listen(db_proxy.url_for(database_url), on_listening=on_listening)
    try:
        async with asyncio.timeout(10):
            await connected.get()
        db_proxy.cut()
        async with asyncio.timeout(10):
            while listener.listening:
                await asyncio.sleep(0.02)
        db_proxy.restore()
        async with asyncio.timeout(10):
            await connected.get()  # listening again: the catch-up hook ran
        await asyncio.to_thread(_emit, database_url, EventType.UNIT_UPDATED, None, {"unit_id": "AMB-2"})
        async with asyncio.timeout(10):
            event = await received.get()
        assert event.data == {"unit_id": "AMB-2"}
    finally:
        await _stop(task, stop)
