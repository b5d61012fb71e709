"""The detection table: what the simulator injected against what the platform raised.

Pure: the engine lists what it injected (`Injected`), the caller reads the platform's person
and device alarms of the run (`Raised`), and `detection_table` matches them: an injected
event is detected when an alarm of an expected type was raised for that person after the
event began. Person alarms that match nothing injected are false alarms, reported per
person-week (the published figure for fall wearables is about 0.2).

Abnormal vitals count only if the wearable measured them (two samples or more during the
episode): a spot-sampling watch cannot report a five-minute episode between two samples,
and no platform can raise what no device measured. Those are listed, not hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

WEEK_S = 7 * 86400.0
# How early an alarm may be stamped before the event it matches: a watch clock minutes fast.
CLOCK_SLACK_S = 600.0
# How long after the run an alarm still counts: platform timers (fall window, inactivity,
# not up by) fire after the event, and a run replayed unpaced hands them a backlog.
GRACE_S = 6 * 3600.0

# Injected kind -> the alarm types that detect it.
EXPECTED: dict[str, tuple[str, ...]] = {
    "sos": ("sos",),
    "fall": ("fall_uncancelled",),  # not cancelled: lying on the floor
    "fall (cancelled)": ("fall",),
    "heart_rate_high": ("heart_rate_high",),
    "heart_rate_low": ("heart_rate_low",),
    "spo2_low": ("spo2_low",),
    "inactivity": ("inactivity", "not_in_bed", "not_up"),
    "smoke": ("smoke",),
    "gas": ("gas",),
    "water_leak": ("water_leak",),
    "silent": ("device_silent",),
}
LIFE_SAFETY = frozenset(
    {"sos", "fall", "heart_rate_high", "heart_rate_low", "spo2_low", "inactivity", "smoke", "gas"}
)
# Person alarms that claim something happened to the person (a battery or a silent device
# is about the device, and is not counted as a false alarm).
PERSON_ALARMS = frozenset(
    {
        "sos", "fall", "fall_uncancelled", "heart_rate_high", "heart_rate_low", "spo2_low",
        "inactivity", "bed_exit_night", "door_open_night", "not_in_bed", "not_up", "smoke",
        "gas", "water_leak",
    }
)


# Alarms raised by the platform's timers, on its own clock. In an accelerated replay the
# devices' data is up to `duration` behind that clock, so these timers run out before the
# motion or the bed event that would have stopped them arrives: false alarms of these types
# are measured only in a run at 1× (`live`), and listed apart otherwise.
TIMER_ALARMS = frozenset({"inactivity", "bed_exit_night", "door_open_night", "not_in_bed", "not_up"})


@dataclass(frozen=True, slots=True)
class Injected:
    kind: str  # a key of EXPECTED
    person_id: str
    start: float  # simulated Unix seconds
    end: float
    observable: bool = True  # False: the device never measured it


@dataclass(frozen=True, slots=True)
class Raised:
    alarm_type: str
    person_id: str
    first_seen: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    injected: int
    detected: int
    unmeasured: int
    latency_min: float | None  # median, event start to first matching alarm

    @property
    def missed(self) -> int:
        return self.injected - self.detected


@dataclass(frozen=True, slots=True)
class DetectionTable:
    rows: tuple[Row, ...]
    persons: int
    duration_s: float
    false_alarms: dict[str, int] = field(default_factory=dict)  # alarm type -> count
    live: bool = True  # a run at 1×: the platform's timers and the devices share one clock
    replay_timer_alarms: dict[str, int] = field(default_factory=dict)  # not live: set apart

    @property
    def life_safety(self) -> tuple[int, int]:
        """(detected, injected) over the life-safety kinds the devices measured."""
        rows = [r for r in self.rows if r.kind in LIFE_SAFETY]
        return sum(r.detected for r in rows), sum(r.injected for r in rows)

    @property
    def detection_pct(self) -> float | None:
        detected, injected = self.life_safety
        return None if injected == 0 else 100.0 * detected / injected

    @property
    def missed_sos(self) -> int:
        return sum(r.missed for r in self.rows if r.kind == "sos")

    @property
    def person_weeks(self) -> float:
        return self.persons * self.duration_s / WEEK_S

    @property
    def false_per_person_week(self) -> float | None:
        weeks = self.person_weeks
        return None if weeks <= 0 else sum(self.false_alarms.values()) / weeks

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": [{**asdict(r), "missed": r.missed} for r in self.rows],
            "persons": self.persons,
            "duration_s": self.duration_s,
            "false_alarms": dict(self.false_alarms),
            "detection_pct": self.detection_pct,
            "missed_sos": self.missed_sos,
            "person_weeks": round(self.person_weeks, 3),
            "false_per_person_week": self.false_per_person_week,
            "live": self.live,
            "replay_timer_alarms": dict(self.replay_timer_alarms),
        }

    def format(self) -> str:
        lines = [
            "detection (injected by the simulator → raised by the platform):",
            f"  {'event':<18} {'injected':>8} {'detected':>8} {'missed':>6} {'unmeasured':>10} {'median min':>10}",
        ]
        for r in self.rows:
            latency = "-" if r.latency_min is None else f"{r.latency_min:.1f}"
            lines.append(
                f"  {r.kind:<18} {r.injected:>8} {r.detected:>8} {r.missed:>6} {r.unmeasured:>10} {latency:>10}"
            )
        detected, injected = self.life_safety
        pct = "n/a" if self.detection_pct is None else f"{self.detection_pct:.1f} %"
        rate = self.false_per_person_week
        false_text = ", ".join(f"{k} {v}" for k, v in sorted(self.false_alarms.items())) or "none"
        lines += [
            f"  life-safety events detected: {detected}/{injected} ({pct}); missed SOS: {self.missed_sos}",
            (
                f"  false alarms: {sum(self.false_alarms.values())} ({false_text}) over "
                f"{self.person_weeks:.2f} person-weeks = "
                + ("n/a" if rate is None else f"{rate:.2f} per person-week")
            ),
        ]
        if not self.live:
            apart = ", ".join(f"{k} {v}" for k, v in sorted(self.replay_timer_alarms.items())) or "none"
            lines.append(
                f"  accelerated replay: timer alarms not explained by an injected event set apart ({apart}); "
                "they, and silences, are measured at 1× only"
            )
        return "\n".join(lines)


def detection_table(
    injected: Sequence[Injected],
    raised: Iterable[Raised],
    *,
    persons: int,
    duration_s: float,
    run_end: float,
    live: bool = True,
) -> DetectionTable:
    alarms = sorted(raised, key=lambda a: a.first_seen)
    used: set[int] = set()  # alarms that matched an injected event
    by_kind: dict[str, list[Injected]] = {}
    for event in injected:
        by_kind.setdefault(event.kind, []).append(event)
    rows = []
    for kind, events in sorted(by_kind.items(), key=lambda kv: list(EXPECTED).index(kv[0])):
        detected, unmeasured, latencies = 0, 0, []
        for event in events:
            if not event.observable:
                unmeasured += 1
            hits = [
                i
                for i, a in enumerate(alarms)
                if a.person_id == event.person_id
                and a.alarm_type in EXPECTED[kind]
                and event.start - CLOCK_SLACK_S <= a.first_seen <= max(event.end, run_end) + GRACE_S
            ]
            # Every alarm the event explains is not a false one, detected or not.
            used.update(
                i
                for i, a in enumerate(alarms)
                if a.person_id == event.person_id
                and a.alarm_type in _explained_by(kind)
                and a.first_seen >= event.start - CLOCK_SLACK_S
            )
            if not event.observable:
                continue
            if hits:
                detected += 1
                latencies.append(max(0.0, alarms[hits[0]].first_seen - event.start) / 60)
        measured = len(events) - unmeasured
        rows.append(Row(kind, measured, detected, unmeasured, _median(latencies)))
    false: dict[str, int] = {}
    apart: dict[str, int] = {}
    for i, a in enumerate(alarms):
        if i not in used and a.alarm_type in PERSON_ALARMS:
            into = apart if not live and a.alarm_type in TIMER_ALARMS else false
            into[a.alarm_type] = into.get(a.alarm_type, 0) + 1
    return DetectionTable(tuple(rows), persons, duration_s, false, live, apart)


def _explained_by(kind: str) -> frozenset[str]:
    """The alarms an injected event legitimately causes, besides the one that detects it:
    a fall alerts (`fall`) before it is uncancelled, lying still stops all motion."""
    extra = {
        "fall": {"fall", "inactivity", "not_in_bed", "not_up", "bed_exit_night"},
        "fall (cancelled)": {"fall"},
        "inactivity": {"bed_exit_night", "not_in_bed", "not_up"},
    }.get(kind, set())
    return frozenset({*EXPECTED[kind], *extra})


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
