"""Crashes, outages and hostile input: nothing the broker accepted is lost or doubled."""

from __future__ import annotations

import math
import threading
import time

import orjson
import pytest

from tests.fix_broker import TEST_ROOT, Publisher
from tests.fix_db import count
from tests.fix_ingest import publish_sentinels, sentinels_stored, stored_total
from tests.fix_wait import metric, wait_for

pytestmark = pytest.mark.slow


def mixed_messages(n: int, start: float) -> list[tuple[str, bytes]]:
    """n valid messages over several streams, each with its own (device, ts) key."""
    out = []
    for i in range(n):
        ts = start + i * 0.001
        match i % 4:
            case 0:
                out.append((f"{TEST_ROOT}/water/WS-00{1 + i % 2}/telemetry", orjson.dumps({"ts": ts, "ph": 7.1, "seq": i})))
            case 1:
                out.append((f"{TEST_ROOT}/elder/P-000{1 + i % 2}/wearable", orjson.dumps({"ts": ts, "hr_bpm": 70, "seq": i})))
            case 2:
                out.append((f"{TEST_ROOT}/unit/AMB-0{1 + i % 2}/gps", orjson.dumps({"ts": ts, "lat": 30.8, "lon": 120.9})))
            case 3:
                out.append((f"{TEST_ROOT}/elder/P-0001/home/motion-1", orjson.dumps({"ts": ts, "kind": "motion", "value": True})))
    return out


def publish_all(publisher: Publisher, messages: list[tuple[str, bytes]], window: int = 500) -> None:
    mids: list[int] = []
    for topic, payload in messages:
        mids.append(publisher.publish(topic, payload))
        if len(mids) >= window:
            publisher.wait_acked(mids, timeout=60)
            mids.clear()
    publisher.wait_acked(mids, timeout=60)


def test_kill_9_mid_stream_loses_and_duplicates_nothing(start_ingest, publisher: Publisher, database_url: str) -> None:
    n = 20_000
    messages = mixed_messages(n, time.time() - 3600)
    ingest = start_ingest()
    sender = threading.Thread(target=publish_all, args=(publisher, messages))
    sender.start()
    wait_for(lambda: stored_total(database_url) > 2000, timeout=60)
    ingest.kill()  # SIGKILL: no chance to flush or acknowledge
    killed_at = stored_total(database_url)
    ingest.start()
    sender.join(120)
    wait_for(lambda: stored_total(database_url) >= n, timeout=120)
    since = publish_sentinels(publisher)
    wait_for(lambda: sentinels_stored(database_url, since) == 1)  # anything extra is stored by now
    assert killed_at < n, "the kill happened after everything was stored; the test proved nothing"
    assert stored_total(database_url) == n + 1
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


def test_a_database_outage_mid_stream_loses_nothing(start_ingest, publisher: Publisher, database_url: str, db_proxy) -> None:
    n = 6000
    messages = mixed_messages(n, time.time() - 3600)
    ingest = start_ingest(db_url=db_proxy.url_for(database_url))
    publish_all(publisher, messages[:2000])
    wait_for(lambda: stored_total(database_url) == 2000)
    db_proxy.cut()
    sender = threading.Thread(target=publish_all, args=(publisher, messages[2000:]))
    sender.start()
    # The outage lasts until the broker has taken the rest of the stream and the worker has
    # failed to commit and backed off several times over.
    sender.join(60)
    wait_for(lambda: ingest.log().count("messages failed") >= 4, timeout=30, what="four failed commits")
    assert stored_total(database_url) == 2000  # the outage was real
    db_proxy.restore()
    wait_for(lambda: stored_total(database_url) == n, timeout=60)
    assert ingest.alive
    assert "retrying" in ingest.log()


