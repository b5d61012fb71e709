"""A worker keeps the rule states it wrote, but the database stays the truth: a state that
another worker changed, or that a rolled-back batch never stored, is read again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from ingest.readings import WearableReading
from ingest.rule_store import RuleRunner, fetch_rule_configs
from ingest.rules import Action, AlarmType

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def worker(url: str) -> tuple[RuleRunner, psycopg.Connection]:
    conn = psycopg.connect(url)
    runner = RuleRunner()
    runner.configs, _ = fetch_rule_configs(conn)
    return runner, conn


def battery(runner: RuleRunner, conn: psycopg.Connection, pct: float, at: datetime, *, commit: bool = True) -> set[AlarmType]:
    """One batch of one wearable reading; returns the alarms it raised."""
    with conn.cursor() as cur:
        transitions = runner.on_stored(cur, [WearableReading("P-0001", at, battery_pct=pct)], at)
    conn.commit() if commit else conn.rollback()
    return {t.alarm_type for t in transitions if t.action is Action.RAISE}


def test_a_state_another_worker_changed_is_read_again(database_url: str) -> None:
    a, a_conn = worker(database_url)
    b, b_conn = worker(database_url)
    with a_conn, b_conn:
        assert battery(a, a_conn, 80, T0) == set()
        assert battery(b, b_conn, 10, T0 + timedelta(seconds=1)) == {AlarmType.BATTERY_LOW}
        # Worker a's own copy of the device's state has no alarm; the stored one has.
        misses = a.cache.misses
        assert battery(a, a_conn, 9, T0 + timedelta(seconds=2)) == set()
        assert a.cache.misses == misses + 2  # both of its states were read again


def test_a_rolled_back_batch_leaves_nothing_behind_in_the_cache(database_url: str) -> None:
    a, conn = worker(database_url)
    with conn:
        assert battery(a, conn, 80, T0) == set()
        assert battery(a, conn, 10, T0 + timedelta(seconds=1), commit=False) == {AlarmType.BATTERY_LOW}
        # Nothing of the rolled-back batch was stored, so the low battery is news again.
        assert battery(a, conn, 10, T0 + timedelta(seconds=2)) == {AlarmType.BATTERY_LOW}


def test_a_worker_reuses_the_states_it_committed(database_url: str) -> None:
    a, conn = worker(database_url)
    with conn:
        battery(a, conn, 80, T0)
        hits = a.cache.hits
        assert battery(a, conn, 10, T0 + timedelta(seconds=1)) == {AlarmType.BATTERY_LOW}
        assert a.cache.hits == hits + 2  # the device's state and the person's
        assert battery(a, conn, 9, T0 + timedelta(seconds=2)) == set()


def test_states_with_any_text_in_them_come_back_as_they_were_saved(database_url: str) -> None:
    # States go to the database as one buffer of COPY's text format, where a backslash, a
    # tab or a line break in a field would change what is stored.
    from ingest.rule_store import load_states, save_states
    from ingest.rules import PersonState
    from ingest.rules.person_state import SensorState

    odd = 'door "front"\\back\tside\nnew line \u5357\u95e8'
    state = PersonState("P-0001", sensors={odd: SensorState("door", True, T0, T0)}, recent_events=(odd, "\\"))
    runner = RuleRunner()
    with psycopg.connect(database_url) as conn:
        with conn.transaction(), conn.cursor() as cur:
            save_states(cur, {"person:P-0001": state, "person:P-\\1\t2": state}, runner.configs, T0)
        with conn.transaction(), conn.cursor() as cur:
            loaded = load_states(cur, ["person:P-0001", "person:P-\\1\t2"], T0)
    assert loaded == {"person:P-0001": state, "person:P-\\1\t2": state}
