"""A water-quality station on Jiashan's river network, as a function of simulated time.

Temperature and dissolved oxygen follow the sun (algae photosynthesise by day, respire by
night: DO peaks mid-afternoon, bottoms out at dawn); rain washes soil and fertiliser in
(turbidity and nutrients up, DO down, conductivity diluted) and fades over hours; probes foul
and drift until the next maintenance visit, whose readings carry the HJ 212 flag "M"; and a
scripted pollution event pushes NH3-N, TP and CODMn past the station's target class for a
while. A healthy station stays within its target class with margin, so the only water
alarms a run raises are the scripted ones. Pure: the rng and `now` come in.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .county import Station
from .simclock import local_time

# GB 3838-2002 Table 1 ceilings (mg/L) for classes I..V; DO is a floor.
CEILINGS: dict[str, tuple[float, ...]] = {
    "codmn_mg_l": (2.0, 4.0, 6.0, 10.0, 15.0),
    "cod_mg_l": (15.0, 15.0, 20.0, 30.0, 40.0),
    "nh3n_mg_l": (0.15, 0.5, 1.0, 1.5, 2.0),
}
TP_CEILINGS = {"river": (0.02, 0.1, 0.2, 0.3, 0.4), "lake": (0.01, 0.025, 0.05, 0.1, 0.2)}
TN_LAKE_CEILINGS = (0.2, 0.5, 1.0, 1.5, 2.0)
DO_FLOORS = (7.5, 6.0, 5.0, 3.0, 2.0)
BELOW_V = 6

DIURNAL_DO_AMPLITUDE = 0.5  # mg/L either side of the daily mean
PROBE_FOULING_PER_DAY = 0.03  # DO reads this much lower per day since the last cleaning
MAINTENANCE_EVERY_DAYS = 7.0
RAIN_EPISODES_PER_DAY = 0.25
_RUNOFF_RISE_S = 3600.0
_RUNOFF_FADE_S = 4 * 3600.0


def do_saturation(temp_c: float) -> float:
    """mg/L of oxygen in fresh water at sea level (Benson & Krause polynomial fit)."""
    t = temp_c
    return 14.652 - 0.41022 * t + 0.007991 * t * t - 0.000077774 * t * t * t


def river_class(values: dict[str, float], water_body: str = "river") -> int:
    """The worst GB 3838 class over the graded parameters (6 is 劣V)."""
    worst = 1
    for name, ceilings in (*CEILINGS.items(), ("tp_mg_l", TP_CEILINGS.get(water_body, TP_CEILINGS["river"]))):
        if name in values:
            worst = max(worst, next((k + 1 for k, c in enumerate(ceilings) if values[name] <= c), BELOW_V))
    if water_body == "lake" and "tn_mg_l" in values:
        worst = max(worst, next((k + 1 for k, c in enumerate(TN_LAKE_CEILINGS) if values["tn_mg_l"] <= c), BELOW_V))
    if "ph" in values and not 6.0 <= values["ph"] <= 9.0:
        worst = BELOW_V
    if "do_mg_l" in values:
        worst = max(worst, next((k + 1 for k, f in enumerate(DO_FLOORS) if values["do_mg_l"] >= f), BELOW_V))
    return worst


@dataclass(frozen=True, slots=True)
class Episode:
    start: float
    end: float
    level: float  # rain intensity 0..1, or a pollution event's peak class


class Weather:
    """County-wide rain: every station sees the same showers."""

    def __init__(self, rng: random.Random, start: float, end: float) -> None:
        self.episodes: list[Episode] = []
        t = start - 86400.0  # a shower yesterday may still be running off
        while True:
            t += rng.expovariate(RAIN_EPISODES_PER_DAY / 86400.0)
            if t >= end:
                break
            self.episodes.append(Episode(t, t + rng.uniform(1, 6) * 3600, rng.uniform(0.2, 1.0)))

    def add_rain(self, start: float, duration_s: float, intensity: float) -> None:
        self.episodes.append(Episode(start, start + duration_s, intensity))

    def runoff(self, t: float) -> float:
        """0..1: how much rain water is reaching the rivers at `t`."""
        level = 0.0
        for e in self.episodes:
            if t < e.start:
                continue
            rising = e.level * (1 - math.exp(-(min(t, e.end) - e.start) / _RUNOFF_RISE_S))
            level = max(level, rising if t <= e.end else rising * math.exp(-(t - e.end) / _RUNOFF_FADE_S))
        return min(level, 1.0)


class WaterStationModel:
    def __init__(self, station: Station, rng: random.Random, start: float, weather: Weather) -> None:
        self.station = station
        self.rng = rng
        self.weather = weather
        cls = min(max(station.target_class, 1), 5) - 1
        tp = TP_CEILINGS.get(station.water_body, TP_CEILINGS["river"])[cls]
        # Daily means well inside the target class: rain adds at most 15 % of the ceiling.
        share = rng.uniform(0.5, 0.68)
        self.base = {"codmn_mg_l": share * CEILINGS["codmn_mg_l"][cls], "nh3n_mg_l": share * CEILINGS["nh3n_mg_l"][cls], "tp_mg_l": share * tp}
        self.ceiling = {"codmn_mg_l": CEILINGS["codmn_mg_l"][cls], "nh3n_mg_l": CEILINGS["nh3n_mg_l"][cls], "tp_mg_l": tp}
        self.cod_ratio = rng.uniform(2.4, 2.8)  # COD/CODMn of mostly domestic and farm runoff
        self.tn = TN_LAKE_CEILINGS[cls] * share if station.water_body == "lake" else rng.uniform(1.2, 2.4)
        # Oxygen: the summer's warmest dawn, a fouled probe and a shower must still clear the floor.
        floor = DO_FLOORS[cls]
        self.do_share = min(1.2, max(0.85, (floor + 1.0 + DIURNAL_DO_AMPLITUDE) / do_saturation(30.0)))
        self.temp_offset = rng.uniform(-0.8, 0.8)
        self.ph = rng.uniform(7.2, 7.7)
        self.turbidity = rng.uniform(10, 40)
        self.cond = rng.uniform(320, 650)
        self.pollution: list[Episode] = []
        self.maintenance: list[Episode] = []
        day = 86400.0
        t = start - rng.uniform(0, MAINTENANCE_EVERY_DAYS) * day
        self.last_cleaned = t
        while t < start + 60 * day:  # routine visits: ~weekly, late morning, 1-2 h
            morning = t - (t + 8 * 3600) % day + 9 * 3600 + rng.uniform(0, 2) * 3600
            self.maintenance.append(Episode(morning, morning + rng.uniform(1, 2) * 3600, 0))
            t += rng.uniform(MAINTENANCE_EVERY_DAYS - 1, MAINTENANCE_EVERY_DAYS + 1) * day

    def add_pollution(self, start: float, duration_s: float, peak_class: int | None = None) -> None:
        self.pollution.append(Episode(start, start + duration_s, float(peak_class or min(BELOW_V, self.station.target_class + 2))))

    def add_maintenance(self, start: float, duration_s: float) -> None:
        self.maintenance.append(Episode(start, start + duration_s, 0))

    def in_maintenance(self, t: float) -> bool:
        return any(m.start <= t < m.end for m in self.maintenance)

    def reading(self, now: float) -> dict[str, object]:
        """One telemetry object (without ts/seq): the ten parameters and the HJ 212 flag."""
        rng = self.rng
        visit = next((m for m in self.maintenance if m.start <= now < m.end), None)
        if visit is not None:
            self.last_cleaned = visit.end
            return self._calibration(rng)
        local = local_time(now)
        hour = local.hour + local.minute / 60
        season = 17.5 - 11.5 * math.cos(2 * math.pi * (local.timetuple().tm_yday - 20) / 365)
        temp = season + self.temp_offset + 1.2 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.gauss(0, 0.05)
        sun = math.sin(2 * math.pi * (hour - 10) / 24)  # +1 at 16:00, -1 at 04:00
        runoff = self.weather.runoff(now)
        surge = self._pollution(now)
        fouling = PROBE_FOULING_PER_DAY * max(0.0, now - self.last_cleaned) / 86400
        do = do_saturation(temp) * self.do_share + DIURNAL_DO_AMPLITUDE * sun - 0.3 * runoff - fouling
        do *= 1 - 0.55 * surge[1]  # decaying organic load eats the oxygen
        values = {"codmn_mg_l": 0.0, "nh3n_mg_l": 0.0, "tp_mg_l": 0.0}
        for name in values:
            calm = self.base[name] + 0.15 * self.ceiling[name] * runoff
            values[name] = calm + (self._peak_value(name, int(surge[0])) - calm) * surge[1] if surge[1] else calm
        noise = lambda: 1 + rng.gauss(0, 0.015)  # one draw per parameter
        return {
            "temp_c": round(temp, 2),
            "ph": round(self.ph + 0.12 * sun + 0.01 * (now - self.last_cleaned) / 86400 + rng.gauss(0, 0.02), 2),
            "do_mg_l": round(max(0.2, do + rng.gauss(0, 0.05)), 2),
            "codmn_mg_l": round(values["codmn_mg_l"] * noise(), 2),
            "cod_mg_l": round(values["codmn_mg_l"] * self.cod_ratio * noise(), 1),
            "nh3n_mg_l": round(values["nh3n_mg_l"] * noise(), 3),
            "tp_mg_l": round(values["tp_mg_l"] * noise(), 3),
            "tn_mg_l": round((self.tn + 0.5 * runoff + 2.0 * surge[1]) * noise(), 2),
            "turbidity_ntu": round(self.turbidity * (1 + 4 * runoff) * noise(), 1),
            "cond_us_cm": round(self.cond * (1 - 0.25 * runoff) * noise(), 0),
            "flag": "N",
        }

    def _pollution(self, t: float) -> tuple[float, float]:
        """(peak class, 0..1 how far towards it) of the strongest event running at `t`."""
        best = (0.0, 0.0)
        for e in self.pollution:
            if not e.start <= t < e.end:
                continue
            span = e.end - e.start
            rise, fall = min(1200.0, 0.25 * span), min(1800.0, 0.3 * span)
            share = min(1.0, (t - e.start) / rise, (e.end - t) / fall)
            if share > best[1]:
                best = (e.level, share)
        return best

    def _peak_value(self, name: str, peak_class: int) -> float:
        """A value in the middle of class `peak_class` (劣V: 40 % past the class V ceiling)."""
        ceilings = TP_CEILINGS.get(self.station.water_body, TP_CEILINGS["river"]) if name == "tp_mg_l" else CEILINGS[name]
        if peak_class >= BELOW_V:
            return 1.4 * ceilings[4]
        lower = ceilings[peak_class - 2] if peak_class >= 2 else 0.0
        return max(self.base[name], (lower + ceilings[peak_class - 1]) / 2)

    def _calibration(self, rng: random.Random) -> dict[str, object]:
        # Probes out of the river: in buffers and standards, analysers running blanks.
        return {
            "temp_c": round(rng.uniform(20, 24), 2), "ph": round(7.0 + rng.gauss(0, 0.02), 2),
            "do_mg_l": round(8.8 + rng.gauss(0, 0.1), 2), "codmn_mg_l": round(rng.uniform(0, 0.2), 2),
            "cod_mg_l": round(rng.uniform(0, 2), 1), "nh3n_mg_l": round(rng.uniform(0, 0.02), 3),
            "tp_mg_l": round(rng.uniform(0, 0.005), 3), "tn_mg_l": round(rng.uniform(0, 0.05), 2),
            "turbidity_ntu": round(rng.uniform(0, 1), 1), "cond_us_cm": round(1413 + rng.gauss(0, 5), 0),
            "flag": "M",
        }
