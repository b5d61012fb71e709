"""The HJ 212 gateway on real services: stations over TCP → gateway → Mosquitto → ingest →
TimescaleDB, replies back to the station only for what the broker took."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from ingest.hj212 import CST, CommandParameters, Frame, Pollutant, build_frame, decode_frame, parse_datatime
from ingest.hj212_gateway import GatewayLimits, Hj212Gateway, StationCredential, password_digest
from tests.fix_broker import TEST_ROOT, Broker
from tests.fix_db import count
from tests.fix_wait import until, wait_for
from kernel.broker import GATEWAY_USER  # the HJ 212 gateway's account
from kernel.settings import MqttEndpoint

pytestmark = pytest.mark.slow

SECRET = b"hj212 test secret"
MN = "33042100WS00010000000001"
PASSWORD = "123456"


@asynccontextmanager
async def running_gateway(broker: Broker, **limits: float) -> AsyncIterator[Hj212Gateway]:
    gateway = Hj212Gateway(
        host="127.0.0.1", port=0, mqtt=MqttEndpoint.parse(broker.url(GATEWAY_USER)), topic_root=TEST_ROOT,
        stations={MN: StationCredential("WS-001", password_digest(SECRET, MN, PASSWORD))},
        password_secret=SECRET, clock=lambda: datetime.now(UTC), client_id="hj212-test",
        limits=GatewayLimits(**limits),
    )
    stop = asyncio.Event()
    server = asyncio.create_task(gateway.serve(stop), name="hj212-gateway")
    try:
        await asyncio.wait_for(gateway.ready.wait(), 15)
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)


class Station:
    """A station's side of the TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, gateway: Hj212Gateway) -> Station:
        return cls(*await asyncio.open_connection("127.0.0.1", gateway.port))

    async def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))
        await self.writer.drain()

    async def reply(self, timeout: float = 15) -> Frame:
        # decode_frame checks the length, the CRC and the CRLF of what came back.
        return decode_frame(await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def upload(qn: str, data_time: datetime, *, cn: str = "2011", flag: int = 5, password: str = PASSWORD, mn: str = MN,
           tp_flag: str = "N") -> bytes:
    kind = "rtd" if cn == "2011" else "avg"
    return build_frame(Frame(
        qn=qn, st="21", cn=cn, pw=password, mn=mn, flag=flag,
        cp=CommandParameters(data_time=data_time, pollutants=(
            Pollutant("w01001", flag="N", **{kind: 7.42}),
            Pollutant("w21003", flag="N", **{kind: 0.31}),
            Pollutant("w21011", flag=tp_flag, **{kind: 0.082}),
        )),
    ))


def recent(minutes_ago: float) -> datetime:
    # Stations send China Standard Time; ingest refuses readings older than its max age.
    return (datetime.now(CST) - timedelta(minutes=minutes_ago)).replace(microsecond=0)


async def rows(url: str, n: int) -> None:
    await asyncio.to_thread(wait_for, lambda: count(url, "SELECT count(*) FROM water_readings WHERE station_id = 'WS-001'") == n)


async def test_realtime_uploads_are_stored_and_acknowledged_with_their_qn(broker: Broker, start_ingest, database_url: str) -> None:
    start_ingest()
    async with running_gateway(broker) as gateway:
        station = await Station.connect(gateway)
        t = recent(10)
        qns = [f"2024050110300{i}123" for i in range(3)]
        # Three frames in one write: the gateway splits them.
        await station.send(
            upload(qns[0], t), upload(qns[1], t + timedelta(minutes=1), tp_flag="C"), upload(qns[2], t + timedelta(minutes=2)),
        )
        replies = [await station.reply() for _ in qns]
        assert [(r.qn, r.st, r.cn, r.pw, r.mn, r.flag, r.cp) for r in replies] == [
            (qn, "91", "9014", PASSWORD, MN, 4, CommandParameters()) for qn in qns
        ]
        # Flag=4 asks for no reply (it is stored all the same); an hour average follows: it is
        # stored as the station's own average, apart from the real-time readings.
        await station.send(upload("20240501104000123", t + timedelta(minutes=3), flag=4))
        await station.send(upload("20240501105000123", t.replace(minute=0, second=0) - timedelta(hours=1), cn="2061"))
        assert (await station.reply()).qn == "20240501105000123"
        await rows(database_url, 4)
        await station.close()
        assert gateway.published == 4 and gateway.averages_received == 1 and gateway.acks_sent == 4 and not gateway.rejections
        assert gateway.averages_published == 1

    stored = await asyncio.to_thread(lambda: _fetch(database_url))
    assert [(ts, ph, nh3n, tp, flag) for ts, ph, nh3n, tp, flag in stored[:3]] == [
        (t, 7.42, 0.31, 0.082, "N"), (t + timedelta(minutes=1), 7.42, 0.31, 0.082, "C"), (t + timedelta(minutes=2), 7.42, 0.31, 0.082, "N"),
    ]
    assert len(stored) == 4
    assert count(database_url, "SELECT count(*) FROM station_averages WHERE station_id = 'WS-001' AND period = 'hour'") == 1
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


async def test_hour_averages_are_stored_once_with_each_parameters_own_flag(broker: Broker, start_ingest, database_url: str) -> None:
    start_ingest()
    hour = recent(120).replace(minute=0, second=0)
    frame = upload("20240501110000001", hour, cn="2061", tp_flag="M")
    async with running_gateway(broker) as gateway:
        station = await Station.connect(gateway)
        # Sent twice, as a station does when its reply is late: stored once.
        await station.send(frame)
        assert (await station.reply()).qn == "20240501110000001"
        await station.send(frame)
        assert (await station.reply()).qn == "20240501110000001"
        await station.close()
        assert gateway.averages_published == 2 and gateway.published == 0

    def stored() -> list[tuple]:
        import psycopg

        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT period, period_start, ph, ph_flag, nh3n_mg_l, nh3n_mg_l_flag, tp_mg_l, tp_mg_l_flag "
                "FROM station_averages WHERE station_id = 'WS-001'"
            ).fetchall()

    await asyncio.to_thread(wait_for, lambda: len(stored()) == 1)
    # A TP analyser in maintenance flags TP alone; NH3-N and pH stay normal.
    assert stored() == [("hour", hour, 7.42, "N", 0.31, "N", 0.082, "M")]
    assert count(database_url, "SELECT count(*) FROM water_readings WHERE station_id = 'WS-001'") == 0
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


