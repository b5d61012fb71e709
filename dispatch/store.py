"""The dispatcher's database side: the road network, units' live state, assignment
transactions and lifecycle steps. Each public function is one transaction.

Double-booking is impossible by construction, not by luck: an assignment row is inserted
under two partial unique indexes (one open assignment per unit, one per incident), so of two
dispatchers racing for one unit, the second one's insert fails and it moves to its next
candidate. Each incident is decided under its row lock, so it is decided once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import DictRow, class_row, dict_row
from psycopg.types.json import Jsonb

from dispatch.assignment import (
    Candidate,
    Decision,
    Facility,
    IllegalTransition,
    Incident,
    IncidentStatus,
    Priority,
    Unit,
    UnitStatus,
    choose_hospital,
    decide,
    nearest_first_aid_post,
    next_candidate,
    order_pending,
    redispatch_due,
    transition,
)
from dispatch.eta import eta_from
from dispatch.first_response import ANSWER_WITHIN_S, CALL_AFTER_S, FIRST_RESPONDER_MARGIN_S, answer_state, should_alert_post
from dispatch.geometry import haversine_m
from dispatch.incident_policy import (
    HANDOFF_FACILITY,
    MEDICAL_KINDS,
    LoopEvent,
    Verification,
    companion_for,
    companion_reason,
    handoffs_for,
    needs_verification,
    next_loop_stage,
    unit_kind_for,
)
from dispatch.lifecycle import (
    FREE_UNIT,
    OPEN_ASSIGNMENT,
    OPEN_INCIDENT,
    AssignmentState,
    can_reach,
    reachable_from,
    released,
    values,
)
from dispatch.progress import step_for
from dispatch.roads import ROAD_CLASSES, RoadGraph
from dispatch.coverage import Site, coverage, recommend_move_up
from dispatch.snapping import EdgeSnap, SceneField, scene_field, snap_cached, snap_to_edge
from kernel.events import EventType, announce, emit

log = logging.getLogger(__name__)


class NoRoadNetwork(LookupError):
    """No road network is loaded: nothing can be routed until `watchpost roads load` runs."""

A = AssignmentState
# An `available` unit whose last fix is within this distance of its base is parked there: it
# is placed at the base whatever the fix's age (a terminal with the ignition off is quiet).
AT_BASE_M = 150.0

# Each transaction reads through one cursor whose rows are dicts by column name.
_Cursor = psycopg.Cursor[DictRow]


@dataclass(frozen=True, slots=True)
class Order:
    """What the crew receives on `{root}/unit/{unit_id}/order`."""

    unit_id: str
    incident_id: str
    priority: int
    lat: float
    lon: float
    address: str
    eta_s: float
    hospital_id: str | None
    first_aid_post_id: str | None

    def payload(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "priority": self.priority,
            "lat": self.lat,
            "lon": self.lon,
            "address": self.address,
            "eta_s": round(self.eta_s, 1),
            "hospital_id": self.hospital_id,
            "first_aid_post_id": self.first_aid_post_id,
        }


@dataclass(frozen=True, slots=True)
class Queued:
    """No unit of `unit_kind` can take the incident now: it waits in the queue."""

    unit_kind: str


@dataclass(frozen=True, slots=True)
class Facilities:
    hospitals: tuple[Facility, ...]
    first_aid_posts: tuple[Facility, ...]
    base_location: dict[str, tuple[float, float]]  # unit_id -> its base's lat/lon
    handoff_to: dict[str, tuple[Facility, ...]] = dataclass_field(default_factory=dict)  # facility kind -> facilities


# --- reference data ------------------------------------------------------------------------


def save_road_graph(conn: psycopg.Connection, graph: RoadGraph, now: datetime) -> int:
    """Replace the road network in one transaction, bump its version and announce it
    (`roads.loaded`) at commit, so running dispatchers and API processes read it before
    their next route. Returns the new version."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("TRUNCATE road_nodes, road_edges, road_water")
        with cur.copy("COPY road_nodes (node, lat, lon) FROM STDIN") as copy:
            for i in range(graph.n_nodes):
                copy.write_row((i, float(graph.lat[i]), float(graph.lon[i])))
        with cur.copy("COPY road_edges (edge_from, edge_to, length_m, road_class, speed_kmh) FROM STDIN") as copy:
            for k in range(graph.n_edges):
                copy.write_row((
                    int(graph.edge_from[k]), int(graph.edge_to[k]), float(graph.length_m[k]),
                    ROAD_CLASSES[int(graph.road_class[k])], float(graph.speed_kmh[k]),
                ))
        with cur.copy("COPY road_water (segment, lat1, lon1, lat2, lon2) FROM STDIN") as copy:
            for k, (lat1, lon1, lat2, lon2) in enumerate(graph.water.tolist()):
                copy.write_row((k, lat1, lon1, lat2, lon2))
        cur.execute("UPDATE registry_version SET roads_version = roads_version + 1, roads_loaded_at = %s RETURNING roads_version", (now,))
        row = cur.fetchone()
        version = int(row[0]) if row is not None else 0
        announce(cur, EventType.ROADS_LOADED, None, {"version": version, "nodes": graph.n_nodes, "edges": graph.n_edges}, now)
    return version


def road_network_version(conn: psycopg.Connection) -> int:
    """Changes with every `watchpost roads load`: whether a process's network is the loaded one."""
    row = conn.execute("SELECT roads_version FROM registry_version").fetchone()
    conn.commit()
    return int(row[0]) if row is not None else 0


