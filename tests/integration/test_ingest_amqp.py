"""Ingest reading a RabbitMQ quorum queue over AMQP, on one node: bad messages are
dead-lettered with their reason, and what arrives while ingest is stopped waits in the queue
and is stored once ingest is back, exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import orjson
import pika
import psycopg
import pytest

from ingest.amqp_source import QUEUE_ARGUMENTS
from tests.fix_broker import TEST_ROOT, free_port
from tests.fix_db import count
from tests.fix_rabbitmq import Device, Node, needs_rabbitmq
from tests.fix_wait import metric, wait_for

pytestmark = [pytest.mark.slow, needs_rabbitmq]

TOPIC = f"{TEST_ROOT}/water/WS-001/telemetry"


def reading(seq: int, base: float) -> bytes:
    return orjson.dumps({"ts": base + seq * 0.01, "ph": 7.1, "seq": seq})


def queue_depth(node: Node, queue: str) -> int:
    with pika.BlockingConnection(pika.URLParameters(node.amqp_url)) as connection:
        return connection.channel().queue_declare(queue, durable=True, arguments=QUEUE_ARGUMENTS, passive=True).method.message_count


@pytest.fixture
def station(rabbitmq_node: Node) -> Iterator[Device]:
    device = Device("WS-001", rabbitmq_node)
    yield device
    device.close()


@pytest.fixture
def queue(rabbitmq_node: Node, request: pytest.FixtureRequest) -> Iterator[str]:
    """A queue of the test's own (both are bound to the same topics), deleted afterwards."""
    name = f"ingest-{request.node.name[:40]}"
    yield name
    with pika.BlockingConnection(pika.URLParameters(rabbitmq_node.amqp_url)) as connection:
        connection.channel().queue_delete(name)


def test_malformed_messages_read_from_the_queue_are_dead_lettered_with_their_reason_and_ingest_goes_on(
    rabbitmq_node: Node, station: Device, queue: str, start_amqp_ingest, database_url: str
) -> None:
    port = free_port()
    ingest = start_amqp_ingest([rabbitmq_node], ingest__amqp_queue=queue, metrics_port=str(port))
    base = time.time() - 600
    messages = [
        (TOPIC, reading(0, base)),
        (TOPIC, b"\x00\xff not json"),
        (f"{TEST_ROOT}/water/WS-404/telemetry", reading(1, base)),
        (TOPIC, orjson.dumps({"ts": base, "ph": "7.1"})),
        (f"{TEST_ROOT}/water/WS.001/telemetry", reading(2, base)),  # a `.` in a level: not the contract's topic
        (TOPIC, reading(3, base)),
    ]
    for topic, payload in messages:
        station.publish(topic, payload).wait_for_publish(10)
    wait_for(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 4, what="four dead letters")
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") == 2, what="the two good readings")
    with psycopg.connect(database_url) as conn:
        dead = conn.execute("SELECT topic, reason, payload FROM dead_letters ORDER BY received_at").fetchall()
        seqs = [s for (s,) in conn.execute("SELECT seq FROM water_readings ORDER BY seq")]
    assert [(t, r) for t, r, _ in dead] == [
        (TOPIC, "not_json"),
        (f"{TEST_ROOT}/water/WS-404/telemetry", "unknown_device"),
        (TOPIC, "wrong_type"),
        (f"{TEST_ROOT}/water/WS/001/telemetry", "unknown_topic"),
    ]
    assert bytes(dead[0][2]) == b"\x00\xff not json"  # the payload is kept as it came
    assert seqs == [0, 3]
    assert ingest.alive
    wait_for(lambda: queue_depth(rabbitmq_node, queue) == 0, what="everything acknowledged")
    ready = orjson.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").read())
    assert ready == {"ready": True, "broker": "ok", "database": "ok", "lag": "ok"}
    assert metric(port, 'watchpost_ingest_dead_letters_total{reason="not_json"}') == 1


