"""The HTTP API of the contract. Every route names the roles it admits; a family member
reaches only the persons linked to them, and asking for anyone else's gets the same 404 as a
person who does not exist, so ids cannot be probed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dashboard import logins
from dashboard.auth import Principal, Role, hash_password, issue_token, verify_password
from dashboard.privacy import family_incident
from dashboard.context import ApiContext, any_user, anyone, context, control_room, dispatcher
from dispatch import lifecycle
from dispatch.first_response import answer_state
from dispatch.incident_policy import Verification
from dispatch import store as dispatch_store
from ingest import alarm_store

router = APIRouter(prefix="/api")
Ctx = Annotated[ApiContext, Depends(context)]

# A dummy hash so that an unknown username costs as much time as a wrong password.
_DUMMY_HASH = hash_password("watchpost-no-such-user")


@dataclass(frozen=True, slots=True)
class _User:
    username: str
    role: str
    password_hash: str
    token_version: int


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in: int


@router.post("/token", response_model=Token, summary="Log in (OAuth2 password flow)")
async def token(
    request: Request, ctx: Ctx, username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=256)]
) -> Token:
    now = ctx.clock()
    address = request.client.host if request.client else "?"
    async with ctx.pool.connection() as conn:
        wait = await logins.retry_after(conn, username, address, now, ctx.throttle)
    if wait > 0:
        raise HTTPException(429, detail=f"too many failed logins; try again in {wait:.0f} s", headers={"Retry-After": str(int(wait) + 1)})
    rows = await ctx.fetch_as(_User, "SELECT username, role, password_hash, token_version FROM users WHERE username = %s AND retired_at IS NULL", (username,))
    user = rows[0] if rows else None
    # argon2 takes tens of milliseconds of CPU by design: off the event loop, so a burst of
    # logins never stalls the websockets.
    good = await asyncio.to_thread(verify_password, user.password_hash if user else _DUMMY_HASH, password)
    async with ctx.pool.connection() as conn:  # committed when the block ends
        if good and user is not None:
            await logins.record_success(conn, username, address)
        else:
            await logins.record_failure(conn, username, address, now, ctx.throttle)
    if not good or user is None:
        raise HTTPException(401, detail="wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    principal = Principal(user.username, Role(user.role), user.token_version)
    return Token(
        access_token=issue_token(ctx.token_secret, principal, now, ctx.token_ttl),
        role=principal.role.value,
        expires_in=int(ctx.token_ttl.total_seconds()),
    )


@router.get("/me")
async def me(ctx: Ctx, who: Annotated[Principal, Depends(any_user)]) -> dict[str, Any]:
    [user] = await ctx.fetch("SELECT username, display_name, role, scope_id AS scope FROM users WHERE username = %s", (who.username,))
    persons = sorted(await ctx.persons_of(who.username)) if who.role is Role.FAMILY else None
    return {**user, "persons": persons}


# --- alarms ------------------------------------------------------------------------------------

_SEVERITY_ORDER = "array_position(ARRAY['critical','major','minor','warning'], severity)"


@router.get("/alarms")
async def alarms(
    ctx: Ctx, who: Annotated[Principal, Depends(anyone)], state: Literal["active", "acked", "cleared"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    where = ["TRUE"]
    params: list[object] = []
    if state:
        where.append("state = %s")
        params.append(state)
    if who.role is Role.FAMILY:
        where.append("person_id = ANY(%s)")
        params.append(list(await ctx.persons_of(who.username)))
    rows = await ctx.fetch(
        f"SELECT * FROM alarms WHERE {' AND '.join(where)} ORDER BY {_SEVERITY_ORDER}, first_seen DESC LIMIT %s",
        (*params, limit),
    )
    await ctx.log_access(who, (r["person_id"] for r in rows), "alarm list")
    return rows


@router.post("/alarms/{alarm_id}/ack")
async def ack(alarm_id: int, ctx: Ctx, who: Annotated[Principal, Depends(anyone)]) -> dict[str, Any]:
    """An operator's acknowledgement, or a family member's "I'm on my way" for their own
    relative. Acknowledging stops the escalation."""
    rows = await ctx.fetch("SELECT alarm_id, person_id, state FROM alarms WHERE alarm_id = %s", (alarm_id,))
    if not rows or (who.role is Role.FAMILY and rows[0]["person_id"] not in await ctx.persons_of(who.username)):
        raise HTTPException(404, detail=f"no alarm {alarm_id}")
    if rows[0]["state"] != "active":
        raise HTTPException(409, detail=f"alarm {alarm_id} is {rows[0]['state']}, only an active alarm can be acknowledged")

    def do(conn):
        with conn.transaction(), conn.cursor() as cur:
            return alarm_store.acknowledge(cur, alarm_id, who.username, ctx.clock())

    row = await ctx.run_sync(do)
    if row is None:
        raise HTTPException(409, detail=f"alarm {alarm_id} was acknowledged or cleared meanwhile")
    return row


# --- incidents ---------------------------------------------------------------------------------


class NewIncident(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    kind: Literal["medical", "fire", "gas", "water"] = "medical"
    priority: int | Literal["echo", "delta", "charlie", "bravo", "alpha", "omega"] = 2
    description: str = Field(default="", max_length=2000)


class AssignUnit(BaseModel):
    unit_id: str = Field(min_length=1, max_length=64)


@router.get("/incidents")
async def incidents(
    ctx: Ctx, who: Annotated[Principal, Depends(anyone)],
    state: Literal["new", "dispatched", "on_scene", "transporting", "closed", "cancelled", "open"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    where = ["TRUE"]
    params: list[object] = []
    if state == "open":
        where.append("i.state = ANY(%s)")
        params.append(lifecycle.values(lifecycle.OPEN_INCIDENT))
    elif state:
        where.append("i.state = %s")
        params.append(state)
    if who.role is Role.FAMILY:
        where.append("i.person_id = ANY(%s)")
        params.append(list(await ctx.persons_of(who.username)))
    rows = await ctx.fetch(
        f"""SELECT i.*, a.unit_id, a.state AS assignment_state, a.eta_s, a.hospital_id, a.first_aid_post_id,
                   (SELECT to_jsonb(f) FROM first_responses f WHERE f.incident_id = i.incident_id) AS first_response
            FROM incidents i LEFT JOIN assignments a ON a.incident_id = i.incident_id
                 AND a.state = ANY(%s)
            WHERE {' AND '.join(where)} ORDER BY i.priority, i.created_at LIMIT %s""",
        (lifecycle.values(lifecycle.OPEN_ASSIGNMENT), *params, limit),
    )
    now = ctx.clock()
    for r in rows:  # the village doctor's alert as the console's events carry it
        if r["first_response"] is not None:
            f = r["first_response"]
            f["state"] = answer_state(f.pop("answer"), datetime.fromisoformat(f["answer_by"]), now)
    if who.role is Role.FAMILY:  # their relative's incidents, without the fleet (dashboard/privacy.py)
        return [family_incident(r) for r in rows]
    await ctx.log_access(who, (r["person_id"] for r in rows), "incident list")
    return rows


@router.post("/incidents", status_code=201)
async def create_incident(body: NewIncident, ctx: Ctx, who: Annotated[Principal, Depends(control_room)]) -> dict[str, Any]:
    from dispatch.assignment import Priority

    try:
        priority = int(Priority.parse(body.priority))
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return await ctx.run_sync(
        lambda conn: dispatch_store.create_incident(
            conn, lat=body.lat, lon=body.lon, kind=body.kind, priority=priority,
            description=body.description, actor=who.username, now=ctx.clock(),
        )
    )


@router.get("/incidents/{incident_id}/candidates")
async def candidates(incident_id: str, ctx: Ctx, _: Annotated[Principal, Depends(control_room)]) -> dict[str, Any]:
    """The units ranked by road ETA, as the dispatcher would rank them now."""
    def rank(conn):
        graph, facilities = ctx.dispatch_reference(conn)
        return dispatch_store.rank_candidates(conn, incident_id, graph, facilities, ctx.clock())

    decision = await ctx.run_sync(rank)
    if decision is None:
        raise HTTPException(404, detail=f"no incident {incident_id}")
    return decision


@router.post("/incidents/{incident_id}/assign")
async def assign(incident_id: str, body: AssignUnit, ctx: Ctx, who: Annotated[Principal, Depends(dispatcher)]) -> dict[str, Any]:
    """A dispatcher's manual choice (or re-assignment): the current unit is stood down."""
    def do(conn):
        graph, facilities = ctx.dispatch_reference(conn)
        return dispatch_store.assign(conn, incident_id, graph, facilities, ctx.clock(), actor=who.username, forced_unit=body.unit_id)

    order = await ctx.run_sync(do)
    if not isinstance(order, dispatch_store.Order):
        raise HTTPException(409, detail=f"cannot assign {body.unit_id} to {incident_id}: no such open incident, or the unit is busy or unknown")
    sent = await ctx.run_sync_plain(ctx.send_order, order)
    return _order_answer({"incident_id": order.incident_id, "unit_id": order.unit_id, "eta_s": order.eta_s}, sent)


