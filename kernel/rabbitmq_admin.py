"""RabbitMQ's management HTTP API, as much of it as the account sync needs: list the users,
import definitions, delete users.

The HTTP API rather than `rabbitmqctl`: it needs an administrator's password, not the
cluster's Erlang cookie (which gives whoever holds it the nodes themselves), it is reachable
from any container of the deployment without Erlang installed, and one definitions import
writes every account and permission in one request where `rabbitmqctl` starts an Erlang VM
per command — three per account.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from kernel.rabbitmq_accounts import Account, BrokerAccounts, SyncPlan, plan_sync

# A definitions import of a few thousand accounts takes seconds on a loaded node; a broker
# that does not answer in this long is reported, not waited for.
TIMEOUT_S = 120.0
# Accounts per definitions import. One request of 20,000 is over the management API's body
# size limit, and a request that runs too long is closed unanswered (seen with 2,000 on a
# loaded box, at about 8 ms per account on a three-node cluster): a few seconds each.
IMPORT_BATCH = 500
# Users per bulk delete: the API closes a request that runs longer than its idle timeout, as
# one deleting some 20,000 users does.
DELETE_BATCH = 1000


class ManagementApiError(Exception):
    """The management API refused a request or could not be reached."""


@dataclass(frozen=True, slots=True)
class ManagementApi:
    """One node's management API (any node of a cluster: users and permissions are the
    cluster's), as an administrator."""

    url: str
    user: str
    password: str
    timeout_s: float = TIMEOUT_S

    def _request(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise ManagementApiError(f"{method} {path}: HTTP {exc.code} {detail[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ManagementApiError(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None
        return json.loads(text) if text.strip() else None

    def version(self) -> str:
        return str(self._request("GET", "/api/overview")["rabbitmq_version"])

    def accounts(self) -> BrokerAccounts:
        return BrokerAccounts(list(self._request("GET", "/api/users")), list(self._request("GET", "/api/permissions")),
                              list(self._request("GET", "/api/topic-permissions")))

    def import_definitions(self, definitions: dict[str, list[dict[str, object]]]) -> None:
        self._request("POST", "/api/definitions", definitions)

    def delete_users(self, names: list[str]) -> None:
        if names:
            self._request("POST", "/api/users/bulk-delete", {"users": names})

    def vhost_exists(self, vhost: str) -> bool:
        try:
            self._request("GET", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}")
        except ManagementApiError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True


def sync_accounts(api: ManagementApi, wanted: list[Account], vhost: str) -> SyncPlan:
    """Make the broker's users the wanted ones: create or update them with their rights, delete
    the users an earlier sync made that are no longer wanted. What was done is returned."""
    if not api.vhost_exists(vhost):
        raise ManagementApiError(f"the broker has no virtual host {vhost!r}")
    plan = plan_sync(wanted, api.accounts(), vhost)
    for definitions in plan.batches(IMPORT_BATCH):
        api.import_definitions(definitions)
    for first in range(0, len(plan.deleted), DELETE_BATCH):
        api.delete_users(plan.deleted[first:first + DELETE_BATCH])
    return plan
