"""A simulated automatic water station that speaks HJ 212-2017, as real ones do.

* **Probes** (pH, DO, temperature, conductivity, turbidity) are sampled every 5 minutes and
  reported as minute data (CN 2051) and in the hourly upload.
* **Wet-chemistry analysers** (CODMn, NH3-N, TP, TN) finish one cycle every 4 hours; each
  hourly upload (CN 2061) carries the latest result. A result at or above the analyser's
  upper measuring limit is sent at the limit with flag T; during a maintenance visit every
  parameter carries M.
* **On demand** (加密监测): when a probe sample in the hour shows dissolved oxygen below the
  target class's floor, or the latest analyser result is worse than the target class, the analysers
  run at the end of every hour instead of every four, until the water is back in class.
* **Per-parameter flags**: a maintenance visit flags every parameter M; the hour after it the
  analysers run standards (C); an analyser fault (reagent out, a blocked line) flags only
  its own parameter D for hours; T at or above an analyser's range.
* **Real-time data** (CN 2011) of the probes every 5 minutes, from the stations that send it
  (the cross-border sections, whose partners watch them live); most stations never do.
* **Daily data** (CN 2031) at local midnight: the day's probe means, minima and maxima and
  the mean of the day's analyser results, leaving out a maintenance visit.
* **Its clock drifts** (`drift_s_per_day`); it stamps DataTime and QN with its own time, asks
  for calibration (CN 1013) when it starts and once a day at 00:30 (a logger with calibration
  switched off never asks, and is told the time by the gateway once its data runs ahead) and
  applies the platform's set-time (CN 1012).

`StationProtocol` is pure (the station's true time comes in as `now`, Unix seconds);
`Hj212StationClient` is the thin TCP side. The model behind the values is
`simulators.water.WaterStationModel`.
"""

from __future__ import annotations

import asyncio
import random
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

from .water import DO_FLOORS, WaterStationModel, river_class