def _order_answer(body: dict[str, Any], sent: bool) -> Any:
    """200 when the crew's terminal has been sent the order; 202 when it is committed but
    the broker is down: it is sent as soon as the broker is back (dashboard/unsent_orders.py)."""
    if sent:
        return {**body, "sent": True}
    return JSONResponse({**body, "sent": False, "detail": "order committed; the broker is unreachable, so it is sent "
                         "to the unit as soon as the broker is back"}, status_code=202)


class Companion(BaseModel):
    reason: Literal["hurt", "no_answer"]


@router.post("/incidents/{incident_id}/companion", status_code=201)
async def companion(incident_id: str, body: Companion, ctx: Ctx, who: Annotated[Principal, Depends(control_room)]) -> dict[str, Any]:
    """Someone is hurt, or the person does not answer, at a fire or gas incident: an
    ambulance goes as well (a linked priority-1 medical incident the dispatcher serves)."""
    row = await ctx.run_sync(lambda conn: dispatch_store.add_companion(conn, incident_id, body.reason, who.username, ctx.clock()))
    if row is None:
        raise HTTPException(409, detail=f"{incident_id}: no open fire or gas incident without an ambulance already")
    return row


class VerificationCall(BaseModel):
    outcome: Literal["ok", "hurt", "no_answer"]


