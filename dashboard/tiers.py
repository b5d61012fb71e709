"""The three tiers' routes: the village doctor (`first_aid`, scoped to a post), the receiving
hospital (`hospital`, scoped to a facility) and the crew (`crew`, scoped to a unit).

Each scoped user sees only the incidents that name its scope — the post alerted as first
responder, the hospital chosen (or diverted to), the unit ordered — while the incident is
open and for `SCOPED_GRACE_S` after it closed. Anyone else's incident gets the same 404 as
one that does not exist. Every read of a person's data is written to the access log. The
websockets (`/ws/tier`) only say *that* an incident changed; the pages re-read their board
here, so the scope is checked in one place.

Crew statuses from the terminal take the crews' own path: the API publishes them on the
unit's status topic (`{root}/unit/{unit_id}/status`), where ingest stores and the dispatcher
applies them exactly as if the crew's MQTT terminal had sent them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from dashboard.auth import Principal, Role
from dashboard.context import ApiContext, context, require
from dispatch import tier_store
from dispatch.first_response import SCOPED_GRACE_S, Answer, ResponseError, answer_state
from dispatch.lifecycle import OPEN_INCIDENT, values
from dispatch.live_eta import live_eta, route_coords
from dispatch.store import first_response_json

router = APIRouter(prefix="/api/tier")
Ctx = Annotated[ApiContext, Depends(context)]

# Crew statuses the terminal may send: what the crews' MQTT terminals send today.
CrewStatus = Literal["en_route", "on_scene", "transporting", "at_hospital", "returning", "available", "out_of_service"]
# Wearable vitals shown to the hospital: the last hours before the call matter, not last week.
VITALS_WINDOW = timedelta(hours=6)
VITALS_ROWS = 24


async def first_aid(request: Request) -> Principal:
    return await require(request, Role.FIRST_AID)


async def hospital(request: Request) -> Principal:
    return await require(request, Role.HOSPITAL)


async def crew(request: Request) -> Principal:
    return await require(request, Role.CREW)


async def scoped(request: Request) -> Principal:
    return await require(request, Role.FIRST_AID, Role.HOSPITAL, Role.CREW)


def _scope_sql(role: Role) -> str:
    """The condition naming the incidents `i` of a scope `%(scope)s`."""
    if role is Role.FIRST_AID:
        # A doctor who declined is not coming: the patient's data is no longer theirs to see.
        return ("EXISTS (SELECT 1 FROM first_responses f WHERE f.incident_id = i.incident_id AND f.post_id = %(scope)s "
                "AND f.answer IS DISTINCT FROM 'declined')")
    if role is Role.HOSPITAL:
        return "a.hospital_id = %(scope)s"
    return "a.unit_id = %(scope)s AND a.state NOT IN ('refused', 'stood_down')"


_BOARD = """
SELECT i.incident_id, i.kind, i.priority, i.state, i.description, i.created_at, i.updated_at, i.lat, i.lon,
       i.person_id, p.name AS person_name, p.address, p.village, p.town, p.conditions, p.medications,
       a.unit_id, a.state AS assignment_state, a.ordered_at, a.eta_s AS ordered_eta_s, a.hospital_id, a.first_aid_post_id,
       a.handed_over_at, u.status AS unit_status, u.lat AS unit_lat, u.lon AS unit_lon, u.gps_at AS unit_gps_at,
       h.name AS hospital_name, h.lat AS hospital_lat, h.lon AS hospital_lon,
       ub.lat AS base_lat, ub.lon AS base_lon,
       to_jsonb(f) AS first_response
FROM incidents i
LEFT JOIN LATERAL (SELECT * FROM assignments x WHERE x.incident_id = i.incident_id AND x.state <> 'refused'
                   ORDER BY x.assignment_id DESC LIMIT 1) a ON TRUE
