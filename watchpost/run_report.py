"""What the platform made of a simulated run: read back from the database after
`watchpost simulate --duration …`, next to the simulator's own account of what it sent."""

from __future__ import annotations

from datetime import datetime

import psycopg

from dispatch.targets import DISPATCH, RESPONSE, RESPONSE_P1_MEAN

DISPATCH_TARGET_S, DISPATCH_TARGET_SHARE = DISPATCH.seconds, DISPATCH.share or 0.0
TRAVEL_TARGET_S, TRAVEL_TARGET_SHARE = RESPONSE.seconds, RESPONSE.share or 0.0


def settle(conn: psycopg.Connection, since: datetime, timeout_s: float = 60.0) -> None:
    """Wait until ingest has caught up with what the simulator sent: the stored count stops
    growing for two seconds (or the timeout passes)."""
    import time

    deadline, last, steady = time.monotonic() + timeout_s, -1, 0
    while time.monotonic() < deadline and steady < 2:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM wearable_readings WHERE received_at >= %(s)s) + "
            "(SELECT count(*) FROM dead_letters WHERE received_at >= %(s)s)", {"s": since}
        ).fetchone()
        n = row[0] if row else 0
        conn.commit()
        steady = steady + 1 if n == last else 0
        last = n
        time.sleep(1.0)


def platform_report(conn: psycopg.Connection, since: datetime) -> str:
    def one(sql: str) -> list[tuple]:
        return conn.execute(sql, {"since": since}).fetchall()

    stored = one(
        "SELECT 'water', count(*) FROM water_readings WHERE received_at >= %(since)s UNION ALL "
        "SELECT 'wearable', count(*) FROM wearable_readings WHERE received_at >= %(since)s UNION ALL "
        "SELECT 'home', count(*) FROM home_events WHERE received_at >= %(since)s UNION ALL "
        "SELECT 'unit gps', count(*) FROM unit_positions WHERE received_at >= %(since)s UNION ALL "
        "SELECT 'unit status', count(*) FROM unit_status_reports WHERE received_at >= %(since)s"
    )
    dead = one("SELECT reason, count(*) FROM dead_letters WHERE received_at >= %(since)s GROUP BY 1 ORDER BY 1")
    alarms = one("SELECT alarm_type, count(*) FROM alarm_audit JOIN alarms USING (alarm_id) WHERE action = 'raised' AND at >= %(since)s GROUP BY 1 ORDER BY 1")
    incidents = one("SELECT kind, count(*) FROM incidents WHERE created_at >= %(since)s GROUP BY 1 ORDER BY 1")
    dispatch = [r[0] for r in one(
        "SELECT extract(epoch FROM min(a.ordered_at) - i.created_at) FROM incidents i JOIN assignments a USING (incident_id) "
        "WHERE i.created_at >= %(since)s GROUP BY i.incident_id"
    )]

    def counts(rows: list[tuple]) -> str:
        return ", ".join(f"{k} {n}" for k, n in rows) or "none"

    lines = [
        "platform:",
        f"  stored readings: {counts(stored)}",
        f"  dead letters: {counts(dead)}",
        f"  alarms raised: {counts(alarms)}",
        f"  incidents opened: {counts(incidents)}",
    ]
    if dispatch:
        within = sum(d <= DISPATCH_TARGET_S for d in dispatch) / len(dispatch)
        lines.append(
            f"  dispatch time (incident → order, platform seconds): p90 {_p90(dispatch):.1f} s; "
            f"{within:.0%} within {DISPATCH_TARGET_S:.0f} s (target {DISPATCH_TARGET_SHARE:.0%})"
        )
    lines.append(
        f"  travel target for the simulator's response times above: {TRAVEL_TARGET_S / 60:.0f} min for "
        f"{TRAVEL_TARGET_SHARE:.0%} of calls (NFPA 1710); England's Category 1 mean: {RESPONSE_P1_MEAN.seconds / 60:.0f} min"
    )
    return "\n".join(lines)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
