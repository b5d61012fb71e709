"""Runs the detection rules inside ingest's transactions: loads the states of the sources a
batch touches (locked, so two workers serialise per source), evaluates, saves the states
with their next deadlines, and records the alarm transitions — all in the batch's
transaction, so a replayed batch finds the states it already advanced and raises nothing
new. Timers (fall windows, inactivity, silent devices, escalation) are ticked from the
deadlines stored in the database, so a killed worker's timers fire in another.

The database stays the only truth; a worker keeps a `StateCache` of the states it wrote
last, each with the row version (`xmin`, the id of the transaction that wrote it) it wrote.
Loading still locks every row of the batch's sources, but reads only their versions, and
fetches and decodes only the states whose version is not the cached one: written by another
worker, by the alert lane, or by a transaction of ours that rolled back (its id never
becomes a committed row's `xmin`). Decoding the JSON of every state of every batch was the
largest part of the rules' cost.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import orjson
import psycopg

from ingest.alarm_store import apply_transitions, run_due_escalations
from ingest.handlers import handle_alert, handle_readings, run_due_timers
from ingest.readings import Reading, WearableReading
from ingest.rules import Action, AlarmTransition, ConfigError, PersonConfig, WaterConfig
from ingest.rules.engine import ALERT, RuleConfigs, State, deadline_of, encode_state, new_state, state_from_json
from kernel.clock import Clock, SystemClock

log = logging.getLogger(__name__)

# A vehicle terminal reports every few seconds while moving but every few minutes, or only
# on a status change, when parked with the ignition off (DOMAIN.md): a unit is supervised at
# its parked interval, so a quiet ambulance at its station is not a silent device.
UNIT_PARKED_INTERVAL_S = 300.0
# How many due sources one timer pass takes; the rest wait for the next pass (a second).
TIMER_BATCH = 500


# States a worker remembers: every source of a county (a few thousand persons with their
# home sensors, stations, units) several times over; each is a few kilobytes. Past this the
# oldest entries are forgotten and read from the database again.
STATE_CACHE_MAX = 50_000


class StateCache:
    """The states this worker last wrote, with the row version each was written as. Only
    a state whose row still has that version is taken from here, so an entry can be stale
    but never wrong: a stale one is read again."""

    def __init__(self, max_entries: int = STATE_CACHE_MAX) -> None:
        self._entries: dict[str, tuple[int, State]] = {}
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: str, version: int) -> State | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            self.hits += 1
            return entry[1]
        self.misses += 1
        return None

    def put(self, key: str, version: int, state: State) -> None:
        self._entries.pop(key, None)  # re-inserted last: the oldest entries go first
        self._entries[key] = (version, state)
        if len(self._entries) > self._max:
            del self._entries[next(iter(self._entries))]

    def __len__(self) -> int:
        return len(self._entries)


def load_states(cur: psycopg.Cursor, keys: Iterable[str], now: datetime, cache: StateCache | None = None) -> dict[str, State]:
    """The states of `keys`, row-locked until commit; missing ones are created. Keys are
    locked in sorted order so two workers never deadlock on each other's sources."""
    keys = sorted(set(keys))
    states = _select_for_update(cur, keys, cache)
    missing = [k for k in keys if k not in states]
    if missing:
        fresh = {k: new_state(k, now) for k in missing}
        _stage(cur, fresh, None, now)
        cur.execute("INSERT INTO rule_state (source_key, state) SELECT source_key, state FROM stage_rule_state ON CONFLICT DO NOTHING")
        # Created here or, a moment ago, by another worker: read them locked either way.
        states.update(_select_for_update(cur, missing, cache))
    return states


