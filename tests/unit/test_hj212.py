"""HJ 212-2017: CRC, framing, the data segment, the mapping onto water telemetry, the 9014
reply; pure, no socket. The corpus in tests/fixtures/hj212 is one frame per file, named
`<expected>__<what it is>.txt` (`ok` or the Reason), with the expected payload beside
each `ok` frame as JSON."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest.devices import DeviceDirectory
from ingest.hj212 import (
    AVERAGE_PERIODS,
    CST,
    FLAG_ORDER,
    MAX_DATA_LENGTH,
    CommandParameters,
    Frame,
    FrameDecoder,
    FrameError,
    Hj212Error,
    Pollutant,
    Reason,
    UnmappableFrame,
    average_payload,
    build_frame,
    build_segment,
    crc16,
    data_ack,
    decode_frame,
    encode_frame,
    parse_segment,
    water_payload,
    worst_flag,
)
from ingest.hj212_gateway import Hj212Gateway, StationCredential, password_digest
from ingest.parse import Limits, parse_message
from ingest.readings import WaterReading
from kernel.settings import MqttEndpoint

CORPUS = Path(__file__).parents[1] / "fixtures" / "hj212"
# The standard's own example (a CN 1062 "set the real-time interval" frame).
KNOWN_SEGMENT = b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
KNOWN_FRAME = b"##0101" + KNOWN_SEGMENT + b"1C80\r\n"
MN = "33042100WS00010000000001"


def upload(cn: str = "2011", cp: str = "DataTime=20240501103000;w01001-Rtd=7.42,w01001-Flag=N", *, flag: int = 5, qn: str = "20240501103000123") -> bytes:
    return encode_frame(f"QN={qn};ST=21;CN={cn};PW=123456;MN={MN};Flag={flag};CP=&&{cp}&&".encode())


def first_error(data: bytes) -> Reason:
    with pytest.raises(Hj212Error) as info:
        water_payload(decode_frame(data))
    assert info.value.detail
    return info.value.reason


def reference_crc(data: bytes) -> int:
    """The algorithm exactly as the standard describes it, bit by bit."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc


# --- CRC ---------------------------------------------------------------------------------

def test_crc_of_the_standards_example_is_1c80() -> None:
    assert crc16(KNOWN_SEGMENT) == 0x1C80
    assert len(KNOWN_SEGMENT) == 101


def test_the_standards_example_decodes_and_encodes_back_to_the_same_bytes() -> None:
    frame = decode_frame(KNOWN_FRAME)
    assert frame == Frame(
        qn="20160801085857223", st="32", cn="1062", pw="100000", mn="010000A8900016F000169DC0", flag=5,
        cp=CommandParameters(params=(("RtdInterval", "30"),)),
    )
    assert build_frame(frame) == KNOWN_FRAME


@given(st.binary(max_size=300))
def test_table_driven_crc_equals_the_standards_bitwise_algorithm(data: bytes) -> None:
    assert crc16(data) == reference_crc(data)


def test_hj212_crc_is_not_plain_modbus_crc16() -> None:
    def modbus(data: bytes) -> int:
        crc = 0xFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        return crc

    assert modbus(KNOWN_SEGMENT) != 0x1C80


# --- the 9014 reply ----------------------------------------------------------------------

def test_data_ack_echoes_qn_pw_mn_and_is_a_valid_frame() -> None:
    ack = data_ack(decode_frame(KNOWN_FRAME))
    assert ack == b"##0087QN=20160801085857223;ST=91;CN=9014;PW=100000;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&" + b"%04X\r\n" % crc16(ack[6:-6])
    reply = decode_frame(ack)
    assert (reply.qn, reply.st, reply.cn, reply.flag, reply.cp) == ("20160801085857223", "91", "9014", 4, CommandParameters())
    assert int(ack[2:6]) == len(ack) - 12


@pytest.mark.parametrize(("flag", "wants_ack", "ack_flag"), [(5, True, 4), (7, True, 4), (4, False, 4), (1, True, 0), (0, False, 0)])
def test_flag_bit_0_asks_for_a_reply_and_the_reply_keeps_the_version(flag: int, wants_ack: bool, ack_flag: int) -> None:
    frame = decode_frame(upload(flag=flag))
    assert frame.wants_ack is wants_ack
    assert decode_frame(data_ack(frame)).flag == ack_flag


def test_a_frame_without_flag_asks_for_no_reply() -> None:
    frame = decode_frame(encode_frame(f"ST=21;CN=2011;PW=123456;MN={MN};CP=&&&&".encode()))
    assert frame.flag is None and not frame.wants_ack


