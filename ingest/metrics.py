"""Prometheus metrics of one ingest worker. Counted per batch, not per message, so that
the hot path pays nothing for them."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("watchpost_ingest_messages_total", "MQTT messages taken from the broker", registry=r)
        self.stored = Counter("watchpost_ingest_rows_stored_total", "Rows stored, by stream", ["stream"], registry=r)
        self.duplicates = Counter(
            "watchpost_ingest_duplicates_total", "Redelivered readings that were already stored, by stream", ["stream"], registry=r
        )
        self.dead_letters = Counter(
            "watchpost_ingest_dead_letters_total", "Messages dead-lettered, by reason", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "watchpost_ingest_batch_messages", "Messages per committed batch",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000), registry=r,
        )
        self.commit_seconds = Histogram(
            "watchpost_ingest_commit_seconds", "Time to store and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10), registry=r,
        )
        self.pending = Gauge("watchpost_ingest_pending_messages", "Messages received but not yet committed", registry=r)
        self.broker_connects = Counter("watchpost_ingest_broker_connects_total", "Connections (and reconnections) to the broker", registry=r)
        self.db_errors = Counter("watchpost_ingest_db_errors_total", "Failed commits, retried", registry=r)
        self.alarms_raised = Counter("watchpost_alarms_raised_total", "Alarms raised by the rules, by type", ["type"], registry=r)
        self.last_commit = Gauge("watchpost_ingest_last_commit_timestamp_seconds", "Unix time of the last commit", registry=r)

    def count_dead_letters(self, reasons: Tally[str]) -> None:
        for reason, n in reasons.items():
            self.dead_letters.labels(reason).inc(n)

    def count_alarms(self, raised: Tally[str]) -> None:
        for alarm_type, n in raised.items():
            self.alarms_raised.labels(alarm_type).inc(n)
