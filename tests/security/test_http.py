"""The API as an anonymous client, a family account and a stolen token would try it: bodies
refused before authentication, the security headers, the closed surface (/docs, /metrics,
/readyz), websocket tokens (three ways in, never logged, revoked on an open socket, capped
per user) and a login throttle shared by every API process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from dashboard.auth import hash_password
from tests.fix_broker import process_environment

pytestmark = pytest.mark.slow

PAGES = ["/console", "/family", "/static/console.js"]
API_ROUTES = ["/api/alarms", "/api/incidents", "/api/persons", "/api/persons/P-0001", "/api/units", "/api/me"]
LIMIT = 65536


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def test_bodies_over_the_limit_are_refused_before_authentication(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    declared = httpx.post(f"{api.base}/api/incidents", content=b"{" + b" " * (LIMIT + 10) + b"}",
                          headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "request body over" in declared.json()["detail"]
    # A chunked body has no Content-Length: it is counted as it arrives.
    for path in ("/api/incidents", "/api/token", "/api/alarms/1/ack"):
        chunked = httpx.post(f"{api.base}{path}", content=_chunks(LIMIT * 4), headers={"content-type": "application/json"})
        assert chunked.status_code == 413, (path, chunked.status_code, chunked.text)
        assert chunked.json()["detail"] == f"request body over {LIMIT} bytes"
    # Under the limit, a chunked body reaches the route (which finds it is not JSON).
    small = httpx.post(f"{api.base}/api/incidents", content=_chunks(16384), headers={"content-type": "application/json"})
    assert small.status_code in (401, 422)


def test_security_headers_on_every_page_and_api_route_and_the_surface_is_closed(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url, env={"WATCHPOST_API__METRICS_TOKEN": "scrape-me-please"})
    with api.client("op1") as http:
        for path in PAGES + API_ROUTES + ["/healthz", "/readyz", "/api/nope"]:
            r = http.get(path)
            csp = r.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0], path
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["referrer-policy"] == "no-referrer", path
            if path.startswith("/api/"):
                assert r.headers["cache-control"] == "no-store", path
        # No inline script in the pages: everything runs from the .js files.
        for page in ("/console", "/family"):
            html = http.get(page).text
            assert "<script>" not in html and " onclick=" not in html and "javascript:" not in html
        assert http.get("/docs").status_code == 404 and http.get("/openapi.json").status_code == 404
        assert http.get("/metrics").status_code == 200  # a control-room login may read it
    assert httpx.get(f"{api.base}/metrics").status_code == 401
    scraped = httpx.get(f"{api.base}/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert scraped.status_code == 200 and "watchpost_ws_clients" in scraped.text
    family = _family_user(jiashan_url)
    with api.client(family) as http:
        assert http.get("/metrics").status_code == 403
    ready = httpx.get(f"{api.base}/readyz").json()
    assert set(ready.values()) <= {True, False, "ok", "unavailable"}


def test_docs_are_served_only_when_a_deployment_asks(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url, env={"WATCHPOST_API__DOCS": "true"})
    assert httpx.get(f"{api.base}/docs").status_code == 200
    assert "/api/token" in httpx.get(f"{api.base}/openapi.json").json()["paths"]


def test_websocket_token_in_subprotocol_first_message_or_url_and_never_in_the_log(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url)
    token = api.token("op1")
    with ws_connect(f"{api.ws_base}/ws/console", subprotocols=["watchpost", token]) as ws:
        assert ws.subprotocol == "watchpost"
        with pytest.raises(TimeoutError):  # open and quiet: accepted
            ws.recv(timeout=1)
    with ws_connect(f"{api.ws_base}/ws/console") as ws:
        ws.send('{"type": "auth", "token": "%s"}' % token)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)
    with ws_connect(f"{api.ws_base}/ws/console?token={token}") as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)
    with pytest.raises(ConnectionClosed) as closed:
        with ws_connect(f"{api.ws_base}/ws/console") as ws:
            ws.send('{"type": "auth", "token": "forged"}')
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1008
    time.sleep(0.5)
    log = api.log_path.read_text()
    assert "/ws/console" in log  # the connections were logged…
    assert token not in log and token.split(".")[2] not in log  # …without the token


def test_a_revoked_token_closes_the_open_socket(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url, env={"WATCHPOST_API__WS_RECHECK_S": "1"})
    with ws_connect(f"{api.ws_base}/ws/console", subprotocols=["watchpost", api.token("disp1")]) as ws:
        with psycopg.connect(jiashan_url) as conn:  # a password reset (the stolen-token case)
            conn.execute("UPDATE users SET password_hash = %s WHERE username = 'disp1'", (hash_password("a-new-password"),))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1008 and "revoked" in closed.value.rcvd.reason
    http = httpx.Client(base_url=api.base)
    token = api.token("op1")
    with psycopg.connect(jiashan_url) as conn:  # demoted: the old token stops at once
        conn.execute("UPDATE users SET role = 'family' WHERE username = 'op1'")
    r = http.get("/api/alarms", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_websockets_per_user_are_capped(start_api, jiashan_url: str) -> None:
    api = start_api(jiashan_url, env={"WATCHPOST_API__WS_PER_USER": "3"})
    token = api.token("op1")
    sockets = [ws_connect(f"{api.ws_base}/ws/console", subprotocols=["watchpost", token]) for _ in range(3)]
    try:
        for ws in sockets:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)
        with pytest.raises(ConnectionClosed) as closed:
            with ws_connect(f"{api.ws_base}/ws/console", subprotocols=["watchpost", token]) as extra:
                extra.recv(timeout=5)
        assert closed.value.rcvd.code == 4029
        # Another user is not affected by op1's sockets.
        with ws_connect(f"{api.ws_base}/ws/console", subprotocols=["watchpost", api.token("disp1")]) as other:
            with pytest.raises(TimeoutError):
                other.recv(timeout=0.5)
    finally:
        for ws in sockets:
            ws.close()
    time.sleep(0.5)  # closed sockets free their places
    with ws_connect(f"{api.ws_base}/ws/console", subprotocols=["watchpost", token]) as again:
        with pytest.raises(TimeoutError):
            again.recv(timeout=0.5)


def test_the_login_throttle_is_shared_by_api_processes_and_lifted_by_an_admin(start_api, jiashan_url: str) -> None:
    api_a = start_api(jiashan_url, "api-a")
    api_b = start_api(jiashan_url, "api-b")
    for _ in range(5):
        assert httpx.post(f"{api_a.base}/api/token", data={"username": "op1", "password": "wrong"}).status_code == 401
    refused = httpx.post(f"{api_b.base}/api/token", data={"username": "op1", "password": "correct-horse-battery"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # Another user at the same address logs in, and that does not lift op1's wait.
    assert httpx.post(f"{api_b.base}/api/token", data={"username": "disp1", "password": "correct-horse-battery"}).status_code == 200
    assert httpx.post(f"{api_a.base}/api/token", data={"username": "op1", "password": "correct-horse-battery"}).status_code == 429
    unlock = subprocess.run([sys.executable, "-m", "watchpost.cli", "user", "unlock", "op1"], capture_output=True, text=True,
                            env={**process_environment(), "WATCHPOST_DATABASE_URL": jiashan_url}, timeout=60)
    assert unlock.returncode == 0, unlock.stderr
    assert httpx.post(f"{api_a.base}/api/token", data={"username": "op1", "password": "correct-horse-battery"}).status_code == 200


def test_a_guesser_at_another_address_cannot_lock_the_control_room_out(jiashan_url: str) -> None:
    """The throttle is per user *and* address: failures from elsewhere leave op1's own
    address free (shown on the store, since every test client is 127.0.0.1)."""
    import asyncio
    from datetime import UTC, datetime

    from dashboard import logins

    async def scenario() -> tuple[float, float]:
        limits = logins.ThrottleLimits()
        now = datetime.now(UTC)
        async with await psycopg.AsyncConnection.connect(jiashan_url, autocommit=True) as conn:
            for _ in range(50):
                await logins.record_failure(conn, "op1", "203.0.113.9", now, limits)
            return (await logins.retry_after(conn, "op1", "203.0.113.9", now, limits),
                    await logins.retry_after(conn, "op1", "10.0.0.5", now, limits))

    guesser, control_room = asyncio.run(scenario())
    assert guesser >= 60 and control_room == 0


def _family_user(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT username FROM users WHERE role = 'family' ORDER BY username LIMIT 1").fetchone()
    assert row
    return row[0]
