"""What `watchpost status` reports about a running installation, read from the database
(and the API's /healthz), as one dictionary: the text and the `--json` forms are two
renderings of the same facts.

Process liveness comes from the database's own session list: every Watchpost process
connects with its name as `application_name` (`watchpost-ingest-1`, `watchpost-dispatch-1`,
`watchpost-api`, `watchpost-notify`, …), so `pg_stat_activity` says which processes hold a
connection now, on every machine, without a heartbeat table or a health port per process.
A process that lost its database is missing there even if its /healthz still answers —
which is what an operator needs to know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

_LAG_SQL = (
    "SELECT now() - max(t) FROM (SELECT max(received_at) AS t FROM wearable_readings WHERE ts > now() - interval '1 day' "
    "UNION ALL SELECT max(received_at) FROM water_readings WHERE ts > now() - interval '1 day' "
    "UNION ALL SELECT max(received_at) FROM home_events WHERE ts > now() - interval '1 day' "
    "UNION ALL SELECT max(received_at) FROM unit_positions WHERE ts > now() - interval '1 day') x"
)


def read_status(conn: psycopg.Connection, *, known_schema_version: int) -> dict[str, Any]:
    """The installation's state as JSON-ready values."""
    from dispatch.lifecycle import OPEN_INCIDENT, values

    def rows(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(conn.execute(sql, params).fetchall())

    lag_row = conn.execute(_LAG_SQL).fetchone()
    lag = lag_row[0] if lag_row else None
    schema_row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    processes = rows(
        "SELECT application_name, count(*), min(backend_start) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'watchpost%%' AND pid <> pg_backend_pid() "
        "GROUP BY 1 ORDER BY 1"
    )
    silent = rows(
        "SELECT source_kind, source_id, first_seen FROM alarms WHERE alarm_type = 'device_silent' AND state <> 'cleared' "
        "ORDER BY first_seen"
    )
    return {
        "schema": {"version": schema_row[0] if schema_row else None, "known": known_schema_version},
        "processes": [
            {"name": name, "connections": n, "connected_since": _iso(since)} for name, n, since in processes
        ],
        "ingest_lag_s": None if lag is None else round(lag.total_seconds(), 1),
        "dead_letters_last_hour": dict(rows(
            "SELECT reason, count(*) FROM dead_letters WHERE received_at > now() - interval '1 hour' GROUP BY 1 ORDER BY 2 DESC"
        )),
        # A day, not all time: a count over the whole hypertable would scan every chunk.
        "dead_letters_last_day": int((conn.execute(
            "SELECT count(*) FROM dead_letters WHERE received_at > now() - interval '1 day'").fetchone() or (0,))[0]),
        "silent_devices": [{"kind": kind, "id": sid, "since": _iso(since)} for kind, sid, since in silent],
        "open_alarms": dict(rows("SELECT severity, count(*) FROM alarms WHERE state <> 'cleared' GROUP BY 1 ORDER BY 1")),
        "open_incidents": dict(rows(
            "SELECT state, count(*) FROM incidents WHERE state = ANY(%s) GROUP BY 1 ORDER BY 1", (values(OPEN_INCIDENT),)
        )),
        "units": [
            {"kind": k, "status": s, "count": n}
            for k, s, n in rows(
                "SELECT u.kind, COALESCE(s.status, 'available'), count(*) FROM units u LEFT JOIN unit_state s USING (unit_id) "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            )
        ],
    }


def probe_api(host: str, port: int, timeout_s: float = 2.0) -> str:
    """"ok" when the API's /healthz answers 200, else what went wrong."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, port, timeout=timeout_s)
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
        return "ok" if status == 200 else f"answered {status}"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"
    finally:
        connection.close()


def render_text(status: dict[str, Any]) -> str:
    schema = status["schema"]
    lag = status["ingest_lag_s"]
    lines = [
        f"schema version: {schema['version']} (this Watchpost knows {schema['known']})",
        "processes connected: " + (", ".join(f"{p['name']} ×{p['connections']}" for p in status["processes"]) or "none"),
        f"API /healthz: {status.get('api', 'not probed')}",
        f"last reading stored: {'none in the last day' if lag is None else f'{lag:.1f} s ago'}",
        "dead letters, last hour: " + (", ".join(f"{r} {n}" for r, n in status["dead_letters_last_hour"].items()) or "none"),
        "silent devices: " + (", ".join(f"{d['kind']} {d['id']}" for d in status["silent_devices"][:20]) or "none")
        + (f" (+{len(status['silent_devices']) - 20} more)" if len(status["silent_devices"]) > 20 else ""),
        "open alarms: " + (", ".join(f"{s} {n}" for s, n in status["open_alarms"].items()) or "none"),
        "open incidents: " + (", ".join(f"{s} {n}" for s, n in status["open_incidents"].items()) or "none"),
        "units: " + (", ".join(f"{u['kind']} {u['status']} {u['count']}" for u in status["units"]) or "none"),
    ]
    return "\n".join(lines)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
