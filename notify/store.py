"""The notifications table, as the notifier works it.

Guarantees, and where they come from:
* **A step is never lost.** Escalation steps queue their notifications in the transaction
  that records the step (`ingest.alarm_store`); the notifier only ever moves rows forward.
* **No double call in a burst.** A row is claimed (FOR UPDATE SKIP LOCKED, so several
  notifiers split the work) for a lease. A notifier that dies mid-call leaves the row
  claimed; it is taken again only once the lease has passed, as one more attempt.
* **Nothing after an acknowledgement.** A claim skips and cancels rows whose alarm is no
  longer active; the acknowledgement itself cancels the queued ones.
* **Everything is an event.** Each attempt's start, progress and outcome is in the alarm's
  audit and announced as `alarm.updated` with `change: notification`, so the console and
  the family page show who was called, when, and what came of it.

A row is about an alarm (a family contact) or about an incident: the first-aid post whose
village doctor was alerted as first responder (`username` is the post's id, the number its
duty phone). The doctor's rows are cancelled once the doctor has answered on the page;
keypad 1 or 2 on their call is that same answer, given through `DoctorAnswer` (the
dispatcher's own step, wired in by the composition root: notify does not import dispatch).
Their attempts are in the incident's dispatch audit and announced as `incident.updated`
naming no person, so no family page hears of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.alarm_store import acknowledge
from ingest.rules.escalation import PARTNER_PREFIX, Channel, family, partner_of
from kernel.events import EventType, emit
from notify.messages import AlarmFacts, DoctorFacts
from notify.outcomes import DOCTOR_ACCEPT, DOCTOR_DECLINE, Next, Outcome, RetryPolicy, State, after_attempt

__all__ = ["DoctorAnswer", "Job", "claim", "delivery_report", "finish", "mask_phone", "progress", "summary"]

log = logging.getLogger(__name__)

_ALARM_COLUMNS = (
    "alarm_id, source_kind, source_id, alarm_type, severity, emergency, state, person_id, first_seen, "
    "last_seen, repeat_count, acked_at, acked_by, cleared_at, cleared_by, control_room, detail"
)


# The village doctor's answer given on the keypad: (connection, incident, post, accepted?,
# actor, now) → None, or why the alert's state does not allow it. Runs inside the
# transaction that stores the call's outcome.
DoctorAnswer = Callable[[psycopg.Connection, str, str, bool, str, datetime], str | None]

_RETURNED = "n.notification_id, n.alarm_id, n.incident_id, n.person_id, n.username, n.channel, n.step, n.attempt, n.expires_at"


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed attempt: whom to reach, how, and what about (an alarm for a family
    contact, an incident for a first-aid post's doctor)."""

    notification_id: int
    alarm_id: int | None
    incident_id: str | None
    person_id: str | None
    username: str
    channel: Channel
    step: int
    attempt: int
    phone: str | None
    expires_at: datetime | None
    facts: AlarmFacts | DoctorFacts

    @property
    def partner_id(self) -> str | None:
        """The partner district whose duty contact this is (about a station's alarm); None
        for a family member or a first-aid post."""
        return partner_of(self.username) if self.alarm_id is not None else None

    @property
    def recipient(self) -> str:
        """As the audit and the console name whom it reached."""
        if self.incident_id is not None:
            return f"post:{self.username}"
        return self.username if self.partner_id is not None else family(self.username)


def mask_phone(phone: str | None) -> str | None:
    """A phone number as the console and the logs show it: the last four digits."""
    if not phone:
        return None
    return "*" * max(len(phone) - 4, 0) + phone[-4:]


