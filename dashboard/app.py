"""The API process: `create_app` wires settings, database pool, event hub and routes.
Pages, websockets, health and metrics live here; the REST API in routes.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard.auth import CONTROL_ROOM, AuthError, Role
from dashboard.context import ApiContext
from dashboard.hub import Client, Hub
from dashboard.routes import router
from dashboard import trends
from kernel.clock import Clock, SystemClock
from kernel.settings import MqttEndpoint

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# Requests larger than this are refused before they are read: no route takes more.
MAX_BODY_BYTES = 64 * 1024


def create_app(
    *, database_url: str, token_secret: str, topic_root: str = "jiashan", mqtt: MqttEndpoint | None = None,
    token_ttl: timedelta = timedelta(hours=12), pool_size: int = 10, clock: Clock | None = None,
) -> FastAPI:
    """The API process. Every time it reads comes from `clock` (the machine's by default)."""
    clock = clock if clock is not None else SystemClock()
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=pool_size, open=False, kwargs={"application_name": "watchpost-api"})
    hub = Hub(database_url, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        listener = asyncio.create_task(hub.run(), name="event-hub")
        try:
            yield
        finally:
            listener.cancel()
            await pool.close()
            app.state.ctx.close()

    app = FastAPI(title="Watchpost", version="0.1.0", lifespan=lifespan,
                  description="Real-time monitoring and dispatch for Jiashan county. Authenticate with POST /api/token.")
    app.state.ctx = ApiContext(
        database_url=database_url, token_secret=token_secret, token_ttl=token_ttl, topic_root=topic_root,
        mqtt=mqtt, pool=pool, hub=hub, clock=clock.now,
    )
    app.include_router(router)
    app.include_router(trends.router)
    _errors(app)
    _pages(app)
    _sockets(app, hub)
    _health(app, hub, pool)
    return app


def _errors(app: FastAPI) -> None:
    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

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


def _sockets(app: FastAPI, hub: Hub) -> None:
    async def serve(websocket: WebSocket, token: str | None, last_event_id: int | None, console: bool) -> None:
        ctx: ApiContext = websocket.app.state.ctx
        # Accept first, then refuse with 1008 and a reason: a browser sees a close code and
        # the reason (an HTTP 403 before the upgrade reaches page scripts as a bare failure).
        await websocket.accept()
        try:
            who = ctx.principal(token)
        except AuthError as exc:
            await websocket.close(code=1008, reason=str(exc))
            return
        if console != (who.role in CONTROL_ROOM) or (not console and who.role is not Role.FAMILY):
            await websocket.close(code=1008, reason=f"role {who.role} may not use this channel")
            return
        persons = None if console else await ctx.persons_of(who.username)

        async def close(code: int, reason: str) -> None:
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason)

        client = Client(persons=persons, send=websocket.send_text, close=close)
        sender = asyncio.create_task(hub.serve(client, last_event_id))
        try:
            while True:  # the client only ever says goodbye; reading notices it
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()

    @app.websocket("/ws/console")
    async def ws_console(websocket: WebSocket, token: str | None = None, last_event_id: int | None = Query(None, ge=0)) -> None:
        await serve(websocket, token, last_event_id, console=True)

    @app.websocket("/ws/family")
    async def ws_family(websocket: WebSocket, token: str | None = None, last_event_id: int | None = Query(None, ge=0)) -> None:
        await serve(websocket, token, last_event_id, console=False)


def _health(app: FastAPI, hub: Hub, pool: AsyncConnectionPool) -> None:
    registry = CollectorRegistry()
    Gauge("watchpost_ws_clients", "Websocket clients connected", registry=registry).set_function(lambda: hub.client_count)
    Gauge("watchpost_ws_dropped_total", "Slow websocket clients disconnected", registry=registry).set_function(lambda: hub.dropped)
    Gauge("watchpost_ws_delivered_total", "Events delivered to websocket clients", registry=registry).set_function(lambda: hub.delivered)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready to serve: the database answers and the event stream is being listened to."""
        checks: dict[str, str] = {}
        try:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            checks["database"] = f"unavailable: {exc}"
        checks["event_stream"] = "ok" if hub.listening else "not listening"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry).decode(), media_type="text/plain; version=0.0.4")
