"""What the ingest worker accumulates between commits."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.readings import Reading
from ingest.store import DeadLetter


@dataclass(frozen=True, slots=True)
class Received:
    """One message after validation: its readings, or the dead letter it became. `ack` is
    the message source's token for the acknowledgement sent once the message is committed
    (ingest.source)."""

    topic: str
    payload: bytes
    readings: list[Reading] | None
    dead_letter: DeadLetter | None
    ack: object


@dataclass(slots=True)
class Batch:
    opened_at: float  # monotonic seconds
    items: list[Received] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def readings(self) -> list[Reading]:
        return [r for item in self.items if item.readings for r in item.readings]

    def dead_letters(self) -> list[DeadLetter]:
        return [item.dead_letter for item in self.items if item.dead_letter is not None]
