"""Several ingest workers in one shared-subscription group: the load splits, and killing one
mid-stream loses and duplicates nothing (Mosquitto issue #2662 is about exactly this)."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from tests.fix_broker import Publisher, free_port
from tests.fix_ingest import stored_total
from tests.fix_wait import wait_for
from tests.integration.test_ingest_failures import mixed_messages, publish_all

pytestmark = pytest.mark.slow


def messages_taken(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("watchpost_ingest_messages_total ")))


def test_two_workers_split_the_load(start_ingest, publisher: Publisher, database_url: str) -> None:
    ports = [free_port(), free_port()]
    for k, port in enumerate(ports):
        start_ingest(f"ingest-{k}", metrics_port=str(port))
    publish_all(publisher, mixed_messages(4000, time.time() - 600))
    wait_for(lambda: stored_total(database_url) == 4000)
    time.sleep(0.5)
    taken = [messages_taken(p) for p in ports]
    assert sum(taken) == 4000
    assert min(taken) > 1000, taken  # both took a real share (the broker round-robins)


def test_killing_one_of_two_workers_mid_stream_loses_and_duplicates_nothing(
    start_ingest, publisher: Publisher, database_url: str
) -> None:
    n = 20_000
    a = start_ingest("ingest-a")
    b = start_ingest("ingest-b")
    sender = threading.Thread(target=publish_all, args=(publisher, mixed_messages(n, time.time() - 3600)))
    sender.start()
    wait_for(lambda: stored_total(database_url) > 3000, timeout=60)
    b.kill()  # SIGKILL; its session stays in the group with whatever it had in flight
    sender.join(120)
    # What the surviving worker alone gets stored: Mosquitto keeps routing a share of the
    # group's messages to the dead member's persistent session, so not everything arrives
    # until that member comes back (documented in docs/scale-out.md).
    time.sleep(3)
    alone = stored_total(database_url)
    b.start()
    wait_for(lambda: stored_total(database_url) >= n, timeout=120)
    time.sleep(1)
    assert stored_total(database_url) == n  # nothing lost, nothing twice
    assert a.alive
    print(f"stored by the survivor before the killed worker returned: {alone} of {n}")
