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
"""

from __future__ import annotations

import logging
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
from notify.messages import AlarmFacts
from notify.outcomes import Next, Outcome, RetryPolicy, State, after_attempt

__all__ = ["Job", "claim", "delivery_report", "finish", "mask_phone", "progress", "summary"]

log = logging.getLogger(__name__)

_ALARM_COLUMNS = (
    "alarm_id, source_kind, source_id, alarm_type, severity, emergency, state, person_id, first_seen, "
    "last_seen, repeat_count, acked_at, acked_by, cleared_at, cleared_by, control_room, detail"
)


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed attempt: whom to reach, how, and what about."""

    notification_id: int
    alarm_id: int
    person_id: str | None  # None: a partner's duty contact, about a station's alarm
    username: str
    channel: Channel
    step: int
    attempt: int
    phone: str | None
    expires_at: datetime | None
    facts: AlarmFacts

    @property
    def partner_id(self) -> str | None:
        """The partner district whose duty contact this is; None for a family member."""
        return partner_of(self.username)

    @property
    def recipient(self) -> str:
        """As the audit and the console name whom it reached."""
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
               RETURNING n.notification_id, n.alarm_id, n.person_id, n.username, n.channel, n.step, n.attempt, n.expires_at""",
            (wanted, now, now, limit, now + timedelta(seconds=lease_s), now),
        ).fetchall()
        jobs = [_job(cur, r) for r in rows]
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


def finish(conn: psycopg.Connection, job: Job, outcome: Outcome, now: datetime, policy: RetryPolicy) -> Next:
    """Store an attempt's outcome. Keypad 1 acknowledges the alarm as the family page's
    button does (so the dispatcher sends the device its `family_notified` receipt); keypad 9
    flags the alarm for the control room. A channel that failed for good hands over at once:
    an SMS to the contact's voice call, a voice call to the next step of the chain."""
    decided = after_attempt(outcome, job.attempt, now, job.expires_at, policy)
    detail = {**outcome.detail, **({"keypad": list(outcome.keypad)} if outcome.keypad else {})}
    with conn.transaction(), conn.cursor() as cur:
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
        if outcome.wants_control_room:
            _flag_control_room(cur, job, now)
        # Keypad 1 from a partner's duty contact says they heard it; the alert is handed over
        # only by the partner's CAP answer, and the alarm stays the control room's.
        if outcome.acknowledged and job.partner_id is None:
            acknowledge(cur, job.alarm_id, family(job.username), now)
        elif decided.gave_up:
            _hand_over(cur, job, now)
    log.info(
        "notification %s to %s by %s: %s", job.notification_id, job.username, job.channel, decided.state,
        extra={"alarm_id": job.alarm_id, "attempt": job.attempt, "outcome": outcome.state.value},
    )
    return decided


def delivery_report(conn: psycopg.Connection, ref: str, delivered: bool, now: datetime, detail: dict[str, Any]) -> bool:
    """An SMSC's delivery report for the SMS it accepted as `ref`."""
    state = State.DELIVERED if delivered else State.FAILED
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """UPDATE notifications SET state = %s, updated_at = %s, detail = detail || %s
               WHERE provider_ref = %s AND channel = 'sms' AND state IN ('accepted', 'sending')
               RETURNING notification_id, alarm_id, person_id, username, channel, step, attempt, expires_at""",
            (state.value, now, Jsonb({"report": _plain(detail)}), ref),
        ).fetchone()
        if row is None:
            return False
        job = _job(cur, row)
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


def _job(cur: psycopg.Cursor[dict[str, Any]], r: dict[str, Any]) -> Job:
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
        r["notification_id"], r["alarm_id"], r["person_id"], r["username"], Channel(r["channel"]), r["step"], r["attempt"],
        facts["phone"], r["expires_at"],
        AlarmFacts(r["alarm_id"], facts["name"] or r["person_id"] or "", facts["alarm_type"], facts["first_seen"], facts["address"],
                   parameter=facts["parameter"]),
    )


def _announce(cur: psycopg.Cursor[Any], job: Job, state: State, now: datetime, detail: dict[str, Any]) -> None:
    notification = {
        "notification_id": job.notification_id, "username": job.username, "recipient": job.recipient,
        "channel": job.channel.value, "state": state.value, "at": now, "phone": mask_phone(job.phone), **detail,
    }
    _audit(cur, job.alarm_id, now, "notification", f"notify:{job.channel.value}", notification)
    with cur.connection.cursor(row_factory=dict_row) as c:
        alarm = c.execute(f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE alarm_id = %s", (job.alarm_id,)).fetchone()
    if alarm is not None:
        emit(cur, EventType.ALARM_UPDATED, job.person_id, {**alarm, "change": "notification", "notification": notification}, now)


def _flag_control_room(cur: psycopg.Cursor[Any], job: Job, now: datetime) -> None:
    """Keypad 9: the family member asks the control room to call them back."""
    cur.execute(
        "UPDATE alarms SET control_room = true, detail = detail || jsonb_build_object('callback_requested', %s::text) "
        "WHERE alarm_id = %s",
        (job.recipient, job.alarm_id),
    )
    _audit(cur, job.alarm_id, now, "callback_requested", job.recipient, {"channel": job.channel.value})


def _hand_over(cur: psycopg.Cursor[Any], job: Job, now: datetime) -> None:
    if job.channel is Channel.SMS:
        cur.execute(
            "UPDATE notifications SET due_at = %s, updated_at = %s WHERE alarm_id = %s AND username = %s "
            "AND channel = 'voice' AND state = 'queued' AND due_at > %s",
            (now, now, job.alarm_id, job.username, now),
        )
    elif job.channel is Channel.VOICE:
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
