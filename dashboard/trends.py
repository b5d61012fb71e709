"""Chart data: a station's parameter over 24 h / 7 d / 30 d with its GB 3838 class limits and
exceedance episodes, a person's vitals with their thresholds and alarms plus a day strip of
home activity, and the service dashboard (dispatch and response times against targets, unit
availability, data completeness).

Every series is bucketed with `time_bucket` on China's wall clock (Asia/Shanghai, no DST),
and the bucket grid is filled with `generate_series`, so an empty bucket is an explicit gap
(null) rather than a missing point a chart would draw a line across.

Include with `app.include_router(trends.router)`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from fastapi import APIRouter, Depends, HTTPException, Query

from dashboard.auth import Principal
from dashboard.context import ApiContext, anyone, context, control_room
from dispatch import targets as response_targets
from dispatch.lifecycle import UnitStatus
from ingest.readings import AVERAGE_PARAMETERS, WATER_PARAMETERS
from ingest.rules import ConfigError
from ingest.rules.gb3838 import WaterBody, WaterClass, class_limit
from ingest.rules.person_config import PersonConfig

router = APIRouter(prefix="/api")
Ctx = Annotated[ApiContext, Depends(context)]
TZ = "Asia/Shanghai"

# range -> (span, bucket width)
STATION_RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=4)),
    "30d": (timedelta(days=30), timedelta(hours=12)),
}
PERSON_RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "24h": (timedelta(hours=24), timedelta(minutes=15)),
    "7d": (timedelta(days=7), timedelta(hours=2)),
}
STRIP_BUCKET = timedelta(minutes=10)
HOME_ACTIVITY_KINDS = ("motion", "door", "bed")

# The response targets are dispatch's (dispatch/targets.py); here, their shape in the API.
class Target(TypedDict):
    seconds: int
    share: NotRequired[float]
    source: str


def _target(target: response_targets.Target) -> Target:
    doc: Target = {"seconds": int(target.seconds), "source": target.source}
    if target.share is not None:
        doc["share"] = target.share
    return doc


TARGETS: dict[str, Target] = {name: _target(t) for name, t in response_targets.TARGETS.items()}
DISPATCH_EDGES = [0, 30, 60, 90, 120, 180, 240, 300, 600]
RESPONSE_EDGES = [0, 120, 240, 360, 480, 600, 900, 1200, 1800]
MAX_SERVICE_SPAN = timedelta(days=92)
UNIT_STATUSES = tuple(s.value for s in UnitStatus)


def _window(ctx: ApiContext, span: timedelta, width: timedelta) -> tuple[datetime, datetime]:
    """[from, to): `to` is the end of the bucket holding now, so the grid has exactly
    span/width buckets, the last one the current (partial) one."""
    now = ctx.clock()
    local = now.astimezone(_tz())
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    step = int(width.total_seconds())
    into = int((local - midnight).total_seconds()) // step * step
    end = midnight + timedelta(seconds=into) + width
    return end - span, end


def _tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo(TZ)


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


# --- stations ------------------------------------------------------------------------------------


def _class_limits(param: str, body: WaterBody) -> dict[str, Any]:
    """The I–V limits of `param` for this water body: kind `ceiling` (value ≤ limit), `floor`
    (DO: value ≥ limit, inverted), `range` (pH: one range for I–V), or None (not graded)."""
    if param == "ph":
        return {"kind": "range", "classes": {c.label: class_limit(param, c, body) for c in tuple(WaterClass)[:5]}}
    limits = {c.label: class_limit(param, c, body) for c in tuple(WaterClass)[:5]}
    if all(v is None for v in limits.values()):
        return {"kind": None, "classes": {}}
    return {"kind": "floor" if param == "do_mg_l" else "ceiling", "classes": limits}


@router.get("/stations/{station_id}/trend", summary="A station parameter over 24 h / 7 d / 30 d, with class limits and exceedances")
async def station_trend(
    station_id: str, ctx: Ctx, _: Annotated[Principal, Depends(control_room)],
    param: Annotated[str, Query(description="a water parameter, e.g. nh3n_mg_l")] = "nh3n_mg_l",
    range_: Annotated[Literal["24h", "7d", "30d"], Query(alias="range")] = "24h",
    series: Annotated[
        Literal["realtime", "hour"],
        Query(description="realtime: Watchpost's rollup of real-time readings; hour: the station's own hourly uploads (HJ 212 CN 2061)"),
    ] = "realtime",
) -> dict[str, Any]:
    known = AVERAGE_PARAMETERS if series == "hour" else WATER_PARAMETERS  # chlorophyll-a comes in uploads only
    if param not in known:
        raise HTTPException(422, detail=f"param: unknown parameter {param!r}; one of {', '.join(known)}")
    rows = await ctx.fetch(
        "SELECT station_id, name, town, water_body, target_class, report_interval_s FROM stations WHERE station_id = %s", (station_id,)
    )
    if not rows:
        raise HTTPException(404, detail=f"no station {station_id}")
    station = rows[0]
    span, width = STATION_RANGES[range_]
    lo, hi = _window(ctx, span, width)
    if series == "hour":
        # The station's own hourly averages re-bucketed. Normal (N) and over-range (T) values
        # are drawn — a T value is a lower bound, counted in `over_range` so the chart marks
        # it; other flags leave their own parameter out and are counted in `flagged`.
        points = await ctx.fetch(
            f"""WITH b AS (
                    SELECT time_bucket(%(w)s::interval, period_start, %(tz)s) AS t, count({param})::int AS readings,
                           (count(*) FILTER (WHERE {param}_flag NOT IN ('N', 'T')))::int AS flagged,
                           (count(*) FILTER (WHERE {param}_flag = 'T'))::int AS over_range,
                           (count({param}) FILTER (WHERE {param}_flag IN ('N', 'T')))::int AS n,
                           avg({param}) FILTER (WHERE {param}_flag IN ('N', 'T')) AS avg,
                           min(COALESCE({param}_min, {param})) FILTER (WHERE {param}_flag IN ('N', 'T')) AS min,
                           max(COALESCE({param}_max, {param})) FILTER (WHERE {param}_flag IN ('N', 'T')) AS max
                    FROM station_averages WHERE station_id = %(s)s AND period = 'hour'
                      AND period_start >= %(lo)s AND period_start < %(hi)s AND {param} IS NOT NULL GROUP BY 1)
                SELECT g.t, b.avg, b.min, b.max, COALESCE(b.n, 0) AS n, COALESCE(b.readings, 0) AS readings,
                       COALESCE(b.flagged, 0) AS flagged, COALESCE(b.over_range, 0) AS over_range
                FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - %(w)s::interval, %(w)s::interval) g(t)
                LEFT JOIN b ON b.t = g.t ORDER BY g.t""",
            {"w": width, "tz": TZ, "s": station_id, "lo": lo, "hi": hi},
        )
    else:
        # The hourly rollup re-bucketed: avg = Σsum / Σn over flag-N data; flagged counted apart.
        points = await ctx.fetch(
            f"""WITH b AS (
                    SELECT time_bucket(%(w)s::interval, bucket, %(tz)s) AS t, sum(readings)::int AS readings,
                           sum(flagged)::int AS flagged, sum(n_{param})::int AS n,
                           sum(sum_{param}) / NULLIF(sum(n_{param}), 0) AS avg,
                           min(min_{param}) AS min, max(max_{param}) AS max
                    FROM water_hourly WHERE station_id = %(s)s AND bucket >= %(lo)s AND bucket < %(hi)s GROUP BY 1)
                SELECT g.t, b.avg, b.min, b.max, COALESCE(b.n, 0) AS n, COALESCE(b.readings, 0) AS readings,
                       COALESCE(b.flagged, 0) AS flagged, 0 AS over_range
                FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - %(w)s::interval, %(w)s::interval) g(t)
                LEFT JOIN b ON b.t = g.t ORDER BY g.t""",
            {"w": width, "tz": TZ, "s": station_id, "lo": lo, "hi": hi},
        )
    episodes = await ctx.fetch(
        """SELECT alarm_id, first_seen, cleared_at, state, severity, detail ->> 'parameter' AS parameter,
                  detail ->> 'class' AS class
           FROM alarms WHERE source_kind = 'station' AND source_id = %s
             AND alarm_type = %s AND first_seen < %s AND (cleared_at IS NULL OR cleared_at >= %s) ORDER BY first_seen""",
        (station_id, "water_hourly_exceeded" if series == "hour" else "water_class_exceeded", hi, lo),
    )
    body = WaterBody(station["water_body"])
    target = WaterClass(station["target_class"])
    return {
        "station": station, "param": param, "range": range_, "series": series, "bucket_s": int(width.total_seconds()),
        "from": lo, "to": hi,
        "points": [{**p, "avg": _num(p["avg"]), "min": _num(p["min"]), "max": _num(p["max"])} for p in points],
        "limits": _class_limits(param, body),
        "target_class": target.label, "target_limit": class_limit(param, target, body),
        "episodes": episodes,
    }


# --- persons -------------------------------------------------------------------------------------


def _thresholds(overrides: dict | None) -> dict[str, float]:
    try:
        cfg = PersonConfig.from_mapping(overrides or {})
    except ConfigError:  # a bad registry entry: the rules keep the defaults too (rule_store)
        cfg = PersonConfig()
    return {"hr_low_bpm": cfg.hr_low_bpm, "hr_high_bpm": cfg.hr_high_bpm, "spo2_low_pct": cfg.spo2_low_pct}


@router.get("/persons/{person_id}/trend", summary="A person's heart rate, SpO2 and steps, alarms, and a day strip of home activity")
async def person_trend(
    person_id: str, ctx: Ctx, who: Annotated[Principal, Depends(anyone)],
    range_: Annotated[Literal["24h", "7d"], Query(alias="range")] = "24h",
) -> dict[str, Any]:
    row = await ctx.open_person(who, person_id, "person trend")
    span, width = PERSON_RANGES[range_]
    lo, hi = _window(ctx, span, width)
    points = await ctx.fetch(
        """WITH b AS (
               SELECT time_bucket(%(w)s::interval, ts, %(tz)s) AS t,
                      -- one decimal, rounded alike: vitals are stored as real, and an average
                      -- of reals in double precision can land a hair outside their min and max
                      round(avg(hr_bpm)::numeric, 1)::float8 AS hr_avg, round(min(hr_bpm)::numeric, 1)::float8 AS hr_min,
                      round(max(hr_bpm)::numeric, 1)::float8 AS hr_max,
                      round(avg(spo2_pct)::numeric, 1)::float8 AS spo2_avg, round(min(spo2_pct)::numeric, 1)::float8 AS spo2_min,
                      round(max(spo2_pct)::numeric, 1)::float8 AS spo2_max,
                      max(steps) AS steps, count(*) AS readings
               FROM wearable_readings WHERE person_id = %(p)s AND ts >= %(lo)s AND ts < %(hi)s GROUP BY 1)
           SELECT g.t, b.hr_avg, b.hr_min, b.hr_max, b.spo2_avg, b.spo2_min, b.spo2_max, b.steps,
                  COALESCE(b.readings, 0) AS readings
           FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - %(w)s::interval, %(w)s::interval) g(t)
           LEFT JOIN b ON b.t = g.t ORDER BY g.t""",
        {"w": width, "tz": TZ, "p": person_id, "lo": lo, "hi": hi},
    )
    alarms = await ctx.fetch(
        """SELECT alarm_id, alarm_type, severity, state, first_seen, cleared_at FROM alarms
           WHERE person_id = %s AND first_seen >= %s AND first_seen < %s ORDER BY first_seen""",
        (person_id, lo, hi),
    )
    s_lo, s_hi = _window(ctx, timedelta(hours=24), STRIP_BUCKET)
    strip = await ctx.fetch(
        """WITH b AS (
               SELECT time_bucket(%(w)s::interval, ts, %(tz)s) AS t,
                      count(*) FILTER (WHERE kind = 'motion' AND value_bool IS NOT FALSE) AS motion,
                      count(*) FILTER (WHERE kind = 'door') AS door,
                      count(*) FILTER (WHERE kind = 'bed') AS bed
               FROM home_events WHERE person_id = %(p)s AND ts >= %(lo)s AND ts < %(hi)s AND kind = ANY(%(k)s) GROUP BY 1)
           SELECT g.t, COALESCE(b.motion, 0) AS motion, COALESCE(b.door, 0) AS door, COALESCE(b.bed, 0) AS bed
           FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - %(w)s::interval, %(w)s::interval) g(t)
           LEFT JOIN b ON b.t = g.t ORDER BY g.t""",
        {"w": STRIP_BUCKET, "tz": TZ, "p": person_id, "lo": s_lo, "hi": s_hi, "k": list(HOME_ACTIVITY_KINDS)},
    )
    person = {k: row[k] for k in ("person_id", "name", "town")}
    return {
        "person": person, "range": range_, "bucket_s": int(width.total_seconds()), "from": lo, "to": hi,
        "points": [{k: (_num(v) if k not in ("t", "readings") else v) for k, v in p.items()} for p in points],
        "thresholds": _thresholds(row["thresholds"]),
        "alarms": alarms,
        "home_strip": {"bucket_s": int(STRIP_BUCKET.total_seconds()), "from": s_lo, "to": s_hi, "points": strip},
    }


# --- service -------------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def distribution(values: list[float], edges: list[int], target_s: float) -> dict[str, Any]:
    v = sorted(values)
    hist = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        hist.append({"from_s": lo, "to_s": hi, "count": sum(1 for x in v if x >= lo and (hi is None or x < hi))})
    return {
        "count": len(v), "mean_s": sum(v) / len(v) if v else None,
        "p50_s": _percentile(v, 0.5), "p90_s": _percentile(v, 0.9), "p95_s": _percentile(v, 0.95),
        "within_target": (sum(1 for x in v if x <= target_s) / len(v)) if v else None,
        "histogram": hist,
    }


def _grouped(rows: list[dict], key: str, field: str, edges: list[int], target_s: float) -> dict[str, Any]:
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r[field] is not None:
            groups.setdefault(str(r[key]), []).append(r[field])
    return {k: distribution(vs, edges, target_s) for k, vs in sorted(groups.items())}


SERVICE_TIMES_SQL = """
    SELECT i.incident_id, i.priority, i.kind, COALESCE(p.town, s.town, 'unknown') AS town,
           extract(epoch FROM first.ordered_at - i.created_at)::float AS dispatch_s,
           extract(epoch FROM scene.at - first.ordered_at)::float AS response_s
    FROM incidents i
    LEFT JOIN persons p ON p.person_id = i.person_id
    LEFT JOIN stations s ON s.station_id = i.station_id
    JOIN LATERAL (SELECT a.unit_id, a.ordered_at FROM assignments a WHERE a.incident_id = i.incident_id
                  ORDER BY a.ordered_at LIMIT 1) first ON TRUE
    LEFT JOIN LATERAL (SELECT d.at FROM dispatch_audit d WHERE d.incident_id = i.incident_id AND d.unit_id = first.unit_id
                         AND d.action = 'transition' AND d.detail ->> 'to' = 'on_scene' AND d.at >= first.ordered_at
                       ORDER BY d.at LIMIT 1) scene ON TRUE
    WHERE i.created_at >= %(lo)s AND i.created_at < %(hi)s
