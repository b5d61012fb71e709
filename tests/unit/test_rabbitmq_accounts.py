"""The RabbitMQ accounts a sync wants: the Mosquitto ACL's rights as regexes over routing keys,
RabbitMQ's password hashing, and what a sync creates, keeps and deletes."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from kernel.broker import password_for, service_account
from kernel.rabbitmq_accounts import (
    HASHING_ALGORITHM,
    MANAGED_TAG,
    Account,
    BrokerAccounts,
    hash_matches,
    password_hash,
    plan_sync,
    routing_pattern,
    wanted_accounts,
)

SECRET = b"s" * 32
ROOT = "jiashan"


def accounts(*devices: str) -> dict[str, Account]:
    return {a.name: a for a in wanted_accounts(ROOT, SECRET, devices, instances=2)}


def may(regex: str, routing_key: str, client_id: str | None = None) -> bool:
    """RabbitMQ's check: the regex, with `{client_id}` put in as RabbitMQ does, searched in the key."""
    if client_id is not None:
        regex = regex.replace("{client_id}", client_id)
    return bool(regex) and re.search(regex, routing_key) is not None


def test_mqtt_wildcards_become_routing_key_patterns() -> None:
    assert routing_pattern("jiashan/unit/+/status") == r"jiashan\.unit\.[^.]+\.status"
    assert routing_pattern("jiashan/water/#") == r"jiashan\.water\..+"
    # a subscription's binding key, with RabbitMQ's own wildcards, is matched too
    assert re.fullmatch(routing_pattern("jiashan/unit/+/status"), "jiashan.unit.*.status")
    assert re.fullmatch(routing_pattern("jiashan/water/#"), "jiashan.water.#")


def test_a_device_writes_under_its_own_id_only_and_with_its_id_as_client_id() -> None:
    station = accounts("WS-001", "WS-002")["WS-001"]
    assert may(station.topic_write, "jiashan.water.WS-001.telemetry", client_id="WS-001")
    assert may(station.topic_write, "jiashan.water.WS-001.online", client_id="WS-001")
    assert not may(station.topic_write, "jiashan.water.WS-002.telemetry", client_id="WS-001")
    assert not may(station.topic_write, "jiashan.water.WS-001.telemetry", client_id="WS-002")
    assert not may(station.topic_write, "jiashan.water.WS-001.telemetry.extra", client_id="WS-001")
    assert not may(station.topic_write, "jiashan.unit.AMB-01.order", client_id="WS-001")


def test_a_device_reads_only_what_is_addressed_to_it() -> None:
    unit = accounts("AMB-01")["AMB-01"]
    assert may(unit.topic_read, "jiashan.unit.AMB-01.order")
    assert not may(unit.topic_read, "jiashan.unit.AMB-02.order")
    assert not may(unit.topic_read, "jiashan.unit.*.order")
    assert not may(unit.topic_read, "jiashan.#")


def test_a_device_declares_only_its_own_session_queues() -> None:
    person = accounts("P-0001")["P-0001"]
    assert may(person.configure, "mqtt-subscription-P-0001qos1")
    assert may(person.configure, "mqtt-will-P-0001")
    assert not may(person.configure, "mqtt-subscription-P-0002qos1")
    assert not may(person.configure, "amq.topic")
    assert may(person.write, "amq.topic") and may(person.read, "amq.topic")


def test_an_id_with_regex_characters_is_still_held_to_itself() -> None:
    """RabbitMQ puts the client id into the regex unescaped, so such an id is not compared
    with the client id; its topics are still its own alone."""
    odd = accounts("A(1)")["A(1)"]
    assert "{client_id}" not in odd.topic_write
    assert may(odd.topic_write, "jiashan.unit.A(1).gps")
    assert not may(odd.topic_write, "jiashan.unit.A1.gps")


def test_ingest_reads_the_device_streams_and_writes_nothing() -> None:
    ingest = accounts()[service_account("ingest", 2)]
    assert may(ingest.topic_read, "jiashan.water.#") and may(ingest.topic_read, "jiashan.unit.*.gps")
    assert not may(ingest.topic_read, "jiashan.elder.*.alert")
    assert ingest.topic_write == ""  # RabbitMQ's "nothing"
    assert may(ingest.configure, "watchpost-ingest") and may(ingest.configure, "watchpost-ingest-water")
    assert not may(ingest.configure, "watchpost-dispatch")