def _select_for_update(cur: psycopg.Cursor, keys: list[str], cache: StateCache | None = None) -> dict[str, State]:
    if cache is None:
        cur.execute(
            "SELECT source_key, state::text FROM rule_state WHERE source_key = ANY(%s) ORDER BY source_key FOR UPDATE",
            (keys,),
        )
        return {key: state_from_json(key, orjson.loads(text)) for key, text in cur.fetchall()}
    # Lock every row and read its version; then fetch the states not cached at that version.
    cur.execute(
        "SELECT source_key, xmin::text::bigint FROM rule_state WHERE source_key = ANY(%s) ORDER BY source_key FOR UPDATE",
        (keys,),
    )
    states: dict[str, State] = {}
    stale: list[str] = []
    for key, version in cur.fetchall():
        state = cache.get(key, version)
        if state is None:
            stale.append(key)
        else:
            states[key] = state
    if stale:
        cur.execute("SELECT source_key, xmin::text::bigint, state::text FROM rule_state WHERE source_key = ANY(%s)", (stale,))
        for key, version, text in cur.fetchall():
            states[key] = state_from_json(key, orjson.loads(text))
            cache.put(key, version, states[key])
    return states


def save_states(
    cur: psycopg.Cursor, states: Mapping[str, State], configs: RuleConfigs, now: datetime, cache: StateCache | None = None
) -> None:
    if not states:
        return
    _stage(cur, states, configs, now)
    # An upsert probes the primary key row by row; an UPDATE .. FROM join against the
    # unanalysed staging table tends to be planned as a scan of every state.
    cur.execute(
        """INSERT INTO rule_state (source_key, state, next_deadline, updated_at)
           SELECT source_key, state, next_deadline, %s FROM stage_rule_state
           ON CONFLICT (source_key) DO UPDATE
               SET state = excluded.state, next_deadline = excluded.next_deadline, updated_at = excluded.updated_at
           RETURNING source_key, xmin::text::bigint""",
        (now,),
    )
    if cache is not None:
        # The version this transaction gave each row: if it commits, the next batch finds
        # its states here; if it rolls back, no committed row ever has that version.
        for key, version in cur.fetchall():
            cache.put(key, version, states[key])


def _stage(cur: psycopg.Cursor, states: Mapping[str, State], configs: RuleConfigs | None, now: datetime) -> None:
    """COPY states into a per-connection staging table: thousands of JSON documents per
    batch go through COPY far faster than as query parameters, and faster still as one
    buffer of COPY's text format than row by row."""
    conn = cur.connection
    if not getattr(conn, "_watchpost_rule_stage", False):
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_rule_state (source_key text, state json, next_deadline timestamptz) "
            "ON COMMIT DELETE ROWS"
        )
        conn._watchpost_rule_stage = True  # type: ignore[attr-defined]
    else:
        cur.execute("DELETE FROM stage_rule_state")  # staged once already in this transaction
    lines = []
    for key, state in states.items():
        deadline = deadline_of(key, state, configs) if configs is not None else None
        lines.append(b"\t".join((
            _copy_text(key.encode()),
            _copy_text(encode_state(state)),
            b"\\N" if deadline is None else deadline.isoformat().encode(),
        )))
    lines.append(b"")
    with cur.copy("COPY stage_rule_state (source_key, state, next_deadline) FROM STDIN") as copy:
        copy.write(b"\n".join(lines))


def _copy_text(value: bytes) -> bytes:
    """A field in COPY's text format: a backslash starts an escape, a tab or a line break
    ends the field. orjson writes neither raw, but its JSON escapes are backslashes."""
    value = value.replace(b"\\", b"\\\\")
    if b"\t" in value or b"\n" in value or b"\r" in value:
        value = value.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return value


class SqlRuleStates:
    """The `rule_state` table within one transaction, as `ingest.handlers` sees it."""

    def __init__(self, cur: psycopg.Cursor, cache: StateCache | None = None) -> None:
        self._cur = cur
        self._cache = cache

    def load(self, keys: Iterable[str], now: datetime) -> dict[str, State]:
        return load_states(self._cur, keys, now, self._cache)

    def due(self, now: datetime, limit: int, prefix: str = "") -> dict[str, State]:
        self._cur.execute(
            "SELECT source_key, state::text FROM rule_state WHERE next_deadline <= %s AND starts_with(source_key, %s) "
            "ORDER BY next_deadline LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, prefix, limit),
        )
        return {key: state_from_json(key, orjson.loads(text)) for key, text in self._cur.fetchall()}

    def save(self, states: Mapping[str, State], configs: RuleConfigs, now: datetime) -> None:
        save_states(self._cur, states, configs, now, self._cache)