def load_road_graph(conn: psycopg.Connection) -> RoadGraph:
    nodes = conn.execute("SELECT lat, lon FROM road_nodes ORDER BY node").fetchall()
    edges = conn.execute("SELECT edge_from, edge_to, length_m, road_class, speed_kmh FROM road_edges").fetchall()
    water = conn.execute("SELECT lat1, lon1, lat2, lon2 FROM road_water ORDER BY segment").fetchall()
    conn.commit()
    if not nodes:
        raise NoRoadNetwork("no road network in the database: run `watchpost roads load`")
    lat, lon = (np.array(c, dtype=float) for c in zip(*nodes))
    f, t, length, cls, speed = zip(*edges)
    return RoadGraph.from_edges(
        lat, lon, np.array(f, dtype=np.int64), np.array(t, dtype=np.int64), np.array(length, dtype=float),
        np.array(cls), np.array(speed, dtype=float), water=np.array(water, dtype=float).reshape(-1, 4),
    )


def load_facilities(conn: psycopg.Connection, graph: RoadGraph) -> Facilities:
    rows = conn.execute("SELECT facility_id, kind, lat, lon FROM facilities WHERE retired_at IS NULL").fetchall()
    bases = conn.execute(
        "SELECT u.unit_id, f.lat, f.lon FROM units u JOIN facilities f ON f.facility_id = u.base_facility_id "
        "WHERE u.retired_at IS NULL"
    ).fetchall()
    conn.commit()

    def at(kind: str) -> tuple[Facility, ...]:
        return tuple(Facility(fid, graph.snap(lat, lon).node) for fid, k, lat, lon in rows if k == kind)

    handoff_to = {kind: at(kind) for kind in set(HANDOFF_FACILITY.values())}
    return Facilities(at("hospital"), at("first_aid_post"), {u: (lat, lon) for u, lat, lon in bases}, handoff_to)


# --- assignment ----------------------------------------------------------------------------


def create_incident(
    conn: psycopg.Connection, *, lat: float, lon: float, kind: str, priority: int, description: str, actor: str, now: datetime
) -> dict[str, Any]:
    """A call-taker's incident. The dispatchers hear of it through the event stream."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """INSERT INTO incidents (kind, priority, lat, lon, description, created_at, created_by, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (kind, priority, lat, lon, description, now, actor, now),
        )
        incident = _returned(cur)
        _audit(cur, now, incident["incident_id"], None, "created", actor, {"kind": kind, "priority": priority})
        emit(cur, EventType.INCIDENT_CREATED, None, incident, now)
        return incident


def pending_incidents(conn: psycopg.Connection) -> list[str]:
    """Waiting incidents in the order the queue policy gives them (order_pending)."""
    rows = conn.execute(
        "SELECT incident_id, priority, created_at FROM incidents WHERE state = %s", (IncidentStatus.NEW.value,)
    ).fetchall()
    conn.commit()
    waiting = [Incident(incident_id, Priority(priority), created_at) for incident_id, priority, created_at in rows]
    return [i.incident_id for i in order_pending(waiting)]