LEFT JOIN persons p ON p.person_id = i.person_id
LEFT JOIN unit_state u ON u.unit_id = a.unit_id
LEFT JOIN units un ON un.unit_id = a.unit_id
LEFT JOIN facilities ub ON ub.facility_id = un.base_facility_id
LEFT JOIN facilities h ON h.facility_id = a.hospital_id
LEFT JOIN first_responses f ON f.incident_id = i.incident_id
WHERE ({scope}) AND (i.state = ANY(%(open)s) OR i.updated_at > %(since)s) {extra}
ORDER BY i.priority, i.created_at
LIMIT 100
"""


async def board_rows(ctx: ApiContext, who: Principal, incident_id: str | None = None) -> list[dict[str, Any]]:
    """The caller's incidents (or the one asked for), open or within the grace period."""
    params: dict[str, Any] = {
        "scope": who.scope, "open": values(OPEN_INCIDENT), "since": ctx.clock() - timedelta(seconds=SCOPED_GRACE_S),
        "incident": incident_id,
    }
    extra = "AND i.incident_id = %(incident)s" if incident_id is not None else ""
    return await ctx.fetch(_BOARD.format(scope=_scope_sql(who.role), extra=extra), params)


async def visible_incidents(ctx: ApiContext, who: Principal) -> tuple[set[str], set[str]]:
    """The incident ids a scoped websocket starts with, and the units serving them."""
    rows = await board_rows(ctx, who)
    return {r["incident_id"] for r in rows}, {r["unit_id"] for r in rows if r["unit_id"]}


def _view(row: dict[str, Any], who: Principal, now: datetime) -> dict[str, Any]:
    """What each tier sees of an incident: what its part needs, no more."""
    out = {k: row[k] for k in ("incident_id", "kind", "priority", "state", "description", "created_at", "updated_at", "lat", "lon")}
    out["person"] = None if row["person_id"] is None else {
        "person_id": row["person_id"], "name": row["person_name"], "address": row["address"], "village": row["village"],
        "town": row["town"], "conditions": row["conditions"] or [], "medications": row["medications"] or [],
    }
    out["unit"] = None if row["unit_id"] is None else {
        "unit_id": row["unit_id"], "status": row["unit_status"], "assignment": row["assignment_state"],
        "ordered_at": row["ordered_at"], "ordered_eta_s": row["ordered_eta_s"],
    }
    response = row["first_response"]
    if response is not None:
        response = {**response, "state": answer_state(response["answer"], datetime.fromisoformat(response["answer_by"]), now)}
        response.pop("answer", None)
    out["first_response"] = response
    if who.role is not Role.FIRST_AID:
        out["hospital"] = None if row["hospital_id"] is None else {
            "hospital_id": row["hospital_id"], "name": row["hospital_name"], "lat": row["hospital_lat"], "lon": row["hospital_lon"],
        }
        out["handed_over_at"] = row["handed_over_at"]
    return out


async def _with_live_eta(ctx: ApiContext, rows: list[dict[str, Any]], views: list[dict[str, Any]], route: bool) -> None:
    """Add the unit's live ETA (and the crew's route) from its latest fix on the road graph."""
    if not rows:
        return

    def compute(graph: Any) -> list[tuple[Any, Any]]:
        out = []
        for r in rows:
            at = (r["unit_lat"], r["unit_lon"]) if r["unit_lat"] is not None else (
                (r["base_lat"], r["base_lon"]) if r["base_lat"] is not None else None)
            hospital = (r["hospital_lat"], r["hospital_lon"]) if r["hospital_lat"] is not None else None
            eta = live_eta(graph, at, r["unit_status"], (r["lat"], r["lon"]), hospital) if r["unit_id"] else None
            path = None
            if route and at is not None:
                target = hospital if r["unit_status"] in ("transporting", "at_hospital") and hospital else (r["lat"], r["lon"])
                path = route_coords(graph, at, target)
            out.append((eta, path))
        return out

    try:
        computed = await ctx.with_road_graph(compute)
    except LookupError:  # no road network loaded: the ordered ETA is all there is
        return
    for view, row, (eta, path) in zip(views, rows, computed):
        if eta is not None:
            view["eta_to_scene_s"] = None if eta.to_scene_s is None else round(eta.to_scene_s)
            view["eta_to_hospital_s"] = None if eta.to_hospital_s is None else round(eta.to_hospital_s)
        if path is not None:
            view["route"] = path
        if row["unit_lat"] is not None:
            view["unit_position"] = {"lat": row["unit_lat"], "lon": row["unit_lon"], "gps_at": row["unit_gps_at"]}


