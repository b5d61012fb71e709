"""`watchpost alerts`: one consumer of the life-safety alert lane, wired from the settings."""

from __future__ import annotations

import os
import signal

from kernel.settings import Settings

# Test-only (integration tests of a kill between commit and receipt): a marker file whose
# presence makes the consumer die once, right after committing an alert.
CRASH_ONCE_VARIABLE = "WATCHPOST_TEST_ALERT_CRASH_ONCE"


def run_alert_consumer(settings: Settings, *, instance: int = 1, metrics_port: int | None = None) -> None:
    """Run until SIGTERM or Ctrl-C. Consumer `instance` N logs in as the N-th account of
    the alert lane's pool (the broker takes the account as client id, so two consumers
    side by side need two accounts)."""
    import dataclasses

    from kernel.broker import pool_account
    from ingest.alert_lane import AlertLane, AlertMetrics, crash_once_after_commit
    from kernel.clock import SystemClock
    from kernel.db import connect
    from kernel.health import serve_health

    lane_settings = settings.alerts
    endpoint = settings.mqtt_for(lane_settings)
    if endpoint.username:
        endpoint = dataclasses.replace(endpoint, username=pool_account(endpoint.username, instance - 1))
    client_id = lane_settings.client_id or endpoint.username or f"watchpost-alerts-{instance}"
    metrics = AlertMetrics()
    marker = os.environ.get(CRASH_ONCE_VARIABLE)
    lane = AlertLane(
        mqtt_endpoint=endpoint,
        topic_root=settings.topic_root,
        database_url=settings.database_url,
        settings=lane_settings,
        metrics=metrics,
        connect_db=lambda url: connect(url, application_name=client_id),
        clock=SystemClock(),
        client_id=client_id,
        **({"after_commit": crash_once_after_commit(marker)} if marker else {}),
    )
    port = lane_settings.metrics_port if metrics_port is None else metrics_port
    if port:
        serve_health(port, metrics.registry, lane.readiness)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: lane.stop())
    lane.run()