def claim(conn: psycopg.Connection, now: datetime, *, channels: list[Channel], limit: int, lease_s: float, max_attempts: int) -> list[Job]:
    """Take up to `limit` due notifications of `channels` for `lease_s`. Rows of alarms no
    longer active are cancelled, rows whose step passed expire, and a row whose notifier
    died with every attempt spent fails, all on the way."""
    wanted = [c.value for c in channels]
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # A family is told nothing more once the alarm is acknowledged or cleared; a partner's
        # duty contact nothing more once the partner has answered our alert, or it cleared.
        cur.execute(
            """UPDATE notifications n SET state = 'cancelled', updated_at = %s, lease_until = NULL
               FROM alarms a WHERE a.alarm_id = n.alarm_id
                 AND CASE WHEN n.username LIKE %s
                          THEN a.state = 'cleared' OR EXISTS (SELECT 1 FROM cap_alerts c WHERE c.alarm_id = n.alarm_id
                                                              AND c.msg_type = 'Alert' AND c.answered_at IS NOT NULL)
                          ELSE a.state <> 'active' END
                 AND n.state IN ('queued', 'sending', 'ringing', 'answered') AND (n.state = 'queued' OR n.lease_until <= %s)
                 AND n.channel = ANY(%s)""",
            (now, f"{PARTNER_PREFIX}%", now, wanted),
        )
        # A doctor who answered on the page is not texted or rung about it any more.
        cur.execute(
            """UPDATE notifications n SET state = 'cancelled', updated_at = %s, lease_until = NULL
               FROM first_responses f JOIN incidents i USING (incident_id)
               WHERE f.incident_id = n.incident_id
                 AND (f.answer IN ('accepted', 'declined') OR i.state IN ('closed', 'cancelled'))
                 AND n.state IN ('queued', 'sending', 'ringing', 'answered') AND (n.state = 'queued' OR n.lease_until <= %s)
                 AND n.channel = ANY(%s)""",
            (now, now, wanted),
        )
        cur.execute(
            """UPDATE notifications SET state = 'expired', updated_at = %s
               WHERE state = 'queued' AND expires_at <= %s AND channel = ANY(%s)""",
            (now, now, wanted),
        )
        cur.execute(
            """UPDATE notifications SET state = 'failed', updated_at = %s, lease_until = NULL,
                      detail = detail || '{"error": "the notifier stopped during the last attempt"}'
               WHERE state IN ('sending', 'ringing', 'answered') AND lease_until <= %s AND attempt >= %s AND channel = ANY(%s)""",
            (now, now, max_attempts, wanted),
        )
        rows = cur.execute(
            """WITH due AS (
                   SELECT notification_id FROM notifications
                   WHERE channel = ANY(%s)
                     AND (state = 'queued' AND due_at <= %s OR state IN ('sending', 'ringing', 'answered') AND lease_until <= %s)
                   ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED)
               UPDATE notifications n SET state = 'sending', attempt = n.attempt + 1, lease_until = %s, updated_at = %s
               FROM due WHERE n.notification_id = due.notification_id
               RETURNING """ + _RETURNED,
            (wanted, now, now, limit, now + timedelta(seconds=lease_s), now),
        ).fetchall()
        jobs = [_job(cur, r, now) for r in rows]
        for job in jobs:
            _announce(cur, job, State.SENDING, now, {"attempt": job.attempt})
    return jobs


