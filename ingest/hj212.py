"""HJ 212-2017, the protocol China's automatic monitoring stations speak over TCP: frames and
their CRC, the data segment, and the mapping of a data upload onto Watchpost's water
telemetry.

Sans-I/O, like psycopg's protocol core: bytes in, typed frames or named errors out, bytes to
send back; no socket, no clock, nothing beyond the standard library. The TCP server that
drives it is `ingest.hj212_gateway`.

A frame on the wire:

    ##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n
    ^^ ^^^^ data segment (the length counts its ASCII characters)                                                  ^^^^ CRC of the data segment

The data segment is `QN=;ST=;CN=;PW=;MN=;Flag=;[PNUM=;PNO=;]CP=&&…&&` (Table 4 of the
standard); inside CP, `;` separates items and `,` the values of one pollutant, e.g.
`DataTime=20240501103000;w01001-Rtd=7.4,w01001-Flag=N;w21003-Rtd=0.31,w21003-Flag=N`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ingest.readings import DATA_FLAGS

# Stations stamp DataTime in China Standard Time and send no offset.
CST = timezone(timedelta(hours=8), "CST")

HEADER = b"##"
TRAILER = b"\r\n"
_LENGTH_DIGITS = 4
_CRC_DIGITS = 4
_PREFIX = len(HEADER) + _LENGTH_DIGITS
FRAME_OVERHEAD = _PREFIX + _CRC_DIGITS + len(TRAILER)
# Table 3 of the standard caps the data segment at 1024 characters (the length field's four
# digits could say 9999). A longer declared length is refused before anything is buffered,
# so a decoder never holds more than one maximal frame.
MAX_DATA_LENGTH = 1024
_LENGTH_FIELD_MAX = 10**_LENGTH_DIGITS - 1


class Reason(StrEnum):
    """Why bytes from a station were not turned into a reading: machine-readable, counted."""

    BAD_HEADER = "bad_header"  # bytes that do not start a frame, skipped up to the next `##`
    BAD_LENGTH = "bad_length"  # the frame does not end (CRC + CRLF) where its length says
    OVERSIZE = "oversize"  # declared data segment longer than the limit
    BAD_CRC = "bad_crc"  # CRC field not 4 hex digits, or not the data segment's CRC
    BAD_SEGMENT = "bad_segment"  # the data segment's structure: fields, CP, characters
    BAD_VALUE = "bad_value"  # a field's value: Flag, PNUM/PNO, a number, a data flag
    BAD_DATATIME = "bad_datatime"  # DataTime missing (for data) or not a valid yyyyMMddHHmmss
    UNKNOWN_CN = "unknown_cn"  # a valid frame, but not a data upload Watchpost stores
    SPLIT_PACKET = "split_packet"  # one part of a multi-packet upload (PNUM > 1)
    NO_VALUES = "no_values"  # a data upload with no value for any water parameter


class Hj212Error(Exception):
    """Base of this module's errors; `reason` is what metrics and logs count by."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class FrameError(Hj212Error):
    """Bytes that are not a valid HJ 212 frame (framing, length, CRC, data segment)."""


class UnmappableFrame(Hj212Error):
    """A valid frame that is not a water reading Watchpost can store."""


# --- CRC ---------------------------------------------------------------------------------

def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


# HJ 212's CRC is not Modbus CRC-16: each byte is mixed in as `crc = (crc >> 8) ^ byte`, which
# leaves only 8 bits of state before the shift/xor rounds, so the rounds depend on that one
# byte and a 256-entry table computes them exactly. (It is also why this CRC catches less
# than a real CRC-16, and why frames are checked for length, CRLF and syntax as well.)
_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """The HJ 212-2017 CRC of a data segment: init 0xFFFF, polynomial 0xA001."""
    crc = 0xFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


# --- the typed frame ---------------------------------------------------------------------

# Pollutant suffixes with a numeric value, and the Pollutant attribute each fills.
_NUMERIC_SUFFIXES = {"Rtd": "rtd", "Avg": "avg", "Min": "min", "Max": "max", "Cou": "cou"}