@router.post("/incidents/{incident_id}/verification")
async def verification(incident_id: str, body: VerificationCall, ctx: Ctx, who: Annotated[Principal, Depends(control_room)]) -> dict[str, Any]:
    """The verification call at a fire or gas incident in a person's home: `ok` (answered,
    nobody hurt) keeps the fire crew alone; `hurt` or `no_answer` sends an ambulance too."""
    outcome = Verification(body.outcome)
    verified = await ctx.run_sync(lambda conn: dispatch_store.record_verification(conn, incident_id, outcome, who.username, ctx.clock()))
    if verified is None:
        raise HTTPException(409, detail=f"{incident_id}: no open fire or gas incident at a person's home")
    return {"incident": verified.incident, "companion": verified.companion}


@router.post("/incidents/{incident_id}/close")
async def close(incident_id: str, ctx: Ctx, who: Annotated[Principal, Depends(control_room)]) -> dict[str, Any]:
    row = await ctx.run_sync(lambda conn: dispatch_store.close_incident(conn, incident_id, who.username, ctx.clock()))
    if row is None:
        raise HTTPException(404, detail=f"no open incident {incident_id}")
    return row


# --- units, stations, persons ------------------------------------------------------------------


@router.get("/coverage")
async def coverage(ctx: Ctx, _: Annotated[Principal, Depends(control_room)]) -> dict[str, Any]:
    """Villages within 8 / 12 / 15 min of an available ambulance, uncovered towns, the move-up."""
    def compute(conn):
        graph, facilities = ctx.dispatch_reference(conn)
        return dispatch_store.coverage_now(conn, graph, facilities, ctx.clock())

    return await ctx.run_sync(compute)