def progress(conn: psycopg.Connection, job: Job, state: State, now: datetime, *, ref: str | None = None) -> None:
    """A call rings, or was answered: shown at once, the lease kept."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE notifications SET state = %s, provider_ref = COALESCE(%s, provider_ref), updated_at = %s "
            "WHERE notification_id = %s AND state IN ('sending', 'ringing', 'answered')",
            (state.value, ref, now, job.notification_id),
        )
        if cur.rowcount:
            _announce(cur, job, state, now, {"attempt": job.attempt})


def finish(conn: psycopg.Connection, job: Job, outcome: Outcome, now: datetime, policy: RetryPolicy,
           doctor_answers: DoctorAnswer | None = None) -> Next:
    """Store an attempt's outcome. Keypad 1 acknowledges the alarm as the family page's
    button does (so the dispatcher sends the device its `family_notified` receipt); keypad 9
    flags the alarm for the control room. A channel that failed for good hands over at once:
    an SMS to the contact's voice call, a voice call to the next step of the chain. On a
    village doctor's call, keypad 1 accepts and 2 declines, as the page's buttons do."""
    if job.incident_id is not None:
        return _finish_doctor(conn, job, outcome, now, policy, doctor_answers)
    decided = after_attempt(outcome, job.attempt, now, job.expires_at, policy)
    detail = {**outcome.detail, **({"keypad": list(outcome.keypad)} if outcome.keypad else {})}
    with conn.transaction(), conn.cursor() as cur:
        _record_attempt(cur, job, outcome, decided, detail, now)
        if outcome.wants_control_room:
            _flag_control_room(cur, job, now)
        # Keypad 1 from a partner's duty contact says they heard it; the alert is handed over
        # only by the partner's CAP answer, and the alarm stays the control room's.
        if outcome.acknowledged and job.partner_id is None:
            assert job.alarm_id is not None
            acknowledge(cur, job.alarm_id, family(job.username), now)
        elif decided.gave_up:
            _hand_over(cur, job, now)
    log.info(
        "notification %s to %s by %s: %s", job.notification_id, job.username, job.channel, decided.state,
        extra={"alarm_id": job.alarm_id, "attempt": job.attempt, "outcome": outcome.state.value},
    )
    return decided


def _finish_doctor(conn: psycopg.Connection, job: Job, outcome: Outcome, now: datetime, policy: RetryPolicy,
                   doctor_answers: DoctorAnswer | None) -> Next:
    assert job.incident_id is not None
    key = outcome.doctor_answer()
    if key == DOCTOR_DECLINE:
        decided = Next(State.DECLINED, None)
    elif key == DOCTOR_ACCEPT:
        decided = Next(State.ACKED, None)
    else:
        decided = after_attempt(outcome, job.attempt, now, job.expires_at, policy)
    detail = {**outcome.detail, **({"keypad": list(outcome.keypad)} if outcome.keypad else {})}
    with conn.transaction(), conn.cursor() as cur:
        if key is not None and doctor_answers is not None:
            refused = doctor_answers(conn, job.incident_id, job.username, key == DOCTOR_ACCEPT, f"call:{job.username}", now)
            if refused:
                detail["answer_refused"] = refused  # e.g. answered on the page meanwhile
        _record_attempt(cur, job, outcome, decided, detail, now)
        if decided.gave_up:
            _hand_over(cur, job, now)
    log.info("notification %s to post %s by %s: %s", job.notification_id, job.username, job.channel, decided.state,
             extra={"incident_id": job.incident_id, "attempt": job.attempt, "outcome": outcome.state.value})
    return decided


def _record_attempt(cur: psycopg.Cursor, job: Job, outcome: Outcome, decided: Next, detail: dict[str, Any], now: datetime) -> None:
    """The attempt's outcome on its row, and announced to the console and family pages."""
    cur.execute(
        """UPDATE notifications SET state = %s, due_at = COALESCE(%s, due_at), lease_until = NULL,
                  provider_ref = COALESCE(%s, provider_ref), updated_at = %s, detail = %s
           WHERE notification_id = %s""",
        (decided.state.value, decided.retry_at, outcome.ref, now, Jsonb(_plain(detail)), job.notification_id),
    )
    shown = {"attempt": job.attempt, "outcome": outcome.state.value, **detail}
    if decided.retry_at is not None:
        shown["retry_at"] = decided.retry_at
    _announce(cur, job, decided.state, now, shown)