def assign(
    conn: psycopg.Connection,
    incident_id: str,
    graph: RoadGraph,
    facilities: Facilities,
    now: datetime,
    *,
    actor: str = "dispatcher",
    forced_unit: str | None = None,
    skip_kinds: frozenset[str] = frozenset(),
    first_responder_margin_s: float = FIRST_RESPONDER_MARGIN_S,
    answer_within_s: float = ANSWER_WITHIN_S,
    call_after_s: float = CALL_AFTER_S,
) -> Order | Queued | None:
    """Decide and record who goes to a waiting incident. Returns the order to publish (after
    this commits); Queued when no unit can take it (it stays in the queue and the control
    room is told once); None when it is no longer waiting (another dispatcher served it).
    An incident needing a unit kind in `skip_kinds` is left waiting untouched."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # A plain FOR UPDATE, not SKIP LOCKED: a second dispatcher waits for the first one's
        # decision on this incident rather than jumping to a less urgent one, so the queue is
        # served in priority order whatever the number of dispatchers.
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE", (incident_id,))
        incident = cur.fetchone()
        if incident is None or incident["lat"] is None:
            return None
        if incident["state"] != IncidentStatus.NEW and forced_unit is None:
            return None
        unit_kind = unit_kind_for(incident["kind"])
        if unit_kind in skip_kinds and forced_unit is None:
            return Queued(unit_kind)
        field = scene_field(graph, snap_to_edge(graph, incident["lat"], incident["lon"]))
        scene = field.scene.u
        units, snaps = _units(cur, graph, facilities)
        etas = _etas(graph, field, snaps)
        wanted = Incident(incident_id, Priority(incident["priority"]), incident["created_at"], unit_kind)
        decision = decide(wanted, units, etas, now)
        cur.execute("SELECT unit_id FROM assignments WHERE incident_id = %s AND state = %s", (incident_id, A.REFUSED.value))
        for refused in [r["unit_id"] for r in cur.fetchall()]:
            decision = next_candidate(decision, refused, now)
        if forced_unit is not None:
            forced = _forced(decision, forced_unit, etas, actor)
            if forced is None:
                return None
            decision = forced
            _stand_down(cur, incident_id, now, actor)
        while decision.chosen is not None:
            chosen = decision.chosen
            if _book(cur, incident, chosen.unit_id, chosen.eta_s, decision, now, actor):
                break
            decision = next_candidate(decision, chosen.unit_id, now)  # taken meanwhile
        if decision.chosen is None:
            if not incident["queued"]:  # tell the control room once, not at every retry
                cur.execute("UPDATE incidents SET queued = true WHERE incident_id = %s", (incident_id,))
                _audit(cur, now, incident_id, None, "queued", actor, decision.to_json())
                emit(cur, EventType.INCIDENT_UPDATED, incident["person_id"], {**_incident_json(incident), "queued": True, "decision": decision.to_json()}, now)
            return Queued(unit_kind)
        medical = incident["kind"] in MEDICAL_KINDS
        hospital = choose_hospital(_with_capacity(cur, facilities.hospitals), eta_from(graph, scene)) if medical else None
        post = nearest_first_aid_post(facilities.first_aid_posts, field.seconds) if medical else None
        unit_id = decision.chosen.unit_id
        hospital_id = hospital.facility_id if hospital else None
        post_id = post.facility_id if post else None
        responder = should_alert_post(post_id, post.eta_s if post else None, decision.chosen.eta_s, margin_s=first_responder_margin_s)
        if responder.alert and responder.post_id is not None and responder.post_eta_s is not None:
            _alert_first_responder(cur, incident, responder.post_id, responder.post_eta_s, decision.chosen.eta_s, now, answer_within_s,
                                   call_after_s)
        cur.execute(
            "UPDATE assignments SET hospital_id = %s, first_aid_post_id = %s WHERE incident_id = %s AND unit_id = %s AND state = %s",
            (hospital_id, post_id, incident_id, unit_id, A.ORDERED.value),
        )
        loop_stage = next_loop_stage(incident["kind"], incident["loop_stage"], LoopEvent.UNIT_ORDERED)
        target = _incident_transition(cur, incident, IncidentStatus.DISPATCHED, now, actor, unit_id)
        cur.execute(
            "UPDATE incidents SET state = %s, queued = false, loop_stage = COALESCE(%s, loop_stage), updated_at = %s "
            "WHERE incident_id = %s RETURNING *",
            (target.value, loop_stage, now, incident_id),
        )
        updated = _returned(cur)
        detail = {**decision.to_json(), **field.scene.audit(), "hospital": hospital_id, "first_aid_post": post_id,
                  "first_responder": responder.to_json() if medical else None}
        handoffs = _hand_off(cur, incident, facilities, field.seconds, now, actor)
        if handoffs:
            detail["handoffs"] = handoffs
        _audit(cur, now, incident_id, unit_id, "assigned", actor, detail)
        emit(cur, EventType.INCIDENT_UPDATED, incident["person_id"], {**_incident_json(updated), "unit_id": unit_id, "decision": detail}, now)
        emit(cur, EventType.UNIT_UPDATED, None, {"unit_id": unit_id, "status": UnitStatus.DISPATCHED.value, "incident_id": incident_id}, now)
        return Order(
            unit_id, incident_id, incident["priority"], incident["lat"], incident["lon"], incident["description"],
            decision.chosen.eta_s, hospital_id, post_id,
        )


def _hand_off(
    cur: _Cursor, incident: dict[str, Any], facilities: Facilities, seconds_to_scene: np.ndarray, now: datetime, actor: str
) -> list[dict[str, Any]]:
    """Record the hand-offs the incident's kind calls for (119 for fire and gas, the gas
    company for gas), each to the facility of that kind nearest the scene by road. Once per
    incident: a re-dispatch hands nothing off again."""
    services = handoffs_for(incident["kind"])
    if not services:
        return []
    cur.execute("SELECT detail FROM dispatch_audit WHERE incident_id = %s AND action = 'handoff'", (incident["incident_id"],))
    done = {row["detail"].get("service") for row in cur.fetchall()}
    out = []
    for service in services:
        if service in done:
            continue
        nearest = nearest_first_aid_post(facilities.handoff_to.get(HANDOFF_FACILITY[service], ()), seconds_to_scene)
        record = {"service": service, "facility_id": nearest.facility_id if nearest else None}
        _audit(cur, now, incident["incident_id"], None, "handoff", actor, record)
        out.append(record)
    return out


def add_companion(conn: psycopg.Connection, incident_id: str, reason: str, actor: str, now: datetime) -> dict[str, Any] | None:
    """Someone is hurt, or the person does not answer, at a fire or gas incident: an
    ambulance goes too, as a priority-1 medical incident at the same place linked to it.
    Returns the new incident; None when the incident is not open, calls for none, or already
    has one. Raises ValueError for a reason that is not one of COMPANION_REASONS."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s AND state = ANY(%s) FOR UPDATE", (incident_id, values(OPEN_INCIDENT)))
        parent = cur.fetchone()
        return _add_companion(cur, parent, reason, actor, now) if parent is not None else None


def _add_companion(cur: _Cursor, parent: dict[str, Any], reason: str, actor: str, now: datetime) -> dict[str, Any] | None:
    spec = companion_for(parent["kind"], reason)
    if spec is None:
        return None
    incident_id = parent["incident_id"]
    cur.execute(
        """INSERT INTO incidents (kind, priority, lat, lon, description, created_at, created_by, updated_at, parent_incident_id,
                                  location_source, location_acc_m, location_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (parent_incident_id) WHERE parent_incident_id IS NOT NULL
           DO NOTHING RETURNING *""",
        (spec.kind, spec.priority, parent["lat"], parent["lon"], f"ambulance for {incident_id}: {reason.replace('_', ' ')}",
         now, actor, now, incident_id, parent["location_source"], parent["location_acc_m"], parent["location_at"]),
    )
    companion = cur.fetchone()
    if companion is None:
        return None
    _audit(cur, now, incident_id, None, "companion", actor, {"reason": reason, "incident_id": companion["incident_id"]})
    _audit(cur, now, companion["incident_id"], None, "created", actor, {"kind": spec.kind, "priority": spec.priority, "parent": incident_id})
    emit(cur, EventType.INCIDENT_CREATED, parent["person_id"], companion, now)
    return companion