# --- mapping -----------------------------------------------------------------------------

def test_realtime_upload_maps_rtd_values_onto_water_fields() -> None:
    cp = "DataTime=20240501103000;w01001-Rtd=7.42,w01001-Flag=N;w21003-Rtd=0.31,w21003-Avg=9,w21003-Flag=N;w01014-Rtd=412"
    assert water_payload(decode_frame(upload("2011", cp))) == {"ts": "2024-05-01T10:30:00+08:00", "ph": 7.42, "nh3n_mg_l": 0.31, "cond_us_cm": 412.0}


@pytest.mark.parametrize("cn", ["2051", "2061", "2031"])
def test_minute_hour_and_day_uploads_map_their_averages(cn: str) -> None:
    cp = "DataTime=20240501100000;w21011-Cou=0,w21011-Min=0.07,w21011-Avg=0.09,w21011-Max=0.12,w21011-Flag=N;w01001-Rtd=7.0"
    assert water_payload(decode_frame(upload(cn, cp))) == {"ts": "2024-05-01T10:00:00+08:00", "tp_mg_l": 0.09}


@pytest.mark.parametrize(("cn", "period"), [("2051", "minute"), ("2061", "hour"), ("2031", "day")])
def test_average_uploads_keep_period_extremes_and_each_parameters_own_flag(cn: str, period: str) -> None:
    cp = ("DataTime=20240501100000;w21011-Cou=0,w21011-Min=0.07,w21011-Avg=0.09,w21011-Max=0.12,w21011-Flag=M;"
          "w21003-Avg=2.5,w21003-Flag=T;w01016-Avg=31.5;w01004-Avg=0.45,w01004-Flag=M;w01001-Rtd=7.0")
    assert average_payload(decode_frame(upload(cn, cp))) == {
        "period": period,
        "ts": "2024-05-01T10:00:00+08:00",
        "values": {
            "tp_mg_l": {"avg": 0.09, "min": 0.07, "max": 0.12, "flag": "M"},
            "nh3n_mg_l": {"avg": 2.5, "flag": "T"},
            "chla_ug_l": {"avg": 31.5, "flag": "N"},
            "sd_m": {"avg": 0.45, "flag": "M"},  # transparency, with its own flag
        },
    }


@pytest.mark.parametrize("cn", ["2011", "1013", "9014"])
def test_only_minute_hour_and_day_uploads_are_averages(cn: str) -> None:
    with pytest.raises(UnmappableFrame) as info:
        average_payload(decode_frame(upload(cn)))
    assert info.value.reason is Reason.UNKNOWN_CN


def test_every_water_code_of_the_domain_has_its_field() -> None:
    codes = {"w01001": "ph", "w01009": "do_mg_l", "w01010": "temp_c", "w01014": "cond_us_cm", "w01018": "cod_mg_l",
             "w01019": "codmn_mg_l", "w21001": "tn_mg_l", "w21003": "nh3n_mg_l", "w21011": "tp_mg_l"}
    cp = "DataTime=20240501103000;" + ";".join(f"{c}-Rtd={i}.5" for i, c in enumerate(codes))
    payload = water_payload(decode_frame(upload("2011", cp)))
    assert {k: v for k, v in payload.items() if k != "ts"} == {f: i + 0.5 for i, f in enumerate(codes.values())}


@pytest.mark.parametrize("cn", ["1062", "9014", "2021", "2081", "3020"])
def test_frames_that_are_not_data_uploads_are_unknown_cn(cn: str) -> None:
    with pytest.raises(UnmappableFrame) as info:
        water_payload(decode_frame(upload(cn)))
    assert info.value.reason is Reason.UNKNOWN_CN


def test_an_upload_with_no_water_parameter_has_no_values() -> None:
    with pytest.raises(UnmappableFrame) as info:
        water_payload(decode_frame(upload("2011", "DataTime=20240501103000;w00000-Rtd=3.2;w01001-Flag=N")))
    assert info.value.reason is Reason.NO_VALUES


def test_one_part_of_a_split_upload_is_refused() -> None:
    data = encode_frame(f"QN=1;ST=21;CN=2031;PW=1;MN={MN};Flag=7;PNUM=3;PNO=2;CP=&&DataTime=20240501000000;w01001-Avg=7&&".encode())
    assert first_error(data) is Reason.SPLIT_PACKET


# --- flags -------------------------------------------------------------------------------