def delivery_report(conn: psycopg.Connection, ref: str, delivered: bool, now: datetime, detail: dict[str, Any]) -> bool:
    """An SMSC's delivery report for the SMS it accepted as `ref`. False when no SMS was
    accepted under `ref` (yet: the report may overtake the row's update)."""
    state = State.DELIVERED if delivered else State.FAILED
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """UPDATE notifications SET state = %s, updated_at = %s, detail = detail || %s
               WHERE provider_ref = %s AND channel = 'sms' AND state IN ('accepted', 'sending')
               RETURNING """ + _RETURNED.replace("n.", ""),
            (state.value, now, Jsonb({"report": _plain(detail)}), ref),
        ).fetchone()
        if row is None:
            # A long SMS goes as several parts, each reported on its own and all under the
            # first part's id: the first report settled the row; the others are its echoes.
            cur.execute("SELECT 1 FROM notifications WHERE provider_ref = %s AND channel = 'sms'", (ref,))
            return cur.fetchone() is not None
        job = _job(cur, row, now)
        _announce(cur, job, state, now, {"attempt": job.attempt, "report": _plain(detail)})
        if not delivered:
            _hand_over(cur, job, now)
    return True


def summary(conn: psycopg.Connection, now: datetime, window_s: float = 600.0) -> dict[str, Any]:
    """For /readyz: what is waiting, what is overdue, and the channels' recent failures."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT count(*) FILTER (WHERE state = 'queued') AS queued,
                      count(*) FILTER (WHERE state = 'queued' AND due_at < %s - interval '30 seconds') AS overdue,
                      count(*) FILTER (WHERE state IN ('sending', 'ringing', 'answered')) AS in_progress,
                      count(*) FILTER (WHERE channel = 'sms' AND state = 'failed' AND updated_at > %s) AS sms_failed,
                      count(*) FILTER (WHERE channel = 'voice' AND state = 'failed' AND updated_at > %s) AS voice_failed
               FROM notifications WHERE state NOT IN ('delivered', 'acked', 'cancelled', 'expired') OR updated_at > %s""",
            (now, now - timedelta(seconds=window_s), now - timedelta(seconds=window_s), now - timedelta(seconds=window_s)),
        ).fetchone()
    return dict(row or {})


# --- inside ---------------------------------------------------------------------------------


def _job(cur: psycopg.Cursor[dict[str, Any]], r: dict[str, Any], now: datetime) -> Job:
    if r["incident_id"] is not None:
        return _doctor_job(cur, r, now)
    # A family member's phone is their user's; a partner's duty contact's is the partner's.
    # A station's alarm is told by the station's name and town.
    facts = cur.execute(
        """SELECT a.alarm_type, a.first_seen, a.detail ->> 'parameter' AS parameter,
                  COALESCE(p.name, s.name) AS name, COALESCE(p.address, s.town) AS address, COALESCE(u.phone, pt.duty_phone) AS phone
           FROM alarms a LEFT JOIN persons p ON p.person_id = a.person_id
           LEFT JOIN stations s ON a.source_kind = 'station' AND s.station_id = a.source_id
           LEFT JOIN users u ON u.username = %s LEFT JOIN partners pt ON pt.partner_id = %s
           WHERE a.alarm_id = %s""",
        (r["username"], partner_of(r["username"]), r["alarm_id"]),
    ).fetchone()
    assert facts is not None  # notifications reference their alarm
    return Job(
        r["notification_id"], r["alarm_id"], None, r["person_id"], r["username"], Channel(r["channel"]), r["step"], r["attempt"],
        facts["phone"], r["expires_at"],
        AlarmFacts(r["alarm_id"], facts["name"] or r["person_id"] or "", facts["alarm_type"], facts["first_seen"], facts["address"],
                   parameter=facts["parameter"]),
    )