@dataclass(frozen=True, slots=True)
class Verified:
    """A verification call's outcome recorded on its incident, and the ambulance it added."""

    incident: dict[str, Any]
    companion: dict[str, Any] | None


def record_verification(
    conn: psycopg.Connection, incident_id: str, outcome: Verification, actor: str, now: datetime, *, timed_out: bool = False,
) -> Verified | None:
    """The control room's verification call at a fire or gas incident: `ok` keeps the fire
    crew alone, `hurt` or `no_answer` adds the ambulance. A later call may change `ok` to
    `hurt` (the person called back); nothing takes an ambulance away once added. None when the
    incident is not open or takes no verification."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s AND state = ANY(%s) FOR UPDATE", (incident_id, values(OPEN_INCIDENT)))
        parent = cur.fetchone()
        if parent is None or not needs_verification(parent["kind"], parent["person_id"]):
            return None
        if timed_out and parent["verification"] is not None:
            return None  # answered meanwhile (the control room, or another dispatcher's pass)
        cur.execute(
            "UPDATE incidents SET verification = %s, verified_at = %s, verified_by = %s, updated_at = %s WHERE incident_id = %s RETURNING *",
            (outcome.value, now, actor, now, incident_id),
        )
        updated = cur.fetchone()
        assert updated is not None  # locked above
        _audit(cur, now, incident_id, None, "verification", actor, {"outcome": outcome.value, "timed_out": timed_out})
        reason = companion_reason(outcome)
        companion = _add_companion(cur, updated, reason, actor, now) if reason is not None else None
        emit(cur, EventType.INCIDENT_UPDATED, parent["person_id"], {**_incident_json(updated), "change": "verification"}, now)
        return Verified(updated, companion)


def unverified_overdue(conn: psycopg.Connection, now: datetime) -> list[str]:
    """Fire and gas incidents whose verification call has no recorded answer past its time."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT incident_id FROM incidents WHERE verify_by <= %s AND verification IS NULL AND state = ANY(%s) ORDER BY verify_by LIMIT 100",
            (now, values(OPEN_INCIDENT)),
        )
        return [r[0] for r in cur.fetchall()]


def verify_overdue(conn: psycopg.Connection, now: datetime) -> list[Verified]:
    """Nothing waits on the call: an unanswered verification past its time is `no_answer`, and
    the ambulance goes. Several dispatchers may run this; the row lock makes it once."""
    done = []
    for incident_id in unverified_overdue(conn, now):
        verified = record_verification(conn, incident_id, Verification.NO_ANSWER, "dispatcher", now, timed_out=True)
        if verified is not None:
            done.append(verified)
    return done


@dataclass(frozen=True, slots=True)
class Relocation:
    """A move-up order: `{root}/unit/{unit_id}/order` with `kind: relocate`. The unit stays
    available (the dispatcher may send it on from the road) and drives to the facility."""

    unit_id: str
    order_id: str
    facility_id: str
    lat: float
    lon: float
    eta_s: float

    def payload(self) -> dict[str, Any]:
        return {"kind": "relocate", "order_id": self.order_id, "facility_id": self.facility_id, "lat": self.lat,
                "lon": self.lon, "eta_s": round(self.eta_s, 1)}


def _coverage_places(conn: psycopg.Connection, graph: RoadGraph) -> tuple[list[Site], dict[str, tuple[str, EdgeSnap]], dict[str, dict[str, Any]]]:
    rows = conn.execute(
        "SELECT facility_id, kind, name, town, lat, lon FROM facilities WHERE kind IN ('first_aid_post', 'ambulance_station') AND retired_at IS NULL "
        "ORDER BY facility_id"
    ).fetchall()
    sites, stations, where = [], {}, {}
    for fid, kind, name, town, lat, lon in rows:
        snap = snap_cached(graph, float(lat), float(lon))
        if kind == "first_aid_post":
            sites.append(Site(fid, town or "", snap))
            where[fid] = {"name": name, "town": town, "lat": lat, "lon": lon}
        elif town and town not in stations:
            stations[town] = (fid, snap)
    return sites, stations, where


