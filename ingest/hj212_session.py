"""The station's side of an HJ 212-2017 session that is more than "upload, acknowledge":
split uploads put back together, time calibration, and the answer to a command the platform
does not carry out. Sans-I/O like `ingest.hj212`: frames and monotonic seconds in, frames and
bytes out; the gateway (`ingest.hj212_gateway`) drives it.

* **Split uploads** (PNUM > 1): a long upload comes as packets PNO 1..PNUM sharing one QN.
  They are held per (MN, QN) until all have come, then joined into one frame (their CP items
  in packet order). Bounded: at most `max_pending` uploads per connection, each of at most
  `max_packets` packets, each dropped if not complete within `timeout_s`. Nothing is
  acknowledged before the whole upload is stored, so the station resends what was dropped.
* **Time** (CN 1013 → CN 1012): a station asks for calibration with CN 1013 and is answered
  with the platform's time in a CN 1012 "set time" (`SystemTime`, China Standard Time). A
  station that does not ask is told the time too, once its clock is off by more than the
  tolerance, at most once per `resync_interval_s`: read from the DataTime of its real-time
  data (CN 2011, stamped as measured), or from any upload whose DataTime lies ahead of the
  platform's time (a period cannot start in the future). QNs are not used: many stations
  number requests rather than stamp them. Data that arrives meanwhile is still forwarded:
  ingest stores it or dead-letters it with its reason (time_in_future, time_too_old), so
  the record of what the station sent stays complete.
* **Commands the platform does not carry out**: a frame that asks for an answer (Flag A) gets
  the request answer CN 9011 with `QnRtn=2` (the request is refused), as the standard's
  request flow has it; the station's own answers to the platform's commands (CN 9011, 9012)
  are taken in silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ingest.hj212 import (
    CST,
    DATA_CNS,
    FLAG_ACK,
    FLAG_PACKETS,
    ST_SYSTEM,
    CommandParameters,
    Frame,
    Pollutant,
    build_frame,
    format_datatime,
)

CN_TIME_CALIBRATION_REQUEST = "1013"  # station → platform: "please set my clock"
CN_SET_TIME = "1012"  # platform → station: SystemTime=yyyyMMddHHmmss
CN_REQUEST_ANSWER = "9011"  # QnRtn: the answer to a request
CN_EXECUTION_RESULT = "9012"  # ExeRtn: the result of a command carried out
# What a station sends back after a 1012: taken in, no reply due.
STATION_ANSWERS = frozenset({CN_REQUEST_ANSWER, CN_EXECUTION_RESULT})

QN_RTN_READY = "1"  # the request will be carried out
QN_RTN_REFUSED = "2"  # the request is refused


@dataclass(frozen=True, slots=True)
class SessionLimits:
    # Split uploads in reassembly per connection; a further one drops the oldest.
    max_pending: int = 8
    # Packets of one upload: 1024-character packets, enough for any station's parameters.
    max_packets: int = 64
    # A split upload not complete in this time is dropped unacknowledged (the station resends).
    timeout_s: float = 60.0
    # A station whose data is stamped further ahead of the platform's time than this is told
    # the time (ingest refuses data more than 5 min ahead).
    clock_tolerance_s: float = 60.0
    # ... or whose real-time data (CN 2011) is stamped further behind than this: real-time
    # data is sent as measured, but a backlog resent after an outage is old too, so only a
    # lag no backlog explains away counts. (Telling a right clock the time does no harm.)
    clock_behind_tolerance_s: float = 1800.0
    # ... at most once in this interval, whatever it sends meanwhile.
    resync_interval_s: float = 3600.0


# --- split uploads -----------------------------------------------------------------------


class ReassemblyError(Exception):
    """A packet that cannot belong to the upload it names (a different PNUM, CN or
    DataTime, too many packets)."""


@dataclass(slots=True)
class _Pending:
    first: Frame
    started: float
    parts: dict[int, Frame]


class PacketAssembler:
    """Holds the packets of split uploads until each is complete. Not thread-safe: one per
    connection."""

    def __init__(self, limits: SessionLimits = SessionLimits()) -> None:
        self._limits = limits
        self._pending: dict[tuple[str, str | None], _Pending] = {}
        self.dropped = 0  # uploads dropped incomplete (timeout or room)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, frame: Frame, now: float) -> list[Frame] | None:
        """Take one packet (PNUM > 1). Returns every packet of the upload, in PNO order, once
        the last has come; None while parts are missing. Raises ReassemblyError."""
        assert frame.pnum is not None and frame.pno is not None
        self.expire(now)
        if frame.pnum > self._limits.max_packets:
            raise ReassemblyError(f"PNUM={frame.pnum}: at most {self._limits.max_packets} packets per upload")
        key = (frame.mn, frame.qn)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self._limits.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].started)
                del self._pending[oldest]
                self.dropped += 1
            pending = self._pending[key] = _Pending(frame, now, {})
        first = pending.first
        if (frame.pnum, frame.cn, frame.cp.data_time) != (first.pnum, first.cn, first.cp.data_time):
            raise ReassemblyError(
                f"packet {frame.pno} of QN {frame.qn} says PNUM={frame.pnum} CN={frame.cn}, its first packet "
                f"PNUM={first.pnum} CN={first.cn} (and the same DataTime)"
            )
        pending.parts[frame.pno] = frame  # a resent packet replaces itself
        if len(pending.parts) < frame.pnum:
            return None
        del self._pending[key]
        return [pending.parts[n] for n in sorted(pending.parts)]

    def expire(self, now: float) -> int:
        """Drop uploads older than the timeout; returns how many."""
        late = [k for k, p in self._pending.items() if now - p.started > self._limits.timeout_s]
        for k in late:
            del self._pending[k]
        self.dropped += len(late)
        return len(late)


def joined(packets: list[Frame]) -> Frame:
    """One frame of a complete split upload: the first packet's header without PNUM/PNO,
    the CP items of all packets in order (a pollutant sent in two packets keeps the first)."""
    first = packets[0]
    params: dict[str, str] = {}
    pollutants: dict[str, Pollutant] = {}
    for packet in packets:
        for key, value in packet.cp.params:
            params.setdefault(key, value)
        for p in packet.cp.pollutants:
            pollutants.setdefault(p.code, p)
    flag = None if first.flag is None else first.flag & ~FLAG_PACKETS
    return replace(
        first, pnum=None, pno=None, flag=flag,
        cp=CommandParameters(data_time=first.cp.data_time, params=tuple(params.items()), pollutants=tuple(pollutants.values())),
    )


# --- time --------------------------------------------------------------------------------


def qn_time(qn: str | None) -> datetime | None:
    """The station's time of sending from its QN (yyyyMMddHHmmssZZZ, China Standard Time),
    or None for a QN that is not one."""
    if qn is None or len(qn) != 17 or not qn.isdigit():
        return None
    try:
        return datetime(int(qn[0:4]), int(qn[4:6]), int(qn[6:8]), int(qn[8:10]), int(qn[10:12]), int(qn[12:14]),
                        int(qn[14:17]) * 1000, tzinfo=CST)
    except ValueError:
        return None


def platform_qn(now: datetime) -> str:
    """A QN of the platform's own request: its time of sending, to the millisecond."""
    t = now.astimezone(CST)
    return f"{format_datatime(t)}{t.microsecond // 1000:03d}"


