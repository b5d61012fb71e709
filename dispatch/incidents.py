"""Incidents in the database: opened from alarms, placed where the person is, moved by newer
fixes, and the water loop verified when its alarm clears. Each public function is one
transaction; the decisions are `dispatch.incident_policy`'s.

Opening is idempotent whatever the number of dispatchers and however often an alarm is heard
(its event, a replay after a reconnect, the sweep): the alarm row is locked first, and an
alarm already linked in `incident_alarms` opens nothing. One open incident per person and per
station (partial unique indexes) makes a second emergency join the open one; a station's
exceedance seen by both water rules is one incident (`_open_water`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from dispatch.incident_policy import (
    ALERT_ALARMS,
    INCIDENT_FOR,
    RECENT_FIX_WINDOW,
    VERIFY_WITHIN,
    WATER_ALARMS,
    Fix,
    WATER_PRIORITY,
    IncidentSpec,
    InRegion,
    LinkedAlarm,
    LocationSource,
    LoopEvent,
    alert_fix,
    anywhere,
    incident_for,
    moves_incident,
    needs_verification,
    next_loop_stage,
    place,
    same_exceedance,
)
from dispatch.roads import RoadGraph
from dispatch.snapping import scene_field, snap_to_edge
from dispatch.store import Facilities
from kernel.events import EventType, emit

log = logging.getLogger(__name__)

_Cursor = psycopg.Cursor[DictRow]
_OPEN = "('closed', 'cancelled')"
# Incidents a newer fix still moves: once the crew is with the person, they know where it is.
_MOVABLE = ("new", "dispatched")
# How many alarms one sweep pass opens incidents for; the next pass takes the rest.
SWEEP_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Moved:
    """An incident moved to a newer fix, and its unit if one is on the way."""

    incident: dict[str, Any]
    unit_id: str | None


def open_for_alarm(
    conn: psycopg.Connection, alarm_id: int, now: datetime, *, window: timedelta = RECENT_FIX_WINDOW, in_region: InRegion = anywhere,
    verify_within: timedelta = VERIFY_WITHIN,
) -> dict[str, Any] | None:
    """Open (or join) the incident an alarm calls for. Returns the incident, or None when the
    alarm opens none or is already linked to one."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM alarms WHERE alarm_id = %s FOR UPDATE", (alarm_id,))
        alarm = cur.fetchone()
        # A cleared alarm still opens its incident when heard late (the dispatcher was busy or
        # away): it was raised, and a water loop is verified when its clear is heard next.
        if alarm is None:
            return None
        spec = incident_for(alarm["alarm_type"], emergency=alarm["emergency"], person_id=alarm["person_id"])
        if spec is None:
            return None
        cur.execute("SELECT 1 FROM incident_alarms WHERE alarm_id = %s", (alarm_id,))
        if cur.fetchone() is not None:
            return None  # heard before: by this dispatcher, another one, or the sweep
        if not spec.for_person:
            return _open_water(cur, alarm, now)
        return _open_person(cur, alarm, spec, now, window=window, in_region=in_region, verify_within=verify_within)