async def _hospital_extras(ctx: ApiContext, views: list[dict[str, Any]], now: datetime) -> None:
    """The person's recent wearable vitals and the crew's reports, for the hospital."""
    for view in views:
        person = view["person"]
        view["vitals"] = [] if person is None else await ctx.fetch(
            "SELECT ts, hr_bpm, spo2_pct, skin_temp_c FROM wearable_readings WHERE person_id = %s AND ts > %s "
            "AND (hr_bpm IS NOT NULL OR spo2_pct IS NOT NULL) ORDER BY ts DESC LIMIT %s",
            (person["person_id"], now - VITALS_WINDOW, VITALS_ROWS),
        )
        unit = view["unit"] or {}
        # A terminal that does not name the incident: its unit's reports since the order.
        view["patient_reports"] = await ctx.fetch(
            "SELECT ts, unit_id, hr_bpm, spo2_pct, resp_rate, sys_bp, dia_bp, temp_c, gcs, consciousness, suspected, note "
            "FROM patient_reports WHERE incident_id = %s OR (incident_id IS NULL AND unit_id = %s AND ts >= %s) "
            "ORDER BY ts DESC LIMIT 50",
            (view["incident_id"], unit.get("unit_id"), unit.get("ordered_at")),
        )


@router.get("/incidents")
async def board(ctx: Ctx, who: Annotated[Principal, Depends(scoped)]) -> dict[str, Any]:
    """The caller's board: a post's alerts, a hospital's incoming patients, a crew's order."""
    now = ctx.clock()
    rows = await board_rows(ctx, who)
    views = [_view(r, who, now) for r in rows]
    await _with_live_eta(ctx, rows, views, route=who.role is Role.CREW)
    if who.role in (Role.HOSPITAL, Role.CREW):
        await _hospital_extras(ctx, views, now)
    await ctx.log_access(who, (r["person_id"] for r in rows), f"{who.role.value} board")
    extra: dict[str, Any] = {}
    if who.role is Role.HOSPITAL:
        [facility] = await ctx.fetch("SELECT name, no_capacity, no_capacity_since FROM facilities WHERE facility_id = %s", (who.scope,)) or [
            {"name": None, "no_capacity": False, "no_capacity_since": None}]
        extra = {"facility": {"facility_id": who.scope, **facility}}
    elif who.role is Role.CREW:
        state = await ctx.fetch("SELECT status, lat, lon, gps_at, report_ts FROM unit_state WHERE unit_id = %s", (who.scope,))
        extra = {"unit": {"unit_id": who.scope, **(state[0] if state else {"status": "available"})}}
    return {"role": who.role.value, "scope": who.scope, "now": now, "incidents": views, **extra}


# --- the village doctor ----------------------------------------------------------------------


class DoctorAnswer(BaseModel):
    answer: Literal["accepted", "declined"]


class DoctorNote(BaseModel):
    text: str = Field(min_length=1, max_length=tier_store.NOTE_MAX)


async def _doctor_step(ctx: ApiContext, who: Principal, incident_id: str, fn: Any, *args: Any) -> dict[str, Any]:
    if not await board_rows(ctx, who, incident_id):
        raise HTTPException(404, detail=f"no incident {incident_id}")
    try:
        row = await ctx.run_sync(fn, incident_id, who.scope, *args, f"first_aid:{who.username}", ctx.clock())
    except tier_store.NotFound:
        raise HTTPException(404, detail=f"no incident {incident_id}") from None
    except ResponseError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return first_response_json(row, ctx.clock())


@router.post("/incidents/{incident_id}/answer")
async def answer(incident_id: str, body: DoctorAnswer, ctx: Ctx, who: Annotated[Principal, Depends(first_aid)]) -> dict[str, Any]:
    """The village doctor accepts ("on my way") or declines the alert."""
    return await _doctor_step(ctx, who, incident_id, tier_store.answer, Answer(body.answer))