def coverage_now(conn: psycopg.Connection, graph: RoadGraph, facilities: Facilities, now: datetime, *, move_up: bool = True) -> dict[str, Any]:
    """Which villages an available ambulance reaches within 8 / 12 / 15 minutes now, the towns
    left uncovered, and the move-up that would cover one again (dispatch/coverage.py)."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        units, snaps = _units(cur, graph, facilities)
        sites, stations, where = _coverage_places(conn, graph)
    available = {u.unit_id: snaps[u.unit_id] for u in units
                 if u.kind == "ambulance" and u.status is UnitStatus.AVAILABLE and u.unit_id in snaps}
    current = coverage(graph, list(available.values()), sites)
    move = recommend_move_up(graph, available, sites, stations, current) if move_up else None
    picture = current.to_json()
    picture["sites"] = {sid: {**where[sid], **band} for sid, band in picture["sites"].items()}  # type: ignore[attr-defined]
    return {**picture, "at": now.isoformat(), "available": sorted(available), "move_up": move.to_json() if move else None}


def record_coverage(conn: psycopg.Connection, graph: RoadGraph, facilities: Facilities, event_id: int, at: datetime) -> bool:
    """Sample the coverage after the unit status change `event_id`; once per event whatever
    the number of dispatchers (the event id is the key). True if this call recorded it."""
    now = coverage_now(conn, graph, facilities, at, move_up=False)
    within = now["share_within"]
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO coverage_samples (event_id, at, within_8, within_12, within_15, uncovered_towns) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            (event_id, at, within[0], within[1], within[2], now["uncovered_towns"]),
        ).fetchone()
    return inserted is not None


def relocate(conn: psycopg.Connection, graph: RoadGraph, facilities: Facilities, unit_id: str, facility_id: str,
             actor: str, now: datetime) -> Relocation | None:
    """A dispatcher accepts a move-up: an available unit is sent to stand by at a facility.
    None when the unit is not available or the facility is unknown."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT lat, lon FROM facilities WHERE facility_id = %s", (facility_id,))
        target = cur.fetchone()
        units, snaps = _units(cur, graph, facilities)
        unit = next((u for u in units if u.unit_id == unit_id), None)
        if target is None or unit is None or unit.status is not UnitStatus.AVAILABLE or unit_id not in snaps:
            return None
        field = scene_field(graph, snap_cached(graph, float(target["lat"]), float(target["lon"])))
        eta_s = field.eta_of(graph, snaps[unit_id])
        order_id = f"relocate-{unit_id}-{int(now.timestamp())}"
        _audit(cur, now, None, unit_id, "relocate", actor, {"facility_id": facility_id, "order_id": order_id, "eta_s": round(eta_s, 1)})
        emit(cur, EventType.UNIT_UPDATED, None, {"unit_id": unit_id, "status": unit.status.value, "incident_id": None,
                                                 "relocating_to": facility_id}, now)
        return Relocation(unit_id, order_id, facility_id, float(target["lat"]), float(target["lon"]), eta_s)


def _with_capacity(cur: _Cursor, hospitals: tuple[Facility, ...]) -> tuple[Facility, ...]:
    """The hospitals that have not flagged "no capacity" (read now: the flag changes during
    a shift, the facilities cached by the dispatcher do not). If every one has, all of them:
    a patient still goes to a hospital."""
    cur.execute("SELECT facility_id FROM facilities WHERE no_capacity")
    full = {r["facility_id"] for r in cur.fetchall()}
    open_ = tuple(h for h in hospitals if h.facility_id not in full)
    return open_ or hospitals


def _alert_first_responder(
    cur: _Cursor, incident: dict[str, Any], post_id: str, post_eta_s: float, unit_eta_s: float, now: datetime, answer_within_s: float,
    call_after_s: float = CALL_AFTER_S,
) -> None:
    """Record the village doctor's alert (once per incident: a re-assignment keeps the first
    alert and its answer) and tell the post's page and the console. A post with a duty phone
    also gets the alert by SMS at once and, still unanswered after `call_after_s`, a call:
    both queued for the notifier here, so they commit with the alert (like an escalation
    step's notifications)."""
    cur.execute(
        """INSERT INTO first_responses (incident_id, post_id, alerted_at, answer_by, post_eta_s, unit_eta_s)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (incident_id) DO NOTHING RETURNING *""",
        (incident["incident_id"], post_id, now, now + timedelta(seconds=answer_within_s), post_eta_s, unit_eta_s),
    )
    row = cur.fetchone()
    if row is not None:
        _audit(cur, now, incident["incident_id"], None, "first_responder_alerted", "dispatcher",
               {"post": post_id, "post_eta_s": round(post_eta_s, 1), "unit_eta_s": round(unit_eta_s, 1)})
        emit_first_response(cur, incident["person_id"], row, now)
        _queue_post_notifications(cur, incident, row, now, call_after_s)


def _queue_post_notifications(cur: _Cursor, incident: dict[str, Any], response: dict[str, Any], now: datetime,
                              call_after_s: float) -> None:
    """The SMS now, the call at `call_after_s`; the call's step ends with the answer time (after
    it the platform no longer counts on the doctor). The notifier cancels both once the
    doctor has answered on the page."""
    cur.execute(
        """INSERT INTO notifications (incident_id, person_id, username, channel, step, due_at, expires_at, created_at, updated_at)
           SELECT %(incident)s, %(person)s, f.facility_id, c.channel, 1, c.due_at, %(until)s, %(now)s, %(now)s
           FROM facilities f, (VALUES ('sms', %(now)s::timestamptz), ('voice', %(call_at)s::timestamptz)) AS c (channel, due_at)
           WHERE f.facility_id = %(post)s AND f.duty_phone IS NOT NULL
           ON CONFLICT DO NOTHING""",
        {"incident": incident["incident_id"], "person": incident["person_id"], "post": response["post_id"],
         "now": now, "call_at": now + timedelta(seconds=call_after_s), "until": response["answer_by"]},
    )


def emit_first_response(cur: _Cursor, person_id: str | None, row: dict[str, Any], now: datetime) -> None:
    """An incident.updated that carries only the incident's first response: the console
    merges it into the incident, the family view reduces it to "a village doctor is on the
    way", a post's page and the crew terminal re-read their incident."""
    emit(cur, EventType.INCIDENT_UPDATED, person_id,
         {"incident_id": row["incident_id"], "person_id": person_id, "first_response": first_response_json(row, now)}, now)