def _doctor_job(cur: psycopg.Cursor[dict[str, Any]], r: dict[str, Any], now: datetime) -> Job:
    """The first-aid post's duty phone and what its doctor is told. The ambulance's ETA is the
    one at the alert, less the time since: a call half a minute later says what is left."""
    facts = cur.execute(
        """SELECT i.kind, i.description, i.lat, i.lon, p.name, p.address, p.conditions, p.medications,
                  f.unit_eta_s, f.alerted_at, fac.duty_phone
           FROM incidents i LEFT JOIN persons p ON p.person_id = i.person_id
           LEFT JOIN first_responses f ON f.incident_id = i.incident_id
           LEFT JOIN facilities fac ON fac.facility_id = %s
           WHERE i.incident_id = %s""",
        (r["username"], r["incident_id"]),
    ).fetchone()
    assert facts is not None  # notifications reference their incident
    alerted = facts["alerted_at"] or now
    eta = facts["unit_eta_s"]
    if eta is not None:
        eta = max(float(eta) - (now - alerted).total_seconds(), 0.0)
    return Job(
        r["notification_id"], None, r["incident_id"], r["person_id"], r["username"], Channel(r["channel"]), r["step"], r["attempt"],
        facts["duty_phone"], r["expires_at"],
        DoctorFacts(r["incident_id"], facts["name"], facts["address"], facts["lat"], facts["lon"], facts["kind"], facts["description"],
                    tuple(facts["conditions"] or ()), tuple(facts["medications"] or ()), eta, alerted),
    )


def _announce(cur: psycopg.Cursor[Any], job: Job, state: State, now: datetime, detail: dict[str, Any]) -> None:
    notification = {
        "notification_id": job.notification_id, "username": job.username, "recipient": job.recipient,
        "channel": job.channel.value, "state": state.value, "at": now, "phone": mask_phone(job.phone), **detail,
    }
    if job.incident_id is not None:
        cur.execute(
            "INSERT INTO dispatch_audit (at, incident_id, unit_id, action, actor, detail) VALUES (%s, %s, NULL, 'notification', %s, %s)",
            (now, job.incident_id, f"notify:{job.channel.value}", Jsonb(_plain(notification))),
        )
        emit(cur, EventType.INCIDENT_UPDATED, None,
             {"incident_id": job.incident_id, "change": "notification", "notification": notification}, now)
        return
    assert job.alarm_id is not None
    _audit(cur, job.alarm_id, now, "notification", f"notify:{job.channel.value}", notification)
    with cur.connection.cursor(row_factory=dict_row) as c:
        alarm = c.execute(f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE alarm_id = %s", (job.alarm_id,)).fetchone()
    if alarm is not None:
        emit(cur, EventType.ALARM_UPDATED, job.person_id, {**alarm, "change": "notification", "notification": notification}, now)


def _flag_control_room(cur: psycopg.Cursor[Any], job: Job, now: datetime) -> None:
    """Keypad 9: the family member asks the control room to call them back."""
    assert job.alarm_id is not None
    cur.execute(
        "UPDATE alarms SET control_room = true, detail = detail || jsonb_build_object('callback_requested', %s::text) "
        "WHERE alarm_id = %s",
        (job.recipient, job.alarm_id),
    )
    _audit(cur, job.alarm_id, now, "callback_requested", job.recipient, {"channel": job.channel.value})


def _hand_over(cur: psycopg.Cursor[Any], job: Job, now: datetime) -> None:
    if job.channel is Channel.SMS:
        about = "incident_id" if job.incident_id is not None else "alarm_id"
        cur.execute(
            f"UPDATE notifications SET due_at = %s, updated_at = %s WHERE {about} = %s AND username = %s "
            "AND channel = 'voice' AND state = 'queued' AND due_at > %s",
            (now, now, job.incident_id if job.incident_id is not None else job.alarm_id, job.username, now),
        )
    elif job.channel is Channel.VOICE and job.alarm_id is not None:
        # The ingest ticker advances the escalation on its next pass.
        cur.execute(
            "UPDATE escalations SET next_at = %s WHERE alarm_id = %s AND step = %s AND next_at > %s",
            (now, job.alarm_id, job.step, now),
        )


def _audit(cur: psycopg.Cursor[Any], alarm_id: int, at: datetime, action: str, actor: str, detail: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO alarm_audit (alarm_id, at, action, actor, detail) VALUES (%s, %s, %s, %s, %s)",
        (alarm_id, at, action, actor, Jsonb(_plain(detail))),
    )


def _plain(value: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))
