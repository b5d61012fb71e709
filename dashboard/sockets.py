"""The console and family websockets: who may connect, how many, and for how long.

The login token may come three ways (CONTRACT v2):
* the `Sec-WebSocket-Protocol` header as the pair `watchpost, <token>`; the server answers
  with the subprotocol `watchpost` (the pages do this: the token never is part of a URL);
* the first message `{"type": "auth", "token": "<token>"}` within `AUTH_DEADLINE_S`;
* `?token=<token>` in the URL, for older clients (never written to a log: kernel/logs.py).

Close codes: 1008 for a missing, bad, revoked or expired token or a role not allowed on the
channel (the pages show their login again); 4029 when the user already has `per_user` open
sockets on this API process (the new one is refused, the open ones keep working; the pages
retry with their usual backoff); 1013 from the hub for a client too slow to keep up, and for
a client whose token could not be checked because the database was out of reach or every
pooled connection stayed busy (thousands of pages reconnecting at once after a restart):
the page retries with its backoff instead of meeting an internal error.

An open socket's token is re-checked against the users table every `recheck_s`, and the
socket closed at the token's expiry, so a deleted, demoted or re-passworded user's sockets
close within that time. One task per API process checks every open socket in one query:
a check per socket, ten thousand sockets every 30 s, was a steady 330 queries a second on
the API's pool, which then had no connection left for the sockets being opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from fastapi import WebSocket, WebSocketDisconnect
from psycopg_pool import PoolTimeout

from dashboard.auth import CONTROL_ROOM, SCOPED, AuthError, Principal, Role, TokenClaims, check_current
from dashboard.hub import Client, Hub
from dashboard.privacy import TierFilter
from dashboard.tiers import visible_incidents
from kernel.events import Event

if TYPE_CHECKING:
    from dashboard.context import ApiContext

log = logging.getLogger(__name__)

SUBPROTOCOL = "watchpost"
# A socket that has not said who it is by then is closed: a client sends its auth message
# as soon as the socket opens, and a client with no token at all learns promptly (1008).
AUTH_DEADLINE_S = 3.0
TOO_MANY_SOCKETS = 4029
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
# The database did not answer in time: nothing is wrong with the client or its token.
DATABASE_UNAVAILABLE = (psycopg.Error, PoolTimeout)
Close = Callable[[int, str], Coroutine[Any, Any, None]]


def offered_token(websocket: WebSocket) -> tuple[str | None, bool]:
    """The token offered in the subprotocol header, and whether the client offered ours."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if SUBPROTOCOL not in offered:
        return None, False
    rest = [p for p in offered if p != SUBPROTOCOL]
    return (rest[0] if rest else None), True


class _Watched:
    """An open socket's token, and how to close the socket."""

    __slots__ = ("claims", "close")

    def __init__(self, claims: TokenClaims, close: Close) -> None:
        self.claims = claims
        self.close = close