def test_worst_flag_order_is_fault_stopped_comms_maintenance_calibration_over_range_manual_normal() -> None:
    assert FLAG_ORDER == "DFBMCTSN"
    assert worst_flag([]) == "N"
    assert worst_flag("NNN") == "N"
    for i, flag in enumerate(FLAG_ORDER):
        assert worst_flag([*FLAG_ORDER[i:], "N"]) == flag


@pytest.mark.parametrize("flag", list("DFBMCTS"))
def test_any_flag_but_n_on_a_mapped_value_flags_the_whole_reading(flag: str) -> None:
    cp = f"DataTime=20240501103000;w01001-Rtd=7.4,w01001-Flag=N;w21011-Rtd=0.2,w21011-Flag={flag}"
    assert water_payload(decode_frame(upload("2011", cp)))["flag"] == flag


def test_an_all_normal_reading_carries_no_flag_and_a_missing_factor_flag_counts_as_n() -> None:
    assert "flag" not in water_payload(decode_frame(upload("2011", "DataTime=20240501103000;w01001-Rtd=7.4;w21011-Rtd=0.2,w21011-Flag=N")))


def test_flags_of_factors_without_a_watchpost_field_do_not_flag_the_reading() -> None:
    cp = "DataTime=20240501103000;w00000-Rtd=3,w00000-Flag=D;w01001-Rtd=7.4,w01001-Flag=N;w21011-Flag=C"
    assert water_payload(decode_frame(upload("2011", cp))) == {"ts": "2024-05-01T10:30:00+08:00", "ph": 7.4}


def test_an_unknown_data_flag_is_a_bad_value() -> None:
    assert first_error(upload("2011", "DataTime=20240501103000;w01001-Rtd=7.4,w01001-Flag=P")) is Reason.BAD_VALUE


# --- DataTime ----------------------------------------------------------------------------

def test_datatime_is_china_standard_time_and_becomes_an_rfc3339_ts_with_offset() -> None:
    frame = decode_frame(upload("2011", "DataTime=20240101000000;w01001-Rtd=7.4"))
    assert frame.cp.data_time == datetime(2023, 12, 31, 16, 0, tzinfo=UTC)
    ts = water_payload(frame)["ts"]
    assert ts == "2024-01-01T00:00:00+08:00"
    assert datetime.fromisoformat(ts).astimezone(UTC) == datetime(2023, 12, 31, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["20240230120000", "2024050110300", "202405011030000", "2024-05-01T10", "20240501246000", ""])
def test_a_datatime_that_is_no_calendar_time_is_rejected(raw: str) -> None:
    assert first_error(upload("2011", f"DataTime={raw};w01001-Rtd=7.4")) is Reason.BAD_DATATIME


def test_the_payload_is_accepted_unchanged_by_ingest() -> None:
    """Downstream sees ordinary telemetry: the payload passes ingest's own validation."""
    now = datetime(2024, 5, 1, 2, 31, tzinfo=UTC)
    cp = "DataTime=20240501103000;w01001-Rtd=7.42,w01001-Flag=N;w21011-Rtd=0.2,w21011-Flag=C"
    payload = water_payload(decode_frame(upload("2011", cp)))
    [reading] = parse_message(
        "jiashan/water/WS-001/telemetry", orjson.dumps(payload), root="jiashan",
        devices=DeviceDirectory(stations=frozenset({"WS-001"})), now=now, limits=Limits(),
    )
    assert reading == WaterReading("WS-001", datetime(2024, 5, 1, 2, 30, tzinfo=UTC), {"ph": 7.42, "tp_mg_l": 0.2}, flag="C")


# --- every rejection reason --------------------------------------------------------------

