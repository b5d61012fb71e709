"""The three tiers' steps on an incident, each one transaction: the village doctor's answer,
arrival and note; a hospital's "no capacity" flag and the diversions it causes; a crew's
patient report. Like dispatch/store.py, every step is audited and announced on the event
stream as an `incident.updated` (the console merges it; scoped pages re-read their board).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dispatch.assignment import choose_hospital
from dispatch.eta import eta_from
from dispatch.first_response import Answer, ResponseError, answer_state, check_answer, check_on_scene
from dispatch.lifecycle import OPEN_ASSIGNMENT, AssignmentState, values
from dispatch.roads import RoadGraph
from dispatch.store import Facilities, Order, _audit, _returned, emit_first_response
from kernel.events import EventType, emit

NOTE_MAX = 500
# A unit that has reached the hospital has handed over: diverting it makes no sense.
_DIVERTIBLE = frozenset({AssignmentState.ORDERED, AssignmentState.EN_ROUTE, AssignmentState.ON_SCENE, AssignmentState.TRANSPORTING})


class NotFound(LookupError):
    """No such incident for this scope (the same answer as for one that does not exist)."""


def _response(cur: psycopg.Cursor[Any], incident_id: str, post_id: str) -> dict[str, Any]:
    cur.execute("SELECT * FROM first_responses WHERE incident_id = %s AND post_id = %s FOR UPDATE", (incident_id, post_id))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no first response to incident {incident_id} for this post")
    return row


def _person(cur: psycopg.Cursor[Any], incident_id: str) -> str | None:
    cur.execute("SELECT person_id FROM incidents WHERE incident_id = %s", (incident_id,))
    row = cur.fetchone()
    return row["person_id"] if row else None


def answer(conn: psycopg.Connection, incident_id: str, post_id: str, new: Answer, actor: str, now: datetime) -> dict[str, Any]:
    """The village doctor accepts or declines. Raises ResponseError for a step the alert's
    state does not allow, NotFound for another post's incident."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = _response(cur, incident_id, post_id)
        check_answer(row["answer"], row["answer_by"], new, now)
        cur.execute("UPDATE first_responses SET answer = %s, answered_at = %s WHERE incident_id = %s RETURNING *",
                    (new.value, now, incident_id))
        row = _returned(cur)
        late = now >= row["answer_by"]
        _audit(cur, now, incident_id, None, f"first_responder_{new.value}", actor, {"post": post_id, "late": late})
        emit_first_response(cur, _person(cur, incident_id), row, now)
        return row


def on_scene(conn: psycopg.Connection, incident_id: str, post_id: str, actor: str, now: datetime) -> dict[str, Any]:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = _response(cur, incident_id, post_id)
        check_on_scene(row["answer"])
        if row["on_scene_at"] is not None:
            raise ResponseError("already on scene")
        cur.execute("UPDATE first_responses SET on_scene_at = %s WHERE incident_id = %s RETURNING *", (now, incident_id))
        row = _returned(cur)
        _audit(cur, now, incident_id, None, "first_responder_on_scene", actor, {"post": post_id})
        emit_first_response(cur, _person(cur, incident_id), row, now)
        return row


def note(conn: psycopg.Connection, incident_id: str, post_id: str, text: str, actor: str, now: datetime) -> dict[str, Any]:
    """The doctor's short note ("conscious, breathing, bleeding controlled"); the newest one
    stands, every one is audited."""
    text = text.strip()
    if not text or len(text) > NOTE_MAX:
        raise ResponseError(f"a note is 1 to {NOTE_MAX} characters")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = _response(cur, incident_id, post_id)
        if row["answer"] == Answer.DECLINED.value:
            raise ResponseError("declined: the post is not attending")
        cur.execute("UPDATE first_responses SET note = %s, note_at = %s WHERE incident_id = %s RETURNING *", (text, now, incident_id))
        row = _returned(cur)
        _audit(cur, now, incident_id, None, "first_responder_note", actor, {"post": post_id, "note": text})
        emit_first_response(cur, _person(cur, incident_id), row, now)
        return row