class Relocate(BaseModel):
    facility_id: str = Field(min_length=1, max_length=64)


@router.post("/units/{unit_id}/relocate")
async def relocate(unit_id: str, body: Relocate, ctx: Ctx, who: Annotated[Principal, Depends(dispatcher)]) -> dict[str, Any]:
    """A dispatcher accepts a move-up: the unit gets an order with `kind: relocate`."""
    def do(conn):
        graph, facilities = ctx.dispatch_reference(conn)
        return dispatch_store.relocate(conn, graph, facilities, unit_id, body.facility_id, who.username, ctx.clock())

    order = await ctx.run_sync(do)
    if order is None:
        raise HTTPException(409, detail=f"cannot relocate {unit_id} to {body.facility_id}: not an available unit, or no such facility")
    sent = await ctx.run_sync_plain(ctx.send_order, order)
    return _order_answer({"unit_id": order.unit_id, **order.payload()}, sent)


@router.get("/units")
async def units(ctx: Ctx, _: Annotated[Principal, Depends(control_room)]) -> list[dict[str, Any]]:
    return await ctx.fetch(
        """SELECT u.unit_id, u.kind, u.name, u.town, u.base_facility_id, COALESCE(s.status, 'available') AS status,
                  s.incident_id, s.lat, s.lon, s.gps_at, f.lat AS base_lat, f.lon AS base_lon
           FROM units u LEFT JOIN unit_state s USING (unit_id) LEFT JOIN facilities f ON f.facility_id = u.base_facility_id
           WHERE u.retired_at IS NULL ORDER BY u.unit_id"""
    )


@router.get("/stations")
async def stations(ctx: Ctx, _: Annotated[Principal, Depends(control_room)]) -> list[dict[str, Any]]:
    """Stations with their latest reading and water class (from the rules' state)."""
    return await ctx.fetch(
        """SELECT s.station_id, s.name, s.lat, s.lon, s.town, s.water_body, s.target_class, s.partner_id,
                  r.state -> 'alarms' AS alarms, (r.state ->> 'last_ts') AS last_normal_ts,
                  latest.ts AS last_ts, latest.flag, to_jsonb(latest) - 'station_id' - 'received_at' AS latest
           FROM stations s
           LEFT JOIN rule_state r ON r.source_key = 'station:' || s.station_id
           LEFT JOIN LATERAL (SELECT * FROM water_readings w WHERE w.station_id = s.station_id ORDER BY ts DESC LIMIT 1) latest ON TRUE
           WHERE s.retired_at IS NULL
           ORDER BY s.station_id"""
    )


_MAX_BUCKETS = 5000