GOOD = upload()
REJECTIONS: dict[Reason, bytes] = {
    Reason.BAD_HEADER: b"AT+CIPSEND=151" + GOOD,
    Reason.BAD_LENGTH: b"##0200" + GOOD[6:],
    Reason.OVERSIZE: b"##%04d" % (MAX_DATA_LENGTH + 1) + GOOD[6:],
    Reason.BAD_CRC: GOOD.replace(b"7.42", b"7.24"),
    Reason.BAD_SEGMENT: encode_frame(f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5".encode()),
    Reason.BAD_VALUE: upload("2011", "DataTime=20240501103000;w01001-Rtd=seven"),
    Reason.BAD_DATATIME: upload("2011", "w01001-Rtd=7.4"),
    Reason.UNKNOWN_CN: upload("1062", "RtdInterval=30"),
    Reason.SPLIT_PACKET: encode_frame(f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=7;PNUM=2;PNO=1;CP=&&DataTime=20240501103000;w01001-Rtd=7&&".encode()),
    Reason.NO_VALUES: upload("2011", "DataTime=20240501103000;w01012-Rtd=35"),
}


def test_every_reason_has_an_example() -> None:
    assert set(REJECTIONS) == set(Reason)


@pytest.mark.parametrize("reason", list(Reason))
def test_each_rejection_names_its_reason(reason: Reason) -> None:
    assert first_error(REJECTIONS[reason]) is reason


@pytest.mark.parametrize(
    "segment",
    [
        b"",
        b"CP=&&&&",  # no ST, CN, PW, MN
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;CP=&&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};MN={MN};Flag=5;CP=&&&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;XCP=&&&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;CP=&&DataTime=20240501103000;x-=1&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;CP=&&a=b=c&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;CP=&&Rtd=1;Rtd=2&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;CP=&&DataTime=20240501103000;DataTime=20240501103000&&".encode(),
        f"QN=1;ST=21;CN=2011;PW=1;MN={MN};Flag=5;CP=&&w01001-Rtd=7\t&&".encode(),
        "QN=1;ST=21;CN=2011;PW=密码;MN=1;CP=&&&&".encode(),
    ],
)
def test_a_malformed_data_segment_is_a_bad_segment(segment: bytes) -> None:
    with pytest.raises(FrameError) as info:
        parse_segment(segment)
    assert info.value.reason is Reason.BAD_SEGMENT


@pytest.mark.parametrize(
    "header",
    ["QN=1a;ST=21;CN=2011;PW=1;MN=1;", "ST=21;CN=2011;PW=1234567890;MN=1;", "ST=21;CN=2011;PW=1;MN=1;Flag=256;",
     "ST=21;CN=20110000;PW=1;MN=1;", "ST=21;CN=2011;PW=1;MN=1;Flag=7;PNUM=2;", "ST=21;CN=2011;PW=1;MN=1;PNUM=2;PNO=0;",
     "ST=21;CN=2011;PW=;MN=1;"],
)
def test_a_malformed_header_value_is_a_bad_value(header: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_segment(f"{header}CP=&&&&".encode())
    assert info.value.reason is Reason.BAD_VALUE


def test_a_rejected_password_is_never_quoted_in_the_error() -> None:
    with pytest.raises(FrameError) as info:
        parse_segment(b"ST=21;CN=2011;PW=secret-too-long;MN=1;CP=&&&&")
    assert "secret" not in str(info.value)


# --- the stream decoder ------------------------------------------------------------------

def test_a_frame_fed_one_byte_at_a_time_comes_out_once_complete() -> None:
    decoder = FrameDecoder()
    events = [e for byte in GOOD for e in decoder.feed(bytes([byte]))]
    assert events == [decode_frame(GOOD)]
    assert decoder.buffered == 0


def test_garbage_between_frames_is_one_bad_header_and_the_frames_survive() -> None:
    events = FrameDecoder().feed(GOOD + b"+++ATH\x00\xff garbage" + GOOD + b"\r\n\r\n" + GOOD)
    assert [e.reason if isinstance(e, FrameError) else "frame" for e in events] == ["frame", Reason.BAD_HEADER, "frame", "frame"]


def test_a_frame_cut_short_does_not_swallow_the_next_one() -> None:
    events = FrameDecoder().feed(GOOD[:60] + GOOD)
    assert [e.reason if isinstance(e, FrameError) else "frame" for e in events] == [Reason.BAD_LENGTH, "frame"]


def test_a_hash_pair_inside_a_valid_frame_arriving_in_pieces_is_not_taken_for_a_header() -> None:
    data = encode_frame(b"ST=21;CN=2011;PW=1;MN=WS##0001;CP=&&DataTime=20240501103000;w01001-Rtd=7&&")
    decoder = FrameDecoder()
    assert [e for byte in data for e in decoder.feed(bytes([byte]))] == [decode_frame(data)]


def test_a_frame_cut_short_and_a_short_frame_after_it_in_pieces_keeps_the_short_one() -> None:
    short = encode_frame(f"ST=21;CN=2011;PW=1;MN={MN};CP=&&&&".encode())
    decoder = FrameDecoder()
    events = [e for byte in GOOD[:80] + short for e in decoder.feed(bytes([byte]))]
    assert [e.reason if isinstance(e, FrameError) else e for e in events] == [Reason.BAD_LENGTH, decode_frame(short)]


def test_a_too_long_length_is_detected_at_the_crlf_without_waiting() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(b"##0900" + GOOD[6:])
    assert [e.reason for e in events] == [Reason.BAD_LENGTH] and decoder.buffered == 0


def test_a_too_short_length_drops_that_frame_and_finds_the_next() -> None:
    events = FrameDecoder().feed(b"##0010" + GOOD[6:] + GOOD)
    assert [e.reason if isinstance(e, FrameError) else "frame" for e in events] == [Reason.BAD_LENGTH, "frame"]


def test_an_oversize_length_is_refused_before_it_is_buffered() -> None:
    decoder = FrameDecoder(max_data_length=100)
    events = decoder.feed(b"##9999" + b"x" * 50)
    assert [e.reason for e in events] == [Reason.OVERSIZE]
    assert decoder.buffered == 0
    assert decoder.feed(b"y" * 100_000) == []  # the rest of it is dropped silently
    assert decoder.buffered <= 1


def test_a_third_hash_before_the_header_does_not_lose_the_frame() -> None:
    events = FrameDecoder().feed(b"#" + GOOD)
    assert events[-1] == decode_frame(GOOD)


def test_megabytes_of_garbage_keep_the_buffer_bounded() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(b"\x00garbage#" * 200_000)
    assert [e.reason for e in events] == [Reason.BAD_HEADER]
    assert decoder.buffered <= decoder.max_buffered
    assert decoder.feed(GOOD) == [decode_frame(GOOD)]


def test_the_decoder_refuses_a_limit_the_length_field_cannot_express() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_data_length=10_000)


# --- properties --------------------------------------------------------------------------

SAFE = "".join(c for c in string.printable if c not in ";=&," and not c.isspace())
VALUE = SAFE + " "
SUFFIXES = st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True).filter(lambda s: s not in {"Rtd", "Avg", "Min", "Max", "Cou", "Flag"})
NUMBERS = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
ZONES = st.sampled_from([UTC, CST, timezone(timedelta(hours=-5))])