def hostile_payloads(now: float) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason) — 1,000 of them, cycling through every kind."""
    w = f"{TEST_ROOT}/water/WS-001/telemetry"
    p = f"{TEST_ROOT}/elder/P-0001/wearable"
    kinds = [
        (w, b"\x00\xff\xfe garbage \x80", "not_json"),
        (w, b"{" + b'"ph": 7,' * 140_000 + b'"ts": 1}', "oversized"),  # about 1 MB
        (w, b'{"ts": %d, "ph": NaN}' % now, "not_json"),  # NaN is not JSON
        (w, b'{"ts": %d, "ph": Infinity}' % now, "not_json"),
        (w, b'{"ts": %d, "ph": 1e999}' % now, "not_json"),  # orjson refuses numbers beyond a double
        (w, orjson.dumps({"ts": now, "ph": "7.1"}), "wrong_type"),
        (w, orjson.dumps({"ts": now, "ph": True}), "wrong_type"),
        (w, orjson.dumps({"ts": now, "ph": 19.0}), "out_of_range"),
        (w, orjson.dumps({"ts": now + 86400 * 365}), "time_in_future"),
        (w, orjson.dumps({"ts": now - 86400 * 400, "ph": 7}), "time_too_old"),
        (w, orjson.dumps({"ts": "yesterday", "ph": 7}), "bad_timestamp"),
        (w, orjson.dumps({"ph": 7}), "missing_field"),
        (w, orjson.dumps([1, 2, 3]), "bad_senml"),
        (w, b'"just a string"', "not_object"),
        (w, orjson.dumps({"ts": now, "ph'; DROP TABLE water_readings; --": 7}), "unknown_field"),
        (f"{TEST_ROOT}/water/WS-404/telemetry", orjson.dumps({"ts": now, "ph": 7}), "unknown_device"),
        (p, orjson.dumps({"ts": now, "hr_bpm": -5}), "out_of_range"),
        (p, orjson.dumps({"ts": now, "fall": "yes"}), "wrong_type"),
        (p, orjson.dumps({"ts": now, "steps": 1.5}), "wrong_type"),
        (f"{TEST_ROOT}/elder/P-0001/home/smoke-9", orjson.dumps({"ts": now, "kind": "smoke", "value": True}), "unknown_device"),
    ]
    return [kinds[i % len(kinds)] for i in range(1000)]


def test_hostile_payloads_are_dead_lettered_with_reasons_and_ingest_survives(
    start_ingest, publisher: Publisher, database_url: str
) -> None:
    now = math.floor(time.time())
    ingest = start_ingest()
    bad = hostile_payloads(now)
    good = mixed_messages(1000, now - 600)
    mids = []
    for (bt, bp, _), (gt, gp) in zip(bad, good):
        mids.append(publisher.publish(bt, bp))
        mids.append(publisher.publish(gt, gp))
    publisher.wait_acked(mids, timeout=120)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 1000, timeout=60)
    wait_for(lambda: stored_total(database_url) == 1000)
    expected: dict[str, int] = {}
    for _, _, reason in bad:
        expected[reason] = expected.get(reason, 0) + 1
    import psycopg

    with psycopg.connect(database_url) as conn:
        got = dict(conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason").fetchall())
        assert got == expected
        assert conn.execute("SELECT count(*) FROM dead_letters WHERE detail = ''").fetchone()[0] == 0
    assert ingest.alive


def test_while_the_database_is_down_a_worker_holds_at_most_its_receive_maximum(
    start_ingest, publisher: Publisher, database_url: str, db_proxy
) -> None:
    from tests.fix_broker import free_port

    port = free_port()
    start_ingest(db_url=db_proxy.url_for(database_url), metrics_port=str(port), ingest__receive_maximum="500")

    def pending() -> float:
        return metric(port, "watchpost_ingest_pending_messages")

    db_proxy.cut()
    publish_all(publisher, mixed_messages(3000, time.time() - 600))  # the broker accepts all of them
    wait_for(lambda: pending() >= 500)  # the broker has handed over as many as the worker may hold…
    assert 0 < pending() <= 500  # …and no more
    db_proxy.restore()
    wait_for(lambda: stored_total(database_url) == 3000, timeout=60)
    assert pending() == 0


# MQTT v5 "no matching subscribers": a success code, the broker took the message and dropped it.
NO_MATCHING_SUBSCRIBERS = 16


@pytest.mark.parametrize("share_group", [
    pytest.param("", id="plain-subscription"),  # the default: one worker
    pytest.param("watchpost-ingest", id="shared-subscription"),  # several workers in a group
])
def test_a_broker_restart_mid_stream_loses_nothing(broker, start_ingest, database_url: str, share_group: str) -> None:
    """A station keeps publishing while the broker stops (SIGTERM) and starts again, and resends whatever was not acknowledged once it
    is back, as devices do. Every reading the broker acknowledged is stored, exactly once."""
    import psycopg

    n = 3000
    topic = f"{TEST_ROOT}/water/WS-001/telemetry"
    base = math.floor(time.time()) - 600

    def reading(seq: int) -> bytes:
        return orjson.dumps({"ts": base + seq * 0.01, "ph": 7.1, "seq": seq})

    ingest = start_ingest(ingest__share_group=share_group)
    station = Publisher(broker, username="WS-001")
    station.client.reconnect_delay_set(min_delay=1, max_delay=2)
    seq_of: dict[int, int] = {}  # packet id -> seq
    stopped, restarted = threading.Event(), threading.Event()

    def keep_publishing() -> None:
        for seq in range(n):
            if seq == n // 3:
                stopped.wait(60)  # the middle third goes out while the broker is down…
            elif seq == 2 * n // 3:
                restarted.wait(60)  # …the last third once it is back
            seq_of[station.publish(topic, reading(seq))] = seq

    sender = threading.Thread(target=keep_publishing, name="station")
    sender.start()
    try:
        wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") > 0)  # the stream flows
        broker.stop()
        stopped.set()
        wait_for(lambda: len(seq_of) == 2 * n // 3, what="the middle third published while the broker is down")
        broker.start()
        restarted.set()
        sender.join(60)
        ingest.wait_connected()
        station.wait_acked(list(seq_of), timeout=60)  # resent until the broker took them
        # A last reading behind the stream: once it is stored, everything before it is too.
        last = station.publish(topic, reading(n))
        assert station.wait_acked([last])[last] == 0, "the broker had no subscriber for the last reading"
    finally:
        stopped.set()
        restarted.set()
        station.close()
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings WHERE seq = %s", n) == 1, timeout=60)

    acknowledged = {seq_of[mid] for mid, code in station.acked.items() if mid in seq_of and code < 128}
    with psycopg.connect(database_url) as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT seq) FROM water_readings WHERE seq < %s", (n,)).fetchone()
        stored = {r[0] for r in conn.execute("SELECT seq FROM water_readings WHERE seq < %s", (n,))}
    assert total == distinct  # nothing stored twice
    dropped = sum(code == NO_MATCHING_SUBSCRIBERS for code in station.acked.values())
    assert stored == acknowledged, f"{len(acknowledged - stored)} acknowledged readings lost ({dropped} had no subscriber)"
    assert acknowledged == set(range(n))  # and the station got every reading through
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


@pytest.mark.parametrize("share_group", [
    pytest.param("", id="plain-subscription"),
    pytest.param("watchpost-ingest", id="shared-subscription"),
])
def test_a_broker_killed_with_a_backlog_loses_nothing_it_acknowledged(
    broker, start_ingest, publisher: Publisher, database_url: str, share_group: str
) -> None:
    """Ingest is stopped for an upgrade, readings queue up at the broker and are acknowledged
    to the devices, then the broker is killed (an OOM kill, a host crash) and started again:
    every acknowledged reading is stored once when ingest comes back."""
    import signal

    n = 5000
    ingest = start_ingest(ingest__share_group=share_group)  # the persistent session and its subscription
    ingest.kill(signal.SIGTERM)
    publish_all(publisher, mixed_messages(n, time.time() - 600))  # every one acknowledged by the broker
    broker.stop(signal.SIGKILL)
    broker.start()
    ingest.start()
    wait_for(lambda: stored_total(database_url) >= n, timeout=120, what="the backlog stored after the broker's crash")
    assert stored_total(database_url) == n  # none lost, none twice
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
