"""The broker accounts of a RabbitMQ cluster, as RabbitMQ definitions: the same accounts,
passwords and rights as the Mosquitto ACL (kernel/broker.py), in RabbitMQ's terms.

RabbitMQ's MQTT plugin publishes to the topic exchange `amq.topic` with the topic as routing
key, `/` turned into `.` (and a subscription's `+` into `*`). Two kinds of permission apply:

* resource permissions (configure, write, read regexes over exchange and queue names in a
  virtual host): every account may use `amq.topic` and only its own queues — an MQTT
  session's `mqtt-subscription-{client id}qos0/1` and `mqtt-will-{client id}`, and for a
  service role the queues named `watchpost-{role}…` (ingest's quorum queue);
* topic permissions on `amq.topic` (write and read regexes over routing keys): what the
  account may publish, and which binding keys (subscriptions) it may take. An account without
  one may use every routing key, so every account gets one.

Each device's rules name its own id (escaped), so a device publishes only under its own
topics. RabbitMQ cannot make a client id its account's name (Mosquitto's
`use_username_as_clientid`); what these rules do instead: a device's session queues are named
after its client id and it may only declare its own, so a device subscribes only when its client
id is its id, and a device's publications must carry its client id as well (`{client_id}`,
which RabbitMQ expands in topic permissions of MQTT connections). What remains open is a
connection under another account's client id closing that account's connection
(docs/scale-out.md).

Pure: no HTTP, no clock. Passwords are hashed as RabbitMQ's default
`rabbit_password_hashing_sha256` does, so that a password never travels to the broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from kernel.broker import (
    DEFAULT_INSTANCES,
    SERVICE_PREFIX,
    SERVICE_ROLES,
    device_acl,
    is_reserved,
    password_for,
    role_acl,
    service_account,
)
from kernel.topics import Topics

# The user tag that marks the accounts a sync made: a sync deletes only tagged users that are
# no longer wanted, never an operator's own (the administrator, a monitoring account…).
MANAGED_TAG = "watchpost"
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
EXCHANGE = "amq.topic"
# RabbitMQ's empty permission: matches no name and no routing key.
NOTHING = ""
# In a topic permission of an MQTT connection, RabbitMQ puts the client id here.
_CLIENT_ID = "{client_id}"
_SALT_BYTES = 4  # what RabbitMQ's own hashing uses
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Account:
    """One broker account and its rights in the virtual host."""

    name: str
    password: str
    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str


def routing_pattern(topic_filter: str, own_id: str | None = None) -> str:
    """A regex over RabbitMQ routing keys for an MQTT topic or filter of the ACL: `+` is any
    one level (also a subscription's `*`), a final `#` any rest (also a subscription's `#`).
    The level that is `own_id` matches only when the connection's client id is that id too."""
    levels = []
    for level in topic_filter.split("/"):
        if level == "+":
            levels.append(r"[^.]+")
        elif level == "#":
            levels.append(r".+")
        elif level == own_id:
            # `(?=WS-001\.)WS\-001` once RabbitMQ has put the client id in.
            levels.append(rf"(?={_CLIENT_ID}\.){re.escape(level)}")
        else:
            levels.append(re.escape(level))
    return r"\.".join(levels)


def _either(patterns: Iterable[str]) -> str:
    alternatives = list(dict.fromkeys(patterns))
    return f"^(?:{'|'.join(alternatives)})$" if alternatives else NOTHING


def _own_queues(client_id: str) -> str:
    """An MQTT session's queues, which RabbitMQ names after the client id."""
    return rf"mqtt-(?:subscription-{re.escape(client_id)}qos[01]|will-{re.escape(client_id)})"


def device_account(topics: Topics, secret: bytes, device: str) -> Account:
    rules = device_acl(topics, device)
    # RabbitMQ puts the client id into the regex unescaped: only an id that reads the same
    # as a regex can be compared with it. Any other id still writes only under itself.
    own_id = device if _PLAIN_ID.fullmatch(device) else None
    writes = [routing_pattern(t, own_id=own_id) for access, t in rules if access == "write"]
    reads = [routing_pattern(t) for access, t in rules if access == "read"]
    queues = _own_queues(device)
    return Account(
        name=device,
        password=password_for(secret, device),
        configure=f"^{queues}$",
        write=f"^(?:{re.escape(EXCHANGE)}|{queues})$",
        read=f"^(?:{re.escape(EXCHANGE)}|{queues})$",
        topic_write=_either(writes),
        topic_read=_either(reads),
    )


def service_account_rights(topics: Topics, secret: bytes, role: str, instance: int) -> Account:
    name = service_account(role, instance)
    rules = role_acl(topics, role)
    queues = rf"(?:{_own_queues(name)}|{re.escape(SERVICE_PREFIX + role)}(?:[-.].*)?)"
    return Account(
        name=name,
        password=password_for(secret, name),
        configure=f"^{queues}$",
        write=f"^(?:{re.escape(EXCHANGE)}|{queues})$",
        read=f"^(?:{re.escape(EXCHANGE)}|{queues})$",
        topic_write=_either(routing_pattern(t) for access, t in rules if access == "write"),
        topic_read=_either(routing_pattern(t) for access, t in rules if access == "read"),
    )