def _fetch(url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT ts, ph, nh3n_mg_l, tp_mg_l, flag FROM water_readings WHERE station_id = 'WS-001' ORDER BY ts"
        ).fetchall()


async def test_bad_crc_wrong_password_and_unknown_mn_are_rejected_counted_and_the_station_carries_on(
    broker: Broker, start_ingest, database_url: str
) -> None:
    start_ingest()
    async with running_gateway(broker) as gateway:
        station = await Station.connect(gateway)
        t = recent(10)
        bad_crc = upload("20240501103000001", t).replace(b"7.42", b"7.99")
        wrong_password = upload("20240501103000002", t, password="654321")
        unknown_mn = upload("20240501103000003", t, mn="33042100WS00990000000001")
        good = upload("20240501103000004", t)
        await station.send(bad_crc, wrong_password, unknown_mn, good)
        # Only the good frame is answered: the first reply on the wire is its.
        assert (await station.reply()).qn == "20240501103000004"
        assert gateway.rejections == {"bad_crc": 1, "bad_password": 1, "unknown_mn": 1}

        # A peer that sends garbage and an oversize header, then hangs up mid-frame…
        rogue = await Station.connect(gateway)
        await rogue.send(b"GET / HTTP/1.1\r\n\r\n", b"##9999xxxx", upload("20240501103000005", t)[:50])
        await rogue.close()
        # …costs the server nothing: the station's connection and new ones still work.
        await station.send(upload("20240501103000006", t + timedelta(minutes=1)))
        assert (await station.reply()).qn == "20240501103000006"
        other = await Station.connect(gateway)
        await other.send(upload("20240501103000007", t + timedelta(minutes=2)))
        assert (await other.reply()).qn == "20240501103000007"
        await rows(database_url, 3)
        assert gateway.rejections == {"bad_crc": 1, "bad_password": 1, "unknown_mn": 1, "bad_header": 1, "oversize": 1}
        await until(lambda: gateway.connections == 2)  # the rogue's connection is gone
        await station.close()
        await other.close()
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