# The length of each series' period, to bound how many rows one request returns.
_SERIES_PERIODS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@router.get("/stations/{station_id}/readings")
async def readings(
    station_id: str, ctx: Ctx, _: Annotated[Principal, Depends(control_room)],
    from_: Annotated[datetime, Query(alias="from")], to: datetime,
    bucket: Annotated[int, Query(ge=60, le=30 * 86400, description="bucket width in seconds (series=realtime)")] = 3600,
    series: Annotated[
        Literal["realtime", "minute", "hour", "day"],
        Query(description="realtime: Watchpost's buckets of the real-time readings; minute, hour, day: the station's own averages as uploaded (HJ 212 CN 2051/2061/2031)"),
    ] = "realtime",
) -> list[dict[str, Any]]:
    """series=realtime (the default): averages, minima and maxima of normal (flag N) data per
    time bucket. series=minute|hour|day: the station's own averages, one row per period
    (`bucket` is its start), with each parameter's min, max and data flag as uploaded."""
    if from_.tzinfo is None or to.tzinfo is None:
        raise HTTPException(422, detail="from and to need a UTC offset, e.g. 2026-11-29T00:00:00+08:00")
    if to <= from_:
        raise HTTPException(422, detail="to must be after from")
    width = timedelta(seconds=bucket) if series == "realtime" else _SERIES_PERIODS[series]
    if (to - from_) / width > _MAX_BUCKETS:
        what = "widen the bucket" if series == "realtime" else "choose a longer period"
        raise HTTPException(422, detail=f"at most {_MAX_BUCKETS} rows: {what} or shorten the range")
    if not await ctx.fetch("SELECT 1 FROM stations WHERE station_id = %s", (station_id,)):
        raise HTTPException(404, detail=f"no station {station_id}")
    from ingest.readings import AVERAGE_PARAMETERS, WATER_PARAMETERS

    if series != "realtime":
        cols = ", ".join(f"{p}, {p}_min, {p}_max, {p}_flag" for p in AVERAGE_PARAMETERS)
        return await ctx.fetch(
            f"""SELECT period_start AS bucket, period, {cols} FROM station_averages
                WHERE station_id = %s AND period = %s AND period_start >= %s AND period_start < %s ORDER BY 1""",
            (station_id, series, from_, to),
        )
    cols = ", ".join(f"avg({p}) FILTER (WHERE flag = 'N') AS {p}, min({p}) FILTER (WHERE flag = 'N') AS {p}_min, max({p}) FILTER (WHERE flag = 'N') AS {p}_max" for p in WATER_PARAMETERS)
    return await ctx.fetch(
        f"""SELECT time_bucket(make_interval(secs => %s), ts) AS bucket, count(*) AS readings,
                   count(*) FILTER (WHERE flag <> 'N') AS flagged, {cols}
            FROM water_readings WHERE station_id = %s AND ts >= %s AND ts < %s GROUP BY 1 ORDER BY 1""",
        (bucket, station_id, from_, to),
    )


@router.get("/persons/{person_id}/contacts")
async def contacts(person_id: str, ctx: Ctx, who: Annotated[Principal, Depends(control_room)]) -> list[dict[str, Any]]:
    """The person's family contacts in escalation order, with their phone numbers and
    channels, for the operator who calls them back. Numbers are personal data: every read
    is written to the access log."""
    await ctx.open_person(who, person_id, "family contacts")
    return await ctx.fetch(
        """SELECT f.username, u.display_name, u.phone, f.position, f.channels, f.ack_timeout_s, f.voice_after_s
           FROM family_links f JOIN users u USING (username) WHERE f.person_id = %s ORDER BY f.position, f.username""",
        (person_id,),
    )


# The county's day and month: a day's class is the class of China Standard Time's day, as
# the county's daily and monthly bulletins report it.
COUNTY_ZONE = "Asia/Shanghai"
# Most periods one request grades: a year of days.
_MAX_GRADE_PERIODS = 366


