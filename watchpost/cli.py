"""The `watchpost` command line. Each subcommand is its process's composition root: it
reads the settings once and wires the adapters; nothing below it reads the environment."""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from watchpost.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Watchpost: real-time monitoring and dispatch for Jiashan county.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
registry_app = typer.Typer(help="Reference data.", no_args_is_help=True)
broker_app = typer.Typer(help="The MQTT broker's configuration and credentials.", no_args_is_help=True)
roads_app = typer.Typer(help="The road network dispatch routes on.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the console and the family page.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration: check it, print the reference.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(broker_app, name="broker")
app.add_typer(roads_app, name="roads")
app.add_typer(user_app, name="user")
app.add_typer(config_app, name="config")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (WATCHPOST_* variables override it)")]


def _settings(config: Path | None) -> Settings:
    try:
        settings = load_settings(toml_path=config)
    except SettingsError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    from watchpost.logs import configure

    configure(settings.log_level, settings.log_format)
    return settings


def watchpost_home() -> Path:
    default = "/var/lib/watchpost" if os.geteuid() == 0 else os.path.expanduser("~/.local/share/watchpost")
    return Path(os.environ.get("WATCHPOST_HOME", default))


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration (environment and TOML file) and report every problem."""
    try:
        load_settings(toml_path=config)
    except SettingsError as exc:
        for problem in str(exc).split("; "):
            typer.echo(f"problem: {problem}", err=True)
        raise typer.Exit(1) from None
    typer.echo("configuration is valid")


@config_app.command("reference")
def config_reference() -> None:
    """Print the configuration reference (docs/configuration.md)."""
    from watchpost.settings import reference

    typer.echo(reference(), nl=False)


@db_app.command("migrate")
def db_migrate(config: ConfigOption = None) -> None:
    """Create or update the schema (idempotent)."""
    from watchpost.db import MigrationError, migrate

    settings = _settings(config)
    try:
        license_ = migrate(settings.database_url)
    except MigrationError as exc:
        typer.echo(f"migration failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"schema is current (TimescaleDB {license_} edition)")


@db_app.command("backup")
def db_backup(output: Path, config: ConfigOption = None) -> None:
    """Dump the database with pg_dump -Fc (scripts/backup.sh; see docs/operations.md)."""
    import subprocess

    settings = _settings(config)
    script = Path(__file__).resolve().parent.parent / "scripts" / "backup.sh"
    raise typer.Exit(subprocess.run([str(script), str(output), settings.database_url]).returncode)


@db_app.command("restore")
def db_restore(dump: Path, target_url: str) -> None:
    """Restore a dump into an empty database, TimescaleDB's way (scripts/restore.sh)."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "scripts" / "restore.sh"
    raise typer.Exit(subprocess.run([str(script), str(dump), target_url]).returncode)


@registry_app.command("load")
def registry_load(file: Path, config: ConfigOption = None) -> None:
    """Load reference data from a JSON or YAML file (upsert)."""
    from watchpost import registry
    from watchpost.db import connect

    settings = _settings(config)
    try:
        doc = registry.read_document(file)
        with connect(settings.database_url) as conn:
            counts = registry.load(conn, doc)
    except registry.RegistryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo("loaded " + ", ".join(f"{n} {section}" for section, n in counts.items()))


@broker_app.command("sync")
def broker_sync(
    config: ConfigOption = None,
    directory: Annotated[Path | None, typer.Option(help="where the broker's files live")] = None,
    port: Annotated[int, typer.Option(help="the broker's listening port")] = 1884,
    bind: Annotated[str, typer.Option(help="the broker's listening address")] = "127.0.0.1",
) -> None:
    """Write the broker's config, password file and ACL for every registered device, and
    tell a running broker to reload them."""
    from watchpost.broker import load_or_create_secret, write_broker_files
    from watchpost.db import connect

    settings = _settings(config)
    home = watchpost_home()
    directory = directory or home / "mosquitto"
    with connect(settings.database_url) as conn:
        users = [
            r[0]
            for r in conn.execute(
                "SELECT station_id FROM stations UNION SELECT person_id FROM persons "
                "UNION SELECT unit_id FROM units UNION SELECT partner_id FROM partners"
            )
        ]
    files = write_broker_files(
        directory, port=port, root=settings.topic_root, secret=load_or_create_secret(home / "mqtt-secret"), device_users=users,
        bind=bind,
    )
    pid_file = directory / "mosquitto.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGHUP)
        except (ProcessLookupError, ValueError):
            pass
    typer.echo(str(files.config))


@broker_app.command("password")
def broker_password(username: str) -> None:
    """Print the MQTT password of a device or service account."""
    from watchpost.broker import device_password, load_or_create_secret

    typer.echo(device_password(load_or_create_secret(watchpost_home() / "mqtt-secret"), username))


@app.command("ingest")
def ingest(config: ConfigOption = None) -> None:
    """Run an ingest worker: MQTT → validated → TimescaleDB, until SIGTERM or Ctrl-C."""
    from ingest.metrics import IngestMetrics
    from ingest.worker import IngestWorker
    from watchpost.db import connect
    from watchpost.health import serve_health

    settings = _settings(config)
    metrics = IngestMetrics()
    worker = IngestWorker(
        mqtt_endpoint=settings.mqtt_for(settings.ingest),
        topic_root=settings.topic_root,
        database_url=settings.database_url,
        settings=settings.ingest,
        metrics=metrics,
        connect_db=lambda url: connect(url, application_name=settings.ingest.client_id),
    )
    if settings.metrics_port:
        serve_health(settings.metrics_port, metrics.registry, worker.readiness)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    worker.run()


@app.command("alerts")
def alerts(
    config: ConfigOption = None,
    client_id: Annotated[str | None, typer.Option(help="overrides alerts.client_id")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="overrides alerts.metrics_port")] = None,
) -> None:
    """Run a consumer of the life-safety alert lane: each alert stored at once, then a receipt to the device."""
    from watchpost.alerts_service import run_alert_consumer

    run_alert_consumer(_settings(config), client_id=client_id, metrics_port=metrics_port)