@router.post("/incidents/{incident_id}/on-scene")
async def on_scene(incident_id: str, ctx: Ctx, who: Annotated[Principal, Depends(first_aid)]) -> dict[str, Any]:
    return await _doctor_step(ctx, who, incident_id, tier_store.on_scene)


@router.post("/incidents/{incident_id}/note")
async def note(incident_id: str, body: DoctorNote, ctx: Ctx, who: Annotated[Principal, Depends(first_aid)]) -> dict[str, Any]:
    """A short note for the console and the crew ("conscious, breathing, bleeding controlled")."""
    return await _doctor_step(ctx, who, incident_id, tier_store.note, body.text)


# --- the hospital ----------------------------------------------------------------------------


class Capacity(BaseModel):
    no_capacity: bool


@router.post("/capacity")
async def capacity(body: Capacity, ctx: Ctx, who: Annotated[Principal, Depends(hospital)]) -> dict[str, Any]:
    """Flag (or clear) "no capacity": incoming patients not yet handed over go to the next
    capable hospital; the control room sees each diversion, the crews get new orders."""
    def do(conn: Any) -> list[tier_store.Diversion]:
        graph, facilities = ctx.dispatch_reference(conn)
        return tier_store.set_capacity(conn, who.scope or "", body.no_capacity, graph, facilities, f"hospital:{who.username}", ctx.clock())

    try:
        diversions = await ctx.run_sync(do)
    except tier_store.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    for d in diversions:
        if d.order is not None:
            await ctx.run_sync_plain(ctx.send_order, d.order)
    return {"no_capacity": body.no_capacity, "diverted": [
        {"incident_id": d.incident_id, "unit_id": d.unit_id, "to_hospital": d.to_hospital} for d in diversions]}


# --- the crew --------------------------------------------------------------------------------


class CrewReport(BaseModel):
    status: CrewStatus
    ts: datetime  # when the crew pressed the button: a report queued offline keeps its time and order
    incident_id: str | None = Field(default=None, max_length=64)


class PatientReport(BaseModel):
    ts: datetime
    incident_id: str | None = Field(default=None, max_length=64)
    hr_bpm: float | None = None
    spo2_pct: float | None = None
    resp_rate: float | None = None
    sys_bp: float | None = None
    dia_bp: float | None = None
    temp_c: float | None = None
    gcs: int | None = None
    consciousness: Literal["alert", "voice", "pain", "unresponsive"] | None = None
    suspected: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=1000)


@router.post("/status", status_code=202)
async def crew_status(body: CrewReport, ctx: Ctx, who: Annotated[Principal, Depends(crew)]) -> dict[str, Any]:
    """A status from the crew terminal, published on the unit's own status topic: accepted
    (202) once the broker has it; applied when the dispatcher has taken it in (the terminal
    sees its unit.updated)."""
    payload: dict[str, Any] = {"status": body.status, "ts": body.ts.isoformat()}
    if body.incident_id and await board_rows(ctx, who, body.incident_id):  # names only the crew's own incident
        payload["incident_id"] = body.incident_id
    await ctx.run_sync_plain(ctx.publish_unit, who.scope or "", "status", payload)
    return {"accepted": True, "unit_id": who.scope, **payload}


@router.post("/patient", status_code=202)
async def crew_patient(body: PatientReport, ctx: Ctx, who: Annotated[Principal, Depends(crew)]) -> dict[str, Any]:
    """The crew's patient report, published on `{root}/unit/{unit_id}/patient` like a
    terminal's own: ingest validates and stores it for the hospital's board."""
    if body.incident_id is not None and not await board_rows(ctx, who, body.incident_id):
        raise HTTPException(404, detail=f"no incident {body.incident_id}")  # a report goes only to the crew's own patients
    payload = body.model_dump(exclude_none=True, mode="json")
    await ctx.run_sync_plain(ctx.publish_unit, who.scope or "", "patient", payload)
    return {"accepted": True, "unit_id": who.scope, **payload}
