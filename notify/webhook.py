"""SMS through an aggregator's HTTP API, for deployments without an SMPP account.

One request shape (docs/notifications.md): `POST {url}` with `Authorization: Bearer
{token}` and the JSON body `{"to": "+86…", "text": "…", "reference": "wp-…"}`; any 2xx
answer is the aggregator's acceptance, and its JSON `id` (when present) is recorded. The
aggregator splits long text itself. A timeout, a refused connection or another status is a
failed attempt, retried like a dead SMSC.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import orjson

from notify.outcomes import Outcome, State

__all__ = ["WebhookSender"]


class WebhookSender:
    def __init__(self, url: str, *, token: str = "", timeout_s: float = 10.0) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout_s

    def send(self, phone: str, text: str) -> Outcome:
        reference = f"wp-{uuid.uuid4().hex[:16]}"
        request = urllib.request.Request(
            self._url,
            data=orjson.dumps({"to": phone, "text": text, "reference": reference}),
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {self._token}"} if self._token else {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - the configured URL
                body = response.read()
        except urllib.error.HTTPError as exc:
            return Outcome(State.FAILED, detail={"error": f"SMS webhook answered {exc.code}"})
        except (urllib.error.URLError, OSError) as exc:
            return Outcome(State.FAILED, detail={"error": f"SMS webhook: {exc}"})
        try:
            ref = str(orjson.loads(body).get("id") or reference)
        except (orjson.JSONDecodeError, AttributeError):
            ref = reference
        return Outcome(State.ACCEPTED, ref=ref, detail={"via": "webhook"})