@dataclass(frozen=True, slots=True)
class Pollutant:
    """One monitoring factor's values in CP: `w21003-Rtd=0.31,w21003-Flag=N`."""

    code: str
    rtd: float | None = None  # real-time value (CN 2011)
    avg: float | None = None  # average over the minute / hour / day (CN 2051 / 2061 / 2031)
    min: float | None = None
    max: float | None = None
    cou: float | None = None  # cumulative amount over the interval
    flag: str | None = None  # the HJ 212 data flag: N F M S D C T B
    # Other suffixes (ZsRtd, SampleTime, EFlag, Info, …) as sent, in order.
    other: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CommandParameters:
    """The CP field: `CP=&&…&&`."""

    data_time: datetime | None = None  # DataTime, aware (China Standard Time on the wire)
    # Items that are not per pollutant (RtdInterval, SystemTime, PolId, …), as sent, in order.
    params: tuple[tuple[str, str], ...] = ()
    pollutants: tuple[Pollutant, ...] = ()

    def pollutant(self, code: str) -> Pollutant | None:
        return next((p for p in self.pollutants if p.code == code), None)


@dataclass(frozen=True, slots=True)
class Frame:
    """A data segment (Table 4): QN request id, ST system, CN command, PW password,
    MN station id, Flag, PNUM/PNO (split uploads), CP."""

    st: str
    cn: str
    pw: str
    mn: str
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: CommandParameters = field(default_factory=CommandParameters)

    @property
    def wants_ack(self) -> bool:
        """Flag bit 0 (A): the station waits for a reply and resends without one."""
        return self.flag is not None and bool(self.flag & FLAG_ACK)


# Flag = V5 V4 V3 V2 V1 V0 D A: the protocol version (000001 is HJ 212-2017), whether the
# frame carries PNUM/PNO, whether the station asks for a reply.
FLAG_ACK = 0b01
FLAG_PACKETS = 0b10


# --- parsing -----------------------------------------------------------------------------

