"""The API process: `create_app` wires settings, database pool, event hub and routes.
Pages, websockets, health and metrics live here; the REST API in routes.py."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard.auth import CONTROL_ROOM, AuthError
from dashboard.context import ApiContext, PublishFailed, bearer
from dashboard.hub import Hub
from dashboard.logins import ThrottleLimits
from dashboard.middleware import BodyLimit, SecurityHeaders, UnstorableText
from dashboard.routes import router
from dashboard.sockets import Sockets
from dashboard import region as region_api, tiers, trends
from dispatch.store import NoRoadNetwork
from kernel.clock import Clock, SystemClock
from kernel.settings import MqttEndpoint, RegionSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# Requests larger than this are refused before they are read: no route takes more.
MAX_BODY_BYTES = 64 * 1024
# How often orders the broker missed (it was down) are tried again: a crew waits on them.
UNSENT_RETRY_S = 5.0


async def _resend_unsent_orders(ctx: ApiContext, every_s: float) -> None:
    """Send the console's committed orders the broker missed, once it is back. Any API
    process may send one; a unit may then get the same order twice, which its terminal
    takes as the same order (same incident)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(ctx.resend_unsent)
        except psycopg.Error as exc:  # the database is down too: the next pass tries again
            log.warning("resending unsent orders failed: %s", exc)