ANALYSER_CYCLE_S = 4 * 3600.0
PROBE_SAMPLE_S = 300.0
DAY_S = 86400.0
CST_OFFSET_S = 8 * 3600.0
CALIBRATION_AT_S = 1800.0  # the daily time calibration request, 00:30 on the station's clock
# Analyser faults (flag D on that parameter only): per analyser and day, and how long.
ANALYSER_FAULTS_PER_DAY = 0.05
ANALYSER_FAULT_S = (4 * 3600.0, 16 * 3600.0)
# Station clocks: off by this much when the run starts, drifting this much a day; one logger
# in ten has calibration switched off and never asks.
CLOCK_OFFSET_S = (-180.0, 180.0)
CLOCK_DRIFT_S_PER_DAY = (-8.0, 8.0)
NEVER_ASKS_SHARE = 0.1

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
    asks_calibration: bool = True
    sends_realtime: bool = False  # CN 2011 of the probes every PROBE_SAMPLE_S
    # (analyser, start, end): that analyser is down and its parameter is flagged D.
    faults: list[tuple[str, float, float]] = field(default_factory=list)
    # The last hourly upload's normal values (name -> value), for whoever watches the run.
    last_hour: dict[str, float] = field(default_factory=dict)
    _intensive: bool = False  # analysers on hourly cycles until the water is back in class

    @classmethod
    def simulated(
        cls, model: WaterStationModel, mn: str, password: str, rng: random.Random, start: float, end: float, *, realtime: bool = False,
    ) -> StationProtocol:
        """A station as the county has them: a clock somewhat off and drifting, and now and
        then an analyser down."""
        faults = []
        for name in ANALYSER_CODES:
            t = start - DAY_S
            while (t := t + rng.expovariate(ANALYSER_FAULTS_PER_DAY / DAY_S)) < end:
                faults.append((name, t, t + rng.uniform(*ANALYSER_FAULT_S)))
        return cls(
            model, mn, password, drift_s_per_day=rng.uniform(*CLOCK_DRIFT_S_PER_DAY), clock_offset_s=rng.uniform(*CLOCK_OFFSET_S),
            asks_calibration=rng.random() >= NEVER_ASKS_SHARE, faults=faults, _synced_at=start, sends_realtime=realtime,
        )

    # --- the station's clock ------------------------------------------------------------

    def station_time(self, now: float) -> datetime:
        since = 0.0 if self._synced_at is None else now - self._synced_at
        offset = self.clock_offset_s + self.drift_s_per_day * since / 86400
        return datetime.fromtimestamp(now + offset, timezone.utc).astimezone(CST)

    def apply_set_time(self, frame: Frame, now: float, *, station_now: float | None = None) -> bool:
        """Apply a CN 1012 from the platform, received at `now` on the platform's clock; True
        when it was one. In an accelerated replay the station's true time (`station_now`,
        simulated) is not the platform's (the wall clock): the station takes only its own
        error from the reply, so its clock stays on the replayed time."""
        if frame.cn != "1012":
            return False
        told = dict(frame.cp.params).get("SystemTime")
        if told is None:
            return False
        self.clock_offset_s = parse_datatime(told).timestamp() - now
        self._synced_at = now if station_now is None else station_now
        return True

    # --- what is due ---------------------------------------------------------------------

    def due(self, t: float, *, first: bool = False) -> list[tuple[str, bytes]]:
        """The frames due at `t`, the end of a minute (true time): the minute's data, the
        hour's and the day's at their ends, a calibration request on start and daily."""
        out = []
        local = (t + CST_OFFSET_S) % DAY_S
        if self.asks_calibration and (first or local == CALIBRATION_AT_S):
            out.append(("hj212_calibration", self.calibration_request(t)))
        out.append(("hj212_minute", self.minute_upload(t - 60)))
        if self.sends_realtime and t % PROBE_SAMPLE_S == 0:
            out.append(("hj212_realtime", self.realtime_upload(t)))
        if t % 3600 == 0:
            out.append(("hj212_hour", self.hour_upload(t - 3600)))
        if local == 0:
            out.append(("hj212_day", self.day_upload(t - DAY_S)))
        return out

    def _qn(self, now: float) -> str:
        self._qn_seq = (self._qn_seq + 1) % 1000
        return f"{format_datatime(self.station_time(now))}{self._qn_seq:03d}"

    def _frame(self, cn: str, now: float, cp: CommandParameters, flag: int = 5) -> bytes:
        return build_frame(Frame(qn=self._qn(now), st="21", cn=cn, pw=self.password, mn=self.mn, flag=flag, cp=cp))

    # --- what it measures ----------------------------------------------------------------

    def _analyse(self, now: float) -> None:
        """Run every analyser cycle that has finished by `now`."""
        cycle = now - now % ANALYSER_CYCLE_S
        self._run_analysers(cycle)

    def _run_analysers(self, cycle: float) -> None:
        # The sample drawn as the cycle ended. An analyser in a maintenance visit or down
        # keeps its last result (a blank run is not a sample of the river).
        if self.model.in_maintenance(cycle - 1) and self.results:
            return
        sample = self.model.reading(cycle - 1)
        for name in ANALYSER_CODES:
            done = self.results.get(name)
            if done is None or (done[0] < cycle and not self._down(name, cycle - 1)):
                self.results[name] = (cycle, float(sample[name]))  # type: ignore[arg-type]

    def _down(self, name: str, t: float) -> bool:
        return any(n == name and a <= t < b for n, a, b in self.faults)

    def _out_of_class(self, values: dict[str, float]) -> bool:
        station = self.model.station
        return river_class(values, station.water_body) > station.target_class

    def _analyser_flag(self, name: str, start: float, end: float, value: float, maintenance: bool) -> str:
        if maintenance:
            return "M"
        if any(start < m.end + 3600 and m.end < end for m in self.model.maintenance):
            return "C"  # the analysers run their standards after a visit
        if any(n == name and a < end and start < b for n, a, b in self.faults):
            return "D"
        return "T" if value >= ANALYSER_RANGE[name] else "N"

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
        probes = self._probe_stats(hour_start, end)
        # On demand: a probe sample of oxygen below the target class's floor (the logger's
        # linked sampling), or the analysers already on hourly cycles for a result out of
        # class, runs them at the hour's end.
        floor = DO_FLOORS[min(max(self.model.station.target_class, 1), 5) - 1]
        if not maintenance and (self._intensive or probes["do_mg_l"][1] < floor):
            self._run_analysers(end)
        values = {name: self.results[name][1] for name in ANALYSER_CODES}
        self._intensive = not maintenance and self._out_of_class(values)
        pollutants = [
            Pollutant(code, avg=round(avg, 3), min=round(lo, 3), max=round(hi, 3), flag="M" if maintenance else "N")
            for name, code in PROBE_CODES.items()
            for avg, lo, hi in [probes[name]]
        ]
        self.last_hour = {} if maintenance else {name: v[0] for name, v in probes.items()}
        for name, code in ANALYSER_CODES.items():
            value = values[name]
            limit = ANALYSER_RANGE[name]
            flag = self._analyser_flag(name, hour_start, end, value, maintenance)
            if flag == "N":
                self.last_hour[name] = value
            pollutants.append(Pollutant(code, avg=round(min(value, limit), 3), flag=flag))
        return self._frame("2061", end, CommandParameters(data_time=self._period_start(hour_start, 3600), pollutants=tuple(pollutants)))

    def realtime_upload(self, now: float) -> bytes:
        """CN 2011: the probes' values as measured at `now`, stamped with the station's clock."""
        reading = self.model.reading(now)
        flag = "M" if self.model.in_maintenance(now) else "N"
        pollutants = tuple(Pollutant(code, rtd=float(reading[name]), flag=flag)  # type: ignore[arg-type]
                           for name, code in PROBE_CODES.items())
        stamped = self.station_time(now).replace(microsecond=0)
        return self._frame("2011", now, CommandParameters(data_time=stamped, pollutants=pollutants))

    def minute_upload(self, minute_start: float) -> bytes:
        """CN 2051 of the probes for the minute from `minute_start`."""
        reading = self.model.reading(minute_start)
        flag = "M" if self.model.in_maintenance(minute_start) else "N"
        pollutants = tuple(Pollutant(code, avg=float(reading[name]), flag=flag)  # type: ignore[arg-type]
                           for name, code in PROBE_CODES.items())
        return self._frame("2051", minute_start + 60, CommandParameters(data_time=self._period_start(minute_start, 60), pollutants=pollutants))

    def day_upload(self, day_start: float) -> bytes:
        """CN 2031 for the local day from `day_start` (true time), sent at its end: probes
        sampled every 30 min and the analysers' results of the day, a visit left out."""
        end = day_start + DAY_S
        samples: dict[str, list[float]] = {name: [] for name in (*PROBE_CODES, *ANALYSER_CODES)}
        t = day_start
        while t < end:
            if not self.model.in_maintenance(t):
                reading = self.model.reading(t)
                for name in PROBE_CODES:
                    samples[name].append(float(reading[name]))  # type: ignore[arg-type]
                if t % ANALYSER_CYCLE_S == 0:
                    for name in ANALYSER_CODES:
                        samples[name].append(float(reading[name]))  # type: ignore[arg-type]
            t += 1800.0
        pollutants = []
        for name, values in samples.items():
            if not values:
                continue
            code = PROBE_CODES.get(name) or ANALYSER_CODES[name]
            avg = sum(values) / len(values)
            if name in ANALYSER_CODES:
                flag = "T" if avg >= ANALYSER_RANGE[name] else "N"
                pollutants.append(Pollutant(code, avg=round(min(avg, ANALYSER_RANGE[name]), 3), flag=flag))
            else:
                pollutants.append(Pollutant(code, avg=round(avg, 3), min=round(min(values), 3), max=round(max(values), 3), flag="N"))
        return self._frame("2031", end, CommandParameters(data_time=self._period_start(day_start, int(DAY_S)), pollutants=tuple(pollutants)))

    def _period_start(self, start: float, length_s: int) -> datetime:
        """The period's start on the station's clock, to the period: a station stamps its
        hour as 10:00:00 however its clock has drifted within the period."""
        t = self.station_time(start + length_s / 2)
        if length_s == DAY_S:
            return t.replace(hour=0, minute=0, second=0, microsecond=0)
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