# Field widths of Table 4 (they count the `QN=` too) used as bounds on the value alone:
# lenient by the width of the key, still bounded.
_TOKEN = r"[^;=&,\s]"
_HEADER_FIELDS: dict[str, re.Pattern[str]] = {
    "QN": re.compile(r"\d{1,20}", re.ASCII),
    "ST": re.compile(r"\d{1,5}", re.ASCII),
    "CN": re.compile(r"\d{1,7}", re.ASCII),
    "PW": re.compile(_TOKEN + "{1,9}", re.ASCII),
    "MN": re.compile(_TOKEN + "{1,27}", re.ASCII),
    "Flag": re.compile(r"\d{1,3}", re.ASCII),
    "PNUM": re.compile(r"\d{1,4}", re.ASCII),
    "PNO": re.compile(r"\d{1,4}", re.ASCII),
}
_REQUIRED_FIELDS = ("ST", "CN", "PW", "MN")
_CP_OPEN, _CP_CLOSE = "CP=&&", "&&"
_PRINTABLE = re.compile(r"[ -~]*", re.ASCII)
_PARAM_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*", re.ASCII)
_POLLUTANT_CODE = re.compile(r"[A-Za-z0-9]{1,16}", re.ASCII)
_SUFFIX = re.compile(r"[A-Za-z]{1,16}", re.ASCII)
_PARAM_VALUE = re.compile(r"[^;=&,]*", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_DATATIME = re.compile(r"\d{14}", re.ASCII)


def parse_segment(segment: bytes) -> Frame:
    """Parse a data segment (between the length and the CRC). Raises FrameError."""
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(Reason.BAD_SEGMENT, "the data segment is not ASCII") from None
    if not _PRINTABLE.fullmatch(text):
        raise FrameError(Reason.BAD_SEGMENT, "the data segment holds control characters")
    cp_at = text.find(_CP_OPEN)
    if cp_at < 0 or (cp_at > 0 and text[cp_at - 1] != ";"):
        raise FrameError(Reason.BAD_SEGMENT, "no CP=&&…&& field")
    body = text[cp_at + len(_CP_OPEN):]
    if not body.endswith(_CP_CLOSE):
        raise FrameError(Reason.BAD_SEGMENT, "CP does not end with && at the end of the data segment")
    header = _parse_header(text[:cp_at - 1] if cp_at else "")
    for key in _REQUIRED_FIELDS:
        if key not in header:
            raise FrameError(Reason.BAD_SEGMENT, f"the data segment has no {key}")
    flag = _small_int(header, "Flag", 255)
    pnum, pno = _small_int(header, "PNUM", 9999), _small_int(header, "PNO", 9999)
    if (pnum is None) != (pno is None) or (pnum is not None and pno is not None and not 1 <= pno <= pnum):
        raise FrameError(Reason.BAD_VALUE, f"PNUM={pnum} and PNO={pno} are not a packet of a split upload")
    return Frame(
        st=header["ST"], cn=header["CN"], pw=header["PW"], mn=header["MN"], qn=header.get("QN"),
        flag=flag, pnum=pnum, pno=pno, cp=_parse_cp(body[: -len(_CP_CLOSE)]),
    )


def _parse_header(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in text.split(";") if text else ():
        key, sep, value = item.partition("=")
        pattern = _HEADER_FIELDS.get(key)
        if not sep or pattern is None:
            raise FrameError(Reason.BAD_SEGMENT, f"{_excerpt(key)!r} is not a field of the data segment")
        if key in fields:
            raise FrameError(Reason.BAD_SEGMENT, f"{key} appears twice")
        if not pattern.fullmatch(value):
            # The password is not echoed into logs.
            shown = "" if key == "PW" else f" {_excerpt(value)!r}"
            raise FrameError(Reason.BAD_VALUE, f"{key}{shown} is malformed")
        fields[key] = value
    return fields


def _small_int(header: dict[str, str], key: str, top: int) -> int | None:
    raw = header.get(key)
    if raw is None:
        return None
    value = int(raw)
    if value > top:
        raise FrameError(Reason.BAD_VALUE, f"{key}={raw} is over {top}")
    return value


def _parse_cp(body: str) -> CommandParameters:
    data_time: datetime | None = None
    params: dict[str, str] = {}
    by_code: dict[str, dict[str, str]] = {}
    # Items are grouped per pollutant by `;` and `,`, but devices differ in which they use
    # between a pollutant's values: both are read as item separators, pollutants by code.
    for group in body.split(";"):
        if not group:
            continue  # a trailing `;` is common
        for item in group.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise FrameError(Reason.BAD_SEGMENT, f"CP item {_excerpt(item)!r} has no '='")
            if not _PARAM_VALUE.fullmatch(value):
                raise FrameError(Reason.BAD_SEGMENT, f"CP item {_excerpt(item)!r} holds a reserved character (= or &)")
            code, dash, suffix = key.partition("-")
            if dash:
                if not _POLLUTANT_CODE.fullmatch(code) or not _SUFFIX.fullmatch(suffix):
                    raise FrameError(Reason.BAD_SEGMENT, f"CP key {_excerpt(key)!r} is not code-Suffix")
                values = by_code.setdefault(code, {})
                if suffix in values:
                    raise FrameError(Reason.BAD_SEGMENT, f"{key} appears twice in CP")
                values[suffix] = value
            elif key == "DataTime":
                if data_time is not None:
                    raise FrameError(Reason.BAD_SEGMENT, "DataTime appears twice in CP")
                data_time = parse_datatime(value)
            else:
                if not _PARAM_KEY.fullmatch(key):
                    raise FrameError(Reason.BAD_SEGMENT, f"CP key {_excerpt(key)!r} is not a name")
                if key in params:
                    raise FrameError(Reason.BAD_SEGMENT, f"{key} appears twice in CP")
                params[key] = value
    return CommandParameters(
        data_time=data_time,
        params=tuple(params.items()),
        pollutants=tuple(_pollutant(code, values) for code, values in by_code.items()),
    )


def _pollutant(code: str, values: dict[str, str]) -> Pollutant:
    typed: dict[str, Any] = {}
    other: list[tuple[str, str]] = []
    for suffix, raw in values.items():
        attr = _NUMERIC_SUFFIXES.get(suffix)
        if attr is not None:
            typed[attr] = _number(f"{code}-{suffix}", raw)
        elif suffix == "Flag":
            if len(raw) != 1 or raw not in DATA_FLAGS:
                raise FrameError(
                    Reason.BAD_VALUE, f"{code}-Flag={_excerpt(raw)!r} is not one of the data flags {FLAG_ORDER}"
                )
            typed["flag"] = raw
        else:
            other.append((suffix, raw))
    return Pollutant(code=code, other=tuple(other), **typed)


def _number(key: str, raw: str) -> float:
    if not _NUMBER.fullmatch(raw):
        raise FrameError(Reason.BAD_VALUE, f"{key}={_excerpt(raw)!r} is not a number")
    value = float(raw)
    if value in (float("inf"), float("-inf")):
        raise FrameError(Reason.BAD_VALUE, f"{key}={_excerpt(raw)!r} is out of any range")
    return value


def parse_datatime(raw: str) -> datetime:
    """DataTime is yyyyMMddHHmmss in China Standard Time (UTC+8), with no offset on the wire."""
    if not _DATATIME.fullmatch(raw):
        raise FrameError(Reason.BAD_DATATIME, f"DataTime {_excerpt(raw)!r} is not yyyyMMddHHmmss")
    try:
        return datetime(
            int(raw[0:4]), int(raw[4:6]), int(raw[6:8]), int(raw[8:10]), int(raw[10:12]), int(raw[12:14]), tzinfo=CST
        )
    except ValueError:
        raise FrameError(Reason.BAD_DATATIME, f"DataTime {raw} is not a calendar time") from None


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --- the stream decoder ------------------------------------------------------------------

_WHITESPACE = frozenset(b" \t\r\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{4}")


class FrameDecoder:
    """Splits a TCP byte stream into frames. Feed it bytes as they arrive; it returns each
    complete frame parsed, or the FrameError that explains why bytes were dropped, and
    keeps at most one frame's worth of bytes (`max_buffered`) between calls.

    Recovery: bytes before a `##` are dropped (one bad_header per run, whitespace is
    silent); a frame whose CRC + CRLF is not where its length says is dropped up to the
    `##` or the CRLF that shows where it really ended, so the following frame is kept.
    """

    def __init__(self, *, max_data_length: int = MAX_DATA_LENGTH) -> None:
        if not 0 <= max_data_length <= _LENGTH_FIELD_MAX:
            raise ValueError(f"max_data_length must be 0..{_LENGTH_FIELD_MAX}, got {max_data_length}")
        self.max_data_length = max_data_length
        self.max_buffered = max_data_length + FRAME_OVERHEAD
        self._buf = bytearray()
        self._in_junk = False  # dropping the rest of something already reported

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Never raises: every problem is returned as a FrameError, in stream order."""
        events: list[Frame | FrameError] = []
        view = memoryview(data)
        while True:
            # Take in only what fits, decode, repeat: the buffer stays bounded whatever
            # the size of `data`.
            room = self.max_buffered - len(self._buf)
            self._buf += view[:room]
            view = view[room:]
            self._decode(events)
            if not view:
                return events

    def _decode(self, events: list[Frame | FrameError]) -> None:
        buf = self._buf
        while buf:
            start = buf.find(HEADER)
            if start < 0:
                # A lone trailing '#' may be the first half of the next header.
                self._skip(len(buf) - (1 if buf.endswith(b"#") else 0), events)
                return
            if start:
                self._skip(start, events)
            if len(buf) < _PREFIX:
                return
            digits = bytes(buf[2:_PREFIX])
            if not digits.isdigit():
                # `##` and no length: not a header. Drop one byte only, so `###0101…`
                # still finds its frame.
                self._skip(1, events)
                continue
            length = int(digits)
            if length > self.max_data_length:
                events.append(FrameError(
                    Reason.OVERSIZE, f"declared data segment of {length} characters, the limit is {self.max_data_length}"
                ))
                del buf[:1]
                self._in_junk = True
                continue
            total = length + FRAME_OVERHEAD
            if len(buf) >= total and buf[total - len(TRAILER):total] == TRAILER:
                crc_at = _PREFIX + length
                events.append(self._frame(bytes(buf[_PREFIX:crc_at]), bytes(buf[crc_at:crc_at + _CRC_DIGITS])))
                del buf[:total]
                self._in_junk = False
                continue
            # Not (yet) a frame. It is broken once a CRLF shows up before its end (a data
            # segment holds no control characters) or once its end is here without one. Only
            # then is a `##` inside it taken as the next frame's start: `##` may appear in a
            # valid segment, a CRLF may not.
            trailer_at = total - len(TRAILER)
            crlf = buf.find(TRAILER, _PREFIX, min(len(buf), trailer_at + 1))
            if crlf < 0 and len(buf) < total:
                return  # the rest of the frame has not arrived yet
            end = crlf if crlf >= 0 else total
            next_header = buf.find(HEADER, _PREFIX, end)
            if next_header >= 0:
                sent = next_header - _PREFIX
                events.append(FrameError(Reason.BAD_LENGTH, f"declared {length} characters, the next frame began after {sent}"))
                del buf[:next_header]
                self._in_junk = False
            elif crlf >= 0:
                sent = crlf - _PREFIX - _CRC_DIGITS
                events.append(FrameError(Reason.BAD_LENGTH, f"declared {length} characters, the frame ended after {sent}"))
                del buf[:crlf + len(TRAILER)]
                self._in_junk = False
            else:
                events.append(FrameError(Reason.BAD_LENGTH, f"declared {length} characters, no CRC and CRLF there"))
                del buf[:total]
                self._in_junk = True

    def _skip(self, n: int, events: list[Frame | FrameError]) -> None:
        if n <= 0:
            return
        dropped = self._buf[:n]
        del self._buf[:n]
        if self._in_junk or all(b in _WHITESPACE for b in dropped):
            return
        self._in_junk = True
        events.append(FrameError(Reason.BAD_HEADER, f"{n} bytes before a frame header: {bytes(dropped[:20])!r}"))

    @staticmethod
    def _frame(segment: bytes, crc_field: bytes) -> Frame | FrameError:
        if not _HEX.fullmatch(crc_field):
            return FrameError(Reason.BAD_CRC, f"CRC field {crc_field!r} is not 4 hex digits")
        expected = crc16(segment)
        if int(crc_field, 16) != expected:
            return FrameError(Reason.BAD_CRC, f"CRC {crc_field.decode()} in the frame, {expected:04X} computed")
        try:
            return parse_segment(segment)
        except FrameError as exc:
            return exc


def decode_frame(data: bytes, *, max_data_length: int = MAX_DATA_LENGTH) -> Frame:
    """Decode exactly one complete frame (with its CRLF). Raises FrameError."""
    decoder = FrameDecoder(max_data_length=max_data_length)
    events = decoder.feed(data)
    for event in events:
        if isinstance(event, FrameError):
            raise event
    if len(events) != 1 or decoder.buffered:
        raise FrameError(
            Reason.BAD_LENGTH, f"expected one complete frame, got {len(events)} and {decoder.buffered} bytes left over"
        )
    return events[0]  # type: ignore[return-value]


# --- building ----------------------------------------------------------------------------

def encode_frame(segment: bytes) -> bytes:
    """Wrap a data segment: `##`, length, segment, CRC, CRLF."""
    if len(segment) > _LENGTH_FIELD_MAX:
        raise ValueError(f"a data segment has at most {_LENGTH_FIELD_MAX} characters, got {len(segment)}")
    return b"##%04d%s%04X\r\n" % (len(segment), segment, crc16(segment))


def build_segment(frame: Frame) -> bytes:
    """The data segment of `frame`, fields in the standard's order. Raises ValueError for a
    frame that parse_segment would not give back."""
    header = [("QN", frame.qn), ("ST", frame.st), ("CN", frame.cn), ("PW", frame.pw), ("MN", frame.mn)]
    numbers = (("Flag", frame.flag), ("PNUM", frame.pnum), ("PNO", frame.pno))
    header += [(key, None if value is None else str(value)) for key, value in numbers]
    parts = []
    for key, value in header:
        if value is None:
            continue
        if not _HEADER_FIELDS[key].fullmatch(value):
            raise ValueError(f"{key}={value!r} cannot be sent")
        parts.append(f"{key}={value}")
    parts.append(f"{_CP_OPEN}{_build_cp(frame.cp)}{_CP_CLOSE}")
    return ";".join(parts).encode("ascii")


def build_frame(frame: Frame) -> bytes:
    return encode_frame(build_segment(frame))


def _build_cp(cp: CommandParameters) -> str:
    groups = []
    if cp.data_time is not None:
        groups.append(f"DataTime={format_datatime(cp.data_time)}")
    for key, value in cp.params:
        if key == "DataTime" or not _PARAM_KEY.fullmatch(key) or not _PARAM_VALUE.fullmatch(value):
            raise ValueError(f"CP item {key}={value!r} cannot be sent")
        groups.append(f"{key}={value}")
    for p in cp.pollutants:
        if not _POLLUTANT_CODE.fullmatch(p.code):
            raise ValueError(f"pollutant code {p.code!r} cannot be sent")
        items = [f"{p.code}-{suffix}={_format_number(getattr(p, attr))}"
                 for suffix, attr in _NUMERIC_SUFFIXES.items() if getattr(p, attr) is not None]
        if p.flag is not None:
            items.append(f"{p.code}-Flag={p.flag}")
        for suffix, value in p.other:
            typed = suffix in _NUMERIC_SUFFIXES or suffix == "Flag"
            if typed or not _SUFFIX.fullmatch(suffix) or not _PARAM_VALUE.fullmatch(value):
                raise ValueError(f"{p.code}-{suffix}={value!r} cannot be sent")
            items.append(f"{p.code}-{suffix}={value}")
        if not items:
            raise ValueError(f"pollutant {p.code} has no values")
        groups.append(",".join(items))
    return ";".join(groups)


def _format_number(value: float) -> str:
    # Plain decimal notation (stations print N14.2-style numbers), shortest digits that
    # read back as the same float.
    return format(Decimal(repr(float(value))), "f")


def format_datatime(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("DataTime needs an aware datetime")
    t = ts.astimezone(CST)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"


# --- replies -----------------------------------------------------------------------------

CN_DATA_ACK = "9014"
ST_SYSTEM = "91"  # system interaction: the platform's replies


def data_ack(request: Frame) -> bytes:
    """The 9014 data acknowledgement of an upload, as sent on the wire:
    `QN=<the request's>;ST=91;CN=9014;PW=…;MN=…;Flag=4;CP=&&&&`. Its Flag keeps the request's
    version bits and asks for no reply itself (a 2017 station's Flag=5 or 7 gives Flag=4)."""
    version = (request.flag if request.flag is not None else 0b100) & ~(FLAG_ACK | FLAG_PACKETS)
    return build_frame(
        Frame(qn=request.qn, st=ST_SYSTEM, cn=CN_DATA_ACK, pw=request.pw, mn=request.mn, flag=version)
    )


# --- mapping onto Watchpost's water telemetry --------------------------------------------

# Data uploads and the value each carries: real-time values, or interval averages.
DATA_CNS: dict[str, str] = {
    "2011": "rtd",  # real-time data
    "2051": "avg",  # minute data
    "2061": "avg",  # hour data
    "2031": "avg",  # day data
}

# HJ 212 factor codes → fields of `{root}/water/{station_id}/telemetry`. w01003 (turbidity,
# NTU) is not in the standard's appendix, which lists pollution-source factors; surface-water
# automatic stations use it. Conductivity is taken as µS/cm, as those stations report it.
WATER_CODES: dict[str, str] = {
    "w01001": "ph",
    "w01009": "do_mg_l",
    "w01010": "temp_c",
    "w01014": "cond_us_cm",
    "w01018": "cod_mg_l",
    "w01019": "codmn_mg_l",
    "w21001": "tn_mg_l",
    "w21003": "nh3n_mg_l",
    "w21011": "tp_mg_l",
    "w01003": "turbidity_ntu",
}

# The reading's one flag is its worst value's flag, worst first: the value is no measurement
# at all (D fault, F stopped, B comms fault), then the instrument is being worked on
# (M maintenance, C calibrating), then a measurement outside the instrument's range
# (T), then a value typed in by hand (S). Any of them beats N; flagged readings are stored
# but raise no quality alarm.
FLAG_ORDER = "DFBMCTSN"
_FLAG_RANK = {flag: rank for rank, flag in enumerate(FLAG_ORDER)}
assert frozenset(FLAG_ORDER) == DATA_FLAGS


def worst_flag(flags: Iterable[str]) -> str:
    return min(flags, key=_FLAG_RANK.__getitem__, default="N")


# A station's own averages carry chlorophyll-a too (w01016, µg/L as surface-water stations
# report it) and transparency (Secchi depth, m): lakes need both for their trophic state
# index. HJ 212-2017's code table (appendix B, table B.1) lists pollution-source factors and
# has no code for transparency; Watchpost takes it as w01004, the unassigned code beside
# turbidity (w01003, itself a surface-water addition). A county whose stations send it under
# another code changes it here.
TRANSPARENCY_CODE = "w01004"
AVERAGE_CODES: dict[str, str] = {**WATER_CODES, "w01016": "chla_ug_l", TRANSPARENCY_CODE: "sd_m"}

# Minute, hour and day data and the period each average covers. DataTime of such an upload
# is the start of its period (10:00:00 for the hour 10:00–11:00).
AVERAGE_PERIODS: dict[str, str] = {"2051": "minute", "2061": "hour", "2031": "day"}


def average_payload(frame: Frame) -> dict[str, Any]:
    """The `{root}/water/{station_id}/averages` payload of a minute, hour or day upload (CN
    2051 / 2061 / 2031): the period, its start, and per parameter the average, the minimum
    and maximum where sent, and the parameter's own data flag. Raises UnmappableFrame."""
    period = AVERAGE_PERIODS.get(frame.cn)
    if period is None:
        raise UnmappableFrame(Reason.UNKNOWN_CN, f"CN {frame.cn} is not an average upload ({', '.join(AVERAGE_PERIODS)})")
    if frame.pnum is not None and frame.pnum > 1:
        raise UnmappableFrame(Reason.SPLIT_PACKET, f"packet {frame.pno} of {frame.pnum}: reassemble the upload first")
    if frame.cp.data_time is None:
        raise UnmappableFrame(Reason.BAD_DATATIME, "a data upload needs DataTime")
    values: dict[str, dict[str, Any]] = {}
    for p in frame.cp.pollutants:
        name = AVERAGE_CODES.get(p.code)
        if name is None or p.avg is None:
            continue
        item: dict[str, Any] = {"avg": p.avg}
        if p.min is not None:
            item["min"] = p.min
        if p.max is not None:
            item["max"] = p.max
        item["flag"] = p.flag or "N"
        values[name] = item
    if not values:
        raise UnmappableFrame(Reason.NO_VALUES, f"CN {frame.cn} carries no Avg value of a water parameter")
    return {"period": period, "ts": frame.cp.data_time.isoformat(), "values": values}


def water_payload(frame: Frame) -> dict[str, Any]:
    """The `{root}/water/{station_id}/telemetry` payload of a data upload (CN 2011 real-time
    values, CN 2051 / 2061 / 2031 averages). Factors Watchpost has no field for are left out.
    Raises UnmappableFrame."""
    kind = DATA_CNS.get(frame.cn)
    if kind is None:
        raise UnmappableFrame(Reason.UNKNOWN_CN, f"CN {frame.cn} is not a data upload ({', '.join(DATA_CNS)})")
    if frame.pnum is not None and frame.pnum > 1:
        # The parts of a split upload share one DataTime and are not self-contained.
        raise UnmappableFrame(Reason.SPLIT_PACKET, f"packet {frame.pno} of {frame.pnum}: split uploads are not reassembled")
    if frame.cp.data_time is None:
        raise UnmappableFrame(Reason.BAD_DATATIME, "a data upload needs DataTime")
    values: dict[str, float] = {}
    flags: list[str] = []
    for p in frame.cp.pollutants:
        name = WATER_CODES.get(p.code)
        value = p.rtd if kind == "rtd" else p.avg
        if name is None or value is None:
            continue
        values[name] = value
        flags.append(p.flag or "N")
    if not values:
        raise UnmappableFrame(Reason.NO_VALUES, f"CN {frame.cn} carries no {kind.capitalize()} value of a water parameter")
    payload: dict[str, Any] = {"ts": frame.cp.data_time.isoformat(), **values}
    flag = worst_flag(flags)
    if flag != "N":
        payload["flag"] = flag
    return payload
