"""Beyond one box: Watchpost's ingest reads a quorum queue of a three-node RabbitMQ cluster,
and a node lost mid-stream loses nothing.

Devices publish over MQTT to node 1; ingest's quorum queue (a Raft log on all three nodes) is
led by node 2, and the ingest worker — `watchpost ingest` with the AMQP source, in a child
process — reads it through node 3 and commits to TimescaleDB. Node 2 is SIGKILLed
mid-stream: the other two elect a new leader, the devices keep publishing, ingest keeps
storing. Every reading the broker acknowledged is stored exactly once. Then node 2 comes back
and node 3, the one ingest reads through, is killed: ingest moves on to node 1 and the rest
of the stream is stored too. Redeliveries after a leader change or a reconnection are
allowed (the store's unique keys make them no-ops), losses are not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pika
import psycopg
import pytest

from ingest.amqp_source import declare_queue, ingest_bindings
from tests.fix_broker import TEST_ROOT
from tests.fix_db import count
from tests.fix_rabbitmq import Cluster, Device, needs_rabbitmq, rabbitmq
from tests.fix_wait import wait_for

pytestmark = [pytest.mark.slow, needs_rabbitmq]

QUEUE = "watchpost-ingest"
TOPIC = f"{TEST_ROOT}/water/WS-001/telemetry"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with rabbitmq(tmp_path, 3) as c:
        yield c


def stored(url: str) -> int:
    return count(url, "SELECT count(*) FROM water_readings")


def test_killing_the_queue_leader_and_then_ingests_own_node_mid_stream_loses_nothing(
    cluster: Cluster, start_amqp_ingest, database_url: str
) -> None:
    entry, leader, reader = cluster.nodes
    # Declared through node 2, which so leads the queue (a quorum queue's leader is placed on
    # the declaring node), with the worker's own declaration: the worker's is then a no-op.
    with pika.BlockingConnection(pika.URLParameters(leader.amqp_url)) as connection:
        declare_queue(connection.channel(), QUEUE, ingest_bindings(TEST_ROOT))
    assert cluster.queue_leader(QUEUE, asking=reader) == leader.name
    ingest = start_amqp_ingest([reader, entry])
    n = 20_000
    base = time.time() - 3600
    messages = [(TOPIC, orjson.dumps({"ts": base + seq * 0.001, "ph": 7.1, "seq": seq})) for seq in range(n)]
    station = Device("WS-001", entry)
    try:
        # First half: the leader dies mid-stream.
        sender = station.publish_in_background(messages[: n // 2])
        wait_for(lambda: stored(database_url) > 3000, timeout=60, what="the stream flows through the cluster into the database")
        cluster.kill(2)
        killed_leader_at = stored(database_url)
        sender.join(120)
        wait_for(lambda: len(station.acked()) == n // 2, timeout=90, what="the survivors acknowledge the first half")
        wait_for(lambda: stored(database_url) >= n // 2, timeout=90, what="the first half stored")
        assert ingest.log().count("connected to the broker") == 1, "ingest's node stayed up: no reconnection"

        # Second half: the leader's node is back; the node ingest reads through dies.
        cluster.start(2)
        sender = station.publish_in_background(messages[n // 2:])
        wait_for(lambda: stored(database_url) > n // 2 + 3000, timeout=60, what="the second half flows")
        cluster.kill(3)
        killed_reader_at = stored(database_url)
        sender.join(120)
        wait_for(lambda: len(station.acked()) == n, timeout=90, what="the survivors acknowledge the rest of the stream")
        wait_for(lambda: stored(database_url) >= n, timeout=90, what="every acknowledged reading stored")
    finally:
        station.close()
    with psycopg.connect(database_url) as conn:
        per_seq = dict(conn.execute("SELECT seq, count(*) FROM water_readings GROUP BY seq").fetchall())
    assert killed_leader_at < n // 2, "the leader was killed after the first half had passed; the test proved nothing"
    assert killed_reader_at < n, "ingest's node was killed after the stream had passed; the test proved nothing"
    assert station.acked() == set(range(n))
    assert set(per_seq) == set(range(n)), f"{n - len(per_seq)} acknowledged readings not stored"
    assert [s for s, c in per_seq.items() if c != 1] == [], "a reading stored twice"
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert ingest.alive
    log = ingest.log()
    assert "moving on to" in log and log.count("connected to the broker") == 2, log[-3000:]
    print(f"leader killed after {killed_leader_at} stored, ingest's node after {killed_reader_at}; {n} stored once each")