def first_response_json(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A first response as the console, the post and the crew see it."""
    return {
        "incident_id": row["incident_id"], "post_id": row["post_id"], "alerted_at": row["alerted_at"],
        "answer_by": row["answer_by"], "post_eta_s": row["post_eta_s"], "unit_eta_s": row["unit_eta_s"],
        "state": answer_state(row["answer"], row["answer_by"], now), "answered_at": row["answered_at"],
        "on_scene_at": row["on_scene_at"], "note": row["note"], "note_at": row["note_at"],
    }


def _forced(decision: Decision, unit_id: str, etas: dict[str, float], actor: str) -> Decision | None:
    """A dispatcher's manual choice: that unit, whatever the ranking says."""
    chosen = next((c for c in decision.ranked if c.unit_id == unit_id), None)
    if chosen is None:
        if unit_id not in etas:
            return None
        chosen = Candidate(unit_id, UnitStatus.AVAILABLE, etas[unit_id], False, None)
    return replace(decision, chosen=chosen, rule=f"manual override by {actor}")


@dataclass(frozen=True, slots=True)
class _UnitRow:
    """A unit as the dispatcher reads it: its kind, status and last GPS fix, if any."""

    unit_id: str
    kind: str
    status: str
    lat: float | None
    lon: float | None
    gps_at: datetime | None


def _units(cur: _Cursor, graph: RoadGraph, facilities: Facilities) -> tuple[list[Unit], dict[str, EdgeSnap]]:
    """Every unit with where it is on the road: its last fix, or its base when it never
    sent one or is `available` within AT_BASE_M of it (parked: at the base, whatever the
    fix's age)."""
    with cur.connection.cursor(row_factory=class_row(_UnitRow)) as units_cur:
        rows = units_cur.execute(
            "SELECT u.unit_id, u.kind, COALESCE(s.status, %s) AS status, s.lat, s.lon, s.gps_at "
            # A retired unit (absent from the county's registry) is never a candidate.
            "FROM units u LEFT JOIN unit_state s USING (unit_id) WHERE u.retired_at IS NULL ORDER BY u.unit_id",
            (UnitStatus.AVAILABLE.value,),  # a unit with no state row yet is at its base
        ).fetchall()
    units, snaps = [], {}
    for r in rows:
        base = facilities.base_location.get(r.unit_id)
        fix = (r.lat, r.lon) if r.lat is not None and r.lon is not None else None
        parked = base is not None and r.status == UnitStatus.AVAILABLE.value and (
            fix is None or float(haversine_m(fix[0], fix[1], base[0], base[1])) <= AT_BASE_M
        )
        at = base if parked or fix is None else fix
        snap = snap_cached(graph, float(at[0]), float(at[1])) if at is not None else None
        gps_at = r.gps_at
        if snap is not None and snap.outside and not parked and fix is not None:
            # A fix far outside the service region is not trusted: the unit is taken to be
            # somewhere near its base, with the widest stale widening (no fix time).
            log.warning("unit %s: fix %.5f, %.5f is %.0f m from any road; not trusted", r.unit_id, fix[0], fix[1], snap.distance_m,
                        extra={"unit_id": r.unit_id})
            snap = snap_cached(graph, float(base[0]), float(base[1])) if base is not None else None
            gps_at = None
        if snap is not None:
            snaps[r.unit_id] = snap
        units.append(Unit(r.unit_id, r.kind, UnitStatus(r.status), None if snap is None else snap.u, gps_at, at_base=parked))
    return units, snaps


def _etas(graph: RoadGraph, field: SceneField, snaps: dict[str, EdgeSnap]) -> dict[str, float]:
    return {unit_id: field.eta_of(graph, snap) for unit_id, snap in snaps.items()}


def _book(cur: _Cursor, incident: dict[str, Any], unit_id: str, eta_s: float, decision: Decision, now: datetime, actor: str) -> bool:
    """Insert the assignment and mark the unit dispatched; False if the unit was taken or
    changed status since it was ranked (the unique index or the status check says so)."""
    try:
        with cur.connection.transaction():
            cur.execute(
                "INSERT INTO assignments (incident_id, unit_id, ordered_at, eta_s, created_by, decision) VALUES (%s, %s, %s, %s, %s, %s)",
                (incident["incident_id"], unit_id, now, eta_s, actor, Jsonb(decision.to_json())),
            )
            cur.execute(
                """INSERT INTO unit_state (unit_id, status, incident_id, status_at) VALUES (%(unit)s, %(to)s, %(incident)s, %(now)s)
                   ON CONFLICT (unit_id) DO UPDATE SET status = excluded.status, incident_id = excluded.incident_id, status_at = excluded.status_at
                   WHERE unit_state.status = ANY(%(from)s)""",
                # A unit may be dispatched only from the statuses the lifecycle allows it from.
                {"unit": unit_id, "to": UnitStatus.DISPATCHED.value, "incident": incident["incident_id"], "now": now,
                 "from": values(reachable_from(UnitStatus.DISPATCHED))},
            )
            if cur.rowcount == 0:
                raise _Taken
    except (psycopg.errors.UniqueViolation, _Taken):
        return False
    return True


class _Taken(Exception):
    pass


def _stand_down(cur: _Cursor, incident_id: str, now: datetime, actor: str) -> None:
    """Re-assignment or close-out: the incident's current units are released, each to where
    its lifecycle allows (lifecycle.released). The incident's own state is the caller's."""
    cur.execute(
        "UPDATE assignments SET state = %s WHERE incident_id = %s AND state = ANY(%s) RETURNING unit_id",
        (A.STOOD_DOWN.value, incident_id, values(OPEN_ASSIGNMENT)),
    )
    for unit_id in [row["unit_id"] for row in cur.fetchall()]:
        cur.execute("SELECT status FROM unit_state WHERE unit_id = %s FOR UPDATE", (unit_id,))
        row = cur.fetchone()
        current = UnitStatus(row["status"]) if row is not None else UnitStatus.AVAILABLE
        target = released(current)
        if target is None:
            _audit(cur, now, incident_id, unit_id, "rejected_transition", actor,
                   {"reported": "stood_down", "reason": f"unit cannot be released while {current.value}"})
        else:
            cur.execute("UPDATE unit_state SET status = %s, incident_id = NULL, status_at = %s WHERE unit_id = %s",
                        (target.value, now, unit_id))
            emit(cur, EventType.UNIT_UPDATED, None, {"unit_id": unit_id, "status": target.value, "incident_id": None}, now)
        _audit(cur, now, incident_id, unit_id, "stood_down", actor, {})


def _incident_transition(
    cur: _Cursor, incident: dict[str, Any], new: IncidentStatus, now: datetime, actor: str, unit_id: str | None
) -> IncidentStatus:
    """The incident's next state by its lifecycle; an illegal step is audited and the
    current state kept."""
    current = IncidentStatus(incident["state"])
    try:
        return transition(current, new)
    except IllegalTransition as exc:
        _audit(cur, now, incident["incident_id"], unit_id, "rejected_transition", actor, {"reason": str(exc)})
        return current


# --- lifecycle -----------------------------------------------------------------------------

def apply_unit_status(conn: psycopg.Connection, unit_id: str, status: str, reported_at: datetime, now: datetime) -> bool:
    """A crew's status report. Illegal steps are recorded and not applied. Returns True
    when the unit became free (the caller then serves the queue)."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO unit_state (unit_id) SELECT unit_id FROM units WHERE unit_id = %s ON CONFLICT DO NOTHING", (unit_id,)
        )
        cur.execute("SELECT * FROM unit_state WHERE unit_id = %s FOR UPDATE", (unit_id,))
        current = cur.fetchone()
        if current is None:
            return False
        if current["report_ts"] is not None and reported_at <= current["report_ts"]:
            return False  # already applied (every dispatcher hears every report) or out of order
        cur.execute("UPDATE unit_state SET report_ts = %s WHERE unit_id = %s", (reported_at, unit_id))
        try:
            new = transition(UnitStatus(current["status"]), status)
        except (IllegalTransition, ValueError) as exc:
            _audit(cur, now, current["incident_id"], unit_id, "rejected_transition", f"unit:{unit_id}", {"reported": status, "reason": str(exc)})
            return False
        if new == current["status"]:
            return False  # a repeated report
        cur.execute(
            "SELECT * FROM assignments WHERE unit_id = %s AND state = ANY(%s) FOR UPDATE", (unit_id, values(OPEN_ASSIGNMENT))
        )
        assignment = cur.fetchone()
        incident_id = assignment["incident_id"] if assignment else None
        # Free, or out of service: either way no longer bound to the incident.
        freed = new in FREE_UNIT or new is UnitStatus.OUT_OF_SERVICE
        cur.execute(
            "UPDATE unit_state SET status = %s, status_at = %s, incident_id = %s WHERE unit_id = %s",
            (new.value, reported_at, None if freed else incident_id, unit_id),
        )
        _audit(cur, now, incident_id, unit_id, "transition", f"unit:{unit_id}", {"from": current["status"], "to": new.value})
        emit(cur, EventType.UNIT_UPDATED, None, {"unit_id": unit_id, "status": new.value, "incident_id": incident_id}, now)
        if assignment is not None:
            _follow_unit(cur, assignment, UnitStatus(current["status"]), new, now)
        return new in FREE_UNIT


def _follow_unit(cur: _Cursor, assignment: dict[str, Any], old: UnitStatus, new: UnitStatus, now: datetime) -> None:
    """Move the assignment and its incident along with the unit."""
    incident_id = assignment["incident_id"]
    cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE", (incident_id,))
    incident = _returned(cur)  # an assignment's incident is never deleted
    step = step_for(incident["kind"], old, new)
    cur.execute("UPDATE assignments SET state = %s WHERE assignment_id = %s",
                (AssignmentState(step.assignment_state).value, assignment["assignment_id"]))
    if new is UnitStatus.AT_HOSPITAL:  # the hand-over, for the hospital's board
        cur.execute("UPDATE assignments SET handed_over_at = COALESCE(handed_over_at, %s) WHERE assignment_id = %s",
                    (now, assignment["assignment_id"]))
    target = IncidentStatus(incident["state"])
    loop_stage = next_loop_stage(incident["kind"], incident["loop_stage"], step.loop_event) if step.loop_event else None
    if step.incident_state is not None and step.incident_state != target:
        try:
            target = transition(target, step.incident_state)
        except IllegalTransition as exc:
            _audit(cur, now, incident_id, assignment["unit_id"], "rejected_transition", "dispatcher", {"reason": str(exc)})
            return
    elif loop_stage in (None, incident["loop_stage"]):
        return
    cur.execute(
        "UPDATE incidents SET state = %s, loop_stage = COALESCE(%s, loop_stage), updated_at = %s WHERE incident_id = %s RETURNING *",
        (target.value, loop_stage, now, incident_id),
    )
    updated = _returned(cur)
    _audit(cur, now, incident_id, assignment["unit_id"], f"incident_{target.value}", "dispatcher", {"assignment": step.assignment_state})
    emit(cur, EventType.INCIDENT_UPDATED, updated["person_id"], _incident_json(updated), now)


def refuse_overdue(conn: psycopg.Connection, now: datetime, after_s: float) -> list[str]:
    """Orders not answered with en_route in time count as refused: the unit is released and
    the incident goes back to the queue for the next candidate. Returns those incidents."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT assignment_id, ordered_at FROM assignments WHERE state = %s", (A.ORDERED.value,))
        due = [r["assignment_id"] for r in cur.fetchall() if redispatch_due(r["ordered_at"], now, after_s=after_s)]
        if not due:
            return []
        # Another dispatcher holding one of them is deciding it: skip it rather than wait.
        cur.execute(
            "SELECT * FROM assignments WHERE assignment_id = ANY(%s) AND state = %s FOR UPDATE SKIP LOCKED",
            (due, A.ORDERED.value),
        )
        overdue = cur.fetchall()
        for a in overdue:
            cur.execute("UPDATE assignments SET state = %s WHERE assignment_id = %s", (A.REFUSED.value, a["assignment_id"]))
            cur.execute("SELECT status FROM unit_state WHERE unit_id = %s FOR UPDATE", (a["unit_id"],))
            unit = cur.fetchone()
            if unit is not None and UnitStatus(unit["status"]) is UnitStatus.DISPATCHED:  # it never set off
                freed = transition(UnitStatus(unit["status"]), UnitStatus.AVAILABLE)
                cur.execute("UPDATE unit_state SET status = %s, incident_id = NULL, status_at = %s WHERE unit_id = %s",
                            (freed.value, now, a["unit_id"]))
                emit(cur, EventType.UNIT_UPDATED, None, {"unit_id": a["unit_id"], "status": freed.value, "incident_id": None}, now)
            cur.execute("SELECT * FROM incidents WHERE incident_id = %s FOR UPDATE", (a["incident_id"],))
            incident = _returned(cur)
            if IncidentStatus(incident["state"]) is IncidentStatus.DISPATCHED:  # back to the queue
                requeued = transition(IncidentStatus(incident["state"]), IncidentStatus.NEW)
                cur.execute("UPDATE incidents SET state = %s, updated_at = %s WHERE incident_id = %s",
                            (requeued.value, now, a["incident_id"]))
            _audit(cur, now, a["incident_id"], a["unit_id"], "refused", "dispatcher", {"reason": f"no en_route within {after_s:g} s"})
        return [a["incident_id"] for a in overdue]


