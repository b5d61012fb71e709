"""`watchpost alerts`: one consumer of the life-safety alert lane, wired from the settings."""

from __future__ import annotations

import os
import signal

from watchpost.settings import Settings

# Test-only (integration tests of a kill between commit and receipt): a marker file whose
# presence makes the consumer die once, right after committing an alert.
CRASH_ONCE_VARIABLE = "WATCHPOST_TEST_ALERT_CRASH_ONCE"


def run_alert_consumer(settings: Settings, *, client_id: str | None = None, metrics_port: int | None = None) -> None:
    """Run until SIGTERM or Ctrl-C."""
    import dataclasses

    from ingest.alert_lane import AlertLane, AlertMetrics, crash_once_after_commit
    from watchpost.db import connect
    from watchpost.health import serve_health

    lane_settings = settings.alerts
    if client_id:
        lane_settings = dataclasses.replace(lane_settings, client_id=client_id)
    metrics = AlertMetrics()
    marker = os.environ.get(CRASH_ONCE_VARIABLE)
    lane = AlertLane(
        mqtt_endpoint=settings.mqtt_for(settings.alerts),
        topic_root=settings.topic_root,
        database_url=settings.database_url,
        settings=lane_settings,
        metrics=metrics,
        connect_db=lambda url: connect(url, application_name=lane_settings.client_id),
        **({"after_commit": crash_once_after_commit(marker)} if marker else {}),
    )
    port = lane_settings.metrics_port if metrics_port is None else metrics_port
    if port:
        serve_health(port, metrics.registry, lane.readiness)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: lane.stop())
    lane.run()
