"""What the API's routes share, built once by the app factory: settings, the database
pool, the event hub, the login throttle's limits, the base map, and (lazily) the
dispatcher's road network for manual assignment."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.client import Client as MqttClient
import psycopg
from fastapi import HTTPException, Request
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from dashboard.auth import CONTROL_ROOM, AuthError, Principal, Role, TokenClaims, check_current, read_token
from dashboard.hub import Hub
from dashboard.logins import ThrottleLimits
from dashboard.map_layers import MapCache
from dashboard import unsent_orders
from dashboard.unsent_orders import UnsentOrder
from dispatch import store as dispatch_store
from kernel.db import connect
from kernel.settings import MqttEndpoint, RegionSettings
from kernel.topics import Topics


R = TypeVar("R")  # a typed row
log = logging.getLogger(__name__)
# How long a console action waits for the broker's acknowledgement of an order before it
# answers that the order is kept for the broker (a dispatcher is waiting on the answer).
PUBLISH_TIMEOUT_S = 3.0


class PublishFailed(RuntimeError):
    """The broker did not take a message: unreachable, or no acknowledgement in time."""


@dataclass
class ApiContext:
    database_url: str
    token_secret: str
    token_ttl: timedelta
    topic_root: str
    mqtt: MqttEndpoint | None
    pool: AsyncConnectionPool
    hub: Hub
    region: RegionSettings
    throttle: ThrottleLimits = field(default_factory=ThrottleLimits)
    map_cache: MapCache = field(default_factory=MapCache)
    clock: Any = lambda: datetime.now(UTC)
    _dispatch: tuple[Any, Any] | None = None
    _dispatch_lock: threading.Lock = field(default_factory=threading.Lock)
    _publisher: MqttClient | None = None
    _publish_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- who is asking ------------------------------------------------------------------

    def claims(self, token: str | None) -> TokenClaims:
        """What the token's signature vouches for (not yet checked against the users table)."""
        if not token:
            raise AuthError("missing token")
        return read_token(self.token_secret, token, self.clock())

    async def current(self, claims: TokenClaims) -> Principal:
        """The token's principal, if the users table still agrees: the user exists with the
        same role and token version (a password or role change bumps it)."""
        rows = await self.fetch("SELECT role, token_version, scope_id FROM users WHERE username = %s AND retired_at IS NULL", (claims.principal.username,))
        return check_current(claims, (rows[0]["role"], rows[0]["token_version"], rows[0]["scope_id"]) if rows else None)

    async def principal(self, token: str | None) -> Principal:
        return await self.current(self.claims(token))

    async def log_access(self, who: Principal, person_ids: Any, what: str) -> None:
        """Record a read of these persons' data by the control room or a scoped tier (village
        doctor, hospital, crew) in the access log (privacy, DOMAIN.md); a family member's
        reads of their own relative are not logged."""
        ids = sorted({p for p in person_ids if p})
        if who.role is Role.FAMILY or not ids:
            return
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO access_log (at, username, person_id, what) SELECT %s, %s, p, %s FROM unnest(%s::text[]) AS p",
                (self.clock(), who.username, what, ids),
            )

    async def persons_of(self, username: str) -> frozenset[str]:
        rows = await self.fetch("SELECT person_id FROM family_links WHERE username = %s", (username,))
        return frozenset(r["person_id"] for r in rows)

    async def open_person(self, who: Principal, person_id: str, what: str) -> dict[str, Any]:
        """The person's registry row, for a caller allowed to see them: a family member only
        their own relative (anyone else gets the same 404 as a person who does not exist),
        and every control-room read is written to the access log (privacy, DOMAIN.md)."""
        if who.role is Role.FAMILY and person_id not in await self.persons_of(who.username):
            raise HTTPException(404, detail=f"no person {person_id}")
        rows = await self.fetch("SELECT * FROM persons WHERE person_id = %s", (person_id,))
        if not rows:
            raise HTTPException(404, detail=f"no person {person_id}")
        if who.role is not Role.FAMILY:
            await self.fetch(
                "INSERT INTO access_log (at, username, person_id, what) VALUES (%s, %s, %s, %s) RETURNING 1",
                (self.clock(), who.username, person_id, what),
            )
        return rows[0]

    # --- database -----------------------------------------------------------------------

    async def fetch(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def fetch_as(self, row: type[R], sql: str, params: tuple | dict = ()) -> list[R]:
        """Rows as `row`s: a dataclass whose fields are the query's columns."""
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(row))
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A function of dispatch/ingest's synchronous stores, on its own connection in a
        worker thread: they own their transactions."""
        def call() -> Any:
            with connect(self.database_url, application_name="watchpost-api") as conn:
                return fn(conn, *args, **kwargs)
        return await asyncio.to_thread(call)

    # --- manual assignment ----------------------------------------------------------------

    def dispatch_reference(self, conn: psycopg.Connection) -> tuple[Any, Any]:
        """The road network and facilities, loaded on the first manual assignment."""
        with self._dispatch_lock:
            if self._dispatch is None:
                graph = dispatch_store.load_road_graph(conn)
                self._dispatch = (graph, dispatch_store.load_facilities(conn, graph))
            return self._dispatch

    def forget_road_network(self) -> None:
        """A new road network was loaded: the next manual assignment or live ETA reads it."""
        with self._dispatch_lock:
            self._dispatch = None

    async def run_sync_plain(self, fn: Any, *args: Any) -> Any:
        """A blocking call (an MQTT publish waiting for its PUBACK) in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    async def with_road_graph(self, fn: Any) -> Any:
        """`fn(graph)` in a worker thread; a database connection only for the first load."""
        loaded = self._dispatch
        if loaded is not None:
            return await asyncio.to_thread(fn, loaded[0])
        return await self.run_sync(lambda conn: fn(self.dispatch_reference(conn)[0]))

    def send_order(self, order: dispatch_store.Order | dispatch_store.Relocation) -> bool:
        """Publish a committed order, kept in `unsent_orders` until the broker acknowledges
        it: True when sent, False when the broker is unreachable (the resend loop sends it
        once the broker is back; see dashboard/unsent_orders.py)."""
        unsent = UnsentOrder(order.unit_id, Topics(self.topic_root).order(order.unit_id), order.payload(),
                             order.incident_id if isinstance(order, dispatch_store.Order) else None)
        with connect(self.database_url, application_name="watchpost-api") as conn:
            unsent_orders.keep(conn, unsent)
            try:
                self._publish(unsent.topic, unsent.payload)
            except PublishFailed as exc:
                log.warning("order to %s kept for the broker: %s", order.unit_id, exc, extra={"unit_id": order.unit_id})
                return False
            unsent_orders.sent(conn, unsent)
        return True

    def resend_unsent(self) -> int:
        """Publish the orders the broker missed that still stand; the number sent."""
        if self.mqtt is None:
            return 0
        n = 0
        with connect(self.database_url, application_name="watchpost-api") as conn:
            for unsent in unsent_orders.due(conn):
                try:
                    self._publish(unsent.topic, unsent.payload)
                except PublishFailed:
                    break  # still down: the next pass tries again
                unsent_orders.sent(conn, unsent)
                log.info("order to %s sent after the broker came back", unsent.unit_id, extra={"unit_id": unsent.unit_id})
                n += 1
        return n

    def publish_unit(self, unit_id: str, channel: str, payload: dict[str, Any]) -> None:
        """A crew terminal's report on its unit's own topic (`status` or `patient`)."""
        topics = Topics(self.topic_root)
        topic = topics.unit_status(unit_id) if channel == "status" else topics.unit_patient(unit_id)
        if self.mqtt is None:
            raise HTTPException(503, detail="no broker configured: the crew's report cannot be sent")
        self._publish(topic, payload)

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement; PublishFailed if the
        broker cannot be reached or does not acknowledge within PUBLISH_TIMEOUT_S."""
        if self.mqtt is None:
            return
        try:
            with self._publish_lock:  # one client, created once, shared by the worker threads
                publisher = self._publisher or self._connect_publisher(self.mqtt)
            info = publisher.publish(topic, orjson.dumps(payload), qos=1)
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (OSError, RuntimeError, ValueError) as exc:  # refused, unreachable, not connected, queue full
            raise PublishFailed(f"the broker at {self.mqtt.host}:{self.mqtt.port} is unreachable ({exc})") from None
        if not info.is_published():
            raise PublishFailed(f"the broker at {self.mqtt.host}:{self.mqtt.port} did not acknowledge within {PUBLISH_TIMEOUT_S:g} s")

    def _connect_publisher(self, endpoint: MqttEndpoint) -> MqttClient:
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        if (context := endpoint.ssl_context()) is not None:
            client.tls_set_context(context)
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        self._publisher = client
        return client

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.disconnect()
            self._publisher.loop_stop()


def context(request: Request) -> ApiContext:
    return request.app.state.ctx


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def require(request: Request, *roles: Role) -> Principal:
    """The caller, who must hold one of `roles`; 401 without a valid (and not revoked)
    token, 403 with the wrong role."""
    try:
        who = await context(request).principal(bearer(request))
    except AuthError as exc:
        raise HTTPException(401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    if roles and who.role not in roles:
        raise HTTPException(403, detail=f"role {who.role} may not do this; needs {', '.join(sorted(roles))}")
    return who


async def control_room(request: Request) -> Principal:
    return await require(request, *CONTROL_ROOM)


async def anyone(request: Request) -> Principal:
    """The control room or a family member: the routes that filter by family link. The
    scoped tiers have their own routes (dashboard/tiers.py) and none of these."""
    return await require(request, *CONTROL_ROOM, Role.FAMILY)


async def any_user(request: Request) -> Principal:
    return await require(request)


async def dispatcher(request: Request) -> Principal:
    return await require(request, Role.DISPATCHER, Role.ADMIN)