class Sockets:
    def __init__(self, hub: Hub, *, per_user: int, recheck_s: float) -> None:
        self._hub = hub
        self._per_user = per_user
        self._recheck_s = recheck_s
        self._open: Counter[str] = Counter()
        self._watched: set[_Watched] = set()
        self._checker: asyncio.Task[None] | None = None

    async def serve(self, websocket: WebSocket, ctx: ApiContext, query_token: str | None, last_event_id: int | None,
                    console: bool, tier: bool = False) -> None:
        header_token, ours = offered_token(websocket)
        # Accept first, then refuse with 1008 and a reason: a browser sees a close code and
        # the reason (an HTTP 403 before the upgrade reaches page scripts as a bare failure).
        await websocket.accept(subprotocol=SUBPROTOCOL if ours else None)
        try:
            token = header_token or query_token or await self._first_message_token(websocket)
            claims = ctx.claims(token)
            who = await ctx.current(claims)
        except AuthError as exc:
            await _close(websocket, POLICY_VIOLATION, str(exc))
            return
        except DATABASE_UNAVAILABLE as exc:
            log.warning("websocket refused for now, its token could not be checked: %s", type(exc).__name__)
            await _close(websocket, TRY_AGAIN_LATER, "the server is busy: try again")
            return
        except WebSocketDisconnect:
            return
        allowed = who.role in CONTROL_ROOM if console else who.role in SCOPED if tier else who.role is Role.FAMILY
        if not allowed:
            await _close(websocket, POLICY_VIOLATION, f"role {who.role} may not use this channel")
            return
        if self._open[who.username] >= self._per_user:
            await _close(websocket, TOO_MANY_SOCKETS, f"{who.username} already has {self._per_user} open websockets")
            return
        self._open[who.username] += 1
        try:
            await self._stream(websocket, ctx, claims, who, last_event_id, console, tier)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("websocket closed for now, its scope could not be read: %s", type(exc).__name__)
            await _close(websocket, TRY_AGAIN_LATER, "the server is busy: try again")
        finally:
            self._open[who.username] -= 1
            if self._open[who.username] <= 0:
                del self._open[who.username]

    async def _stream(self, websocket: WebSocket, ctx: ApiContext, claims: TokenClaims, who: Principal,
                      last_event_id: int | None, console: bool, tier: bool) -> None:
        persons = None if console or tier else await ctx.persons_of(who.username)
        scope = None
        if tier:
            incidents, units = await visible_incidents(ctx, who)
            scope = TierFilter(who.role.value, who.scope or "", incidents, units)

        async def close(code: int, reason: str) -> None:
            await _close(websocket, code, reason)

        async def log_replay(events: list[Event]) -> None:
            await ctx.log_access(who, (e.person_id for e in events), "console catch-up")

        client = Client(persons=persons, send=websocket.send_text, close=close, tier=scope,
                        on_replay=log_replay if console else None)
        sender = asyncio.create_task(self._hub.serve(client, last_event_id), name=f"ws-send-{who.username}")
        expiry = asyncio.create_task(self._close_at_expiry(ctx, claims, close), name=f"ws-token-{who.username}")
        watched = _Watched(claims, close)
        self._watched.add(watched)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._recheck_all(ctx), name="ws-token-checks")
        try:
            while True:  # the client only ever says goodbye; reading notices it
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            self._watched.discard(watched)
            sender.cancel()
            expiry.cancel()

    @staticmethod
    async def _close_at_expiry(ctx: ApiContext, claims: TokenClaims, close: Close) -> None:
        while (left := (claims.expires_at - ctx.clock()).total_seconds()) > 0:
            await asyncio.sleep(left)
        await close(POLICY_VIOLATION, "token expired")

    async def _recheck_all(self, ctx: ApiContext) -> None:
        """Every `recheck_s`, the users of every open socket in one query; a socket whose
        token the users table no longer backs is closed with 1008."""
        while self._watched:
            await asyncio.sleep(self._recheck_s)
            watched = list(self._watched)
            users = sorted({w.claims.principal.username for w in watched})
            try:
                rows = await ctx.fetch(
                    "SELECT username, role, token_version, scope_id FROM users WHERE username = ANY(%s)", (users,)
                )
            except DATABASE_UNAVAILABLE as exc:  # the tokens stand until they can be checked
                log.warning("could not re-check the websockets' tokens (%s); trying again in %.0f s", type(exc).__name__, self._recheck_s)
                continue
            current = {r["username"]: (r["role"], r["token_version"], r["scope_id"]) for r in rows}
            for w in watched:
                try:
                    check_current(w.claims, current.get(w.claims.principal.username))
                except AuthError as exc:
                    self._watched.discard(w)
                    await w.close(POLICY_VIOLATION, str(exc))

    @staticmethod
    async def _first_message_token(websocket: WebSocket) -> str | None:
        try:
            text = await asyncio.wait_for(websocket.receive_text(), AUTH_DEADLINE_S)
        except TimeoutError:
            raise AuthError(f"missing token: none in the subprotocol, the URL or a first message within {AUTH_DEADLINE_S:.0f} s") from None
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise AuthError('the first message must be {"type": "auth", "token": …}') from None
        if not isinstance(message, dict) or message.get("type") != "auth" or not isinstance(message.get("token"), str):
            raise AuthError('the first message must be {"type": "auth", "token": …}')
        return message["token"]


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason[:120])  # a close reason is at most 123 bytes
