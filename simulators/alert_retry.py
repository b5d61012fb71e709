"""The device side of the alert lane: a wearable repeats an alert (same event id) with
backoff until it sees the platform's `received` receipt, so a broker crash or a dropped
connection cannot silently lose an SOS. Pure: the caller passes `now` and publishes."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from .faults import Wire

# 1 s, 2 s, 4 s … then every 30 s: quick while the platform is briefly away, without
# flooding it when it is down for longer (telecare panels repeat the same way).
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0


@dataclass
class _Unanswered:
    wire: Wire
    due: float
    delay: float
    sends: int = 1


class AlertRetrier:
    def __init__(self, first_s: float = FIRST_RETRY_S, max_s: float = MAX_RETRY_S) -> None:
        self._first, self._max = first_s, max_s
        self._open: dict[tuple[str, str], _Unanswered] = {}
        self.retries = 0
        self.receipted = 0

    @staticmethod
    def key_of(wire: Wire) -> tuple[str, str] | None:
        """(person_id, event_id) of an alert wire; None for anything else."""
        if wire.kind != "alert":
            return None
        try:
            event_id = orjson.loads(wire.payload)["event_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return wire.topic.split("/")[-2], str(event_id)

    def sent(self, wire: Wire, now: float) -> None:
        key = self.key_of(wire)
        if key is not None and key not in self._open:
            self._open[key] = _Unanswered(wire, now + self._first, self._first)

    def receipt(self, person_id: str, payload: bytes) -> None:
        try:
            doc = orjson.loads(payload)
            key = (person_id, str(doc["event_id"]))
            state = doc["state"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if state == "received" and self._open.pop(key, None) is not None:
            self.receipted += 1

    def due(self, now: float) -> list[Wire]:
        """The alerts to repeat now; each is rescheduled with a doubled delay."""
        out = []
        for item in self._open.values():
            if item.due <= now:
                item.delay = min(item.delay * 2, self._max)
                item.due = now + item.delay
                item.sends += 1
                out.append(item.wire)
        self.retries += len(out)
        return out

    @property
    def unanswered(self) -> int:
        return len(self._open)