@st.composite
def pollutants(draw: st.DrawFn, code: str) -> Pollutant:
    maybe = st.none() | NUMBERS
    p = Pollutant(
        code=code, rtd=draw(maybe), avg=draw(maybe), min=draw(maybe), max=draw(maybe), cou=draw(maybe),
        flag=draw(st.none() | st.sampled_from(FLAG_ORDER)),
        other=tuple(draw(st.dictionaries(SUFFIXES, st.text(VALUE, max_size=12), max_size=2)).items()),
    )
    assume(any(v is not None for v in (p.rtd, p.avg, p.min, p.max, p.cou, p.flag)) or p.other)
    return p


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    codes = draw(st.lists(st.from_regex(r"[a-z][0-9]{5}", fullmatch=True), unique=True, max_size=4))
    keys = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}", fullmatch=True).filter(lambda k: k != "DataTime")
    cp = CommandParameters(
        data_time=draw(st.none() | st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=ZONES).map(lambda t: t.replace(microsecond=0))),
        params=tuple(draw(st.dictionaries(keys, st.text(VALUE, max_size=12), max_size=3)).items()),
        pollutants=tuple(draw(pollutants(c)) for c in codes),
    )
    pnum = draw(st.none() | st.integers(1, 9999))
    return Frame(
        st=draw(st.from_regex(r"[0-9]{1,5}", fullmatch=True)),
        cn=draw(st.from_regex(r"[0-9]{1,7}", fullmatch=True)),
        pw=draw(st.text(SAFE, min_size=1, max_size=9)),
        mn=draw(st.text(SAFE, min_size=1, max_size=27)),
        qn=draw(st.none() | st.from_regex(r"[0-9]{1,20}", fullmatch=True)),
        flag=draw(st.none() | st.integers(0, 255)),
        pnum=pnum,
        pno=None if pnum is None else draw(st.integers(1, pnum)),
        cp=cp,
    )


@settings(max_examples=300)
@given(frames())
def test_parse_of_build_gives_the_frame_back(frame: Frame) -> None:
    assert parse_segment(build_segment(frame)) == frame
    data = build_frame(frame)
    assert crc16(data[6:-6]) == int(data[-6:-2], 16)
    if len(data) - 12 <= MAX_DATA_LENGTH:
        assert decode_frame(data) == frame