def create_app(
    *, database_url: str, token_secret: str, topic_root: str = "jiashan", mqtt: MqttEndpoint | None = None,
    token_ttl: timedelta = timedelta(hours=12), pool_size: int = 10, max_body_bytes: int = MAX_BODY_BYTES,
    ws_per_user: int = 8, ws_recheck_s: float = 30.0, throttle: ThrottleLimits | None = None, docs: bool = False,
    metrics_token: str = "", clock: Clock | None = None, region: RegionSettings | None = None,
    unsent_retry_s: float = UNSENT_RETRY_S,
) -> FastAPI:
    """The API process. Every time it reads comes from `clock` (the machine's by default);
    the county it serves is `region` (the settings' defaults: the simulated demo county)."""
    region = region if region is not None else RegionSettings()
    clock = clock if clock is not None else SystemClock()
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=pool_size, open=False, kwargs={"application_name": "watchpost-api"})
    hub = Hub(database_url, pool=pool, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        listener = asyncio.create_task(hub.run(), name="event-hub")
        resender = asyncio.create_task(_resend_unsent_orders(app.state.ctx, unsent_retry_s), name="unsent-orders")
        try:
            yield
        finally:
            resender.cancel()
            listener.cancel()
            await pool.close()
            app.state.ctx.close()

    # The OpenAPI description maps every route for an attacker too: served only when a
    # deployment asks for it (api.docs), never by default.
    app = FastAPI(title="Watchpost", version="0.1.0", lifespan=lifespan,
                  description=f"Real-time monitoring and dispatch for {region.name_en}. Authenticate with POST /api/token.",
                  docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json" if docs else None)
    app.state.ctx = ApiContext(
        database_url=database_url, token_secret=token_secret, token_ttl=token_ttl, topic_root=topic_root,
        mqtt=mqtt, pool=pool, hub=hub, region=region, clock=clock.now, throttle=throttle or ThrottleLimits(),
    )
    hub.on_roads_changed = app.state.ctx.forget_road_network
    app.include_router(router)
    app.include_router(region_api.router)
    app.include_router(trends.router)
    app.include_router(tiers.router)
    _errors(app)
    _pages(app)
    _sockets(app, Sockets(hub, per_user=ws_per_user, recheck_s=ws_recheck_s))
    app.state.metrics = _health(app, hub, pool, metrics_token)
    # Outermost last: the body limit runs before anything else, the headers on every answer;
    # text the database cannot store is refused next, before any route.
    refused = Counter("watchpost_api_unstorable_requests", "Requests refused for text the database cannot store",
                      registry=app.state.metrics)
    app.add_middleware(UnstorableText, on_refused=refused.inc)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(NoRoadNetwork)
    async def no_roads(_request: Request, exc: NoRoadNetwork) -> JSONResponse:
        # A deployment not yet set up, not a fault of the request or of Watchpost.
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(PublishFailed)
    async def broker_down(_request: Request, exc: PublishFailed) -> JSONResponse:
        # A report for the broker that it did not take: the sender may try again.
        return JSONResponse({"detail": f"not sent: {exc}; try again"}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(psycopg.errors.ProgramLimitExceeded)
    async def unstorable_value(request: Request, exc: psycopg.Error) -> JSONResponse:
        # A value the database refuses (out of range, too long for an index, malformed) that
        # no validator caught: the request's fault, said as such, never a 500. Logged, since
        # it also means a route's validation missed something.
        log.warning("%s %s: the database refused a value: %s", request.method, request.url.path, exc)
        reason = (exc.diag.message_primary if exc.diag else None) or str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return JSONResponse({"detail": f"a value cannot be stored: {reason}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _pages(app: FastAPI) -> None:
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "console.html")

    @app.get("/family", include_in_schema=False)
    async def family() -> FileResponse:
        return FileResponse(STATIC / "family.html")

    # The three tiers' pages share one script (static/tier.js); the role decides the board.
    @app.get("/first-aid", include_in_schema=False)
    async def first_aid_page() -> FileResponse:
        return FileResponse(STATIC / "first-aid.html")

    @app.get("/hospital", include_in_schema=False)
    async def hospital_page() -> FileResponse:
        return FileResponse(STATIC / "hospital.html")

    @app.get("/crew", include_in_schema=False)
    async def crew_page() -> FileResponse:
        return FileResponse(STATIC / "crew.html")


def _sockets(app: FastAPI, sockets: Sockets) -> None:
    @app.websocket("/ws/console")
    async def ws_console(websocket: WebSocket, token: str | None = None, last_event_id: int | None = Query(None, ge=0)) -> None:
        await sockets.serve(websocket, websocket.app.state.ctx, token, last_event_id, console=True)

    @app.websocket("/ws/family")
    async def ws_family(websocket: WebSocket, token: str | None = None, last_event_id: int | None = Query(None, ge=0)) -> None:
        await sockets.serve(websocket, websocket.app.state.ctx, token, last_event_id, console=False)

    @app.websocket("/ws/tier")
    async def ws_tier(websocket: WebSocket, token: str | None = None) -> None:
        await sockets.serve(websocket, websocket.app.state.ctx, token, None, console=False, tier=True)


def _health(app: FastAPI, hub: Hub, pool: AsyncConnectionPool, metrics_token: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("watchpost_ws_clients", "Websocket clients connected", registry=registry).set_function(lambda: hub.client_count)
    Gauge("watchpost_ws_dropped_total", "Slow websocket clients disconnected", registry=registry).set_function(lambda: hub.dropped)
    Gauge("watchpost_ws_delivered_total", "Events delivered to websocket clients", registry=registry).set_function(lambda: hub.delivered)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready to serve: the database answers and the event stream is being listened to.
        Only ok / unavailable per check: the cause goes to the log, not to whoever asks."""
        checks: dict[str, str] = {}
        try:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception:  # any failure means not ready
            log.warning("readiness: the database does not answer", exc_info=True)
            checks["database"] = "unavailable"
        checks["event_stream"] = "ok" if hub.listening else "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> PlainTextResponse:
        """For Prometheus with api.metrics_token as its bearer token, or for a control-room
        login; without a token, on api.metrics_port (127.0.0.1 only) when that is set."""
        token = bearer(request)
        if not (metrics_token and token and hmac.compare_digest(token, metrics_token)):
            try:
                who = await request.app.state.ctx.principal(token)
            except AuthError as exc:
                raise HTTPException(401, detail=f"/metrics needs the metrics token or a login token: {exc}",
                                    headers={"WWW-Authenticate": "Bearer"}) from None
            if who.role not in CONTROL_ROOM:
                raise HTTPException(403, detail=f"role {who.role} may not read /metrics")
        return PlainTextResponse(generate_latest(registry).decode(), media_type="text/plain; version=0.0.4")

    return registry
