"""Where the ingest worker's messages come from: the one seam between a broker protocol and
the worker's batching, commit and acknowledgement.

A source receives on its own thread and hands each message to the worker with an opaque
acknowledgement token; the worker gives the tokens back, in the order it received them, once
their batch is committed. Two sources exist: a persistent MQTT session (ingest.mqtt_source,
the default) and a RabbitMQ quorum queue read over AMQP (ingest.amqp_source).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

# (topic, payload, acknowledgement token): what a source hands the worker for each message.
# The call may block while the worker holds as many messages as it allows.
Deliver = Callable[[str, bytes, object], None]


class MessageSource(Protocol):
    # Set while the source is connected to its broker (readiness reports it).
    connected: threading.Event

    def start(self, deliver: Deliver) -> None:
        """Connect and begin delivering on the source's own thread; returns at once."""

    def acknowledge(self, tokens: Sequence[object]) -> None:
        """The messages of these tokens are committed: tell the broker. Called from the
        worker's thread, in delivery order. A token from a connection that has since been
        lost is skipped: the broker redelivers that message, and storing it again is a no-op."""

    def close(self) -> None:
        """Disconnect; what was not acknowledged stays with the broker."""
