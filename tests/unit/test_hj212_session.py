"""The HJ 212 session core: split uploads, time calibration, refusals. Pure, no socket."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ingest.hj212 import CST, CommandParameters, Frame, Pollutant, decode_frame, parse_datatime
from ingest.hj212_session import (
    ClockWatch,
    PacketAssembler,
    ReassemblyError,
    SessionLimits,
    joined,
    platform_qn,
    qn_time,
    refuse,
    set_time,
)

MN = "33042100WS00010000000001"
T = datetime(2026, 12, 1, 10, 0, tzinfo=CST)


def packet(pno: int, pnum: int = 3, qn: str = "20261201100000001", code: str | None = None, cn: str = "2061") -> Frame:
    return Frame(st="21", cn=cn, pw="123456", mn=MN, qn=qn, flag=7, pnum=pnum, pno=pno,
                 cp=CommandParameters(data_time=T, pollutants=(Pollutant(code or f"w0100{pno}", avg=float(pno), flag="N"),)))


def test_packets_in_any_order_are_joined_in_packet_order_once_all_have_come() -> None:
    assembler = PacketAssembler()
    assert assembler.add(packet(3), 0.0) is None
    assert assembler.add(packet(1), 1.0) is None
    parts = assembler.add(packet(2), 2.0)
    assert parts is not None and [p.pno for p in parts] == [1, 2, 3] and assembler.pending == 0
    frame = joined(parts)
    assert (frame.pnum, frame.pno, frame.flag) == (None, None, 5)
    assert [p.code for p in frame.cp.pollutants] == ["w01001", "w01002", "w01003"]


def test_a_resent_packet_replaces_itself() -> None:
    assembler = PacketAssembler()
    assembler.add(packet(1, 2), 0.0)
    assert assembler.add(packet(1, 2), 0.5) is None
    assert assembler.add(packet(2, 2), 1.0) is not None


def test_an_incomplete_upload_is_dropped_after_the_timeout() -> None:
    assembler = PacketAssembler(SessionLimits(timeout_s=10))
    assembler.add(packet(1, 2), 0.0)
    assert assembler.expire(11.0) == 1 and assembler.pending == 0 and assembler.dropped == 1
    assert assembler.add(packet(2, 2), 12.0) is None  # its first packet is gone: resent in full


def test_room_for_pending_uploads_is_bounded() -> None:
    assembler = PacketAssembler(SessionLimits(max_pending=2))
    for n in range(3):
        assembler.add(packet(1, 2, qn=f"2026120110000000{n}"), float(n))
    assert assembler.pending == 2 and assembler.dropped == 1


@pytest.mark.parametrize("other", [packet(2, 4), packet(2, 3, cn="2051")])
def test_a_packet_that_does_not_fit_its_upload_is_refused(other: Frame) -> None:
    assembler = PacketAssembler()
    assembler.add(packet(1), 0.0)
    with pytest.raises(ReassemblyError):
        assembler.add(other, 1.0)


def test_too_many_packets_are_refused() -> None:
    with pytest.raises(ReassemblyError):
        PacketAssembler(SessionLimits(max_packets=4)).add(packet(1, 5), 0.0)


def test_set_time_carries_the_platforms_time_and_the_requests_instrument() -> None:
    request = Frame(st="21", cn="1013", pw="123456", mn=MN, qn="20261201095959000", flag=5,
                    cp=CommandParameters(params=(("PolId", "w21003"),)))
    now = datetime(2026, 12, 1, 2, 0, 5, 250_000, tzinfo=CST).astimezone(CST)
    answer = decode_frame(set_time(request, now))
    assert (answer.st, answer.cn, answer.mn, answer.flag, answer.qn) == ("91", "1012", MN, 5, "20261201020005250")
    assert dict(answer.cp.params) == {"PolId": "w21003", "SystemTime": "20261201020005"}
    assert parse_datatime(dict(answer.cp.params)["SystemTime"]) == now.replace(microsecond=0)


def test_a_refusal_is_a_request_answer_with_qnrtn_2() -> None:
    request = Frame(st="21", cn="3020", pw="123456", mn=MN, qn="20261201100000001", flag=5)
    answer = decode_frame(refuse(request))
    assert (answer.qn, answer.cn, answer.flag, dict(answer.cp.params)) == (request.qn, "9011", 4, {"QnRtn": "2"})


def test_qn_times_read_back() -> None:
    assert qn_time(platform_qn(T + timedelta(milliseconds=7))) == T + timedelta(milliseconds=7)
    assert qn_time("1") is None and qn_time("20261301100000001") is None


def realtime(stamped: datetime) -> Frame:
    return Frame(st="21", cn="2011", pw="1", mn=MN, cp=CommandParameters(data_time=stamped))


def test_a_clock_ahead_or_far_behind_is_set_at_most_once_an_interval() -> None:
    watch = ClockWatch(SessionLimits(clock_tolerance_s=60, clock_behind_tolerance_s=1800, resync_interval_s=3600))
    assert not watch.should_set(realtime(T + timedelta(seconds=30)), T, 0.0)
    assert not watch.should_set(realtime(T - timedelta(minutes=20)), T, 0.0)  # a backlog, perhaps
    assert watch.should_set(realtime(T + timedelta(minutes=5)), T, 0.0)
    assert not watch.should_set(realtime(T + timedelta(minutes=5)), T, 10.0)
    assert watch.should_set(realtime(T - timedelta(hours=2)), T, 3601.0)


def test_an_hour_average_shows_only_a_clock_ahead() -> None:
    watch = ClockWatch()
    hour = Frame(st="21", cn="2061", pw="1", mn=MN, cp=CommandParameters(data_time=T - timedelta(hours=3)))
    assert watch.drift_s(hour, T) is None
    assert watch.drift_s(Frame(st="21", cn="2061", pw="1", mn=MN, cp=CommandParameters(data_time=T + timedelta(hours=1))), T) == 3600


def test_a_calibration_request_is_always_answered() -> None:
    watch = ClockWatch()
    request = Frame(st="21", cn="1013", pw="1", mn=MN)
    assert watch.should_set(request, T, 0.0) and watch.should_set(request, T, 1.0)