def record_position(conn: psycopg.Connection, unit_id: str, lat: float, lon: float, at: datetime) -> None:
    """Keep the unit's latest fix and tell the consoles. Position fixes are announced but
    not kept in the event stream (id null): the next fix supersedes them, and a console that
    reconnects reads positions from /api/units."""
    with conn.transaction():
        updated = conn.execute(
            """INSERT INTO unit_state (unit_id, lat, lon, gps_at) SELECT unit_id, %s, %s, %s FROM units WHERE unit_id = %s
               ON CONFLICT (unit_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, gps_at = excluded.gps_at
               WHERE unit_state.gps_at IS NULL OR unit_state.gps_at < excluded.gps_at
               RETURNING status, incident_id""",
            (lat, lon, at, unit_id),
        ).fetchone()
        if updated is not None:
            announce(conn, EventType.UNIT_UPDATED, None,
                     {"unit_id": unit_id, "status": updated[0], "incident_id": updated[1], "lat": lat, "lon": lon, "gps_at": at.isoformat()}, at)


def _audit(cur: _Cursor, at: datetime, incident_id: str | None, unit_id: str | None, action: str, actor: str, detail: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO dispatch_audit (at, incident_id, unit_id, action, actor, detail) VALUES (%s, %s, %s, %s, %s, %s)",
        (at, incident_id, unit_id, action, actor, Jsonb(detail)),
    )