@router.get("/stations/{station_id}/grade")
async def station_grade(
    station_id: str, ctx: Ctx, _: Annotated[Principal, Depends(control_room)],
    from_: Annotated[datetime, Query(alias="from")], to: datetime,
    period: Annotated[
        Literal["day", "month"] | None,
        Query(description="also grade each day or month (China Standard Time) of the window: `periods`"),
    ] = None,
) -> dict[str, Any]:
    """The station's class over [from, to) by the 2011 evaluation method: the mean of its
    hourly uploads per parameter (normal hours, and over-range hours as lower bounds), single
    factor, lakes' TN and trophic index apart; says which parameters the class covers and
    which it leaves out. An hour, a day or a month is a window;
    with `period`, each day or month of the window is graded the same way (`periods`, oldest
    first, only those with uploads)."""
    from dashboard.period_means import means_of, select_list, values_of
    from ingest.rules.evaluation import grade
    from ingest.rules.gb3838 import WaterBody, WaterClass

    if from_.tzinfo is None or to.tzinfo is None:
        raise HTTPException(422, detail="from and to need a UTC offset, e.g. 2026-11-01T00:00:00+08:00")
    if to <= from_ or to - from_ > timedelta(days=_MAX_GRADE_PERIODS):
        raise HTTPException(422, detail="to must be after from, at most a year later")
    stations = await ctx.fetch("SELECT water_body, target_class FROM stations WHERE station_id = %s", (station_id,))
    if not stations:
        raise HTTPException(404, detail=f"no station {station_id}")
    station = stations[0]
    body = WaterBody(station["water_body"])
    means = select_list()
    window = "station_id = %s AND period = 'hour' AND period_start >= %s AND period_start < %s"

    def graded(row: dict[str, Any]) -> dict[str, Any]:
        values = values_of(row)
        return {"hours": row["hours"], "means": means_of(values), **grade(values, body).to_json()}

    [row] = await ctx.fetch(f"SELECT count(*) AS hours, {means} FROM station_averages WHERE {window}", (station_id, from_, to))
    doc = {
        "station_id": station_id, "from": from_, "to": to,
        "target_class": WaterClass(station["target_class"]).label, "water_body": station["water_body"],
        **graded(row),
    }
    if period is not None:
        # The county's local day or month of each hour, and its bounds as instants.
        rows = await ctx.fetch(
            f"""SELECT local AT TIME ZONE '{COUNTY_ZONE}' AS start, (local + interval '1 {period}') AT TIME ZONE '{COUNTY_ZONE}' AS end,
                       count(*) AS hours, {means}
                FROM (SELECT *, date_trunc('{period}', period_start AT TIME ZONE '{COUNTY_ZONE}') AS local
                      FROM station_averages WHERE {window}) h
                GROUP BY local ORDER BY local""",
            (station_id, from_, to),
        )
        doc["period"] = period
        doc["periods"] = [{"start": r["start"], "end": r["end"], **graded(r)} for r in rows]
    return doc


@router.get("/persons/{person_id}")
async def person(person_id: str, ctx: Ctx, who: Annotated[Principal, Depends(anyone)]) -> dict[str, Any]:
    """A person's latest state: last seen, vitals, home sensors, open alarms. Family: only
    their own relative. Every read by the control room is written to the access log."""
    row = await ctx.open_person(who, person_id, "person state")
    person = {k: row[k] for k in ("person_id", "name", "address", "town", "village", "lat", "lon")}
    # The newest value of each vital with its time: an SOS-only or GPS-only message carries
    # no heart rate, and must not blank the last one known.
    fields = ("hr_bpm", "spo2_pct", "skin_temp_c", "steps", "battery_pct")
    vitals = await ctx.fetch(
        "SELECT (SELECT max(ts) FROM wearable_readings WHERE person_id = %(p)s AND ts > now() - interval '30 days') AS ts, "
        + ", ".join(
            f"(SELECT jsonb_build_object('value', {f}, 'ts', ts) FROM wearable_readings WHERE person_id = %(p)s AND {f} IS NOT NULL "
            f"AND ts > now() - interval '30 days' ORDER BY ts DESC LIMIT 1) AS {f}"
            for f in fields
        ),
        {"p": person_id},
    )
    sensors = await ctx.fetch(
        """SELECT h.sensor_id, h.kind, e.ts, e.value_bool, e.value_num FROM home_sensors h
           LEFT JOIN LATERAL (SELECT * FROM home_events x WHERE x.person_id = h.person_id AND x.sensor_id = h.sensor_id ORDER BY ts DESC LIMIT 1) e ON TRUE
           WHERE h.person_id = %s ORDER BY h.sensor_id""",
        (person_id,),
    )
    open_alarms = await ctx.fetch("SELECT * FROM alarms WHERE person_id = %s AND state <> 'cleared' ORDER BY first_seen DESC", (person_id,))
    return {**person, "vitals": vitals[0] if vitals[0]["ts"] else None, "home_sensors": sensors, "alarms": open_alarms}


