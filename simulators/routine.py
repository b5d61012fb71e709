"""An elderly person's day in Jiashan (Asia/Shanghai time): what they are doing when.

Each person has habits (when they rise and go to bed, whether they nap, when they take their
walk) and each day is drawn around them: asleep until early morning, perhaps a trip to the
toilet in the night, breakfast, lunch, a nap, an afternoon walk out of the front door,
dinner, bed. A day's plan is drawn from an rng seeded by the person and the date, so it is the
same whichever order the simulator asks for days in, and at whatever scale it runs.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .simclock import LOCAL_TZ


class Activity(StrEnum):
    SLEEP = "sleep"
    TOILET = "toilet"  # up at night for a few minutes
    AWAKE = "awake"  # pottering about at home
    MEAL = "meal"
    NAP = "nap"
    WALK = "walk"  # out of the house for a walk (the watch's workout mode)
    OUT = "out"  # out of the house on an errand: the market, the clinic, relatives
    FALLEN = "fallen"  # on the floor: scripted, never planned
    STILL = "still"  # sitting motionless for hours: scripted, never planned


@dataclass(frozen=True, slots=True)
class Traits:
    in_bed: bool
    moving: bool  # triggers the home motion sensor
    steps_per_min: float
    hr_offset: float


TRAITS: dict[Activity, Traits] = {
    Activity.SLEEP: Traits(True, False, 0.0, -8.0),
    Activity.TOILET: Traits(False, True, 4.0, 3.0),
    Activity.AWAKE: Traits(False, True, 8.0, 0.0),
    Activity.MEAL: Traits(False, True, 3.0, 4.0),
    Activity.NAP: Traits(True, False, 0.0, -5.0),
    Activity.WALK: Traits(False, False, 100.0, 22.0),
    Activity.OUT: Traits(False, False, 30.0, 8.0),
    Activity.FALLEN: Traits(False, False, 0.0, 15.0),
    Activity.STILL: Traits(False, False, 0.0, -3.0),
}


@dataclass(frozen=True, slots=True)
class Habits:
    wake_h: float
    bed_h: float
    walk_h: float
    walk_min: float
    naps: float  # probability of a nap on a given day
    naps_in_bed: bool
    night_toilet: float  # probability of getting up at night
    charge_below_pct: float  # puts the wearable on its charger in the evening below this


def draw_habits(rng: random.Random) -> Habits:
    return Habits(
        wake_h=rng.gauss(6.2, 0.4),
        bed_h=rng.gauss(21.2, 0.4),
        walk_h=rng.uniform(14.5, 16.5),
        walk_min=rng.uniform(25, 60),
        naps=rng.uniform(0.3, 0.9),
        naps_in_bed=rng.random() < 0.6,
        night_toilet=rng.uniform(0.3, 0.9),
        charge_below_pct=rng.uniform(45, 75),
    )


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Activities from local midnight to the next: `kinds[i]` from `starts[i]` on."""

    day_start: float
    day_end: float
    starts: tuple[float, ...]
    kinds: tuple[Activity, ...]

    def at(self, t: float) -> Activity:
        return self.kinds[max(0, bisect.bisect_right(self.starts, t) - 1)]

    def bounds(self, t: float) -> tuple[float, float]:
        """When the activity going on at `t` began and ends (clipped to this day)."""
        i = bisect.bisect_right(self.starts, t)
        return self.starts[max(0, i - 1)], self.starts[i] if i < len(self.starts) else self.day_end

    def next_change(self, t: float) -> float:
        """The first change after `t` (the day's end if none)."""
        i = bisect.bisect_right(self.starts, t)
        return self.starts[i] if i < len(self.starts) else self.day_end


# Away from home: the front door opens, the wearable carries a fix, the home is quiet.
AWAY: frozenset[Activity] = frozenset({Activity.WALK, Activity.OUT})
# Errands of an elderly person living alone: (name, odds a day, local start hours, minutes).
OUTINGS: tuple[tuple[str, float, tuple[float, float], tuple[float, float]], ...] = (
    ("market", 0.5, (7.3, 8.8), (40.0, 90.0)),
    ("clinic", 0.08, (8.5, 10.0), (90.0, 180.0)),
    ("relatives", 0.12, (13.0, 15.0), (120.0, 240.0)),
)


def local_midnight(t: float) -> float:
    local = datetime.fromtimestamp(t, LOCAL_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def plan_day(habits: Habits, day_start: float, rng: random.Random) -> DayPlan:
    """The plan for the local day beginning at `day_start` (a local midnight)."""
    day_end = (datetime.fromtimestamp(day_start, LOCAL_TZ) + timedelta(days=1)).timestamp()

    def at(hour: float, jitter_min: float = 0.0) -> float:
        return day_start + hour * 3600 + rng.gauss(0, jitter_min) * 60

    wake = at(habits.wake_h, 15)
    segments: list[tuple[float, Activity]] = [(day_start, Activity.SLEEP)]
    if rng.random() < habits.night_toilet:
        up = at(rng.uniform(1.5, 4.5))
        segments += [(up, Activity.TOILET), (up + rng.uniform(4, 12) * 60, Activity.SLEEP)]
    segments.append((max(wake, segments[-1][0] + 600), Activity.AWAKE))
    for hour, minutes in ((max(habits.wake_h + 0.6, 6.8), 25), (11.5, 30), (17.5, 35)):
        begin = max(at(hour, 15), segments[-1][0] + 600)
        segments += [(begin, Activity.MEAL), (begin + rng.uniform(0.8, 1.2) * minutes * 60, Activity.AWAKE)]
        if hour == 11.5 and rng.random() < habits.naps:
            nap = segments[-1][0] + rng.uniform(15, 40) * 60
            segments += [(nap, Activity.NAP), (nap + rng.uniform(40, 80) * 60, Activity.AWAKE)]
        if hour == 11.5:
            walk = max(at(habits.walk_h, 20), segments[-1][0] + 600)
            segments += [(walk, Activity.WALK), (walk + habits.walk_min * rng.uniform(0.8, 1.2) * 60, Activity.AWAKE)]
    segments.append((max(at(habits.bed_h, 20), segments[-1][0] + 1800), Activity.SLEEP))
    segments = _with_outings(segments, habits, day_start)
    segments = [s for s in segments if s[0] < day_end]
    return DayPlan(day_start, day_end, tuple(s[0] for s in segments), tuple(s[1] for s in segments))


def _with_outings(
    segments: list[tuple[float, Activity]], habits: Habits, day_start: float
) -> list[tuple[float, Activity]]:
    """Errands fitted into time spent pottering at home. Drawn from an rng of their own (by
    person and day), so that the rest of the day is what it was before errands existed."""
    rng = random.Random(f"outings:{day_start:.0f}:{habits.walk_h!r}")
    for _name, odds, (first_h, last_h), (short_min, long_min) in OUTINGS:
        if rng.random() >= odds:
            continue
        begin = day_start + rng.uniform(first_h, last_h) * 3600
        end = begin + rng.uniform(short_min, long_min) * 60
        for i, (start, act) in enumerate(segments):
            stop = segments[i + 1][0] if i + 1 < len(segments) else math.inf
            if act is Activity.AWAKE and start + 300 <= begin and end + 300 <= stop:
                segments[i + 1 : i + 1] = [(begin, Activity.OUT), (end, Activity.AWAKE)]
                break
    return segments