def test_the_dispatcher_sends_orders_and_receipts_and_reads_unit_reports() -> None:
    dispatch = accounts()[service_account("dispatch", 1)]
    assert may(dispatch.topic_write, "jiashan.unit.AMB-01.order")
    assert may(dispatch.topic_write, "jiashan.elder.P-0001.receipt")
    assert not may(dispatch.topic_write, "jiashan.water.WS-001.telemetry")
    assert may(dispatch.topic_read, "jiashan.unit.*.status")


def test_every_service_instance_and_device_has_an_account_with_its_derived_password() -> None:
    wanted = accounts("WS-001")
    assert set(wanted) == {service_account(r, n) for r in ("ingest", "alerts", "dispatch", "api", "hj212", "simulator")
                           for n in (1, 2)} | {"WS-001"}
    assert wanted["WS-001"].password == password_for(SECRET, "WS-001")


def test_a_device_id_may_not_take_a_service_name() -> None:
    with pytest.raises(ValueError, match="watchpost-"):
        wanted_accounts(ROOT, SECRET, ["watchpost-ingest-1"])


def test_the_hash_is_rabbitmqs_salted_sha256() -> None:
    salt = b"\x01\x02\x03\x04"
    expected = base64.b64encode(salt + hashlib.sha256(salt + b"pw").digest()).decode()
    assert password_hash("pw", salt) == expected
    assert hash_matches(password_hash("pw"), "pw")
    assert not hash_matches(password_hash("pw"), "other")
    assert not hash_matches("not base64!", "pw")


def broker_with(accounts: list[Account], **tags: object) -> BrokerAccounts:
    """A broker that holds `accounts` exactly as a sync leaves them (their tags overridable)."""
    plan = plan_sync(accounts, BrokerAccounts([], [], []), "/")
    users = [{**u, "tags": tags.get(str(u["name"]), [MANAGED_TAG])} for u in plan.users]
    return BrokerAccounts(users, list(plan.permissions), list(plan.topic_permissions))


def test_a_sync_that_changes_nothing_sends_nothing() -> None:
    wanted = wanted_accounts(ROOT, SECRET, ["WS-001", "WS-002"], instances=1)
    plan = plan_sync(wanted, broker_with(wanted), "/")
    assert (plan.users, plan.permissions, plan.topic_permissions, plan.deleted) == ([], [], [], [])
    assert len(plan.unchanged) == len(wanted) and list(plan.batches(100)) == []


def test_a_sync_updates_a_changed_password_or_right_and_deletes_only_its_own_users() -> None:
    wanted = wanted_accounts(ROOT, SECRET, ["WS-001", "WS-002", "WS-003"], instances=1)
    before = wanted_accounts(ROOT, SECRET, ["WS-002", "WS-003", "WS-009"], instances=1)
    broker = broker_with(before, **{"WS-009": MANAGED_TAG})  # a 3.10 broker lists tags as a string
    broker.users.append({"name": "admin", "password_hash": "x", "hashing_algorithm": HASHING_ALGORITHM,
                         "tags": ["administrator"]})
    old_secret = [u for u in broker.users if u["name"] == "WS-002"][0]
    old_secret["password_hash"] = password_hash("a password of an old secret")
    for p in broker.topic_permissions:
        if p["user"] == "WS-003":
            p["write"] = ".*"  # someone widened it by hand
    plan = plan_sync(wanted, broker, "/")
    assert plan.created == ["WS-001"] and plan.updated == ["WS-002", "WS-003"]
    assert plan.deleted == ["WS-009"]  # never the administrator, which no sync made
    assert {u["name"] for u in plan.users} == {"WS-001", "WS-002"}
    assert hash_matches(str(plan.users[1]["password_hash"]), password_for(SECRET, "WS-002"))
    assert {p["user"] for p in plan.topic_permissions} == {"WS-001", "WS-003"}


def test_an_import_goes_in_batches_of_whole_accounts() -> None:
    wanted = wanted_accounts(ROOT, SECRET, [f"P-{n:04d}" for n in range(250)], instances=1)
    batches = list(plan_sync(wanted, BrokerAccounts([], [], []), "/").batches(100))
    assert [len(b["users"]) for b in batches] == [100, 100, 56]
    for batch in batches:
        assert {u["name"] for u in batch["users"]} == {p["user"] for p in batch["permissions"]} \
            == {p["user"] for p in batch["topic_permissions"]}