def test_what_arrives_while_ingest_is_stopped_waits_in_the_queue_and_is_stored_once(
    rabbitmq_node: Node, station: Device, queue: str, start_amqp_ingest, database_url: str
) -> None:
    n = 3000
    base = time.time() - 3600
    # The first node of the list is down (nothing listens on its port): ingest goes on to the next.
    down = Node("down", 0, free_port())
    ingest = start_amqp_ingest([down, rabbitmq_node], ingest__amqp_queue=queue)  # declares and binds the queue
    assert f"cannot consume through the broker at 127.0.0.1:{down.amqp_port}" in ingest.log()
    for seq in range(n // 3):
        station.publish(TOPIC, reading(seq, base))
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") == n // 3, what="the first third stored")
    ingest.kill()  # SIGKILL: nothing flushed, nothing acknowledged on the way out
    for seq in range(n // 3, n):
        station.publish(TOPIC, reading(seq, base))
    wait_for(lambda: len(station.acked()) == n, timeout=60, what="the broker acknowledges the rest")
    assert queue_depth(rabbitmq_node, queue) >= n - n // 3  # the queue holds them while nobody reads
    assert count(database_url, "SELECT count(*) FROM water_readings") == n // 3
    ingest.start()
    wait_for(lambda: count(database_url, "SELECT count(*) FROM water_readings") >= n, timeout=60, what="the backlog stored")
    wait_for(lambda: queue_depth(rabbitmq_node, queue) == 0, what="the backlog acknowledged")
    with psycopg.connect(database_url) as conn:
        per_seq = conn.execute("SELECT seq, count(*) FROM water_readings GROUP BY seq").fetchall()
    assert sorted(s for s, _ in per_seq) == list(range(n))
    assert {c for _, c in per_seq} == {1}
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0


def test_a_worker_stopped_cleanly_commits_and_acknowledges_the_batch_it_holds(
    rabbitmq_node: Node, station: Device, queue: str, start_amqp_ingest, database_url: str
) -> None:
    # The batch stays open until the worker stops: it is committed and acknowledged on the way out.
    ingest = start_amqp_ingest([rabbitmq_node], ingest__amqp_queue=queue, ingest__batch_max_wait_s="600")
    base = time.time() - 600
    for seq in range(100):
        station.publish(TOPIC, reading(seq, base))
    wait_for(lambda: len(station.acked()) == 100, what="the broker acknowledges all")
    wait_for(lambda: queue_depth(rabbitmq_node, queue) == 0, what="the worker holds them all")  # delivered, not yet acknowledged
    assert count(database_url, "SELECT count(*) FROM water_readings") == 0
    ingest.kill(signal.SIGTERM)
    assert count(database_url, "SELECT count(*) FROM water_readings") == 100
    assert queue_depth(rabbitmq_node, queue) == 0, "the last batch went back to the queue: its acknowledgement was never sent"


def test_config_check_connect_names_the_amqp_nodes_that_do_not_answer_or_refuse_ingest(
    rabbitmq_node: Node, broker, database_url: str, tmp_path
) -> None:
    from kernel.broker import API_ROLE
    from tests.fix_broker import process_environment

    down = Node("down", 0, free_port())
    wrong_password = rabbitmq_node.amqp_url.replace("guest:guest", "guest:wrong")
    env = {**process_environment(), "WATCHPOST_DATABASE_URL": database_url, "WATCHPOST_HOME": str(tmp_path),
           "WATCHPOST_MQTT_URL": broker.url(broker.account(API_ROLE)), "WATCHPOST_INGEST__SOURCE": "amqp"}
    check = [sys.executable, "-m", "watchpost.cli", "config", "check", "--connect"]
    ok = subprocess.run(check, capture_output=True, text=True, timeout=60, env={**env, "WATCHPOST_INGEST__AMQP_URLS": rabbitmq_node.amqp_url})
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(check, capture_output=True, text=True, timeout=60,
                         env={**env, "WATCHPOST_INGEST__AMQP_URLS": f"{rabbitmq_node.amqp_url} {down.amqp_url} {wrong_password}"})
    problems = bad.stderr.strip().splitlines()
    assert bad.returncode == 1 and len(problems) == 2, bad.stderr
    assert problems[0].startswith(f"problem: WATCHPOST_INGEST__AMQP_URLS (127.0.0.1:{down.amqp_port}): the node does not answer")
    assert problems[1] == (f"problem: WATCHPOST_INGEST__AMQP_URLS (127.0.0.1:{rabbitmq_node.amqp_port}): "
                           "the node refuses ingest's user name or password")