@roads_app.command("load")
def roads_load(
    config: ConfigOption = None,
    geojson: Annotated[Path | None, typer.Option(help="GeoJSON LineStrings with highway/maxspeed/oneway properties")] = None,
    osm: Annotated[Path | None, typer.Option(help="an OpenStreetMap XML extract")] = None,
    synthetic_jiashan: Annotated[Path | None, typer.Option(help="build the simulated Jiashan network inside this county boundary GeoJSON")] = None,
) -> None:
    """Replace the road network with one imported from a file, or the simulated Jiashan one."""
    from dispatch import road_import
    from dispatch.jiashan_roads import build_jiashan_network
    from dispatch.store import save_road_graph
    from watchpost.db import connect

    settings = _settings(config)
    sources = [s for s in (geojson, osm, synthetic_jiashan) if s is not None]
    if len(sources) != 1:
        typer.echo("give exactly one of --geojson, --osm, --synthetic-jiashan", err=True)
        raise typer.Exit(2)
    try:
        if geojson:
            graph = road_import.load_geojson(geojson)
        elif osm:
            graph = road_import.load_osm_xml(osm)
        else:
            graph = build_jiashan_network(synthetic_jiashan).graph
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot import the road network: {exc}", err=True)
        raise typer.Exit(1) from None
    with connect(settings.database_url) as conn:
        save_road_graph(conn, graph)
    typer.echo(f"road network: {graph.n_nodes} nodes, {graph.n_edges} edges")


@app.command("dispatch")
def dispatch(config: ConfigOption = None, client_id: Annotated[str | None, typer.Option(help="overrides dispatch.client_id")] = None) -> None:
    """Run a dispatcher: assign the nearest unit by road time, drive incident lifecycles,
    send partner alerts. Several may run at once."""
    import asyncio

    from dispatch.service import Dispatcher, run_dispatcher
    from watchpost.db import connect

    settings = _settings(config)
    client_id = client_id or settings.dispatch.client_id
    dispatcher = Dispatcher(
        database_url=settings.database_url,
        mqtt_endpoint=settings.mqtt_for(settings.dispatch),
        topic_root=settings.topic_root,
        client_id=client_id,
        redispatch_after_s=settings.dispatch.redispatch_after_s,
        # Not a shared group: every dispatcher hears every crew report, in order; the
        # database applies each once (see dispatch.store.apply_unit_status).
        share_group="",
        connect_db=lambda url: connect(url, application_name=client_id),
    )

    if settings.metrics_port:
        from watchpost.health import serve_health

        serve_health(settings.metrics_port, dispatcher.metrics.registry, dispatcher.readiness)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_dispatcher(dispatcher, stop)

    asyncio.run(main())