def _open_person(
    cur: _Cursor, alarm: dict[str, Any], spec: IncidentSpec, now: datetime, *, window: timedelta, in_region: InRegion,
    verify_within: timedelta,
) -> dict[str, Any] | None:
    """An emergency opens an incident for the dispatcher, or joins the person's open one (an
    SOS after a fall is the same emergency), raising its priority if needed."""
    person_id = alarm["person_id"]
    cur.execute("SELECT lat, lon FROM persons WHERE person_id = %s", (person_id,))
    home = cur.fetchone()
    if home is None:  # not in the registry (removed meanwhile): nothing to locate
        return None
    from_alert, latest = _alert_fix(cur, alarm), _latest_fix(cur, person_id)
    placement = place(from_alert, latest, Fix(home["lat"], home["lon"], None, None), now, window, in_region=in_region)
    fix = placement.fix
    untrusted = placement.untrusted.value if placement.untrusted is not None else None
    cur.execute(
        f"""INSERT INTO incidents (kind, priority, lat, lon, person_id, description, created_at, created_by, updated_at,
                                   location_source, location_acc_m, location_at, untrusted_fix, verify_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (person_id) WHERE person_id IS NOT NULL AND state NOT IN {_OPEN}
            DO UPDATE SET priority = LEAST(incidents.priority, excluded.priority), updated_at = excluded.updated_at
            RETURNING *, (xmax = 0) AS inserted""",
        (spec.kind, spec.priority, fix.lat, fix.lon, person_id, f"{alarm['alarm_type']} alarm {alarm['alarm_id']}", now,
         f"alarm:{alarm['alarm_id']}", now, placement.source.value, fix.acc_m, fix.at, untrusted,
         now + verify_within if needs_verification(spec.kind, person_id) else None),
    )
    row = _returned(cur)
    inserted = row.pop("inserted")
    if inserted and placement.untrusted is not None:
        passed_over = from_alert if placement.untrusted is LocationSource.ALERT_FIX else latest
        _audit_untrusted(cur, row["incident_id"], passed_over, placement.untrusted.value, now)
        log.warning("incident %s: the %s is outside the service region; placed at the %s", row["incident_id"],
                    placement.untrusted.value, placement.source.value, extra={"incident_id": row["incident_id"], "person_id": person_id})
    cur.execute("INSERT INTO incident_alarms (incident_id, alarm_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (row["incident_id"], alarm["alarm_id"]))
    row["alarm_ids"] = [alarm["alarm_id"]]
    log.info("incident %s %s for alarm %s at %s", row["incident_id"], "opened" if inserted else "joined", alarm["alarm_id"],
             row["location_source"], extra={"incident_id": row["incident_id"], "alarm_id": alarm["alarm_id"], "person_id": person_id,
                                            "priority": row["priority"], "location_source": row["location_source"]})
    emit(cur, EventType.INCIDENT_CREATED if inserted else EventType.INCIDENT_UPDATED, person_id, row, now)
    return row


def _alert_fix(cur: _Cursor, alarm: dict[str, Any]) -> Fix | None:
    """The fix of this alarm's alert, else of the person's open SOS or fall (an uncancelled
    fall's alarm carries no fix; the fall it follows does)."""
    own = alert_fix(alarm["detail"] or {}, alarm["last_seen"])
    if own is not None:
        return own
    cur.execute(
        "SELECT detail, last_seen FROM alarms WHERE person_id = %s AND state <> 'cleared' AND alarm_type = ANY(%s) "
        "AND detail ? 'lat' ORDER BY last_seen DESC LIMIT 1",
        (alarm["person_id"], sorted(ALERT_ALARMS)),
    )
    other = cur.fetchone()
    return alert_fix(other["detail"], other["last_seen"]) if other is not None else None


def _latest_fix(cur: _Cursor, person_id: str) -> Fix | None:
    cur.execute("SELECT lat, lon, acc_m, fix_at FROM person_locations WHERE person_id = %s", (person_id,))
    r = cur.fetchone()
    return Fix(r["lat"], r["lon"], r["acc_m"], r["fix_at"]) if r is not None else None


def _open_water(cur: _Cursor, alarm: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """A station worse than its target class opens the closed loop patrol → discover →
    supervise → close out, as an incident for the nearest town's river patrol.

    One patrol per exceedance: a station has one open incident, and a water alarm while it is
    open attaches to it (the incident keeps the alarm that opened it). The real-time and the
    hourly rule each see the same exceedance, hours apart; an alarm whose exceedance a closed
    incident still stands for (`same_exceedance`) attaches to that one and sends no patrol."""
    cur.execute(
        f"""SELECT *, state IN {_OPEN} AS ended FROM incidents WHERE station_id = %s AND kind = 'water'
            ORDER BY created_at DESC LIMIT 1 FOR UPDATE""",
        (alarm["source_id"],),
    )
    latest = cur.fetchone()
    if latest is not None and latest.pop("ended"):
        cur.execute(
            """SELECT a.alarm_type, a.detail ->> 'parameter' AS parameter, a.state <> 'cleared' AS raised
               FROM incident_alarms ia JOIN alarms a USING (alarm_id) WHERE ia.incident_id = %s""",
            (latest["incident_id"],),
        )
        linked = [LinkedAlarm(r["alarm_type"], r["parameter"], r["raised"]) for r in cur.fetchall()]
        if same_exceedance(alarm["alarm_type"], (alarm["detail"] or {}).get("parameter"), linked):
            return _attach_water(cur, latest, alarm, now, inserted=False)
    cur.execute(
        f"""INSERT INTO incidents (kind, priority, lat, lon, station_id, alarm_id, description, created_at, created_by, updated_at,
                                   location_source)
            SELECT 'water', %s, s.lat, s.lon, s.station_id, %s, %s, %s, %s, %s, 'station' FROM stations s WHERE s.station_id = %s
            ON CONFLICT (station_id) WHERE station_id IS NOT NULL AND state NOT IN {_OPEN}
            DO UPDATE SET updated_at = excluded.updated_at
            RETURNING *, (xmax = 0) AS inserted""",
        (WATER_PRIORITY, alarm["alarm_id"], f"water quality worse than target at {alarm['source_id']}", now,
         f"alarm:{alarm['alarm_id']}", now, alarm["source_id"]),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return _attach_water(cur, row, alarm, now, inserted=row.pop("inserted"))


def _attach_water(cur: _Cursor, incident: dict[str, Any], alarm: dict[str, Any], now: datetime, *, inserted: bool) -> dict[str, Any]:
    """Link the alarm to the station's incident; an alarm that opened nothing new is audited
    on the incident, so the console and the report show both records of the exceedance."""
    cur.execute("INSERT INTO incident_alarms (incident_id, alarm_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (incident["incident_id"], alarm["alarm_id"]))
    if inserted:
        emit(cur, EventType.INCIDENT_CREATED, None, incident, now)
        return incident
    detail = {"alarm_id": alarm["alarm_id"], "alarm_type": alarm["alarm_type"], "parameter": (alarm["detail"] or {}).get("parameter")}
    cur.execute(
        "INSERT INTO dispatch_audit (at, incident_id, action, actor, detail) VALUES (%s, %s, 'alarm_attached', 'dispatcher', %s)",
        (now, incident["incident_id"], Jsonb(detail)),
    )
    log.info("water alarm %s attached to incident %s", alarm["alarm_id"], incident["incident_id"],
             extra={"incident_id": incident["incident_id"], "alarm_id": alarm["alarm_id"]})
    emit(cur, EventType.INCIDENT_UPDATED, None, {**incident, "change": "alarm_attached", "attached_alarm_id": alarm["alarm_id"]}, now)
    return incident


def verify_water(conn: psycopg.Connection, alarm_id: int, now: datetime) -> dict[str, Any] | None:
    """The station's readings are back within the target: the patrol's finding is verified,
    and the incident waits for the control room to close it out. With both records of an
    exceedance attached, it is verified when the last of its alarms clears."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""SELECT i.* FROM incidents i JOIN incident_alarms ia USING (incident_id)
                WHERE ia.alarm_id = %s AND i.kind = 'water' AND i.state NOT IN {_OPEN} FOR UPDATE OF i""",
            (alarm_id,),
        )
        incident = cur.fetchone()
        if incident is None:
            return None
        cur.execute(
            "SELECT 1 FROM incident_alarms ia JOIN alarms a USING (alarm_id) WHERE ia.incident_id = %s AND a.state <> 'cleared'",
            (incident["incident_id"],),
        )
        if cur.fetchone() is not None:
            return None  # the other record of the exceedance is still raised
        stage = next_loop_stage(incident["kind"], incident["loop_stage"], LoopEvent.ALARM_CLEARED)
        if stage == incident["loop_stage"]:
            return None
        cur.execute("UPDATE incidents SET loop_stage = %s, updated_at = %s WHERE incident_id = %s RETURNING *", (stage, now, incident["incident_id"]))
        verified = _returned(cur)
        emit(cur, EventType.INCIDENT_UPDATED, None, verified, now)
        return verified


def follow_fix(
    conn: psycopg.Connection, person_id: str, now: datetime, *, window: timedelta = RECENT_FIX_WINDOW, in_region: InRegion = anywhere,
) -> Moved | None:
    """Move the person's open incident to their latest fix when it is newer than the one the
    incident stands on. Returns the moved incident and its unit, or None. A newer fix far
    outside the service region is not followed: the incident says so, once."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM incidents WHERE person_id = %s AND state = ANY(%s) FOR UPDATE", (person_id, list(_MOVABLE))
        )
        incident = cur.fetchone()
        fix = _latest_fix(cur, person_id) if incident is not None else None
        if incident is None or fix is None or not moves_incident(incident["location_at"], fix, now, window):
            return None
        if not in_region(fix):
            _note_untrusted_fix(cur, incident, fix, now)
            return None
        cur.execute(
            """UPDATE incidents SET lat = %s, lon = %s, location_source = %s, location_acc_m = %s, location_at = %s,
                                    untrusted_fix = NULL, updated_at = %s
               WHERE incident_id = %s RETURNING *""",
            (fix.lat, fix.lon, LocationSource.RECENT_FIX.value, fix.acc_m, fix.at, now, incident["incident_id"]),
        )
        moved = _returned(cur)
        cur.execute(
            "SELECT unit_id FROM assignments WHERE incident_id = %s AND state IN ('ordered', 'en_route')", (incident["incident_id"],)
        )
        unit = cur.fetchone()
        unit_id = unit["unit_id"] if unit is not None else None
        cur.execute(
            "INSERT INTO dispatch_audit (at, incident_id, unit_id, action, actor, detail) VALUES (%s, %s, %s, 'moved', 'dispatcher', "
            "jsonb_build_object('lat', %s::float8, 'lon', %s::float8, 'acc_m', %s::float8, 'fix_at', %s::text))",
            (now, incident["incident_id"], unit_id, fix.lat, fix.lon, fix.acc_m, fix.at.isoformat() if fix.at else None),
        )
        emit(cur, EventType.INCIDENT_UPDATED, person_id, {**moved, "unit_id": unit_id, "change": "moved"}, now)
        log.info("incident %s moved to %.5f, %.5f (fix of %s)", moved["incident_id"], fix.lat, fix.lon, fix.at,
                 extra={"incident_id": moved["incident_id"], "person_id": person_id})
        return Moved(moved, unit_id)


def _note_untrusted_fix(cur: _Cursor, incident: dict[str, Any], fix: Fix, now: datetime) -> None:
    """The console and the audit learn of a fix passed over, once per incident (the sweep finds
    the same newer fix again and again; it changes nothing after the first time)."""
    if incident["untrusted_fix"] == LocationSource.RECENT_FIX.value:
        return
    cur.execute("UPDATE incidents SET untrusted_fix = %s, updated_at = %s WHERE incident_id = %s RETURNING *",
                (LocationSource.RECENT_FIX.value, now, incident["incident_id"]))
    flagged = _returned(cur)
    _audit_untrusted(cur, incident["incident_id"], fix, LocationSource.RECENT_FIX.value, now)
    emit(cur, EventType.INCIDENT_UPDATED, incident["person_id"], {**flagged, "change": "untrusted_fix"}, now)
    log.warning("incident %s: fix %.5f, %.5f of %s is outside the service region, not followed", incident["incident_id"],
                fix.lat, fix.lon, fix.at, extra={"incident_id": incident["incident_id"], "person_id": incident["person_id"]})


def _audit_untrusted(cur: _Cursor, incident_id: str, fix: Fix | None, source: str, now: datetime) -> None:
    cur.execute(
        "INSERT INTO dispatch_audit (at, incident_id, unit_id, action, actor, detail) VALUES (%s, %s, NULL, 'untrusted_fix', 'dispatcher', "
        "jsonb_build_object('source', %s::text, 'lat', %s::float8, 'lon', %s::float8, 'reason', 'outside the service region'))",
        (now, incident_id, source, fix.lat if fix else None, fix.lon if fix else None),
    )


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a sweep pass found undone: alarms without their incident, cleared water alarms
    whose incident is not verified, persons whose open incident stands on an older fix."""

    alarms: list[int]
    cleared_water: list[int]
    moved_persons: list[str]


def backlog(conn: psycopg.Connection, now: datetime, *, window: timedelta = RECENT_FIX_WINDOW, limit: int = SWEEP_LIMIT) -> Backlog:
    """The durable tables, not the notifications, say what is owed: an event missed while no
    dispatcher ran is found here. Each query reads a small indexed set."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"""SELECT a.alarm_id FROM alarms a
                WHERE a.state <> 'cleared' AND (a.emergency OR a.alarm_type = ANY(%s))
                  AND NOT EXISTS (SELECT 1 FROM incident_alarms ia WHERE ia.alarm_id = a.alarm_id)
                  AND (a.alarm_type = ANY(%s) AND EXISTS (SELECT 1 FROM persons p WHERE p.person_id = a.person_id)
                       OR a.alarm_type = ANY(%s) AND EXISTS (SELECT 1 FROM stations s WHERE s.station_id = a.source_id))
                ORDER BY a.alarm_id LIMIT %s""",
            (sorted(WATER_ALARMS), sorted(INCIDENT_FOR), sorted(WATER_ALARMS), limit),
        )
        alarms = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"""SELECT i.alarm_id FROM incidents i
                WHERE i.kind = 'water' AND i.alarm_id IS NOT NULL AND i.state NOT IN {_OPEN} AND i.loop_stage IS DISTINCT FROM 'verified'
                  AND NOT EXISTS (SELECT 1 FROM incident_alarms ia JOIN alarms a USING (alarm_id)
                                  WHERE ia.incident_id = i.incident_id AND a.state <> 'cleared')
                LIMIT %s""",
            (limit,),
        )
        cleared = [r[0] for r in cur.fetchall()]
        cur.execute(
            """SELECT i.person_id FROM incidents i JOIN person_locations l USING (person_id)
               WHERE i.state = ANY(%s) AND l.fix_at > COALESCE(i.location_at, '-infinity') AND l.fix_at >= %s LIMIT %s""",
            (list(_MOVABLE), now - window, limit),
        )
        persons = [r[0] for r in cur.fetchall()]
    return Backlog(alarms, cleared, persons)


def _returned(cur: _Cursor) -> dict[str, Any]:
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no row where one was certain ({cur.statusmessage})")
    return row


def order_update(conn: psycopg.Connection, moved: Moved, graph: RoadGraph | None, facilities: Facilities | None) -> tuple[str, dict[str, Any]] | None:
    """The order the moved incident's unit receives again, with the new position and the ETA
    from where the unit is now: same incident id, `update: true`."""
    if moved.unit_id is None:
        return None
    incident = moved.incident
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT a.eta_s, a.hospital_id, a.first_aid_post_id, s.lat, s.lon FROM assignments a "
            "LEFT JOIN unit_state s ON s.unit_id = a.unit_id "
            "WHERE a.incident_id = %s AND a.unit_id = %s ORDER BY a.assignment_id DESC LIMIT 1",
            (incident["incident_id"], moved.unit_id),
        )
        row = cur.fetchone()
    if row is None:
        return None
    eta_s = row["eta_s"]
    at = (row["lat"], row["lon"]) if row["lat"] is not None else (facilities.base_location.get(moved.unit_id) if facilities else None)
    if graph is not None and at is not None:
        field = scene_field(graph, snap_to_edge(graph, incident["lat"], incident["lon"]))
        eta_s = field.eta_of(graph, snap_to_edge(graph, *at))
    payload = {
        "incident_id": incident["incident_id"],
        "priority": incident["priority"],
        "lat": incident["lat"],
        "lon": incident["lon"],
        "address": incident["description"],
        "eta_s": round(eta_s, 1) if eta_s is not None else None,
        "hospital_id": row["hospital_id"],
        "first_aid_post_id": row["first_aid_post_id"],
        "update": True,
        "location_source": incident["location_source"],
        "acc_m": incident["location_acc_m"],
    }
    return moved.unit_id, payload