"""


async def service_times(ctx: ApiContext, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    return await ctx.fetch(SERVICE_TIMES_SQL + " ORDER BY i.created_at", {"lo": lo, "hi": hi})


def availability(transitions: list[dict], before: dict[str, str], units: list[str], lo: datetime, hi: datetime) -> dict[str, Any]:
    """Share of [lo, hi) each unit spent in each status, from its transitions; the status at
    `lo` is the last transition before it (available if none). Also the fleet's share of
    units available per hour."""
    by_unit: dict[str, list[tuple[datetime, str]]] = {u: [] for u in units}
    for t in transitions:
        by_unit.setdefault(t["unit_id"], []).append((t["at"], t["to"]))
    total = (hi - lo).total_seconds()
    hours = math.ceil(total / 3600)
    avail_hour = [0.0] * hours
    per_unit = {}
    for unit, changes in sorted(by_unit.items()):
        status, at = before.get(unit, "available"), lo
        spent: dict[str, float] = {}
        segments = []
        for when, new in [*sorted(changes), (hi, None)]:
            when = min(max(when, lo), hi)
            if when > at:
                spent[status] = spent.get(status, 0.0) + (when - at).total_seconds()
                segments.append((at, when, status))
            at = when
            if new is not None:
                status = new
        for a, b, st in segments:
            if st != "available":
                continue
            h = int((a - lo).total_seconds() // 3600)
            while h < hours:
                h_lo, h_hi = lo + timedelta(hours=h), lo + timedelta(hours=h + 1)
                overlap = (min(b, h_hi) - max(a, h_lo)).total_seconds()
                if overlap <= 0:
                    break
                avail_hour[h] += overlap
                h += 1
        per_unit[unit] = {k: v / total for k, v in sorted(spent.items())}
    n = max(len(per_unit), 1)
    fleet = [
        {"t": lo + timedelta(hours=h), "available_share": avail_hour[h] / (n * min(3600.0, total - h * 3600))}
        for h in range(hours)
    ]
    return {"units": per_unit, "fleet_hourly": fleet}


@router.get("/service", summary="Dispatch and response times against targets, unit availability, data completeness")
async def service(
    ctx: Ctx, _: Annotated[Principal, Depends(control_room)],
    from_: Annotated[datetime, Query(alias="from")], to: datetime,
) -> dict[str, Any]:
    if from_.tzinfo is None or to.tzinfo is None:
        raise HTTPException(422, detail="from and to need a UTC offset, e.g. 2026-11-29T00:00:00+08:00")
    if to <= from_:
        raise HTTPException(422, detail="to must be after from")
    if to - from_ > MAX_SERVICE_SPAN:
        raise HTTPException(422, detail=f"at most {MAX_SERVICE_SPAN.days} days")
    times = await service_times(ctx, from_, to)
    d_edges, r_edges = DISPATCH_EDGES, RESPONSE_EDGES
    d_target, r_target = TARGETS["dispatch"]["seconds"], TARGETS["response"]["seconds"]
    dispatch_all = [r["dispatch_s"] for r in times if r["dispatch_s"] is not None]
    response_all = [r["response_s"] for r in times if r["response_s"] is not None]
    p1 = [r["response_s"] for r in times if r["priority"] == 1 and r["response_s"] is not None]

    units = [r["unit_id"] for r in await ctx.fetch("SELECT unit_id FROM units ORDER BY unit_id")]
    transitions = await ctx.fetch(
        """SELECT unit_id, at, detail ->> 'to' AS "to" FROM dispatch_audit
           WHERE action = 'transition' AND unit_id IS NOT NULL AND at >= %s AND at < %s ORDER BY at""",
        (from_, to),
    )
    before = {
        r["unit_id"]: r["to"] for r in await ctx.fetch(
            """SELECT DISTINCT ON (unit_id) unit_id, detail ->> 'to' AS "to" FROM dispatch_audit
               WHERE action = 'transition' AND unit_id IS NOT NULL AND at < %s ORDER BY unit_id, at DESC""",
            (from_,),
        )
    }
    return {
        "from": from_, "to": to, "targets": TARGETS,
        "dispatch": {"all": distribution(dispatch_all, d_edges, d_target),
                     "by_town": _grouped(times, "town", "dispatch_s", d_edges, d_target),
                     "by_priority": _grouped(times, "priority", "dispatch_s", d_edges, d_target)},
        "response": {"all": distribution(response_all, r_edges, r_target),
                     "by_town": _grouped(times, "town", "response_s", r_edges, r_target),
                     "by_priority": _grouped(times, "priority", "response_s", r_edges, r_target),
                     "p1_mean_s": sum(p1) / len(p1) if p1 else None},
        "availability": availability(transitions, before, units, from_, to),
        "completeness": await completeness(ctx, from_, to),
    }


# Devices are counted from their raw rows, which a county makes by the million each week:
# their completeness covers the last day of the window (what a shift acts on), stations'
# the whole window (from the hourly rollup).
DEVICE_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Reports:
    """A station's or device's reports received over a window, against its interval."""

    id: str
    report_interval_s: int
    received: int


async def completeness(ctx: ApiContext, lo: datetime, hi: datetime) -> dict[str, Any]:
    """Received vs expected reports (span / report_interval_s) per station over the window
    (from the hourly rollup), and per wearable and unit GPS over its last day."""
    span = (hi - lo).total_seconds()
    device_lo = max(lo, hi - DEVICE_WINDOW)
    device_span = (hi - device_lo).total_seconds()
    stations = await ctx.fetch_as(
        _Reports,
        """SELECT s.station_id AS id, s.report_interval_s, COALESCE(sum(h.readings), 0)::bigint AS received
           FROM stations s LEFT JOIN water_hourly h ON h.station_id = s.station_id AND h.bucket >= %s AND h.bucket < %s
           WHERE s.retired_at IS NULL GROUP BY s.station_id ORDER BY s.station_id""",
        (lo, hi),
    )
    wearables = await ctx.fetch_as(
        _Reports,
        """SELECT p.person_id AS id, p.report_interval_s, COALESCE(w.n, 0)::bigint AS received FROM persons p
           LEFT JOIN (SELECT person_id, count(*) AS n FROM wearable_readings WHERE ts >= %s AND ts < %s GROUP BY person_id) w
             ON w.person_id = p.person_id WHERE p.retired_at IS NULL ORDER BY p.person_id""",
        (device_lo, hi),
    )
    units = await ctx.fetch_as(
        _Reports,
        """SELECT u.unit_id AS id, u.report_interval_s, COALESCE(g.n, 0)::bigint AS received FROM units u
           LEFT JOIN (SELECT unit_id, count(*) AS n FROM unit_positions WHERE ts >= %s AND ts < %s GROUP BY unit_id) g
             ON g.unit_id = u.unit_id WHERE u.retired_at IS NULL ORDER BY u.unit_id""",
        (device_lo, hi),
    )

    def rows(items: list[_Reports], seconds: float) -> list[dict[str, Any]]:
        out = []
        for r in items:
            expected = int(seconds // r.report_interval_s)
            out.append({"id": r.id, "received": r.received, "expected": expected,
                        "share": min(1.0, r.received / expected) if expected else None})
        return out

    return {"stations": rows(stations, span), "wearables": rows(wearables, device_span), "units": rows(units, device_span),
            "devices_from": device_lo}