@user_app.command("set-password")
def user_set_password(
    username: str,
    config: ConfigOption = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")] = False,
) -> None:
    """Set (or reset) a user's password; it is stored only as an argon2 hash."""
    from dashboard.auth import hash_password
    from watchpost.db import connect

    settings = _settings(config)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        typer.echo("a password needs at least 8 characters", err=True)
        raise typer.Exit(2)
    with connect(settings.database_url) as conn:
        updated = conn.execute("UPDATE users SET password_hash = %s WHERE username = %s", (hash_password(password), username)).rowcount
    if not updated:
        typer.echo(f"no user {username!r} in the registry", err=True)
        raise typer.Exit(1)
    typer.echo(f"password set for {username}")


def _api_secret(settings: Settings) -> str:
    if settings.api.token_secret:
        return settings.api.token_secret
    path = watchpost_home() / "api-secret"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


@app.command("serve")
def serve(config: ConfigOption = None, port: Annotated[int | None, typer.Option(help="overrides api.port")] = None) -> None:
    """Run the HTTP API, the websockets and the console and family pages."""
    from datetime import timedelta

    import uvicorn

    from dashboard.app import create_app

    settings = _settings(config)
    application = create_app(
        database_url=settings.database_url,
        token_secret=_api_secret(settings),
        topic_root=settings.topic_root,
        mqtt=settings.mqtt_for(settings.api),
        token_ttl=timedelta(seconds=settings.api.token_ttl_s),
        pool_size=settings.api.db_pool_size,
    )
    # Pings find dead websocket clients within ping interval + timeout.
    uvicorn.run(application, host=settings.api.host, port=port or settings.api.port, log_level=settings.log_level.lower(),
                ws_ping_interval=20, ws_ping_timeout=20, ws_max_size=65536)