class FewRuleStates(SqlRuleStates):
    """A handful of states read and written by plain statements: the alert lane's one row
    per alert. COPY through a staging table is built for batches of thousands; for one row it
    costs five more round trips, each of which waits its turn on a loaded database."""

    def load(self, keys: Iterable[str], now: datetime) -> dict[str, State]:
        keys = sorted(set(keys))
        states = _select_for_update(self._cur, keys)
        missing = [k for k in keys if k not in states]
        if missing:  # the person's first alert of its kind
            self._cur.executemany(
                "INSERT INTO rule_state (source_key, state) VALUES (%s, %s::json) ON CONFLICT DO NOTHING",
                [(k, encode_state(new_state(k, now)).decode()) for k in missing],
            )
            states.update(_select_for_update(self._cur, missing))
        return states

    def save(self, states: Mapping[str, State], configs: RuleConfigs, now: datetime) -> None:
        self._cur.executemany(
            """INSERT INTO rule_state (source_key, state, next_deadline, updated_at) VALUES (%s, %s::json, %s, %s)
               ON CONFLICT (source_key) DO UPDATE
                   SET state = excluded.state, next_deadline = excluded.next_deadline, updated_at = excluded.updated_at""",
            [(k, encode_state(st).decode(), deadline_of(k, st, configs), now) for k, st in states.items()],
        )


class SqlAlarms:
    """The alarm tables within one transaction, as `ingest.handlers` sees them."""

    def __init__(self, cur: psycopg.Cursor) -> None:
        self._cur = cur

    def apply(self, transitions: Sequence[AlarmTransition], now: datetime) -> int:
        return apply_transitions(self._cur, transitions, now)

    def run_due_escalations(self, now: datetime) -> int:
        return run_due_escalations(self._cur, now)


class RuleRunner:
    """The seam between storage and the rules; `configs` is refreshed from the registry.
    Times not given are read from `clock`."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.configs = RuleConfigs()
        self._clock: Clock = clock if clock is not None else SystemClock()
        # Alarms raised in the transaction under way, by type; the caller reads them with
        # take_raised() once it has committed, so a rolled-back batch counts nothing.
        self._raised: Counter[str] = Counter()
        self.cache = StateCache()

    def take_raised(self) -> Counter[str]:
        raised, self._raised = self._raised, Counter()
        return raised

    def discard_raised(self) -> None:
        self._raised.clear()

    def on_stored(self, cur: psycopg.Cursor, readings: list[Reading], now: datetime | None = None) -> list[AlarmTransition]:
        """Called by the telemetry store inside the batch's transaction. Returns the
        transitions recorded (the alert lane reads which alarm its alert raised)."""
        now = now if now is not None else self._clock.now()
        transitions = handle_readings(readings, self.configs, SqlRuleStates(cur, self.cache), SqlAlarms(cur), now)
        self._raised.update(str(t.alarm_type) for t in transitions if t.action is Action.RAISE)
        return transitions

    def on_alert(self, cur: psycopg.Cursor, reading: WearableReading, now: datetime | None = None) -> list[AlarmTransition]:
        """Called by the alert lane inside an alert's transaction for a fall or an "I'm OK":
        takes the alert lane's own state of the person, never the one an ingest batch holds."""
        now = now if now is not None else self._clock.now()
        transitions = handle_alert(reading, self.configs, FewRuleStates(cur), SqlAlarms(cur), now)
        self._raised.update(str(t.alarm_type) for t in transitions if t.action is Action.RAISE)
        return transitions

    def run_due_timers(self, conn: psycopg.Connection, now: datetime | None = None) -> int:
        """Tick every source whose deadline has passed and advance due escalations, in one
        transaction. Returns the number of events emitted."""
        now = now if now is not None else self._clock.now()
        with conn.transaction(), conn.cursor() as cur:
            transitions, emitted = run_due_timers(self.configs, SqlRuleStates(cur, self.cache), SqlAlarms(cur), now, limit=TIMER_BATCH)
            self._raised.update(str(t.alarm_type) for t in transitions if t.action is Action.RAISE)
            return emitted

    def run_due_alert_timers(self, conn: psycopg.Connection, now: datetime | None = None) -> int:
        """The alert lane's own timer pass: only its states (an alert-topic fall's cancel
        window), so an uncancelled fall becomes an emergency on time while ingest is down
        or behind. Ingest's passes tick them too; SKIP LOCKED gives each to one of them."""
        now = now if now is not None else self._clock.now()
        with conn.transaction(), conn.cursor() as cur:
            transitions, emitted = run_due_timers(
                self.configs, SqlRuleStates(cur), SqlAlarms(cur), now, limit=TIMER_BATCH, prefix=ALERT, escalations=False
            )
            self._raised.update(str(t.alarm_type) for t in transitions if t.action is Action.RAISE)
            return emitted

    def supervise_devices(self, conn: psycopg.Connection, device_keys: Iterable[str], now: datetime) -> None:
        """Give every registered device a state, so one that never reports is noticed."""
        keys = [f"device:{k}" for k in device_keys]
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT source_key FROM rule_state WHERE source_key = ANY(%s)", (keys,))
            have = {r[0] for r in cur.fetchall()}
            fresh = {k: new_state(k, now) for k in keys if k not in have}
            if fresh:
                _stage(cur, fresh, self.configs, now)
                cur.execute(
                    "INSERT INTO rule_state (source_key, state, next_deadline) "
                    "SELECT source_key, state, next_deadline FROM stage_rule_state ON CONFLICT DO NOTHING"
                )


