"""Writes a batch of readings and dead letters to TimescaleDB in one transaction.

Rows go through COPY into per-connection staging tables, then one INSERT .. ON CONFLICT
DO NOTHING per stream moves them into the hypertables: COPY alone is fast but cannot skip a
redelivered row, and a redelivered message must be a no-op. The hourly water rollup is
updated from exactly the rows that were inserted, in the same statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from ingest.devices import DeviceDirectory
from ingest.locations import record_fixes
from ingest.readings import (
    AVERAGE_PARAMETERS,
    WATER_PARAMETERS,
    HomeSensorEvent,
    PatientReport,
    Presence,
    Reading,
    StationAverage,
    UnitPosition,
    UnitStatusReport,
    WaterReading,
    WearableReading,
)
from kernel.events import EventType, emit


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    detail: str


# A dead letter keeps the head of its payload, enough to see what a device sent; the rest of
# an oversized or hostile message would only fill the table (and may be personal data).
DEAD_LETTER_MAX_BYTES = 4096


def _capped(dead: DeadLetter, limit: int) -> tuple[bytes, str]:
    if len(dead.payload) <= limit:
        return dead.payload, dead.detail
    return dead.payload[:limit], f"{dead.detail} (payload cut to its first {limit} of {len(dead.payload)} bytes)"


@dataclass(slots=True)
class WriteResult:
    stored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dead_letters: int = 0


@dataclass(frozen=True, slots=True)
class _Stream:
    name: str
    table: str
    columns: tuple[str, ...]


_WATER = _Stream("water", "water_readings", ("station_id", "ts", "seq", "flag", *WATER_PARAMETERS))
_WEARABLE = _Stream(
    "wearable",
    "wearable_readings",
    ("person_id", "ts", "seq", "hr_bpm", "spo2_pct", "skin_temp_c", "steps", "battery_pct", "lat", "lon", "fall", "sos", "cancel"),
)
_HOME = _Stream("home", "home_events", ("person_id", "sensor_id", "ts", "seq", "kind", "value_bool", "value_num"))
_GPS = _Stream("unit_gps", "unit_positions", ("unit_id", "ts", "seq", "lat", "lon", "speed_kmh", "heading_deg"))
_STATUS = _Stream("unit_status", "unit_status_reports", ("unit_id", "ts", "seq", "status", "incident_id"))
_PATIENT = _Stream(
    "patient", "patient_reports",
    ("unit_id", "ts", "incident_id", "hr_bpm", "spo2_pct", "resp_rate", "sys_bp", "dia_bp", "temp_c", "gcs", "consciousness",
     "suspected", "note"),
)
_AVERAGES = _Stream(
    "averages",
    "station_averages",
    ("station_id", "period", "period_start",
     *(f"{p}{suffix}" for p in AVERAGE_PARAMETERS for suffix in ("", "_min", "_max", "_flag"))),
)
_STREAMS = (_WATER, _AVERAGES, _WEARABLE, _HOME, _GPS, _STATUS, _PATIENT)


def _average_row(a: StationAverage) -> tuple:
    row: list[object] = [a.station_id, a.period.value, a.ts]
    for p in AVERAGE_PARAMETERS:
        v = a.values.get(p)
        row += (None, None, None, None) if v is None else (v.avg, v.min, v.max, v.flag)
    return tuple(row)


def _row(reading: Reading) -> tuple[_Stream, tuple]:
    match reading:
        case WaterReading():
            v = reading.values
            return _WATER, (reading.station_id, reading.ts, reading.seq, reading.flag, *(v.get(p) for p in WATER_PARAMETERS))
        case StationAverage():
            return _AVERAGES, _average_row(reading)
        case WearableReading() as w:
            return _WEARABLE, (w.person_id, w.ts, w.seq, w.hr_bpm, w.spo2_pct, w.skin_temp_c, w.steps, w.battery_pct, w.lat, w.lon, w.fall, w.sos, w.cancel)
        case HomeSensorEvent() as h:
            is_bool = isinstance(h.value, bool)
            return _HOME, (h.person_id, h.sensor_id, h.ts, h.seq, h.kind, h.value if is_bool else None, None if is_bool else h.value)
        case UnitPosition() as g:
            return _GPS, (g.unit_id, g.ts, g.seq, g.lat, g.lon, g.speed_kmh, g.heading_deg)
        case UnitStatusReport() as s:
            return _STATUS, (s.unit_id, s.ts, s.seq, s.status, s.incident_id)
        case PatientReport() as r:
            return _PATIENT, (r.unit_id, r.ts, r.incident_id, r.hr_bpm, r.spo2_pct, r.resp_rate, r.sys_bp, r.dia_bp, r.temp_c,
                              r.gcs, r.consciousness, r.suspected, r.note)
    raise TypeError(f"no stream for {type(reading).__name__}")


def insert_reading(cur: psycopg.Cursor, reading: WearableReading | HomeSensorEvent) -> bool:
    """Store one reading at once (the alert lane's path: no batch, no staging). Returns
    False when it was stored already."""
    stream, row = _row(reading)
    cols = ", ".join(stream.columns)
    cur.execute(
        f"INSERT INTO {stream.table} ({cols}) VALUES ({', '.join(['%s'] * len(row))}) ON CONFLICT DO NOTHING", row
    )
    return cur.rowcount == 1


def _water_rollup_sql() -> str:
    cols = ", ".join(_WATER.columns)
    agg_cols, aggs, updates = [], [], []
    for p in WATER_PARAMETERS:
        agg_cols += [f"n_{p}", f"sum_{p}", f"min_{p}", f"max_{p}"]
        normal = "FILTER (WHERE flag = 'N')"
        aggs += [f"count({p}) {normal}", f"sum({p}) {normal}", f"min({p}) {normal}", f"max({p}) {normal}"]
        updates += [
            f"n_{p} = h.n_{p} + excluded.n_{p}",
            f"sum_{p} = COALESCE(h.sum_{p} + excluded.sum_{p}, h.sum_{p}, excluded.sum_{p})",
            f"min_{p} = LEAST(h.min_{p}, excluded.min_{p})",
            f"max_{p} = GREATEST(h.max_{p}, excluded.max_{p})",
        ]
    # ORDER BY gives every worker the same lock order on rollup rows, so two workers
    # updating the same hours wait for each other instead of deadlocking.
    return f"""
        WITH inserted AS (
            INSERT INTO water_readings ({cols}) SELECT {cols} FROM stage_water
            ON CONFLICT DO NOTHING
            RETURNING {cols}
        ), rollup AS (
            INSERT INTO water_hourly AS h (station_id, bucket, readings, flagged, {", ".join(agg_cols)})
            SELECT station_id, time_bucket('1 hour', ts), count(*), count(*) FILTER (WHERE flag <> 'N'), {", ".join(aggs)}
            FROM inserted GROUP BY 1, 2 ORDER BY 1, 2
            ON CONFLICT (station_id, bucket) DO UPDATE SET
                readings = h.readings + excluded.readings, flagged = h.flagged + excluded.flagged,
                {", ".join(updates)}
            RETURNING 1
        )
        SELECT count(*) FROM inserted
    """


_WATER_ROLLUP_SQL = _water_rollup_sql()

_PRESENCE_SQL = """
    INSERT INTO device_presence AS p (device_kind, device_id, online, changed_at)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (device_kind, device_id) DO UPDATE
        SET online = excluded.online, changed_at = excluded.changed_at
        WHERE p.online IS DISTINCT FROM excluded.online
"""


# Called inside the batch's transaction with the batch's readings: the seam where the
# detection rules run, so their states and alarms commit together with the readings.
OnStored = Callable[[psycopg.Cursor, list[Reading]], object]


class TelemetryStore:
    """Owns one connection. Not thread-safe: one store per writer thread."""

    def __init__(self, conn: psycopg.Connection, on_stored: OnStored | None = None,
                 dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES) -> None:
        self._conn = conn
        self._on_stored = on_stored
        self._dead_letter_max_bytes = dead_letter_max_bytes
        self._staged = False

    @property
    def connection(self) -> psycopg.Connection:
        return self._conn

    def _create_staging(self, cur: psycopg.Cursor) -> None:
        for s in _STREAMS:
            cols = ", ".join(s.columns)
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS stage_{s.name} ON COMMIT DELETE ROWS AS "
                f"SELECT {cols} FROM {s.table} WITH NO DATA"
            )
        self._conn.commit()
        self._staged = True

    def write(self, readings: Iterable[Reading], dead_letters: Sequence[DeadLetter]) -> WriteResult:
        """Store everything in one transaction; on any error nothing is stored."""
        readings = list(readings)
        rows: dict[_Stream, list[tuple]] = defaultdict(list)
        presences: list[Presence] = []
        for reading in readings:
            if isinstance(reading, Presence):
                presences.append(reading)
            else:
                stream, row = _row(reading)
                rows[stream].append(row)
        result = WriteResult()
        try:
            with self._conn.cursor() as cur:
                if not self._staged:
                    self._create_staging(cur)
                for stream, stream_rows in rows.items():
                    with cur.copy(f"COPY stage_{stream.name} ({', '.join(stream.columns)}) FROM STDIN") as copy:
                        for row in stream_rows:
                            copy.write_row(row)
                    inserted = self._move_from_stage(cur, stream)
                    result.stored[stream.name] += inserted
                    result.duplicates[stream.name] += len(stream_rows) - inserted
                if _WEARABLE in rows:
                    record_fixes(cur, readings)
                for p in presences:
                    cur.execute(_PRESENCE_SQL, (p.kind.value, p.device_id, p.online, p.ts))
                result.stored["presence"] += len(presences)
                if self._on_stored is not None:
                    self._on_stored(cur, readings)
                if dead_letters:
                    with cur.copy("COPY dead_letters (received_at, topic, payload, reason, detail) FROM STDIN") as copy:
                        for d in dead_letters:
                            payload, detail = _capped(d, self._dead_letter_max_bytes)
                            copy.write_row((d.received_at, d.topic, payload, d.reason, detail))
                    result.dead_letters = len(dead_letters)
            self._conn.commit()
        except BaseException:
            self._rollback_quietly()
            raise
        return result

    def _move_from_stage(self, cur: psycopg.Cursor, stream: _Stream) -> int:
        if stream is _WATER:
            cur.execute(_WATER_ROLLUP_SQL)
            row = cur.fetchone()
            return row[0] if row else 0
        if stream is _PATIENT:
            return _store_patient_reports(cur)
        cols = ", ".join(stream.columns)
        cur.execute(f"INSERT INTO {stream.table} ({cols}) SELECT {cols} FROM stage_{stream.name} ON CONFLICT DO NOTHING")
        return cur.rowcount

    def _rollback_quietly(self) -> None:
        try:
            self._conn.rollback()
        except psycopg.Error:
            pass  # the connection is gone; the caller reconnects


# The crew's report is for the receiving hospital, which should see it as it arrives, not on
# the unit's next fix or status: each incident that got a report is told in the same
# transaction. A report without an incident id belongs to the unit's open assignment (the
# same rule the board reads it by). The event names the incident and the unit, never the
# person (person_id NULL): no family page hears of it, and the hospital board re-reads.
_PATIENT_SQL = f"""
    WITH inserted AS (
        INSERT INTO patient_reports ({", ".join(_PATIENT.columns)}) SELECT {", ".join(_PATIENT.columns)} FROM stage_patient
        ON CONFLICT DO NOTHING
        RETURNING unit_id, ts, incident_id
    )
    SELECT r.unit_id, COALESCE(r.incident_id, a.incident_id) AS incident_id, max(r.ts), count(*)
    FROM inserted r
    LEFT JOIN assignments a ON r.incident_id IS NULL AND a.unit_id = r.unit_id AND a.ordered_at <= r.ts
        AND a.state IN ('ordered', 'en_route', 'on_scene', 'transporting', 'at_hospital')
    GROUP BY 1, 2
"""


def _store_patient_reports(cur: psycopg.Cursor) -> int:
    cur.execute(_PATIENT_SQL)
    stored = 0
    for unit_id, incident_id, latest, count in cur.fetchall():
        stored += count
        if incident_id is not None:
            emit(cur, EventType.INCIDENT_UPDATED, None,
                 {"incident_id": incident_id, "unit_id": unit_id, "patient_report_at": latest}, latest)
    return stored


def fetch_device_directory(conn: psycopg.Connection) -> DeviceDirectory:
    """The registry's devices, as validation needs them."""
    with conn.cursor() as cur:
        stations = frozenset(r[0] for r in cur.execute("SELECT station_id FROM stations WHERE retired_at IS NULL"))
        persons = frozenset(r[0] for r in cur.execute("SELECT person_id FROM persons WHERE retired_at IS NULL"))
        units = frozenset(r[0] for r in cur.execute("SELECT unit_id FROM units WHERE retired_at IS NULL"))
        sensors = {
            (p, s): k
            for p, s, k in cur.execute(
                "SELECT h.person_id, h.sensor_id, h.kind FROM home_sensors h JOIN persons p USING (person_id) WHERE p.retired_at IS NULL"
            )
        }
        retired = frozenset(
            r[0]
            for r in cur.execute(
                "SELECT station_id FROM stations WHERE retired_at IS NOT NULL UNION SELECT person_id FROM persons "
                "WHERE retired_at IS NOT NULL UNION SELECT unit_id FROM units WHERE retired_at IS NOT NULL"
            )
        )
    conn.commit()
    return DeviceDirectory(stations=stations, persons=persons, units=units, home_sensors=sensors, retired=retired)


def drop_expired_chunks(conn: psycopg.Connection) -> int:
    """Apply retention_policies. Only one worker does it at a time (advisory lock); the
    others skip. Returns the number of chunks dropped."""
    dropped = 0
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('watchpost-retention'))").fetchone()
        got_lock = row is not None and row[0]
        if got_lock:
            policies = conn.execute(
                "SELECT p.hypertable, p.keep, h.hypertable_name IS NOT NULL FROM retention_policies p "
                "LEFT JOIN timescaledb_information.hypertables h ON h.hypertable_name = p.hypertable"
            ).fetchall()
            for table, keep, is_hypertable in policies:
                if is_hypertable:
                    dropped += len(conn.execute("SELECT drop_chunks(%s::regclass, older_than => %s::interval)", (table, keep)).fetchall())
                elif table == "events":  # a plain table: row by row
                    conn.execute("DELETE FROM events WHERE ts < now() - %s::interval", (keep,))
    return dropped
