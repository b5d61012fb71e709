"""What the channels make of what the other side said: SIP close reasons, and the SMS
webhook's answers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import orjson

from notify.baresip import outcome_of_close
from notify.outcomes import State
from notify.webhook import WebhookSender


def test_sip_close_reasons_become_outcomes() -> None:
    assert outcome_of_close("486 Busy Here") is State.BUSY
    assert outcome_of_close("603 Decline") is State.REJECTED
    assert outcome_of_close("480 Temporarily Unavailable") is State.NO_ANSWER
    assert outcome_of_close("408 Request Timeout") is State.NO_ANSWER
    assert outcome_of_close("503 Service Unavailable") is State.FAILED


def serve(status: int, body: bytes, seen: list[tuple[dict, dict]]) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers["Content-Length"])
            seen.append((dict(self.headers), orjson.loads(self.rfile.read(length))))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_webhook_posts_one_json_request_and_takes_a_2xx_as_accepted() -> None:
    seen: list[tuple[dict, dict]] = []
    server = serve(200, b'{"id": "agg-42"}', seen)
    try:
        outcome = WebhookSender(f"http://127.0.0.1:{server.server_address[1]}/sms", token="t0k").send("+8613800000001", "跌倒")
    finally:
        server.shutdown()
    assert outcome.state is State.ACCEPTED and outcome.ref == "agg-42"
    headers, body = seen[0]
    assert headers["Authorization"] == "Bearer t0k"
    assert body["to"] == "+8613800000001" and body["text"] == "跌倒" and body["reference"].startswith("wp-")


def test_a_refusing_or_unreachable_webhook_is_a_failed_attempt() -> None:
    server = serve(503, b"", [])
    try:
        refused = WebhookSender(f"http://127.0.0.1:{server.server_address[1]}/sms").send("+8613800000001", "x")
    finally:
        server.shutdown()
    assert refused.state is State.FAILED and "503" in refused.detail["error"]
    assert WebhookSender("http://127.0.0.1:9/sms", timeout_s=2).send("+8613800000001", "x").state is State.FAILED
