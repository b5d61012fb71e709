"""A simulated automatic water station that speaks HJ 212-2017, as real ones do.

* **Probes** (pH, DO, temperature, conductivity, turbidity) are sampled every 5 minutes and
  reported as minute data (CN 2051) and in the hourly upload.
* **Wet-chemistry analysers** (CODMn, NH3-N, TP, TN) finish one cycle every 4 hours; each
  hourly upload (CN 2061) carries the latest result. A result at or above the analyser's
  upper measuring limit is sent at the limit with flag T; during a maintenance visit every
  parameter carries M.
* **Its clock drifts** (`drift_s_per_day`); it stamps DataTime and QN with its own time, asks
  for calibration (CN 1013) once a day and applies the platform's set-time (CN 1012).

`StationProtocol` is pure (the station's true time comes in as `now`, Unix seconds);
`Hj212StationClient` is the thin TCP side. The model behind the values is
`simulators.water.WaterStationModel`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ingest.hj212 import (
    CST,
    CommandParameters,
    Frame,
    Pollutant,
    build_frame,
    decode_frame,
    format_datatime,
    parse_datatime,
)

from .water import WaterStationModel

ANALYSER_CYCLE_S = 4 * 3600.0
PROBE_SAMPLE_S = 300.0

PROBE_CODES = {"ph": "w01001", "do_mg_l": "w01009", "temp_c": "w01010", "cond_us_cm": "w01014", "turbidity_ntu": "w01003"}
ANALYSER_CODES = {"codmn_mg_l": "w01019", "nh3n_mg_l": "w21003", "tp_mg_l": "w21011", "tn_mg_l": "w21001"}
# Upper measuring limits of common surface-water analysers (mg/L): a higher value reads as
# the limit with flag T.
ANALYSER_RANGE = {"codmn_mg_l": 20.0, "nh3n_mg_l": 2.0, "tp_mg_l": 0.5, "tn_mg_l": 10.0}


@dataclass
class StationProtocol:
    model: WaterStationModel
    mn: str
    password: str
    drift_s_per_day: float = 0.0
    clock_offset_s: float = 0.0  # the station clock minus the true time, now
    _synced_at: float | None = None
    _qn_seq: int = 0
    results: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (cycle time, value)

    # --- the station's clock ------------------------------------------------------------

    def station_time(self, now: float) -> datetime:
        since = 0.0 if self._synced_at is None else now - self._synced_at
        offset = self.clock_offset_s + self.drift_s_per_day * since / 86400
        return datetime.fromtimestamp(now + offset, timezone.utc).astimezone(CST)

    def apply_set_time(self, frame: Frame, now: float) -> bool:
        """Apply a CN 1012 from the platform; True when it was one."""
        if frame.cn != "1012":
            return False
        told = dict(frame.cp.params).get("SystemTime")
        if told is None:
            return False
        self.clock_offset_s = parse_datatime(told).timestamp() - now
        self._synced_at = now
        return True

    def _qn(self, now: float) -> str:
        self._qn_seq = (self._qn_seq + 1) % 1000
        return f"{format_datatime(self.station_time(now))}{self._qn_seq:03d}"

    def _frame(self, cn: str, now: float, cp: CommandParameters, flag: int = 5) -> bytes:
        return build_frame(Frame(qn=self._qn(now), st="21", cn=cn, pw=self.password, mn=self.mn, flag=flag, cp=cp))

    # --- what it measures ----------------------------------------------------------------

    def _analyse(self, now: float) -> None:
        """Run every analyser cycle that has finished by `now`."""
        cycle = now - now % ANALYSER_CYCLE_S
        for name in ANALYSER_CODES:
            done = self.results.get(name)
            if done is None or done[0] < cycle:
                # The sample drawn as the cycle ended, before any visit that begins then.
                self.results[name] = (cycle, float(self.model.reading(cycle - 1)[name]))  # type: ignore[arg-type]

    def _probe_stats(self, start: float, end: float) -> dict[str, tuple[float, float, float]]:
        samples: dict[str, list[float]] = {name: [] for name in PROBE_CODES}
        t = start
        while t < end:
            reading = self.model.reading(t)
            for name in PROBE_CODES:
                samples[name].append(float(reading[name]))  # type: ignore[arg-type]
            t += PROBE_SAMPLE_S
        return {n: (sum(v) / len(v), min(v), max(v)) for n, v in samples.items() if v}

    # --- uploads -------------------------------------------------------------------------

    def hour_upload(self, hour_start: float) -> bytes:
        """CN 2061 for the hour from `hour_start` (true time), sent at its end."""
        end = hour_start + 3600
        self._analyse(end - 1)  # the results finished within the hour
        maintenance = self.model.in_maintenance(hour_start) or self.model.in_maintenance(end - 1)
        pollutants = [
            Pollutant(code, avg=round(avg, 3), min=round(lo, 3), max=round(hi, 3), flag="M" if maintenance else "N")
            for name, code in PROBE_CODES.items()
            for avg, lo, hi in [self._probe_stats(hour_start, end)[name]]
        ]
        for name, code in ANALYSER_CODES.items():
            value = self.results[name][1]
            limit = ANALYSER_RANGE[name]
            flag = "M" if maintenance else ("T" if value >= limit else "N")
            pollutants.append(Pollutant(code, avg=round(min(value, limit), 3), flag=flag))
        return self._frame("2061", end, CommandParameters(data_time=self._period_start(hour_start, 3600), pollutants=tuple(pollutants)))

    def minute_upload(self, minute_start: float) -> bytes:
        """CN 2051 of the probes for the minute from `minute_start`."""
        reading = self.model.reading(minute_start)
        flag = "M" if self.model.in_maintenance(minute_start) else "N"
        pollutants = tuple(Pollutant(code, avg=float(reading[name]), flag=flag)  # type: ignore[arg-type]
                           for name, code in PROBE_CODES.items())
        return self._frame("2051", minute_start + 60, CommandParameters(data_time=self._period_start(minute_start, 60), pollutants=pollutants))

    def _period_start(self, start: float, length_s: int) -> datetime:
        """The period's start on the station's clock, to the period: a station stamps its
        hour as 10:00:00 however its clock has drifted within the period."""
        t = self.station_time(start + length_s / 2)
        seconds = (t.minute * 60 + t.second) % length_s if length_s == 3600 else t.second
        return t.replace(microsecond=0) - timedelta(seconds=seconds)

    def calibration_request(self, now: float) -> bytes:
        return self._frame("1013", now, CommandParameters(params=(("PolId", "w21003"),)))


class Hj212StationClient:
    """One TCP connection to the gateway: send a frame, read the replies it brings."""

    def __init__(self, protocol: StationProtocol) -> None:
        self.protocol = protocol
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.replies: list[Frame] = []

    async def connect(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)

    async def send(self, frame: bytes, now: float, replies: int = 1, timeout: float = 15.0) -> list[Frame]:
        """Send one frame and read `replies` frames back, applying a set-time among them."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(frame)
        await self.writer.drain()
        got = []
        for _ in range(replies):
            reply = decode_frame(await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout))
            self.protocol.apply_set_time(reply, now)
            got.append(reply)
        self.replies += got
        return got

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
