"""An elderly person living alone: their wearable and the sensors in their home.

The person follows their day plan (simulators.routine); the devices show it the way real
ones do. The wearable reports heart rate, SpO2, skin temperature, the day's steps, its
battery (draining on the wrist, charged in the evening) and a position near home or along
the afternoon walk. The home sensors report changes: the bed when they lie down or get up,
the front door when they go out and come back, motion while they move about (a PIR that
clears two minutes after its last detection), smoke/gas/leak detectors when they trip, and
every sensor checks in hourly so the platform knows it is alive.

Scripted events bend the day: a fall (cancelled with "I'm OK" or not, then lying still),
an SOS press (SOS, fall and "I'm OK" go on the alert topic with an event id; the device
side repeats them until receipted, see simulators.alert_retry), abnormal vitals, hours without moving, a smoke/gas/leak hazard. Pure: the rng
and `now` come in; `wake(now)` returns what the devices send up to `now`.

The wearable follows its profile (simulators.profiles): a spot-sampling watch carries heart
rate and SpO2 only every few minutes (continuously while out walking) and re-measures an
out-of-range sample a minute later; it stores what it measured during a coverage gap and
forwards it in a shuffled burst; its clock is minutes off, and restarts at 2000-01-01 after
the battery ran flat until network time is back. Such a reading carries `_stored` (sent
with its old time) or `_reason` (the dead letter it must get) for the engine.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from typing import Any

from .county import Person
from .profiles import CLOCK_RESET_EPOCH, CONTINUOUS, WearableProfile
from .routine import AWAY, TRAITS, Activity, DayPlan, draw_habits, local_midnight, plan_day

HOME_HEARTBEAT_S = 3600.0  # supervision checks home sensors over 4 h × 3 on the platform
TEMPERATURE_EVERY_S = 900.0
MOTION_HOLD_S = 120.0  # a PIR reports "clear" this long after its last detection
MOTION_MEAN_GAP_S = 300.0  # someone moving about at home trips the PIR every ~5 min
BATTERY_DRAIN_PCT_H = 1.6
BATTERY_CHARGE_PCT_H = 60.0
# In the emergency range of every default and per-person threshold in the registry (the
# default emergency range: < 35 or > 150 bpm, SpO2 < 85 %): real episodes that need help.
VITALS = {"heart_rate_high": (156.0, 175.0), "heart_rate_low": (28.0, 34.0), "spo2_low": (78.0, 84.0)}
HAZARDS = ("smoke", "gas", "water_leak")
CELL_FIX_SHARE = 0.3  # alerts out of the house that carry a cell fix rather than GNSS
_M_PER_DEG = 111_320.0

Emitted = tuple[str, dict[str, Any], bool]  # (channel: "wearable", "alert" or a sensor id, payload with ts, critical)


class PersonModel:
    def __init__(
        self, person: Person, rng: random.Random, start: float, seed_text: str, profile: WearableProfile = CONTINUOUS
    ) -> None:
        self.person = person
        self.profile = profile
        # The profile's own draws come from their own rng: a continuous watch's day is the
        # same as before profiles existed.
        self.prng = random.Random(f"{seed_text}:wearable")
        self.drift = self.prng.uniform(*profile.drift_s)
        self.next_spot = start + self.prng.uniform(0, profile.spot_every_s)
        self.gap = self._next_gap(start)
        self.stored: list[dict[str, Any]] = []
        self.flat = False
        self.reset_at: float | None = None  # power-on after a flat battery, clock at 2000-01-01
        self.spot_samples = 0
        # What the simulator can say it did, for the detection table: vitals samples taken
        # during each scripted episode, and the coverage gaps that held readings back.
        self.episode_samples: dict[tuple[float, str], int] = {}
        self.gap_began: float | None = None
        self.gaps: list[tuple[float, float]] = []
        self.rng = rng
        self.seed_text = seed_text
        self.habits = draw_habits(rng)
        beta_blocked = float(person.thresholds.get("hr_low_bpm", 40.0)) < 40.0
        self.base_hr = rng.uniform(62, 78) - (10 if beta_blocked else 0)
        lung = float(person.thresholds.get("spo2_low_pct", 90.0)) < 90.0
        self.base_spo2 = rng.uniform(91.5, 93.0) if lung else rng.uniform(95.5, 97.5)
        self.battery = rng.uniform(35, 100)
        self.charging = False
        self.walk_radius = rng.uniform(120, 300)
        self.walk_heading = rng.uniform(0, 2 * math.pi)
        self._plan: DayPlan | None = None
        self.act = self._planned(start)
        self.at_home = self.act not in AWAY
        self.position = (person.lat, person.lon)
        self.kinds = dict(person.home_sensors)
        self.values: dict[str, Any] = {sid: self._initial(kind) for sid, kind in self.kinds.items()}
        self.next_report = start + rng.uniform(0, person.interval_s)
        self.next_check_in = {sid: start + rng.uniform(0, self._check_in_every(k)) for sid, k in self.kinds.items()}
        self.steps = int(max(0.0, (start - local_midnight(start)) / 3600 - 7) * rng.uniform(150, 400))
        self.steps_day = local_midnight(start)
        self.last_vitals = start
        self.last_motion = -math.inf
        self.motion_checked = start
        self.pending: list[tuple[float, int, str, str, Any, bool]] = []  # (t, n, what, channel, value, critical)
        self.overrides: list[tuple[float, float, str]] = []
        self.boundaries: list[float] = []
        self._n = 0
        self._alerts_sent = 0

    # --- scripted events ---------------------------------------------------------------

    def add_fall(self, at: float, cancel_after_s: float | None, lying_s: float) -> None:
        self._push(at, "flag", "wearable", "fall", True)
        if cancel_after_s is not None:
            self._push(at + cancel_after_s, "flag", "wearable", "cancel", True)
            self._override(at, at + cancel_after_s + 30, "fallen")  # gets up after pressing "I'm OK"
        else:
            self._override(at, at + lying_s, "fallen")

    def add_sos(self, at: float) -> None:
        self._push(at, "flag", "wearable", "sos", True)

    def add_vitals(self, kind: str, at: float, duration_s: float) -> None:
        if kind not in VITALS:
            raise ValueError(f"no abnormal vitals {kind!r}; expected one of {', '.join(VITALS)}")
        self._override(at, at + duration_s, kind)

    def add_inactivity(self, at: float, duration_s: float) -> None:
        self._override(at, at + duration_s, "still")

    def add_hazard(self, kind: str, at: float, duration_s: float) -> None:
        if kind not in HAZARDS or kind not in self.kinds.values():
            raise ValueError(f"{self.person.person_id} has no {kind} sensor")
        self._override(at, at + duration_s, kind)

    # --- running ---------------------------------------------------------------------------

    def next_due(self, now: float) -> float:
        i = bisect.bisect_right(self.boundaries, now)
        return min(
            self.next_report,
            self._plan_for(now).next_change(now),
            self.pending[0][0] if self.pending else math.inf,
            min(self.next_check_in.values(), default=math.inf),
            self.boundaries[i] if i < len(self.boundaries) else math.inf,
        )

    def wake(self, now: float) -> list[Emitted]:
        out: list[Emitted] = []
        act = self.activity(now)
        if act is not self.act:
            self._transition(act, now)
        self._sample_motion(now)
        for sid, kind in self.kinds.items():
            if kind in HAZARDS and self.values[sid] != (hazard := self._override_on(kind, now)):
                self.values[sid] = hazard
                out.append((sid, {"ts": now, "kind": kind, "value": hazard}, True))
        while self.pending and self.pending[0][0] <= now:
            t, _, what, channel, value, critical = heapq.heappop(self.pending)
            out.extend(self._pending(t, what, channel, value, critical))
        for sid, due in self.next_check_in.items():
            if due <= now:
                kind = self.kinds[sid]
                value = self._room_temperature(due) if kind == "temperature" else self.values[sid]
                out.append((sid, {"ts": due, "kind": kind, "value": value}, False))
                self.next_check_in[sid] = due + self._check_in_every(kind)
        if self.next_report <= now:
            reading = self._wearable(self.next_report, {})
            if reading is not None:
                out.extend(self._send(self.next_report, reading))
            self.next_report += self.person.interval_s
        return out

    def device_time(self, t: float) -> float:
        """What the watch's clock says at true time `t`."""
        if self.reset_at is not None:
            if t < self.reset_at + self.profile.resync_s:
                return CLOCK_RESET_EPOCH + (t - self.reset_at)
            self.reset_at = None  # network time is back
        return t + self.drift

    def vitals_on(self, t: float) -> bool:
        """Whether the watch measures heart rate and SpO2 at `t` (and schedules the next)."""
        p = self.profile
        if p.spot_every_s <= 0 or self.activity(t) is Activity.WALK:
            return True
        if t < self.next_spot:
            return False
        self.next_spot = t + p.spot_every_s
        return True

    def _send(self, t: float, reading: dict[str, Any]) -> list[Emitted]:
        if "hr_bpm" in reading:
            if self.vitals_on(t):
                self.spot_samples += 1
                for a, b, kind in self.overrides:
                    if a <= t < b and kind in VITALS:
                        self.episode_samples[(a, kind)] = self.episode_samples.get((a, kind), 0) + 1
                if self.profile.spot_every_s > 0 and self._out_of_range(reading):
                    self.next_spot = min(self.next_spot, t + self.profile.confirm_after_s)
            else:
                del reading["hr_bpm"], reading["spo2_pct"]
        reading["ts"] = self.device_time(t)
        if reading["ts"] < CLOCK_RESET_EPOCH + 366 * 86400:
            reading["_reason"] = "time_too_old"
        if self._in_gap(t):
            if not self.stored:
                self.gap_began = t
            self.stored.append(reading)
            return []
        out: list[Emitted] = []
        if self.stored:
            self.gaps.append((self.gap_began if self.gap_began is not None else t, t))
            burst, self.stored = self.stored, []
            self.prng.shuffle(burst)
            out += [("wearable", {**r, "_stored": True}, False) for r in burst]
        out.append(("wearable", reading, False))
        return out

    def _out_of_range(self, reading: dict[str, Any]) -> bool:
        th = self.person.thresholds
        hr, spo2 = reading["hr_bpm"], reading["spo2_pct"]
        return bool(
            hr < float(th.get("hr_low_bpm", 40.0))
            or hr > float(th.get("hr_high_bpm", 130.0))
            or spo2 < float(th.get("spo2_low_pct", 90.0))
        )

    def _next_gap(self, after: float) -> tuple[float, float]:
        p = self.profile
        if p.gaps_per_day <= 0:
            return (math.inf, math.inf)
        begin = after + self.prng.expovariate(p.gaps_per_day / 86400)
        return (begin, begin + self.prng.uniform(*p.gap_s))

    def _in_gap(self, t: float) -> bool:
        while t >= self.gap[1]:
            self.gap = self._next_gap(self.gap[1])
        return self.gap[0] <= t

    def activity(self, t: float) -> Activity:
        for start, end, kind in self.overrides:
            if start <= t < end and kind in ("fallen", "still"):
                return Activity.FALLEN if kind == "fallen" else Activity.STILL
        return self._planned(t)

    # --- internals -------------------------------------------------------------------------

    def _transition(self, act: Activity, now: float) -> None:
        home = self.at_home if act in (Activity.FALLEN, Activity.STILL) else act not in AWAY
        in_bed = TRAITS[act].in_bed and (act is not Activity.NAP or self.habits.naps_in_bed)
        for sid, kind in self.kinds.items():
            if kind == "bed" and self.values[sid] != in_bed:
                self._push(now, "set", sid, in_bed)
            if kind == "door" and home != self.at_home:
                self._push(now + 2, "set", sid, True)
                self._push(now + self.rng.uniform(10, 25), "set", sid, False)
        if home and TRAITS[act].moving:
            self._push(now + self.rng.uniform(5, 40), "motion", "", True)
        self.act, self.at_home = act, home

    def _sample_motion(self, now: float) -> None:
        if self.at_home and TRAITS[self.act].moving:
            odds = 1 - math.exp(-(now - self.motion_checked) / MOTION_MEAN_GAP_S)
            if self.rng.random() < odds:
                self._push(now, "motion", "", True)
        self.motion_checked = now

    def _pending(self, t: float, what: str, channel: str, value: Any, critical: bool) -> list[Emitted]:
        if what == "flag":
            return self._alert(t, value)
        if what == "motion":
            if t <= self.last_motion or not (self.at_home and TRAITS[self.activity(t)].moving):
                return []  # seen already, or planned before a fall or a still spell began
            self.last_motion = t
            self._push(t + MOTION_HOLD_S, "clear", "", False)
            return self._set_all("motion", t, True)
        if what == "clear":
            return self._set_all("motion", t, False) if self.last_motion + MOTION_HOLD_S <= t else []
        if self.values.get(channel) == value:
            return []
        self.values[channel] = value
        return [(channel, {"ts": t, "kind": self.kinds[channel], "value": value}, critical)]

    def _alert(self, t: float, alert_type: str) -> list[Emitted]:
        """An SOS, fall or "I'm OK" goes on the alert topic with the watch's own event id,
        and the fix when the wearer is out (at home the platform knows the address)."""
        reading = self._wearable(t, {})  # the watch as it is at that moment (flat: nothing)
        if reading is None:
            return []
        self._alerts_sent += 1
        alert: dict[str, Any] = {"ts": self.device_time(t), "event_id": f"{alert_type}-{int(t)}-{self._alerts_sent}", "type": alert_type}
        if not self.at_home:
            acc_m = round(self.rng.uniform(5, 25), 1)
            lat, lon = reading["lat"], reading["lon"]
            if self.profile.spot_every_s > 0 and self.prng.random() < CELL_FIX_SHARE:
                # No GNSS fix in time (indoors at the market, under a roof): the cell's.
                acc_m = round(self.prng.uniform(300, 1500), 0)
                off = self.prng.uniform(0, acc_m) / _M_PER_DEG
                bearing = self.prng.uniform(0, 2 * math.pi)
                lat, lon = round(lat + off * math.sin(bearing), 6), round(lon + off * math.cos(bearing), 6)
            alert.update(lat=lat, lon=lon, acc_m=acc_m)
        return [("alert", alert, True)]

    def _set_all(self, kind: str, t: float, value: bool) -> list[Emitted]:
        out = []
        for sid, k in self.kinds.items():
            if k == kind and (value or self.values[sid] != value):
                self.values[sid] = value
                out.append((sid, {"ts": t, "kind": kind, "value": value}, False))
        return out

    def _wearable(self, t: float, flags: dict[str, bool]) -> dict[str, Any] | None:
        rng, act = self.rng, self.activity(t)
        day = self._plan_for(t)
        hours = max(0.0, t - self.last_vitals) / 3600
        self.last_vitals = t
        if self.steps_day != day.day_start:
            self.steps, self.steps_day = 0, day.day_start
        evening = 19 <= (t - day.day_start) / 3600 < 21
        # Whatever is scripted happens with the watch on the wrist, not on its charger.
        scripted = bool(flags) or any(a <= t < b and kind not in HAZARDS for a, b, kind in self.overrides)
        if not self.charging and not scripted and act is Activity.AWAKE and evening and self.battery < self.habits.charge_below_pct:
            self.charging = True
        elif self.charging and (self.battery >= 99.5 or act not in (Activity.AWAKE, Activity.MEAL) or scripted):
            self.charging = False
        self.battery = min(100.0, max(0.0, self.battery + hours * (BATTERY_CHARGE_PCT_H if self.charging else -BATTERY_DRAIN_PCT_H)))
        if self.battery <= 0:
            self.flat = True
            return None  # flat: the wearable is silent until it is charged
        if self.flat:
            self.flat = False
            if self.profile.reset_after_flat:
                self.reset_at = t
        msg: dict[str, Any] = {"ts": t}
        if not self.charging:
            self.steps += int(TRAITS[act].steps_per_min * hours * 60 * rng.uniform(0.6, 1.4))
            hr = self.base_hr + TRAITS[act].hr_offset + rng.gauss(0, 2.0)
            spo2 = min(100.0, self.base_spo2 + rng.gauss(0, 0.5))
            for kind in ("heart_rate_high", "heart_rate_low", "spo2_low"):
                if self._override_on(kind, t):
                    lo, hi = VITALS[kind]
                    hr, spo2 = (rng.uniform(lo, hi), spo2) if kind != "spo2_low" else (hr, rng.uniform(lo, hi))
            skin = 33.6 + (0.7 if TRAITS[act].in_bed else 0.0) + rng.gauss(0, 0.15)
            msg.update(hr_bpm=round(hr, 1), spo2_pct=round(spo2, 1), skin_temp_c=round(skin, 2))
        msg.update(steps=self.steps, battery_pct=round(self.battery, 1))
        lat, lon = self._where(t, act)
        msg.update(lat=round(lat, 6), lon=round(lon, 6), **flags)
        return msg

    def _where(self, t: float, act: Activity) -> tuple[float, float]:
        p = self.person
        if act is Activity.WALK:
            begin, end = self._plan_for(t).bounds(t)
            angle = self.walk_heading + math.pi + 2 * math.pi * (t - begin) / max(1.0, end - begin)
            dx = self.walk_radius * (math.cos(self.walk_heading) + math.cos(angle))
            dy = self.walk_radius * (math.sin(self.walk_heading) + math.sin(angle))
            self.position = (p.lat + dy / _M_PER_DEG, p.lon + dx / (_M_PER_DEG * math.cos(math.radians(p.lat))))
        elif act is Activity.OUT:
            # At the market, the clinic or a relative's: 0.5-3 km from home.
            begin, _ = self._plan_for(t).bounds(t)
            where = random.Random(f"{self.seed_text}:out:{begin:.0f}")
            bearing, metres = where.uniform(0, 2 * math.pi), where.uniform(500, 3000)
            self.position = (
                p.lat + metres * math.sin(bearing) / _M_PER_DEG,
                p.lon + metres * math.cos(bearing) / (_M_PER_DEG * math.cos(math.radians(p.lat))),
            )
        elif self.at_home:
            jitter = 3.0 / _M_PER_DEG  # a wrist-worn GNSS fix indoors wanders a few metres
            self.position = (p.lat + self.rng.uniform(-jitter, jitter), p.lon + self.rng.uniform(-jitter, jitter))
        return self.position  # fallen or still outdoors: where it happened

    def _room_temperature(self, t: float) -> float:
        hour = (t - self._plan_for(t).day_start) / 3600
        return round(21.0 + 2.0 * math.sin(2 * math.pi * (hour - 9) / 24) + self.rng.gauss(0, 0.2), 1)

    def _planned(self, t: float) -> Activity:
        return self._plan_for(t).at(t)

    def _plan_for(self, t: float) -> DayPlan:
        plan = self._plan
        if plan is None or not plan.day_start <= t < plan.day_end:
            start = local_midnight(t)
            plan = self._plan = plan_day(self.habits, start, random.Random(f"{self.seed_text}:{start:.0f}"))
        return plan

    def _override(self, start: float, end: float, kind: str) -> None:
        self.overrides.append((start, end, kind))
        bisect.insort(self.boundaries, start)
        bisect.insort(self.boundaries, end)

    def _override_on(self, kind: str, t: float) -> bool:
        return any(start <= t < end and k == kind for start, end, k in self.overrides)

    def _push(self, t: float, what: str, channel: str, value: Any, critical: bool = False) -> None:
        self._n += 1
        heapq.heappush(self.pending, (t, self._n, what, channel, value, critical or what == "flag"))

    def _initial(self, kind: str) -> Any:
        if kind == "bed":
            return TRAITS[self.act].in_bed
        return 21.0 if kind == "temperature" else False

    @staticmethod
    def _check_in_every(kind: str) -> float:
        return TEMPERATURE_EVERY_S if kind == "temperature" else HOME_HEARTBEAT_S