@router.get("/map")
async def map_layers(ctx: Ctx, _: Annotated[Principal, Depends(control_room)]) -> Response:
    """Base map layers (GeoJSON): region boundaries, towns, rivers, the loaded road network,
    and the registry's facilities. Stations and units come from their own endpoints, live."""
    from dashboard.map_layers import VERSION_SQL, base_layers, points

    async def version() -> tuple[Any, ...]:
        return tuple((await ctx.fetch(VERSION_SQL))[0].values())

    base = await ctx.map_cache.get(version, lambda: ctx.run_sync(base_layers))
    facilities = points(await ctx.fetch("SELECT facility_id, kind, name, town, village, lat, lon FROM facilities WHERE retired_at IS NULL"), "facility_id")
    body = base[:-1] + b',"facilities":' + orjson.dumps(facilities) + b"}"
    return Response(body, media_type="application/json", headers={"Cache-Control": "private, max-age=300"})


@router.get("/cap", summary="Public CAP 1.2 feed of active water-quality alerts (Atom)")
async def cap_feed(ctx: Ctx) -> Response:
    """Public: no token. One CAP 1.2 Alert (scope Public) per open water alarm, wrapped in an
    Atom feed, the usual way CAP alerts are syndicated."""
    from xml.etree import ElementTree as ET

    from dispatch.cap import CapSender, StationInfo, alert_element

    rows = await ctx.fetch(
        """SELECT a.*, s.name, s.lat, s.lon, s.partner_id FROM alarms a JOIN stations s ON s.station_id = a.source_id
           WHERE a.source_kind = 'station' AND a.state <> 'cleared' ORDER BY a.first_seen DESC LIMIT 500"""
    )
    atom = "http://www.w3.org/2005/Atom"
    feed = ET.Element("feed", xmlns=atom)
    region = ctx.region
    sender = CapSender(region.cap_sender, region.cap_sender_label())
    ET.SubElement(feed, "title").text = f"{region.name_en} water-quality alerts"
    # A feed's id is its lasting name: the county's code, or without one its CAP sender.
    ET.SubElement(feed, "id").text = f"urn:watchpost:{region.adcode or region.cap_sender}:cap"
    ET.SubElement(feed, "updated").text = ctx.clock().isoformat(timespec="seconds")
    for r in rows:
        station = StationInfo(r["source_id"], r["name"], r["lat"], r["lon"], r["partner_id"])
        alert = alert_element(sender=sender, event_type="alarm.raised", alarm=r, station=station, sent=r["first_seen"], sequence=0, first_sent=None, public=True)
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "id").text = f"urn:watchpost:alarm:{r['alarm_id']}"
        ET.SubElement(entry, "title").text = f"{r['name']}: {r['alarm_type'].replace('_', ' ')}"
        ET.SubElement(entry, "updated").text = r["last_seen"].isoformat(timespec="seconds")
        ET.SubElement(entry, "content", type="application/cap+xml").append(alert)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="unicode")
    return Response(body, media_type="application/atom+xml")


@router.get("/cap/partner/{partner_id}", summary="CAP documents sent to a cross-border partner")
async def cap_partner(partner_id: str, ctx: Ctx, _: Annotated[Principal, Depends(control_room)],
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    return await ctx.fetch(
        "SELECT event_id, alarm_id, msg_type, identifier, sent, document FROM cap_alerts WHERE partner_id = %s ORDER BY sent DESC LIMIT %s",
        (partner_id, limit),
    )


@router.get("/persons")
async def persons(ctx: Ctx, who: Annotated[Principal, Depends(anyone)]) -> list[dict[str, Any]]:
    if who.role is Role.FAMILY:
        return await ctx.fetch("SELECT person_id, name, name_pinyin, town, village FROM persons WHERE person_id = ANY(%s) ORDER BY person_id", (list(await ctx.persons_of(who.username)),))
    rows = await ctx.fetch("SELECT person_id, name, name_pinyin, town, village, lat, lon FROM persons WHERE retired_at IS NULL ORDER BY person_id")
    await ctx.log_access(who, (r["person_id"] for r in rows), "person list")
    return rows
