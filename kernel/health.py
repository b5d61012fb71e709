"""A small HTTP endpoint for a long-running process other than the API: `/healthz` (the
process is alive), `/readyz` (its broker, database and lag checks; 503 when any fails) and
`/metrics` (Prometheus). Runs on its own thread, so it answers while the process works."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Checks = Callable[[], dict[str, str]]  # name -> "ok" or what is wrong


def serve_health(port: int, registry: CollectorRegistry, checks: Checks, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._send(200, b'{"status":"ok"}', "application/json")
            elif self.path == "/readyz":
                results = checks()
                ready = all(v == "ok" for v in results.values())
                self._send(200 if ready else 503, orjson.dumps({"ready": ready, **results}), "application/json")
            else:
                self._send(404, b'{"detail":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # scrapes every few seconds: not worth a log line
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