@app.command(
    "simulate",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def simulate(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Run the simulated Jiashan county over MQTT (all options: watchpost simulate --help)."""
    from urllib.parse import quote

    from simulators.cli import simulate as run_simulation
    from watchpost.broker import GATEWAY_USER, device_password, load_or_create_secret
    from watchpost.settings import MqttEndpoint

    args = list(ctx.args)
    if {"-h", "--help"} & set(args):
        raise typer.Exit(run_simulation(args))
    settings = _settings(config)
    # The simulator speaks for many devices: it logs in as the gateway account, whatever
    # account WATCHPOST_MQTT_URL names, on the same broker.
    endpoint = MqttEndpoint.parse(settings.mqtt_url)
    password = device_password(load_or_create_secret(watchpost_home() / "mqtt-secret"), GATEWAY_USER)
    scheme = "mqtts" if endpoint.tls else "mqtt"
    defaults = ["--mqtt-url", f"{scheme}://{GATEWAY_USER}:{quote(password, safe='')}@{endpoint.host}:{endpoint.port}",
                "--root", settings.topic_root]
    # `make up` loads this registry: simulate exactly the devices the platform knows.
    registry_file = watchpost_home() / "jiashan-registry.yaml"
    if registry_file.exists() and not {"--registry", "--persons"} & set(args):
        defaults += ["--registry", str(registry_file)]
    from datetime import UTC, datetime

    started = datetime.now(UTC)
    code = run_simulation(defaults + args)
    if code == 0 and "--dry-run" not in args:
        from watchpost.db import connect
        from watchpost.run_report import platform_report, settle

        try:
            with connect(settings.database_url) as conn:
                settle(conn, started)
                typer.echo(platform_report(conn, started))
        except Exception as exc:  # the simulation ran; only the read-back failed: say so
            typer.echo(f"platform summary unavailable: {exc}", err=True)
    raise typer.Exit(code)


@app.command("report")
def report_cmd(
    from_: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day (Asia/Shanghai)")],
    to: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last day, inclusive")],
    out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("."),
    config: ConfigOption = None,
) -> None:
    """The daily shift report for a date range: HTML and PDF."""
    from dashboard.report import ReportError, build

    settings = _settings(config)
    try:
        html_path, pdf_path = build(settings.database_url, from_.date(), to.date(), out)
    except ReportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{html_path}\n{pdf_path}")


@app.command("status")
def status(config: ConfigOption = None) -> None:
    """The state of a running installation: ingest lag, dead letters in the last hour,
    alarms, incidents, units."""
    from watchpost.db import connect

    settings = _settings(config)
    with connect(settings.database_url) as conn:
        lag = conn.execute(
            "SELECT now() - max(t) FROM (SELECT max(received_at) AS t FROM wearable_readings WHERE ts > now() - interval '1 day' "
            "UNION ALL SELECT max(received_at) FROM water_readings WHERE ts > now() - interval '1 day' "
            "UNION ALL SELECT max(received_at) FROM home_events WHERE ts > now() - interval '1 day' "
            "UNION ALL SELECT max(received_at) FROM unit_positions WHERE ts > now() - interval '1 day') x"
        ).fetchone()[0]
        dead = conn.execute(
            "SELECT reason, count(*) FROM dead_letters WHERE received_at > now() - interval '1 hour' GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        alarms = conn.execute("SELECT severity, count(*) FROM alarms WHERE state <> 'cleared' GROUP BY 1 ORDER BY 1").fetchall()
        incidents = conn.execute("SELECT state, count(*) FROM incidents WHERE state NOT IN ('closed', 'cancelled') GROUP BY 1").fetchall()
        units = conn.execute(
            "SELECT u.kind, COALESCE(s.status, 'available'), count(*) FROM units u LEFT JOIN unit_state s USING (unit_id) GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    typer.echo(f"last reading stored: {'none in the last hour' if lag is None else f'{lag.total_seconds():.1f} s ago'}")
    typer.echo("dead letters, last hour: " + (", ".join(f"{r} {n}" for r, n in dead) or "none"))
    typer.echo("open alarms: " + (", ".join(f"{s} {n}" for s, n in alarms) or "none"))
    typer.echo("open incidents: " + (", ".join(f"{s} {n}" for s, n in incidents) or "none"))
    typer.echo("units: " + ", ".join(f"{k} {s} {n}" for k, s, n in units))


@app.command("hj212")
def hj212(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on for stations")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port the stations connect to")] = 9212,
    mqtt_url: Annotated[str | None, typer.Option(help="broker URL of the watchpost-gateway account (default: the configured broker, as that account)")] = None,
    client_id: Annotated[str, typer.Option(help="MQTT client id, unique per gateway process")] = "watchpost-hj212-1",
    metrics_port: Annotated[int, typer.Option(help="serve Prometheus metrics on 127.0.0.1:PORT (0: none)")] = 0,
    refresh_s: Annotated[float, typer.Option(help="how often the stations' MN and passwords are re-read")] = 60.0,
) -> None:
    """Run the HJ 212-2017 gateway: stations' uploads over TCP → water telemetry on the broker."""
    import asyncio
    import contextlib
    import dataclasses

    import psycopg

    from ingest.hj212_gateway import Hj212Gateway, StationCredential
    from watchpost.broker import GATEWAY_USER, device_password, load_or_create_secret
    from watchpost.db import connect
    from watchpost.settings import MqttEndpoint

    settings = _settings(config)
    home = watchpost_home()
    log = logging.getLogger("watchpost.hj212")

    def load_stations() -> dict[str, StationCredential]:
        with connect(settings.database_url, application_name=client_id) as conn:
            rows = conn.execute(
                "SELECT hj212_mn, station_id, hj212_password_digest FROM stations "
                "WHERE hj212_mn IS NOT NULL AND hj212_password_digest IS NOT NULL"
            ).fetchall()
        return {mn: StationCredential(station_id, digest) for mn, station_id, digest in rows}

    try:
        stations = load_stations()
    except psycopg.errors.UndefinedColumn:
        typer.echo("the stations table has no HJ 212 columns yet: run `watchpost db migrate`", err=True)
        raise typer.Exit(1) from None
    if mqtt_url:
        endpoint = MqttEndpoint.parse(mqtt_url)
    else:
        endpoint = dataclasses.replace(
            MqttEndpoint.parse(settings.mqtt_url), username=GATEWAY_USER,
            password=device_password(load_or_create_secret(home / "mqtt-secret"), GATEWAY_USER),
        )
    gateway = Hj212Gateway(
        host=host, port=port, mqtt=endpoint, topic_root=settings.topic_root, stations=stations,
        password_secret=load_or_create_secret(home / "hj212-secret"), client_id=client_id,
    )
    if metrics_port:
        _serve_hj212_metrics(gateway, metrics_port)

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


def _serve_hj212_metrics(gateway, port: int) -> None:
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
            yield CounterMetricFamily("watchpost_hj212_averages", "Average uploads acknowledged, not republished", value=snap["averages_received"])
            yield CounterMetricFamily("watchpost_hj212_acks", "9014 replies sent to stations", value=snap["acks_sent"])
            yield GaugeMetricFamily("watchpost_hj212_connections", "Open station connections", value=snap["connections"])

    registry = CollectorRegistry()
    registry.register(Collector())
    start_http_server(port, addr="127.0.0.1", registry=registry)


@app.command("hj212-station")
def hj212_station(
    station_id: str,
    mn: Annotated[str, typer.Option(help="the station's MN, exactly as its data collector sends it")],
    config: ConfigOption = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the PW from standard input")] = False,
) -> None:
    """Set a station's HJ 212 MN and password (PW); the PW is stored only as a keyed digest."""
    import psycopg

    from ingest.hj212 import Frame, build_segment
    from ingest.hj212_gateway import password_digest
    from watchpost.broker import load_or_create_secret
    from watchpost.db import connect

    settings = _settings(config)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("PW", hide_input=True, confirmation_prompt=True)
    try:
        build_segment(Frame(st="21", cn="2011", pw=password, mn=mn))  # what a station's frame must pass
    except ValueError:
        typer.echo("an MN has 1-27 and a PW 1-9 characters, none of them ; = & , or blank", err=True)
        raise typer.Exit(2) from None
    digest = password_digest(load_or_create_secret(watchpost_home() / "hj212-secret"), mn, password)
    try:
        with connect(settings.database_url) as conn:
            updated = conn.execute(
                "UPDATE stations SET hj212_mn = %s, hj212_password_digest = %s WHERE station_id = %s",
                (mn, digest, station_id),
            ).rowcount
    except psycopg.errors.UniqueViolation:
        typer.echo(f"MN {mn} already belongs to another station", err=True)
        raise typer.Exit(1) from None
    if not updated:
        typer.echo(f"no station {station_id!r} in the registry", err=True)
        raise typer.Exit(1)
    typer.echo(f"HJ 212 MN {mn} set for {station_id}")


@app.command("run")
def run(
    config: ConfigOption = None,
    simulate_scenario: Annotated[str | None, typer.Option("--simulate", help="also run the county simulator with this scenario (e.g. demo)")] = None,
) -> None:
    """Run the platform's processes (ingest, alert lane, dispatcher, API) under one supervisor: a process
    that dies is restarted, Ctrl-C or SIGTERM stops them all and waits for them."""
    from watchpost.supervisor import Supervisor

    _settings(config)  # fail early on a bad configuration, with the message it gives
    extra = ["--config", str(config)] if config else []
    commands = {
        "ingest": [sys.executable, "-m", "watchpost.cli", "ingest", *extra],
        # Two alert consumers in one group: while one is restarted the other takes every alert.
        **{
            f"alerts-{n}": [sys.executable, "-m", "watchpost.cli", "alerts", *extra, "--client-id", f"watchpost-alerts-{n}",
                            *(["--metrics-port", "0"] if n > 1 else [])]
            for n in (1, 2)
        },
        "dispatch": [sys.executable, "-m", "watchpost.cli", "dispatch", *extra],
        "api": [sys.executable, "-m", "watchpost.cli", "serve", *extra],
    }
    if simulate_scenario:
        commands["simulator"] = [sys.executable, "-m", "watchpost.cli", "simulate", *extra, "--scenario", simulate_scenario, "--quiet"]
    supervisor = Supervisor(commands, quick_restart={"alerts-1", "alerts-2"})
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: supervisor.stop())
    raise typer.Exit(supervisor.run())


if __name__ == "__main__":
    app()
