"""The HJ 212 gateway process: stations' uploads over TCP → water telemetry on the broker.

Wires the gateway (ingest/hj212_gateway.py) to the registry's station credentials, re-reads
them while running, and optionally serves its counters to Prometheus. `watchpost hj212`
parses the options and calls `run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from pathlib import Path

import psycopg

from ingest.hj212_gateway import GatewayLimits, Hj212Gateway, StationCredential
from ingest.hj212_session import SessionLimits
from kernel.broker import password_for
from kernel.db import connect
from kernel.settings import MqttEndpoint, Settings
from watchpost.deployment_secrets import HJ212_SECRET, MQTT_SECRET, guarded_secret

log = logging.getLogger("watchpost.hj212")


class Hj212SchemaMissing(RuntimeError):
    """The database predates the stations' HJ 212 columns."""


def run(
    settings: Settings,
    home: Path,
    *,
    host: str,
    port: int,
    mqtt_url: str | None,
    client_id: str,
    metrics_port: int,
    refresh_s: float,
) -> None:
    """Serve stations until SIGTERM or SIGINT. `mqtt_url` overrides the configured broker and
    the gateway account's derived password; `metrics_port` 0 serves no metrics."""

    def load_stations() -> dict[str, StationCredential]:
        with connect(settings.database_url, application_name=client_id) as conn:
            rows = conn.execute(
                "SELECT hj212_mn, station_id, hj212_password_digest FROM stations "
                "WHERE hj212_mn IS NOT NULL AND hj212_password_digest IS NOT NULL"
            ).fetchall()
        return {mn: StationCredential(station_id, digest) for mn, station_id, digest in rows}

    try:
        stations = load_stations()
        with connect(settings.database_url, application_name=client_id) as conn:
            mqtt_secret = guarded_secret(conn, home, MQTT_SECRET)
            hj212_secret = guarded_secret(conn, home, HJ212_SECRET)
    except psycopg.errors.UndefinedColumn:
        raise Hj212SchemaMissing("the stations table has no HJ 212 columns yet: run `watchpost db migrate`") from None
    if mqtt_url:
        endpoint = MqttEndpoint.parse(mqtt_url)
        if endpoint.ca_file is None and settings.mqtt_ca_file:
            endpoint = dataclasses.replace(endpoint, ca_file=settings.mqtt_ca_file)
    else:
        # The broker takes the account name as client id: the gateway's account is its client id.
        endpoint = dataclasses.replace(
            settings.mqtt_for(), username=client_id,
            password=password_for(mqtt_secret, client_id),
        )
    listener = dataclasses.asdict(settings.hj212)
    session = SessionLimits(
        timeout_s=listener.pop("split_timeout_s"), clock_tolerance_s=listener.pop("clock_tolerance_s"),
        clock_behind_tolerance_s=listener.pop("clock_behind_tolerance_s"), resync_interval_s=listener.pop("clock_resync_s"),
    )
    gateway = Hj212Gateway(
        host=host, port=port, mqtt=endpoint, topic_root=settings.topic_root, stations=stations,
        password_secret=hj212_secret, client_id=client_id,
        limits=GatewayLimits(**listener), session=session,
    )
    if metrics_port:
        serve_metrics(gateway, metrics_port)

    async def refresh(stop: asyncio.Event) -> None:
        # New stations and changed passwords take effect without dropping open connections.
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(refresh_s):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                gateway.update_stations(await asyncio.to_thread(load_stations))
            except (psycopg.Error, ValueError) as exc:
                log.warning("could not re-read the stations (%s); keeping the ones loaded", exc)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("%d stations with an HJ 212 MN and password", len(stations))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(gateway.serve(stop), name="hj212-gateway")
            tasks.create_task(refresh(stop), name="hj212-registry")

    asyncio.run(main())


def serve_metrics(gateway: Hj212Gateway, port: int) -> None:
    """The gateway's counters on 127.0.0.1:PORT, in Prometheus text format."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def collect(self):
            snap = gateway.snapshot()  # plain copies: this runs on the metrics server's thread
            rejected = CounterMetricFamily("watchpost_hj212_rejections", "HJ 212 input rejected, by reason", labels=["reason"])
            for reason, n in sorted(snap["rejections"].items()):
                rejected.add_metric([reason], n)
            yield rejected
            yield CounterMetricFamily("watchpost_hj212_published", "Station uploads published to the broker", value=snap["published"])
            yield CounterMetricFamily("watchpost_hj212_averages", "Minute, hour and day uploads received", value=snap["averages_received"])
            yield CounterMetricFamily("watchpost_hj212_averages_published", "Minute, hour and day uploads published on the averages topic", value=snap["averages_published"])
            yield CounterMetricFamily("watchpost_hj212_acks", "9014 replies sent to stations", value=snap["acks_sent"])
            yield CounterMetricFamily("watchpost_hj212_split_uploads", "Split uploads (PNUM > 1) reassembled", value=snap["split_uploads"])
            yield CounterMetricFamily("watchpost_hj212_times_set", "CN 1012 set-time sent (calibration requests, drifting clocks)", value=snap["times_set"])
            yield CounterMetricFamily("watchpost_hj212_commands_refused", "CN 9011 QnRtn=2 sent for commands not carried out", value=snap["commands_refused"])
            yield GaugeMetricFamily("watchpost_hj212_connections", "Open station connections", value=snap["connections"])

    registry = CollectorRegistry()
    registry.register(Collector())
    start_http_server(port, addr="127.0.0.1", registry=registry)