def set_time(station: Frame, now: datetime) -> bytes:
    """CN 1012 for `station`: `SystemTime` is the platform's time (China Standard Time). Its
    Flag asks for the station's answer (9011) and keeps the station's protocol version."""
    params: list[tuple[str, str]] = []
    pol_id = next((v for k, v in station.cp.params if k == "PolId"), None)
    if pol_id is not None:
        params.append(("PolId", pol_id))  # a calibration request names its instrument
    params.append(("SystemTime", format_datatime(now)))
    return build_frame(Frame(
        qn=platform_qn(now), st=ST_SYSTEM, cn=CN_SET_TIME, pw=station.pw, mn=station.mn,
        flag=_version(station) | FLAG_ACK, cp=CommandParameters(params=tuple(params)),
    ))


def refuse(request: Frame) -> bytes:
    """CN 9011 with QnRtn=2: the answer to a command the platform does not carry out."""
    return build_frame(Frame(
        qn=request.qn, st=ST_SYSTEM, cn=CN_REQUEST_ANSWER, pw=request.pw, mn=request.mn,
        flag=_version(request), cp=CommandParameters(params=(("QnRtn", QN_RTN_REFUSED),)),
    ))


def _version(frame: Frame) -> int:
    return (frame.flag if frame.flag is not None else 0b100) & ~(FLAG_ACK | FLAG_PACKETS)


class ClockWatch:
    """When to tell a station the time: on its request, or when its clock is off by more
    than the tolerance, at most once per resync interval (monotonic seconds)."""

    def __init__(self, limits: SessionLimits = SessionLimits()) -> None:
        self._limits = limits
        self._last_sync: dict[str, float] = {}

    def drift_s(self, frame: Frame, now: datetime) -> float | None:
        """How far the station's clock is ahead (+) or behind (−) of `now`, where the frame
        shows it; None where it does not."""
        stamped = frame.cp.data_time
        if stamped is None or frame.cn not in DATA_CNS:
            return None
        drift = (stamped - now).total_seconds()
        if frame.cn == "2011" or drift > 0:
            return drift
        return None

    def should_set(self, frame: Frame, now: datetime, mono: float) -> bool:
        if frame.cn == CN_TIME_CALIBRATION_REQUEST:
            self._last_sync[frame.mn] = mono
            return True
        drift = self.drift_s(frame, now)
        if drift is None or -self._limits.clock_behind_tolerance_s <= drift <= self._limits.clock_tolerance_s:
            return False
        last = self._last_sync.get(frame.mn)
        if last is not None and mono - last < self._limits.resync_interval_s:
            return False
        self._last_sync[frame.mn] = mono
        return True


__all__ = [
    "CN_SET_TIME",
    "CN_TIME_CALIBRATION_REQUEST",
    "STATION_ANSWERS",
    "ClockWatch",
    "PacketAssembler",
    "ReassemblyError",
    "SessionLimits",
    "joined",
    "platform_qn",
    "qn_time",
    "refuse",
    "set_time",
]
