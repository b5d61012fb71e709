"""The event stream's one listen loop, against a real database."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest

from kernel.events import NOTIFY_LIMIT, Event, EventListener, EventType, announce, emit, fetch_since


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


async def test_catch_up_after_any_id_misses_nothing_while_writers_race(database_url: str) -> None:
    """Writers hold their transactions open between events, or commit at once; a reader that
    resumes after the highest id it has seen, as the websocket catch-up does, still gets
    every committed event, and the live stream hears them in id order."""
    _, received, task, stop = await _listen(database_url)
    transactions, parts = 40, 8
    writers = {"slow": 0.01, "quick": 0.0, "quick-too": 0.0}

    def write(name: str, hold_s: float) -> None:
        rng = random.Random(name)
        with psycopg.connect(database_url) as conn:
            for n in range(transactions):
                with conn.transaction(), conn.cursor() as cur:
                    for part in range(parts):
                        emit(cur, EventType.UNIT_UPDATED, None, {"writer": name, "n": n, "part": part}, datetime.now(UTC))
                        time.sleep(rng.uniform(0, hold_s))

    seen: list[Event] = []
    try:
        writing = asyncio.gather(*(asyncio.to_thread(write, name, hold) for name, hold in writers.items()))
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as reader:
            last = 0
            while not writing.done():
                for event in await fetch_since(reader, last, limit=10_000):
                    seen.append(event)
                    assert event.id is not None
                    last = event.id
            await writing
            seen.extend(await fetch_since(reader, last, limit=10_000))
        assert sorted((e.data["writer"], e.data["n"], e.data["part"]) for e in seen) == sorted(
            (w, n, part) for w in writers for n in range(transactions) for part in range(parts)
        )
        live = []
        async with asyncio.timeout(10):
            while len(live) < len(seen):
                live.append((await received.get()).id)
        assert live == sorted(live) == [e.id for e in seen]
    finally:
        await _stop(task, stop)


async def test_a_transaction_holding_events_does_not_hold_back_another_writers_event(database_url: str) -> None:
    def long_batch(started: threading.Event, release: threading.Event) -> None:
        with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            emit(cur, EventType.ALARM_RAISED, "P-1", {"alarm_id": 1}, datetime.now(UTC))
            started.set()
            release.wait(10)

    started, release = threading.Event(), threading.Event()
    batch = asyncio.create_task(asyncio.to_thread(long_batch, started, release))
    try:
        await asyncio.to_thread(started.wait, 10)
        began = time.monotonic()
        with psycopg.connect(database_url) as conn:
            conn.execute("SET lock_timeout = '2s'")
            with conn.transaction(), conn.cursor() as cur:
                emit(cur, EventType.ALARM_RAISED, "P-2", {"alarm_id": 2}, datetime.now(UTC))
        assert time.monotonic() - began < 1.0
    finally:
        release.set()
        await batch
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT person_id FROM events ORDER BY event_id").fetchall()
        assert rows == [("P-2",), ("P-1",)]  # ids in commit order
        assert conn.execute("SELECT count(*) FROM pending_events").fetchone() == (0,)