def wanted_accounts(root: str, secret: bytes, devices: Iterable[str], instances: int = DEFAULT_INSTANCES) -> list[Account]:
    """Every account the broker should have: the services' numbered accounts and one per
    registered device."""
    topics = Topics(root)
    devices = sorted(set(devices))
    reserved = [d for d in devices if is_reserved(d)]
    if reserved:
        raise ValueError(f"device ids {reserved} take the {SERVICE_PREFIX!r} prefix of the platform's own accounts")
    services = [service_account_rights(topics, secret, role, n) for role in SERVICE_ROLES for n in range(1, instances + 1)]
    return services + [device_account(topics, secret, d) for d in devices]


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + SHA-256(salt + password))."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def hash_matches(stored: str, password: str) -> bool:
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError:
        return False
    return len(raw) > _SALT_BYTES and hmac.compare_digest(password_hash(password, raw[:_SALT_BYTES]), stored)


@dataclass(frozen=True, slots=True)
class BrokerAccounts:
    """The broker's users, permissions and topic permissions, as the management API lists them."""

    users: list[Mapping[str, object]]
    permissions: list[Mapping[str, object]]
    topic_permissions: list[Mapping[str, object]]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync sends: the users, permissions and topic permissions that differ from the
    broker's (to import), and the users to delete."""

    users: list[dict[str, object]]
    permissions: list[dict[str, object]]
    topic_permissions: list[dict[str, object]]
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]

    def batches(self, accounts: int) -> Iterator[dict[str, list[dict[str, object]]]]:
        """The import as definitions documents of at most `accounts` accounts each: the
        management API refuses a request body over its limit (some 20,000 accounts)."""
        names = list(dict.fromkeys([*(str(u["name"]) for u in self.users), *(str(p["user"]) for p in self.permissions),
                                    *(str(p["user"]) for p in self.topic_permissions)]))
        for first in range(0, len(names), accounts):
            chosen = set(names[first:first + accounts])
            yield {
                "users": [u for u in self.users if u["name"] in chosen],
                "permissions": [p for p in self.permissions if p["user"] in chosen],
                "topic_permissions": [p for p in self.topic_permissions if p["user"] in chosen],
            }


def plan_sync(wanted: list[Account], broker: BrokerAccounts, vhost: str) -> SyncPlan:
    """The import and deletions that make the broker's accounts `wanted`. Only what differs is
    sent: a user whose password verifies keeps its hash, rights already in place are not
    written again, so a sync that changes nothing writes nothing. Users an earlier sync made
    (tagged) that are no longer wanted are deleted; no other user is."""
    current = {str(u["name"]): u for u in broker.users}
    rights = {str(p["user"]): p for p in broker.permissions if p.get("vhost") == vhost}
    topic_rights = {str(p["user"]): p for p in broker.topic_permissions
                    if p.get("vhost") == vhost and p.get("exchange") == EXCHANGE}
    plan = SyncPlan([], [], [], [], [], [], [])
    for account in wanted:
        user = current.get(account.name)
        stored = str(user.get("password_hash", "")) if user else ""
        user_current = (user is not None and user.get("hashing_algorithm") == HASHING_ALGORITHM
                        and hash_matches(stored, account.password) and MANAGED_TAG in _tags(user))
        permission: dict[str, object] = {"user": account.name, "vhost": vhost, "configure": account.configure,
                                          "write": account.write, "read": account.read}
        topic_permission: dict[str, object] = {"user": account.name, "vhost": vhost, "exchange": EXCHANGE,
                                                "write": account.topic_write, "read": account.topic_read}
        rights_current = _same(rights.get(account.name), permission) and _same(topic_rights.get(account.name), topic_permission)
        if not user_current:
            plan.users.append({"name": account.name, "password_hash": password_hash(account.password),
                               "hashing_algorithm": HASHING_ALGORITHM, "tags": MANAGED_TAG})
        if not rights_current:
            plan.permissions.append(permission)
            plan.topic_permissions.append(topic_permission)
        (plan.unchanged if user_current and rights_current else plan.updated if user else plan.created).append(account.name)
    names = {a.name for a in wanted}
    plan.deleted.extend(sorted(n for n, u in current.items() if n not in names and MANAGED_TAG in _tags(u)))
    return plan


def _same(existing: Mapping[str, object] | None, wanted: Mapping[str, object]) -> bool:
    return existing is not None and all(existing.get(k) == v for k, v in wanted.items())


def _tags(user: Mapping[str, object]) -> list[str]:
    """A user's tags: a list in RabbitMQ 3.13 and later, a comma-separated string before."""
    tags = user.get("tags", [])
    if isinstance(tags, str):
        return [t for t in tags.split(",") if t]
    return [str(t) for t in tags] if isinstance(tags, list) else []