@settings(max_examples=200)
@given(frames())
def test_mapping_any_frame_gives_a_payload_or_an_unmappable_frame(frame: Frame) -> None:
    try:
        payload = water_payload(frame)
    except UnmappableFrame:
        return
    assert set(payload) - {"ts", "flag"} and datetime.fromisoformat(payload["ts"]).utcoffset() == timedelta(hours=8)


@settings(max_examples=300)
@given(st.binary(max_size=1200))
def test_parse_segment_of_any_bytes_raises_only_frame_error(data: bytes) -> None:
    try:
        parse_segment(data)
    except FrameError:
        pass


PIECES = [GOOD, GOOD[:40], GOOD[40:], KNOWN_FRAME, b"##", b"#", b"\r\n", b"##0101", b"##0000", b"##9999", b"1C80\r\n", b"CP=&&", b"&&"]
STREAMS = st.lists(st.binary(max_size=64) | st.sampled_from(PIECES), max_size=30).map(b"".join)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS, st.lists(st.integers(1, 300), min_size=1, max_size=50), st.sampled_from([0, 16, 101, 200, MAX_DATA_LENGTH]))
def test_any_byte_stream_gives_only_frames_and_frame_errors_in_bounded_memory(stream: bytes, cuts: list[int], limit: int) -> None:
    decoder = FrameDecoder(max_data_length=limit)
    at = 0
    for size in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        if at >= len(stream):
            break
        for event in decoder.feed(stream[at:at + size]):
            assert isinstance(event, Frame | FrameError)
            if isinstance(event, FrameError):
                assert isinstance(event.reason, Reason) and event.detail
        assert decoder.buffered <= decoder.max_buffered == limit + 12
        at += size


# Drawing up to four whole frames takes a tenth of a second or more on a busy machine,
# which Hypothesis would otherwise report as a fault of the test.
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(frames(), min_size=1, max_size=4),
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"#", b"")), min_size=5, max_size=5),
    st.integers(1, 200),
)
def test_frames_survive_any_garbage_between_them_and_any_chunking(found: list[Frame], junk: list[bytes], chunk: int) -> None:
    wire = [build_frame(f) for f in found]
    assume(all(len(w) - 12 <= MAX_DATA_LENGTH for w in wire))
    stream = b"".join(j + w for j, w in zip(junk, wire)) + junk[-1]
    decoder = FrameDecoder()
    events = [e for i in range(0, len(stream), chunk) for e in decoder.feed(stream[i:i + chunk])]
    assert [e for e in events if isinstance(e, Frame)] == found
    assert all(e.reason is Reason.BAD_HEADER for e in events if isinstance(e, FrameError))


# --- the corpus --------------------------------------------------------------------------

CORPUS_FILES = sorted(CORPUS.glob("*.txt"))


def test_the_corpus_has_valid_frames_of_every_data_cn_and_every_rejection() -> None:
    expected = {p.stem.split("__")[0] for p in CORPUS_FILES}
    assert expected == {"ok", *Reason}
    ok_cns = {decode_frame(p.read_bytes()).cn for p in CORPUS_FILES if p.stem.startswith("ok__")}
    assert ok_cns == {"2011", "2051", "2061", "2031"}


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_corpus_frame(path: Path) -> None:
    expected = path.stem.split("__")[0]
    data = path.read_bytes()
    if expected == "ok":
        frame = decode_frame(data)
        assert water_payload(frame) == json.loads(path.with_suffix(".json").read_text())
        assert decode_frame(data_ack(frame)).qn == frame.qn
        if frame.cn in AVERAGE_PERIODS:
            assert average_payload(frame) == json.loads(path.with_suffix(".averages.json").read_text())
    else:
        assert first_error(data) == Reason(expected)


# --- the gateway's pure parts ------------------------------------------------------------

def test_password_digest_depends_on_secret_mn_and_password() -> None:
    d = password_digest(b"s", "MN1", "123456")
    assert d == password_digest(b"s", "MN1", "123456")
    assert len({d, password_digest(b"t", "MN1", "123456"), password_digest(b"s", "MN2", "123456"), password_digest(b"s", "MN1", "123457")}) == 4


@pytest.mark.parametrize("station_id", ["WS/001", "WS+", "#", "", "x" * 65])
def test_a_station_id_that_cannot_be_one_topic_level_is_refused(station_id: str) -> None:
    with pytest.raises(ValueError):
        Hj212Gateway(
            host="127.0.0.1", port=0, mqtt=MqttEndpoint.parse("mqtt://127.0.0.1:1"), topic_root="jiashan",
            stations={"MN": StationCredential(station_id, "x")}, password_secret=b"s",
        )