async def test_an_upload_the_broker_did_not_take_gets_no_reply_and_its_resend_is_stored_once(
    broker: Broker, start_ingest, database_url: str
) -> None:
    ingest = start_ingest()
    async with running_gateway(broker, publish_timeout_s=1.0) as gateway:
        station = await Station.connect(gateway)
        frame = upload("20240501103000001", recent(5))
        await asyncio.to_thread(broker.stop)
        await station.send(frame)
        # An hour average behind it needs the broker as much: neither is answered (the first
        # reply below is the resend's, so neither got one).
        await station.send(upload("20240501103500001", recent(90).replace(minute=0, second=0), cn="2061"))
        await asyncio.to_thread(wait_for, lambda: gateway.rejections == {"publish_failed": 2})
        await asyncio.to_thread(broker.start)
        await asyncio.to_thread(ingest.wait_connected, 60)
        await asyncio.wait_for(gateway.ready.wait(), 30)
        # The station resends what was not acknowledged, twice here (say its reply was lost).
        await station.send(frame)
        assert (await station.reply()).qn == "20240501103000001"
        await station.send(frame)
        assert (await station.reply()).qn == "20240501103000001"
        # A later upload behind the resends: once it is stored, so is anything the resends
        # could have added (one connection, one broker session, committed in order).
        await station.send(upload("20240501103100001", recent(4)))
        assert (await station.reply()).qn == "20240501103100001"
        await rows(database_url, 2)
        assert count(database_url, "SELECT count(*) FROM water_readings") == 2
        assert count(database_url, "SELECT count(*) FROM water_readings WHERE ts = %s", decode_frame(frame).cp.data_time) == 1
        await station.close()



def _packet(qn: str, data_time: datetime, pno: int, pnum: int, pollutants: tuple[Pollutant, ...], cn: str = "2061") -> bytes:
    return build_frame(Frame(qn=qn, st="21", cn=cn, pw=PASSWORD, mn=MN, flag=7, pnum=pnum, pno=pno,
                             cp=CommandParameters(data_time=data_time, pollutants=pollutants)))


async def test_a_split_hour_upload_is_reassembled_stored_once_and_each_packet_acknowledged(
    broker: Broker, start_ingest, database_url: str
) -> None:
    start_ingest()
    hour = recent(120).replace(minute=0, second=0)
    qn = "20240501110000777"
    first = _packet(qn, hour, 1, 2, (Pollutant("w01001", avg=7.3, flag="N"), Pollutant("w21003", avg=2.0, flag="T")))
    second = _packet(qn, hour, 2, 2, (Pollutant("w21011", avg=0.09, flag="M"), Pollutant("w01016", avg=42.5, flag="N")))
    async with running_gateway(broker) as gateway:
        station = await Station.connect(gateway)
        # The second packet first: order on the wire does not matter, and nothing is
        # acknowledged before the whole upload is stored.
        await station.send(second)
        await station.send(first)
        assert [(await station.reply()).qn for _ in range(2)] == [qn, qn]
        await station.close()
        assert gateway.split_uploads == 1 and gateway.averages_published == 1 and not gateway.rejections

    def stored() -> list[tuple]:
        import psycopg

        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT ph, nh3n_mg_l, nh3n_mg_l_flag, tp_mg_l_flag, chla_ug_l FROM station_averages WHERE station_id = 'WS-001'"
            ).fetchall()

    await asyncio.to_thread(wait_for, lambda: len(stored()) == 1)
    assert stored() == [(7.3, 2.0, "T", "M", 42.5)]