def _incident_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "inserted"}


def _returned(cur: _Cursor) -> dict[str, Any]:
    """The row of a statement that always gives one (RETURNING, or a row held by a key)."""
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no row where one was certain ({cur.statusmessage})")
    return row


def rank_candidates(conn: psycopg.Connection, incident_id: str, graph: RoadGraph, facilities: Facilities, now: datetime) -> dict | None:
    """The ranking `assign` would make now, without assigning: for the console's assign
    dialog."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s", (incident_id,))
        incident = cur.fetchone()
        if incident is None or incident["lat"] is None:
            return None
        field = scene_field(graph, snap_to_edge(graph, incident["lat"], incident["lon"]))
        units, snaps = _units(cur, graph, facilities)
        etas = _etas(graph, field, snaps)
        wanted = Incident(incident_id, Priority(incident["priority"]), incident["created_at"], unit_kind_for(incident["kind"]))
        return {**decide(wanted, units, etas, now).to_json(), **field.scene.audit()}


def close_incident(conn: psycopg.Connection, incident_id: str, actor: str, now: datetime) -> dict | None:
    """The control room closes an incident (a water incident: its close-out). One not yet
    reached by a unit is cancelled; its unit, if any, is stood down."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM incidents WHERE incident_id = %s AND state = ANY(%s) FOR UPDATE", (incident_id, values(OPEN_INCIDENT)))
        incident = cur.fetchone()
        if incident is None:
            return None
        # Closed once a unit has reached it; cancelled before: the lifecycle says which.
        current = IncidentStatus(incident["state"])
        final = transition(current, IncidentStatus.CLOSED if can_reach(current, IncidentStatus.CLOSED) else IncidentStatus.CANCELLED)
        _stand_down(cur, incident_id, now, actor)
        cur.execute(
            "UPDATE incidents SET state = %s, queued = false, loop_stage = %s, updated_at = %s WHERE incident_id = %s RETURNING *",
            (final.value, next_loop_stage(incident["kind"], incident["loop_stage"], LoopEvent.CLOSED_OUT), now, incident_id),
        )
        updated = _returned(cur)
        _audit(cur, now, incident_id, None, final.value, actor, {})
        emit(cur, EventType.INCIDENT_UPDATED, updated["person_id"], _incident_json(updated), now)
        return updated
