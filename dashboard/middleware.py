"""ASGI middleware in front of every route: the request body limit and the security headers.

Both are plain ASGI (not `@app.middleware("http")`), so they see the body as it arrives and
the response headers as they leave, whatever the route does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]

# No script but the pages' own files: an injected <script> or onclick= does not run. Styles
# may be inline (the map library positions its panes with style attributes).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


async def _answer(send: Any, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a request body over `max_bytes` with 413 before any route (and so before any
    authentication) runs. A declared Content-Length is judged at once; a chunked body is
    read here, counted as it arrives, up to the limit, and only then handed on — so a slow
    or endless chunked upload costs at most `max_bytes` of memory and never reaches a route."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body over {self.max_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _answer(send, 413, too_big)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # the client went away; the route will see it
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _answer(send, 413, too_big)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Add the security headers to every HTTP response, and `Cache-Control: no-store` to
    every API response that does not set its own cache policy: alarms, incidents, persons
    and family data must not stay in a shared browser's or proxy's cache."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as PostgreSQL text, or None: PostgreSQL refuses a NUL
    character in text, and a lone UTF-16 surrogate (a JSON `"\\ud800"`) has no UTF-8 form."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not a character)"
    return None


def _first_unstorable(value: Any, where: str) -> str | None:
    """The first string (key or value) in a parsed JSON document that cannot be stored."""
    if isinstance(value, str):
        why = unstorable(value)
        return f"{where}: {why}" if why else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            if found := _first_unstorable(item, f"{where}[{i}]"):
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            if why := unstorable(key):
                return f"{where}: a key {why}"
            if found := _first_unstorable(item, f"{where}.{key}"):
                return found
    return None


class UnstorableText:
    """Refuse with 422 a request whose path, query parameters, JSON body or form fields hold
    text PostgreSQL cannot store (a NUL character, a lone surrogate), before any route runs.

    One check in front of every route rather than a validator on every field: an id in a
    path, a username in a login form and a description in a JSON body all reach SQL, and
    the database's answer to a NUL (`invalid byte sequence`) would otherwise be a 500.
    Bodies are already bounded by BodyLimit, which runs first; a body that is not valid
    JSON is left to the route's own validation (a 422 there too)."""

    def __init__(self, app: Any, on_refused: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.on_refused = on_refused  # counts refusals (a metric): bad input is counted, not only answered

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qsl

        problem: str | None = None
        if why := unstorable(scope["path"]):
            problem = f"path: {why}"
        if problem is None:
            for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
                if why := unstorable(name) or unstorable(value):
                    problem = f"query parameter {name!r}: {why}"
                    break
        received: list[Message] = []
        content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        # FastAPI reads a body without a content type, and any application/…+json, as JSON.
        if content_type in (b"", b"application/json") or (content_type.startswith(b"application/") and content_type.endswith(b"+json")):
            content_type = b"application/json"
        if problem is None and scope.get("method") in ("POST", "PUT", "PATCH", "DELETE") and content_type in (
                b"application/json", b"application/x-www-form-urlencoded"):
            body = b""
            while True:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            problem = _body_problem(body, content_type)
        if problem is not None:
            self.on_refused()
            await _answer(send, 422, f"{problem}, which cannot be stored")
            return

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


def _body_problem(body: bytes, content_type: bytes) -> str | None:
    import json
    from urllib.parse import parse_qsl

    if content_type == b"application/x-www-form-urlencoded":
        for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            if why := unstorable(name) or unstorable(value):
                return f"form field {name!r}: {why}"
        return None
    try:
        # The standard library's parser, as the routes' (it accepts lone surrogates; orjson
        # would refuse the body outright without saying where).
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return _first_unstorable(document, "body")
