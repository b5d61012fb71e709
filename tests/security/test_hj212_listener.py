"""The HJ 212 listener against idle, flooding and guessing clients: the login deadline,
the per-address connection limit and the wrong-password lockout, while the real station
keeps getting through from its own address."""

from __future__ import annotations

import asyncio

import pytest

from ingest.hj212 import decode_frame
from tests.fix_broker import Broker
from tests.integration.test_hj212_gateway import running_gateway, recent, upload

pytestmark = pytest.mark.slow


async def open_from(gateway, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gateway.port, local_addr=(address, 0))


async def closed_by_gateway(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except (TimeoutError, ConnectionError):
        return False


async def test_an_idle_unauthenticated_socket_is_closed_after_the_login_deadline(broker: Broker) -> None:
    async with running_gateway(broker, login_timeout_s=0.5) as gateway:
        reader, writer = await open_from(gateway, "127.0.0.2")
        assert await closed_by_gateway(reader, within=5)
        assert gateway.rejections["login_timeout"] == 1
        writer.close()
        # A station that logs in in time keeps its connection past the deadline.
        reader, writer = await open_from(gateway, "127.0.0.1")
        writer.write(upload("20240101000000001", recent(1)))
        await writer.drain()
        assert decode_frame(await asyncio.wait_for(reader.readuntil(b"\r\n"), 15)).cn == "9014"
        assert not await closed_by_gateway(reader, within=1.0)
        writer.close()


async def test_a_flood_of_connections_from_one_address_is_capped(broker: Broker) -> None:
    async with running_gateway(broker, max_connections_per_address=3, login_timeout_s=30) as gateway:
        flood = [await open_from(gateway, "127.0.0.3") for _ in range(10)]
        closed = await asyncio.gather(*(closed_by_gateway(r, within=1.0) for r, _ in flood))
        assert sum(closed) == 7 and gateway.rejections["address_limit"] == 7
        assert gateway.connections == 3
        # Another address is not affected.
        reader, writer = await open_from(gateway, "127.0.0.1")
        writer.write(upload("20240101000000002", recent(1)))
        await writer.drain()
        assert decode_frame(await asyncio.wait_for(reader.readuntil(b"\r\n"), 15)).cn == "9014"
        for _, w in [*flood, (reader, writer)]:
            w.close()


async def test_brute_force_is_locked_out_while_the_real_station_gets_through_from_its_own_address(broker: Broker) -> None:
    async with running_gateway(broker, lockout_after_failures=3, lockout_base_s=60, login_timeout_s=30) as gateway:
        station_r, station_w = await open_from(gateway, "127.0.0.1")
        station_w.write(upload("20240101000000003", recent(2)))
        await station_w.drain()
        assert decode_frame(await asyncio.wait_for(station_r.readuntil(b"\r\n"), 15)).cn == "9014"

        attacker_r, attacker_w = await open_from(gateway, "127.0.0.4")
        attacker_w.write(b"".join(upload(f"2024010100000010{i}", recent(1), password=f"guess{i}") for i in range(10)))
        await attacker_w.drain()
        await asyncio.sleep(0)  # let the gateway read them
        for _ in range(100):
            if gateway.rejections["bad_password"] + gateway.rejections["locked_out"] >= 10:
                break
            await asyncio.sleep(0.05)
        assert gateway.rejections["bad_password"] == 3 and gateway.rejections["locked_out"] == 7
        # Even the right password is refused now from the guessing address…
        attacker_w.write(upload("20240101000000200", recent(1)))
        await attacker_w.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(attacker_r.readuntil(b"\r\n"), 1.0)
        # …and for the MN from any address it has not logged in from…
        other_r, other_w = await open_from(gateway, "127.0.0.5")
        other_w.write(upload("20240101000000300", recent(1)))
        await other_w.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other_r.readuntil(b"\r\n"), 1.0)
        # …while the real station, from its own address, carries on.
        station_w.write(upload("20240101000000004", recent(1)))
        await station_w.drain()
        assert decode_frame(await asyncio.wait_for(station_r.readuntil(b"\r\n"), 15)).cn == "9014"
        for w in (station_w, attacker_w, other_w):
            w.close()