def expire_unanswered(conn: psycopg.Connection, now: datetime) -> list[str]:
    """Alerts past their answer time without an answer become `no_answer`, once, so the
    console sees it. Nothing else waits on them; this only records and announces it."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE first_responses SET answer = %s, answered_at = answer_by WHERE answer IS NULL AND answer_by <= %s RETURNING *",
            (Answer.NO_ANSWER.value, now),
        )
        rows = cur.fetchall()
        for row in rows:
            _audit(cur, now, row["incident_id"], None, "first_responder_no_answer", "dispatcher", {"post": row["post_id"]})
            emit_first_response(cur, _person(cur, row["incident_id"]), row, now)
        return [r["incident_id"] for r in rows]


@dataclass(frozen=True, slots=True)
class Diversion:
    incident_id: str
    unit_id: str
    from_hospital: str
    to_hospital: str | None
    order: Order | None  # the crew's new order, to publish after the commit


def set_capacity(
    conn: psycopg.Connection, hospital_id: str, no_capacity: bool, graph: RoadGraph, facilities: Facilities, actor: str, now: datetime
) -> list[Diversion]:
    """A hospital flags (or clears) "no capacity". Flagging diverts every open incident
    bound for it that has not yet handed over to the next capable hospital by road from the
    scene; each diversion is audited and told to the control room; the crew gets a new order."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE facilities SET no_capacity = %s, no_capacity_since = CASE WHEN %s THEN %s END "
            "WHERE facility_id = %s AND kind = 'hospital' RETURNING facility_id",
            (no_capacity, no_capacity, now, hospital_id),
        )
        if cur.fetchone() is None:
            raise NotFound(f"no hospital {hospital_id}")
        _audit(cur, now, None, None, "hospital_no_capacity" if no_capacity else "hospital_capacity_restored", actor,
               {"hospital": hospital_id})
        if not no_capacity:
            return []
        cur.execute("SELECT facility_id FROM facilities WHERE no_capacity")
        full = {r["facility_id"] for r in cur.fetchall()}
        others = tuple(h for h in facilities.hospitals if h.facility_id not in full)
        cur.execute(
            """SELECT a.*, i.lat, i.lon, i.priority, i.description, i.person_id FROM assignments a
               JOIN incidents i USING (incident_id)
               WHERE a.hospital_id = %s AND a.state = ANY(%s) FOR UPDATE OF a""",
            (hospital_id, values(_DIVERTIBLE)),
        )
        diversions = []
        for a in cur.fetchall():
            scene = graph.snap(a["lat"], a["lon"]).node
            choice = choose_hospital(others, eta_from(graph, scene)) if others else None
            to = choice.facility_id if choice else None
            cur.execute("UPDATE assignments SET hospital_id = %s WHERE assignment_id = %s", (to, a["assignment_id"]))
            detail = {"from": hospital_id, "to": to, "reason": f"{hospital_id} has no capacity",
                      "rule": choice.rule if choice else "no other hospital with capacity"}
            _audit(cur, now, a["incident_id"], a["unit_id"], "diverted", actor, detail)
            emit(cur, EventType.INCIDENT_UPDATED, a["person_id"],
                 {"incident_id": a["incident_id"], "person_id": a["person_id"], "unit_id": a["unit_id"], "hospital_id": to,
                  "diverted": detail}, now)
            order = Order(a["unit_id"], a["incident_id"], a["priority"], a["lat"], a["lon"], a["description"] or "",
                          float(a["eta_s"] or 0.0), to, a["first_aid_post_id"])
            diversions.append(Diversion(a["incident_id"], a["unit_id"], hospital_id, to, order))
        return diversions


def open_assignment_of(conn: psycopg.Connection, unit_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT incident_id FROM assignments WHERE unit_id = %s AND state = ANY(%s)", (unit_id, values(OPEN_ASSIGNMENT))
    ).fetchone()
    conn.commit()
    return {"incident_id": row[0]} if row else None


__all__ = ["Diversion", "NotFound", "answer", "answer_state", "expire_unanswered", "note", "on_scene", "set_capacity"]