async def test_a_time_calibration_request_is_answered_with_the_platforms_time(broker: Broker) -> None:
    async with running_gateway(broker) as gateway:
        station = await Station.connect(gateway)
        # A station whose real-time data is stamped an hour ahead is told the time unasked.
        await station.send(upload("20240501103000124", datetime.now(CST).replace(microsecond=0) + timedelta(hours=1), flag=4))
        assert (await station.reply()).cn == "1012"
        # And a station that asks is answered, however recently it was told.
        request = build_frame(Frame(qn="20240501103000123", st="21", cn="1013", pw=PASSWORD, mn=MN, flag=5,
                                    cp=CommandParameters(params=(("PolId", "w21003"),))))
        before = datetime.now(CST).replace(microsecond=0)
        await station.send(request)
        answer = await station.reply()
        assert (answer.st, answer.cn, answer.mn, answer.flag) == ("91", "1012", MN, 5)
        params = dict(answer.cp.params)
        assert params["PolId"] == "w21003"
        told = parse_datatime(params["SystemTime"])
        assert before <= told <= datetime.now(CST) + timedelta(seconds=1)
        # The station's answers (9011, 9012) are taken in without a reply or a rejection.
        for cn, item in (("9011", ("QnRtn", "1")), ("9012", ("ExeRtn", "1"))):
            await station.send(build_frame(Frame(qn=answer.qn, st="21", cn=cn, pw=PASSWORD, mn=MN, flag=4,
                                                 cp=CommandParameters(params=(item,)))))
        # A command Watchpost does not carry out is refused (9011 QnRtn=2) when an answer is asked for.
        await station.send(build_frame(Frame(qn="20240501103000125", st="21", cn="3020", pw=PASSWORD, mn=MN, flag=5)))
        refused = await station.reply()
        assert (refused.qn, refused.cn, dict(refused.cp.params)) == ("20240501103000125", "9011", {"QnRtn": "2"})
        await station.close()
        assert gateway.times_set == 2 and gateway.commands_refused == 1 and dict(gateway.rejections) == {"unknown_cn": 1}


async def test_a_simulated_station_is_told_the_time_and_its_hourly_uploads_carry_each_parameters_flag(
    broker: Broker, start_ingest, database_url: str
) -> None:
    import random
    import time

    from simulators.county import Station as SimulatedStation
    from simulators.hj212_station import Hj212StationClient, StationProtocol
    from simulators.water import WaterStationModel, Weather

    start_ingest()
    now = time.time()
    first_hour = now - now % 3600 - 3 * 3600
    rng = random.Random(7)
    model = WaterStationModel(SimulatedStation("WS-001", 30.9, 120.9, 3, "river", "qingpu", 3600.0), rng,
                              first_hour - 86400, Weather(rng, first_hour - 86400, now + 86400))
    model.maintenance.clear()
    model.add_maintenance(first_hour + 2 * 3600, 3600)  # the third hour: a maintenance visit
    model.add_pollution(first_hour - 12 * 3600, 24 * 3600, peak_class=6)  # a spill past the NH3-N analyser's range
    protocol = StationProtocol(model, MN, PASSWORD, clock_offset_s=600.0)  # ten minutes fast
    async with running_gateway(broker) as gateway:
        client = Hj212StationClient(protocol)
        await client.connect("127.0.0.1", gateway.port)
        [answer] = await client.send(protocol.calibration_request(time.time()), time.time())
        assert answer.cn == "1012" and abs(protocol.clock_offset_s) < 2
        for h in range(3):
            [ack] = await client.send(protocol.hour_upload(first_hour + h * 3600), time.time())
            assert ack.cn == "9014"
        await client.close()

    def stored() -> list[tuple]:
        import psycopg

        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT extract(epoch FROM period_start), nh3n_mg_l, nh3n_mg_l_flag, ph_flag FROM station_averages "
                "WHERE station_id = 'WS-001' AND period = 'hour' ORDER BY 1"
            ).fetchall()

    await asyncio.to_thread(wait_for, lambda: len(stored()) == 3)
    rows_ = stored()
    assert [float(r[0]) for r in rows_] == [first_hour + h * 3600 for h in range(3)]  # on the hour, in the platform's time
    assert [(r[1], r[2]) for r in rows_[:2]] == [(2.0, "T"), (2.0, "T")]  # at the analyser's limit: at least 2.0
    assert (rows_[2][2], rows_[2][3]) == ("M", "M")