def fetch_rule_configs(conn: psycopg.Connection) -> tuple[RuleConfigs, list[str]]:
    """Per-source thresholds from the registry, and the device keys to supervise. A
    malformed threshold is logged and that source keeps the defaults (the registry loader
    validates them, so this only happens to a hand-edited database)."""
    stations: dict[str, WaterConfig] = {}
    persons: dict[str, PersonConfig] = {}
    intervals: dict[str, float] = {}
    devices: list[str] = []
    with conn.cursor() as cur:
        for sid, body, target, interval, thresholds in cur.execute(
            # A retired record's devices are neither judged nor supervised: it is gone from the
            # county, and its silence is no alarm.
            "SELECT station_id, water_body, target_class, report_interval_s, thresholds FROM stations WHERE retired_at IS NULL"
        ):
            try:
                stations[sid] = _water_config(body, target, thresholds)
            except ConfigError as exc:
                log.error("station %s keeps default thresholds: %s", sid, exc)
            intervals[f"water:{sid}"] = interval
        for pid, interval, thresholds in cur.execute("SELECT person_id, report_interval_s, thresholds FROM persons WHERE retired_at IS NULL"):
            try:
                if thresholds:  # most persons keep the defaults: share one config object
                    persons[pid] = PersonConfig.from_mapping(thresholds)
            except ConfigError as exc:
                log.error("person %s keeps default thresholds: %s", pid, exc)
            intervals[f"elder:{pid}"] = interval
        for uid, interval in cur.execute("SELECT unit_id, report_interval_s FROM units WHERE retired_at IS NULL"):
            intervals[f"unit:{uid}"] = max(interval, UNIT_PARKED_INTERVAL_S)
        devices = list(intervals) + [
            f"elder:{p}/home/{s}" for p, s in cur.execute(
                "SELECT h.person_id, h.sensor_id FROM home_sensors h JOIN persons p USING (person_id) WHERE p.retired_at IS NULL"
            )
        ]
    conn.commit()
    return RuleConfigs(stations=stations, persons=persons, device_intervals=intervals), devices


@functools.cache
def _default_water_config(body: str, target: int) -> WaterConfig:
    return WaterConfig.from_mapping({"water_body": body, "target_class": target})


def _water_config(body: str, target: int, thresholds: Mapping[str, object]) -> WaterConfig:
    if not thresholds:
        return _default_water_config(body, target)
    return WaterConfig.from_mapping({"water_body": body, "target_class": target, **thresholds})
