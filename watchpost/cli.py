"""The `watchpost` command line. Each subcommand is its process's composition root: it
reads the settings once and wires the adapters; nothing below it reads the environment."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from kernel.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Watchpost: real-time monitoring and dispatch for a county's water, emergency and care services.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
registry_app = typer.Typer(help="Reference data.", no_args_is_help=True)
broker_app = typer.Typer(help="The MQTT broker's configuration and credentials.", no_args_is_help=True)
roads_app = typer.Typer(help="The road network dispatch routes on.", no_args_is_help=True)
region_app = typer.Typer(help="The region the console map draws: boundaries, rivers, towns.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the console and the family page.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration: check it, print the reference.", no_args_is_help=True)
secrets_app = typer.Typer(help="The deployment's secret files in WATCHPOST_HOME: export and import.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(broker_app, name="broker")
app.add_typer(roads_app, name="roads")
app.add_typer(region_app, name="region")
app.add_typer(user_app, name="user")
app.add_typer(config_app, name="config")
app.add_typer(secrets_app, name="secrets")

HJ212_PORT = 9212  # where `watchpost hj212` listens for stations unless told otherwise
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (WATCHPOST_* variables override it)")]


def _settings(config: Path | None) -> Settings:
    try:
        settings = load_settings(toml_path=config)
    except SettingsError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    from kernel.logs import configure

    configure(settings.log_level, settings.log_format)
    return settings


def watchpost_home() -> Path:
    default = "/var/lib/watchpost" if os.geteuid() == 0 else os.path.expanduser("~/.local/share/watchpost")
    return Path(os.environ.get("WATCHPOST_HOME", default))


@config_app.command("check")
def config_check(
    config: ConfigOption = None,
    connect: Annotated[bool, typer.Option("--connect", help="also check that the database and the broker answer")] = False,
) -> None:
    """Validate the configuration (environment, TOML file, secrets) and report every problem;
    with --connect, also reach the database and the broker."""
    from watchpost import config_check as checks

    try:
        settings = load_settings(toml_path=config)
    except SettingsError as exc:
        for problem in exc.problems:
            typer.echo(f"problem: {problem}", err=True)
        raise typer.Exit(1) from None
    home = watchpost_home()
    problems = checks.secret_problems(settings, home)
    if connect:
        from watchpost.migrations import load_migrations

        problems += checks.database_problems(settings, max(m.version for m in load_migrations()))
        problems += checks.broker_problems(settings)
        problems += checks.amqp_problems(settings)
    for problem in problems:
        typer.echo(f"problem: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo("configuration is valid" + (": the database and the broker answer" if connect else ""))


@config_app.command("reference")
def config_reference() -> None:
    """Print the configuration reference (docs/configuration.md)."""
    from kernel.settings import reference

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


@db_app.command("schema")
def db_schema() -> None:
    """Print the schema as the migrations build it: `watchpost db schema > schema.sql`."""
    from watchpost.migrations import load_migrations, render_schema

    typer.echo(render_schema(load_migrations()), nl=False)


@db_app.command("backup")
def db_backup(output: Path, config: ConfigOption = None) -> None:
    """Dump the database with pg_dump -Fc, mode 600, and the deployment's secrets beside it
    as OUTPUT.secrets (see docs/operations.md)."""
    from watchpost.backup import BackupError, ToolSearch, backup

    from watchpost.deployment_secrets import write_export

    settings = _settings(config)
    try:
        typer.echo(backup(output, settings.database_url, ToolSearch.from_environ(os.environ, watchpost_home())), err=True)
    except BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from None
    # The secrets the database's passwords were derived from: a dump without them restores
    # devices and stations that can no longer log in.
    secrets_file = output.with_name(output.name + ".secrets")
    names = write_export(secrets_file, watchpost_home())
    typer.echo(f"secrets ({', '.join(names) or 'none in ' + str(watchpost_home())}) written to {secrets_file}, mode 600", err=True)


@db_app.command("restore")
def db_restore(dump: Path, target_url: str) -> None:
    """Restore a dump into an empty database, TimescaleDB's way (see docs/operations.md)."""
    from watchpost.backup import BackupError, ToolSearch, restore

    try:
        typer.echo(restore(dump, target_url, ToolSearch.from_environ(os.environ, watchpost_home())), err=True)
    except BackupError as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from None


def hj212_digests(home: Path) -> Callable[[str], str]:
    """MN → the keyed digest of the PW derived for it from the deployment's secret (the
    broker's, as device passwords are), keyed with the gateway's own secret."""
    from ingest.hj212_gateway import derived_station_password, password_digest
    from kernel.broker import load_or_create_secret

    def digest(mn: str) -> str:  # the secrets are read (or made) only for a registry with MNs
        gateway = load_or_create_secret(home / "hj212-secret")
        return password_digest(gateway, mn, derived_station_password(load_or_create_secret(home / "mqtt-secret"), mn))

    return digest


@registry_app.command("load")
def registry_load(
    file: Path,
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check the file and print what would change; change nothing")] = False,
    sync: Annotated[bool, typer.Option("--sync", help="retire every record the file does not list (kept with its history)")] = False,
    keep_demo: Annotated[bool, typer.Option("--keep-demo", help="load beside the simulated demo registry, keeping its records")] = False,
) -> None:
    """Load reference data from a JSON or YAML file: every problem is reported, with its
    line, before anything is written. Upserts; with --sync the database then holds exactly
    the file's records."""
    import psycopg

    from kernel.db import connect
    from watchpost import registry

    settings = _settings(config)
    try:
        document = registry.read_registry(file)
        with connect(settings.database_url) as conn:
            if dry_run:
                registry.check(conn, document, sync=sync)
                found = registry.diff(conn, document.doc)
                for line in found.report(sync=sync):
                    typer.echo(line)
                registry.demo_guard(found, document.doc, sync=sync, keep_demo=keep_demo)
                typer.echo("dry run: nothing was changed")
                return
            counts = registry.load(conn, document, sync=sync, keep_demo=keep_demo, hj212_digest=hj212_digests(watchpost_home()))
    except registry.RegistryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except psycopg.Error as exc:
        _database_refused(exc)
    typer.echo("loaded " + ", ".join(f"{n} {section}" for section, n in counts.items() if not section.startswith("retired ")))
    retired = {section.removeprefix("retired "): n for section, n in counts.items() if section.startswith("retired ")}
    if retired:
        typer.echo("retired " + ", ".join(f"{n} {section}" for section, n in retired.items()))


def _database_refused(exc: Exception) -> None:
    """An import that met the database rather than a bad file. An outage (or a database
    without the schema) goes on to the entry point, which says so in one line with exit code
    3 (watchpost/outage.py); any other refusal is this command's failure, in one line."""
    from watchpost.outage import describe

    if describe(exc) is not None:
        raise exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    typer.echo(f"the database refused: {first}", err=True)
    raise typer.Exit(1) from None


@broker_app.command("sync")
def broker_sync(
    config: ConfigOption = None,
    directory: Annotated[Path | None, typer.Option(help="where the broker's files live")] = None,
    port: Annotated[int, typer.Option(help="the broker's listening port")] = 1884,
    bind: Annotated[str, typer.Option(help="the broker's listening address")] = "127.0.0.1",
    tls_port: Annotated[int, typer.Option(help="the broker's TLS (mqtts://) port, served with a local CA's certificates "
                                               "made under the broker's directory (0: no TLS listener)")] = 0,
    persist_plugin: Annotated[Path | None, typer.Option(help="Mosquitto's SQLite persistence plugin "
                                                        "(mosquitto_persist_sqlite.so, Mosquitto 2.1+); default: found on "
                                                        "this machine")] = None,
    reload_command: Annotated[str | None, typer.Option(
        help="how to make the running broker re-read its files, e.g. \"systemctl reload watchpost-mosquitto\" "
             "(default: SIGHUP to the pid in the broker directory's mosquitto.pid, when there is one)")] = None,
) -> None:
    """Write the broker's config, password file and ACL for every registered device, and
    tell the running broker to reload them."""
    from kernel.broker import find_mosquitto, write_broker_files
    from kernel.db import connect
    from watchpost.deployment_secrets import MQTT_SECRET, guarded_secret

    settings = _settings(config)
    home = watchpost_home()
    directory = directory or home / "mosquitto"
    with connect(settings.database_url) as conn:
        secret = guarded_secret(conn, home, MQTT_SECRET)
        users = [r[0] for r in conn.execute(_DEVICE_IDS)]
    files = write_broker_files(
        directory, port=port, root=settings.topic_root, secret=secret, device_users=users,
        bind=bind, tls_port=tls_port, persist_plugin=persist_plugin or find_mosquitto(home).persist_plugin,
    )
    typer.echo(str(files.config))
    typer.echo(_reload_broker(directory / "mosquitto.pid", reload_command), err=True)


@broker_app.command("sync-rabbitmq")
def broker_sync_rabbitmq(
    url: Annotated[str, typer.Argument(help="a node's management API, e.g. http://rabbitmq-1:15672 (any node of "
                                            "the cluster: accounts are the cluster's)")],
    config: ConfigOption = None,
    admin_user: Annotated[str, typer.Option(help="an administrator of the broker")] = "guest",
    admin_password_file: Annotated[Path | None, typer.Option(
        help="a file holding the administrator's password (default: RabbitMQ's default, guest)")] = None,
    vhost: Annotated[str, typer.Option(help="the virtual host the MQTT plugin and ingest's queue use")] = "/",
    instances: Annotated[int, typer.Option(help="accounts per service role (watchpost-ingest-1 … -N)")] = 8,
) -> None:
    """Give a RabbitMQ cluster every registered device's account and the services' accounts,
    with the same passwords and topic rights as the Mosquitto files `broker sync` writes, and
    delete the accounts of devices no longer registered (never an account it did not make)."""
    from kernel.db import connect
    from kernel.rabbitmq_accounts import wanted_accounts
    from kernel.rabbitmq_admin import ManagementApi, ManagementApiError, sync_accounts
    from watchpost.deployment_secrets import MQTT_SECRET, guarded_secret

    settings = _settings(config)
    with connect(settings.database_url) as conn:
        secret = guarded_secret(conn, watchpost_home(), MQTT_SECRET)
        devices = [r[0] for r in conn.execute(_DEVICE_IDS)]
    password = admin_password_file.read_text().strip() if admin_password_file else "guest"
    api = ManagementApi(url, admin_user, password)
    try:
        plan = sync_accounts(api, wanted_accounts(settings.topic_root, secret, devices, instances), vhost)
    except ManagementApiError as exc:
        typer.echo(f"the broker refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"RabbitMQ {api.version()} at {url}: {len(plan.created)} accounts created, {len(plan.updated)} updated, "
               f"{len(plan.unchanged)} unchanged, {len(plan.deleted)} deleted")


# Every registered device, whose id is its broker account.
_DEVICE_IDS = ("SELECT station_id FROM stations UNION SELECT person_id FROM persons "
               "UNION SELECT unit_id FROM units UNION SELECT partner_id FROM partners")


def _reload_broker(pid_file: Path, reload_command: str | None) -> str:
    """Make the running broker re-read its password file and ACL (Mosquitto does on SIGHUP,
    keeping its connections); what was done, for the operator. A broker in another container
    or under systemd is not this process's to signal: its reload command is."""
    import subprocess

    if reload_command:
        done = subprocess.run(reload_command, shell=True, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            typer.echo(f"the broker's files are written, but `{reload_command}` failed (exit {done.returncode}): "
                       f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no message'}", err=True)
            raise typer.Exit(1)
        return f"broker reloaded: {reload_command}"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGHUP)
            return f"broker reloaded: SIGHUP to pid {pid}"
        except (ProcessLookupError, ValueError, PermissionError):
            pass
    return ("no running broker found to reload: make it re-read its files (compose: docker compose kill -s HUP "
            "mosquitto; systemd: systemctl reload watchpost-mosquitto, or pass --reload-command)")


@broker_app.command("password")
def broker_password(username: str, config: ConfigOption = None) -> None:
    """Print the MQTT password of a device or service account (derived from the deployment's
    mqtt-secret, checked against the database's fingerprint of it)."""
    from kernel.broker import password_for
    from kernel.db import connect
    from watchpost.deployment_secrets import MQTT_SECRET, guarded_secret

    settings = _settings(config)
    with connect(settings.database_url) as conn:
        secret = guarded_secret(conn, watchpost_home(), MQTT_SECRET)
    typer.echo(password_for(secret, username))


@secrets_app.command("export")
def secrets_export(output: Path) -> None:
    """Write the secret files of WATCHPOST_HOME (mqtt-secret, hj212-secret, api-secret) to
    one file, mode 600: keep it with the database backups."""
    from watchpost.deployment_secrets import write_export

    names = write_export(output, watchpost_home())
    typer.echo(f"{', '.join(names) or 'no secrets'} written to {output}")


@secrets_app.command("import")
def secrets_import(
    file: Path,
    replace: Annotated[bool, typer.Option("--replace", help="overwrite a different secret already in WATCHPOST_HOME")] = False,
) -> None:
    """Put exported secrets back into WATCHPOST_HOME (mode 600), e.g. on a new machine
    before the first `watchpost broker sync`."""
    from watchpost.deployment_secrets import import_secrets

    names = import_secrets(file, watchpost_home(), replace=replace)
    typer.echo(f"{', '.join(names) or 'no secrets'} restored to {watchpost_home()}")


@app.command("ingest")
def ingest(config: ConfigOption = None) -> None:
    """Run an ingest worker: MQTT (or a RabbitMQ quorum queue over AMQP) → validated →
    TimescaleDB, until SIGTERM or Ctrl-C."""
    from ingest.metrics import IngestMetrics
    from ingest.source import MessageSource
    from ingest.worker import IngestWorker
    from kernel.clock import SystemClock
    from kernel.db import connect
    from kernel.health import serve_health

    settings = _settings(config)
    metrics = IngestMetrics()
    source: MessageSource
    if settings.ingest.source == "amqp":
        from ingest.amqp_source import AmqpSource

        source = AmqpSource(urls=settings.ingest.amqp_nodes(), queue=settings.ingest.amqp_queue, topic_root=settings.topic_root,
                            prefetch=settings.ingest.receive_maximum, metrics=metrics)
    else:
        from ingest.mqtt_source import MqttSource

        source = MqttSource(endpoint=settings.mqtt_for(settings.ingest), topic_root=settings.topic_root,
                            settings=settings.ingest, metrics=metrics)
    worker = IngestWorker(
        source=source,
        topic_root=settings.topic_root,
        database_url=settings.database_url,
        settings=settings.ingest,
        metrics=metrics,
        connect_db=lambda url: connect(url, application_name=settings.client_id_for(settings.ingest)),
        clock=SystemClock(),
    )
    if settings.metrics_port:
        serve_health(settings.metrics_port, metrics.registry, worker.readiness)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    worker.run()


@app.command("alerts")
def alerts(
    config: ConfigOption = None,
    instance: Annotated[int, typer.Option(help="which consumer this is: logs in as the next account of the alert lane's pool", min=1)] = 1,
    metrics_port: Annotated[int | None, typer.Option(help="overrides alerts.metrics_port")] = None,
) -> None:
    """Run a consumer of the life-safety alert lane: each alert stored at once, then a receipt to the device."""
    from watchpost.alerts_service import run_alert_consumer

    run_alert_consumer(_settings(config), instance=instance, metrics_port=metrics_port)


@app.command("notify")
def notify(
    config: ConfigOption = None,
    metrics_port: Annotated[int | None, typer.Option(help="overrides metrics_port")] = None,
) -> None:
    """Run the notifier: SMS and voice calls to family contacts as escalation steps ask,
    until SIGTERM or Ctrl-C. Several may run at once."""
    from watchpost.notify_service import run_notifier

    run_notifier(_settings(config), metrics_port=metrics_port)


@roads_app.command("load")
def roads_load(
    config: ConfigOption = None,
    geojson: Annotated[Path | None, typer.Option(help="GeoJSON LineStrings with highway/maxspeed/oneway properties")] = None,
    osm: Annotated[Path | None, typer.Option(help="an OpenStreetMap extract: .osm.pbf, or OSM XML")] = None,
    synthetic_jiashan: Annotated[Path | None, typer.Option(help="build the simulated Jiashan network inside this county boundary GeoJSON")] = None,
    crs: Annotated[str, typer.Option(help="the file's coordinates: wgs84, or gcj02 (Chinese web maps), converted to WGS84")] = "wgs84",
    min_nodes: Annotated[int, typer.Option(help="refuse a network whose routable part has fewer nodes")] = 50,
) -> None:
    """Replace the road network with one imported from a file, or the simulated Jiashan one
    (which also replaces the map's region layers with the simulated county's). Only the
    largest part where every node reaches every other is kept; a file with no drivable
    road, or too small a part, is refused and the loaded network stays. Running
    dispatchers and API processes read the new network before their next route."""
    from datetime import UTC, datetime

    import psycopg

    from dispatch import road_import
    from dispatch.road_components import UnroutableNetwork, routable
    from dispatch.store import save_road_graph
    from kernel.db import connect

    settings = _settings(config)
    sources = [s for s in (geojson, osm, synthetic_jiashan) if s is not None]
    if len(sources) != 1:
        typer.echo("give exactly one of --geojson, --osm, --synthetic-jiashan", err=True)
        raise typer.Exit(2)

    def progress(message: str) -> None:
        typer.echo(f"  {message}", err=True)

    layers: dict = {}
    layers_source = ""
    try:
        typer.echo(f"reading {sources[0]}", err=True)
        if geojson:
            graph = _in_wgs84(road_import.load_geojson(geojson), crs)
        elif osm:
            graph = _in_wgs84(road_import.load_osm(osm, progress=progress), crs)
        else:
            assert synthetic_jiashan is not None  # exactly one source was given
            # The simulation's county: only this command, the composition root, reaches it.
            from simulators.jiashan_geo import region_layers
            from simulators.jiashan_roads import build_jiashan_network

            graph = build_jiashan_network(synthetic_jiashan).graph
            layers = region_layers(synthetic_jiashan)
            layers_source = f"simulated Jiashan ({synthetic_jiashan.name})"
        typer.echo(f"read {graph.n_nodes} nodes, {graph.n_edges} edges; keeping the part every node can reach and leave", err=True)
        pruned = routable(graph, min_nodes=min_nodes)
    except UnroutableNetwork as exc:
        typer.echo(f"refused, the loaded road network is unchanged: {exc}", err=True)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot import the road network: {exc}", err=True)
        raise typer.Exit(1) from None
    graph = pruned.graph
    if pruned.dropped_nodes:
        typer.echo(
            f"dropped {pruned.dropped_nodes} nodes and {pruned.dropped_edges} edges outside the largest strongly connected "
            f"part ({pruned.components - 1} smaller parts: one-way dead ends, islands, roads cut at the extract's edge)"
        )
    try:
        with connect(settings.database_url) as conn:
            typer.echo(f"writing {graph.n_nodes} nodes and {graph.n_edges} edges", err=True)
            version = save_road_graph(conn, graph, datetime.now(UTC))
            if layers:
                from dashboard.map_layers import save_region_layer

                with conn.transaction():
                    for name, doc in layers.items():
                        save_region_layer(conn, name, doc, source=layers_source)
    except psycopg.Error as exc:
        _database_refused(exc)
    typer.echo(f"road network: {graph.n_nodes} nodes, {graph.n_edges} edges (version {version})")
    if layers:
        typer.echo("region layers: " + ", ".join(layers))


def _in_wgs84(graph, crs: str):
    """The imported graph with its nodes in WGS84 (the database's coordinates)."""
    import dataclasses

    from dispatch.coords import to_wgs84

    lat, lon = to_wgs84(graph.lat, graph.lon, crs)
    return graph if crs.strip().lower() == "wgs84" else dataclasses.replace(graph, lat=lat, lon=lon)


@region_app.command("load")
def region_load(
    name: Annotated[str, typer.Argument(help="the layer: boundary, rivers or towns")],
    file: Annotated[Path | None, typer.Argument(help="a GeoJSON FeatureCollection, Feature or geometry (boundary: "
                                                    "region.boundary_file when not given)")] = None,
    config: ConfigOption = None,
    crs: Annotated[str, typer.Option(help="the file's coordinates: wgs84, or gcj02 (e.g. a DataV or AutoNavi boundary), converted to WGS84")] = "wgs84",
) -> None:
    """Replace one of the console map's region layers with a GeoJSON file. The boundary
    feature whose properties have `"home": true` is the area the map frames; a file that
    marks none has its feature of the county's adcode (region.adcode), or its only one, marked."""
    import orjson

    from dashboard.map_layers import RegionLayerError, feature_collection, mark_home, save_region_layer
    from dispatch.coords import CoordinateError, geojson_to_wgs84
    from kernel.db import connect

    settings = _settings(config)
    if file is None:
        if name != "boundary" or not settings.region.boundary_file:
            typer.echo(f"give the {name} layer's file" + (" (or set WATCHPOST_REGION__BOUNDARY_FILE)" if name == "boundary" else ""), err=True)
            raise typer.Exit(2)
        file = Path(settings.region.boundary_file)
    try:
        doc = geojson_to_wgs84(orjson.loads(file.read_bytes()), crs)
        if name == "boundary":
            doc = mark_home(feature_collection(doc), settings.region.adcode)
        with connect(settings.database_url) as conn:
            n = save_region_layer(conn, name, doc, source=file.name)
    except (OSError, orjson.JSONDecodeError, RegionLayerError, CoordinateError) as exc:
        typer.echo(f"cannot load the region layer: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"region layer {name}: {n} features")
    if name == "boundary":
        homes = [str(f["properties"].get("name", "?")) for f in doc["features"]
                 if isinstance(f, dict) and isinstance(f.get("properties"), dict) and f["properties"].get("home") is True]
        typer.echo(f"home area: {', '.join(homes)}" if homes else
                   "no feature is the county's (none marked home, none of its adcode): the map frames the roads")


@app.command("dispatch")
def dispatch(config: ConfigOption = None, client_id: Annotated[str | None, typer.Option(help="overrides dispatch.client_id")] = None) -> None:
    """Run a dispatcher: assign the nearest unit by road time, drive incident lifecycles,
    send partner alerts. Several may run at once."""
    import asyncio

    from dispatch.cap import CapSender
    from dispatch.service import Dispatcher, run_dispatcher
    from kernel.db import connect

    settings = _settings(config)
    client_id = client_id or settings.client_id_for(settings.dispatch)
    dispatcher = Dispatcher(
        database_url=settings.database_url,
        mqtt_endpoint=settings.mqtt_for(settings.dispatch),
        topic_root=settings.topic_root,
        client_id=client_id,
        redispatch_after_s=settings.dispatch.redispatch_after_s,
        first_responder_margin_s=settings.dispatch.first_responder_margin_s,
        first_responder_answer_s=settings.dispatch.first_responder_answer_s,
        verify_answer_s=settings.dispatch.verify_answer_s,
        first_responder_call_after_s=settings.dispatch.first_responder_call_after_s,
        # Not a shared group: every dispatcher hears every crew report, in order; the
        # database applies each once (see dispatch.store.apply_unit_status).
        share_group="",
        connect_db=lambda url: connect(url, application_name=client_id),
        cap_sender=CapSender(settings.region.cap_sender, settings.region.cap_sender_label()),
    )

    if settings.metrics_port:
        from kernel.health import serve_health

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
    usernames: Annotated[list[str], typer.Argument(metavar="USERNAME...")],
    config: ConfigOption = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")] = False,
) -> None:
    """Set (or reset) a user's password; it is stored only as an argon2 hash. Several users
    given at once get the same password (the demo's village doctors, one per post): it is
    hashed once, because a hundred argon2 hashes at every start of the demo are slow."""
    from dashboard.auth import hash_password
    from kernel.db import connect

    settings = _settings(config)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        typer.echo("a password needs at least 8 characters", err=True)
        raise typer.Exit(2)
    with connect(settings.database_url) as conn:
        updated = {r[0] for r in conn.execute("UPDATE users SET password_hash = %s WHERE username = ANY(%s) RETURNING username",
                                              (hash_password(password), usernames))}
    missing = [u for u in usernames if u not in updated]
    if missing:
        typer.echo(f"no user {', '.join(map(repr, missing))} in the registry", err=True)
        raise typer.Exit(1)
    typer.echo(f"password set for {usernames[0]}" if len(usernames) == 1 else f"password set for {len(usernames)} users")


@user_app.command("unlock")
def user_unlock(username: str, config: ConfigOption = None) -> None:
    """Forget a user's failed logins (from every address), so they can log in again at once."""
    from kernel.db import connect

    settings = _settings(config)
    with connect(settings.database_url) as conn:
        cleared = conn.execute("DELETE FROM login_failures WHERE username = %s", (username,)).rowcount
    typer.echo(f"{username}: {cleared} throttled address(es) cleared")


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
    from kernel.clock import SystemClock

    from dashboard.logins import ThrottleLimits

    settings = _settings(config)
    api = settings.api
    application = create_app(
        database_url=settings.database_url,
        token_secret=_api_secret(settings),
        topic_root=settings.topic_root,
        mqtt=settings.mqtt_for(api),
        token_ttl=timedelta(seconds=api.token_ttl_s),
        pool_size=api.db_pool_size,
        max_body_bytes=api.max_body_bytes,
        ws_per_user=api.ws_per_user,
        ws_recheck_s=api.ws_recheck_s,
        throttle=ThrottleLimits(free_attempts=api.login_free_attempts, address_free_attempts=api.login_address_free_attempts,
                                max_delay=timedelta(seconds=api.login_max_delay_s)),
        docs=api.docs,
        metrics_token=api.metrics_token,
        clock=SystemClock(),
        region=settings.region,
    )
    if api.metrics_port:
        from kernel.health import serve_health

        hub = application.state.ctx.hub
        serve_health(api.metrics_port, application.state.metrics, lambda: {"event_stream": "ok" if hub.listening else "unavailable"})
    # Pings find dead websocket clients within ping interval + timeout. log_config=None:
    # uvicorn's own loggers go through kernel.logs, whose filter keeps tokens (a `?token=`
    # in a websocket URL) and phone numbers out of every line. No per-message compression:
    # every socket has its own compressor, so one event sent to thousands of clients was
    # compressed thousands of times (a quarter of a burst's CPU), and each compressor's
    # memory was most of a connection's; events are a few hundred bytes of JSON.
    uvicorn.run(application, host=api.host, port=port or api.port, log_level=settings.log_level.lower(), log_config=None,
                ws_ping_interval=20, ws_ping_timeout=20, ws_max_size=65536, ws_per_message_deflate=False)


@app.command(
    "simulate",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def simulate(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Run the simulated Jiashan county over MQTT (all options: watchpost simulate --help)."""
    from urllib.parse import quote

    from simulators.cli import simulate as run_simulation
    from kernel.broker import SIMULATOR_USER, load_or_create_secret, password_for
    from kernel.settings import MqttEndpoint

    args = list(ctx.args)
    if {"-h", "--help"} & set(args):
        raise typer.Exit(run_simulation(args))
    settings = _settings(config)
    # The simulator speaks for many devices: it logs in as the simulator's accounts, whatever
    # account WATCHPOST_MQTT_URL names, on the same broker.
    endpoint = MqttEndpoint.parse(settings.mqtt_url)
    password = password_for(load_or_create_secret(watchpost_home() / "mqtt-secret"), SIMULATOR_USER)
    scheme = "mqtts" if endpoint.tls else "mqtt"
    ca = f"?ca_file={quote(ca_file, safe='')}" if (ca_file := settings.mqtt_for().ca_file) else ""
    defaults = ["--mqtt-url", f"{scheme}://{SIMULATOR_USER}:{quote(password, safe='')}@{endpoint.host}:{endpoint.port}{ca}",
                "--root", settings.topic_root]
    # `make up` loads this registry: simulate exactly the devices the platform knows.
    registry_file = watchpost_home() / "jiashan-registry.yaml"
    if registry_file.exists() and not {"--registry", "--persons"} & set(args):
        defaults += ["--registry", str(registry_file)]
    # Stations that speak HJ 212 connect to the gateway `watchpost run` starts next to the
    # broker, with the PWs `registry load` derived from the deployment's secret.
    if not any(a.startswith("--hj212") for a in args):
        defaults += ["--hj212", f"{endpoint.host}:{HJ212_PORT}"]
    if not any(a.startswith("--station-secret") for a in args):
        defaults += ["--station-secret", str(watchpost_home() / "mqtt-secret")]
    from datetime import UTC, datetime

    started = datetime.now(UTC)
    code = run_simulation(defaults + args)
    if code == 0 and "--dry-run" not in args:
        from kernel.db import connect
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
        html_path, pdf_path = build(settings.database_url, from_.date(), to.date(), out, region=settings.region)
    except ReportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{html_path}\n{pdf_path}")


@app.command("partner-report")
def partner_report_cmd(
    partner: Annotated[str, typer.Option("--partner", help="partner_id from the registry")],
    month: Annotated[str, typer.Option("--month", help="YYYY-MM (Asia/Shanghai)")],
    out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("."),
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="also print a PDF")] = True,
    config: ConfigOption = None,
) -> None:
    """The monthly cross-border water report for one partner district: HTML and PDF."""
    from dashboard.partner_report import build
    from dashboard.report import ReportError

    settings = _settings(config)
    try:
        html_path, pdf_path = build(settings.database_url, partner, month, out, region=settings.region, pdf=pdf)
    except ReportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{html_path}\n{pdf_path}" if pdf_path else str(html_path))


@app.command("status")
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object, for monitoring scripts")] = False,
) -> None:
    """The state of a running installation: schema version, connected processes, the API's
    health, ingest lag, dead letters, silent devices, alarms, incidents, units."""
    import orjson

    from kernel.db import connect
    from watchpost import status as installation
    from watchpost.migrations import load_migrations

    settings = _settings(config)
    with connect(settings.database_url, application_name="status") as conn:
        facts = installation.read_status(conn, known_schema_version=max(m.version for m in load_migrations()))
    facts["api"] = installation.probe_api(settings.api.host, settings.api.port)
    if as_json:
        typer.echo(orjson.dumps(facts, option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(installation.render_text(facts))


@app.command("hj212")
def hj212(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on for stations")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port the stations connect to")] = HJ212_PORT,
    mqtt_url: Annotated[str | None, typer.Option(help="broker URL of the gateway's account (default: the configured broker, as the account named by --client-id)")] = None,
    client_id: Annotated[str, typer.Option(help="the gateway's broker account and so its client id, one per gateway process (watchpost-hj212-1, -2, …)")] = "watchpost-hj212-1",
    metrics_port: Annotated[int, typer.Option(help="serve Prometheus metrics on 127.0.0.1:PORT (0: none)")] = 0,
    refresh_s: Annotated[float, typer.Option(help="how often the stations' MN and passwords are re-read")] = 60.0,
) -> None:
    """Run the HJ 212-2017 gateway: stations' uploads over TCP → water telemetry on the broker."""
    from watchpost import hj212_service

    settings = _settings(config)
    try:
        hj212_service.run(
            settings, watchpost_home(), host=host, port=port, mqtt_url=mqtt_url, client_id=client_id,
            metrics_port=metrics_port, refresh_s=refresh_s,
        )
    except hj212_service.Hj212SchemaMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@app.command("hj212-password")
def hj212_password(mn: str) -> None:
    """Print the HJ 212 PW derived for a data logger's MN (`hj212_password: derived` in the
    registry), to configure the logger with."""
    from ingest.hj212_gateway import derived_station_password
    from kernel.broker import load_or_create_secret

    typer.echo(derived_station_password(load_or_create_secret(watchpost_home() / "mqtt-secret"), mn))


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
    from kernel.db import connect
    from watchpost.deployment_secrets import HJ212_SECRET, guarded_secret

    settings = _settings(config)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("PW", hide_input=True, confirmation_prompt=True)
    try:
        build_segment(Frame(st="21", cn="2011", pw=password, mn=mn))  # what a station's frame must pass
    except ValueError:
        typer.echo("an MN has 1-27 and a PW 1-9 characters, none of them ; = & , or blank", err=True)
        raise typer.Exit(2) from None
    try:
        with connect(settings.database_url) as conn:
            digest = password_digest(guarded_secret(conn, watchpost_home(), HJ212_SECRET), mn, password)
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

    settings = _settings(config)  # fail early on a bad configuration, with the message it gives
    extra = ["--config", str(config)] if config else []
    commands = {
        "ingest": [sys.executable, "-m", "watchpost.cli", "ingest", *extra],
        # Two alert consumers in one group: while one is restarted the other takes every alert.
        **{
            f"alerts-{n}": [sys.executable, "-m", "watchpost.cli", "alerts", *extra, "--instance", str(n),
                            *(["--metrics-port", "0"] if n > 1 else [])]
            for n in (1, 2)
        },
        "dispatch": [sys.executable, "-m", "watchpost.cli", "dispatch", *extra],
        "api": [sys.executable, "-m", "watchpost.cli", "serve", *extra],
        "notify": [sys.executable, "-m", "watchpost.cli", "notify", *extra, "--metrics-port", "0"],
        # Automatic water stations' HJ 212 uploads over TCP (port 9212), republished as the
        # gateway's own broker account (watchpost-hj212-1).
        "hj212": [sys.executable, "-m", "watchpost.cli", "hj212", *extra],
    }
    if simulate_scenario:
        home = watchpost_home()
        commands["simulator"] = [sys.executable, "-m", "watchpost.cli", "simulate", *extra, "--scenario", simulate_scenario, "--quiet",
                                 *_village_doctor_options(settings, home)]
        # The families' side of the demo: an SMSC that takes the SMS and a phone that answers
        # every call and presses 1 (the notifier's settings point at them: scripts/services.sh).
        commands["smsc"] = [sys.executable, "-m", "simulators.smsc", "--port", "2775", "--log", str(home / "sms.log")]
        commands["phones"] = [sys.executable, "-m", "simulators.phone", "--phonebook", str(home / "phonebook.json"), "*"]
    supervisor = Supervisor(
        commands, quick_restart={"alerts-1", "alerts-2"},
        niceness={"ingest": settings.ingest.nice, "simulator": settings.ingest.nice},
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: supervisor.stop())
    raise typer.Exit(supervisor.run())


DOCTOR_PASSWORD_FILE = "doctor-password"


def _village_doctor_options(settings: Settings, home: Path) -> list[str]:
    """What the simulator needs to play the posts' village doctors: the API this supervisor
    runs, and the file holding the demo doctors' password (written mode 600 by
    scripts/services.sh, never passed on a command line, where `ps` shows it). Without the
    file no doctor answers, as before, and the run says so."""
    password_file = home / DOCTOR_PASSWORD_FILE
    if not password_file.is_file():
        typer.echo(f"no {password_file}: the simulated village doctors do not answer their alerts", err=True)
        return []
    return ["--api-url", local_api_url(settings.api.host, settings.api.port), "--doctor-password-file", str(password_file)]


def local_api_url(host: str, port: int) -> str:
    """The API as a process on the same machine reaches it: an API listening on every
    address (0.0.0.0, ::) is reached on the loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main() -> None:
    """The `watchpost` command: a database or broker that is down ends a command with one
    line naming it and the cause, exit code 3 (watchpost/outage.py), not a traceback."""
    from watchpost.outage import UNAVAILABLE, describe

    from watchpost.deployment_secrets import SecretRefused

    try:
        app()
    except SecretRefused as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(1) from None
    except Exception as exc:
        try:
            settings: Settings | None = load_settings()
        except SettingsError:
            settings = None
        line = describe(exc, database_url=settings.database_url if settings else "",
                        mqtt_url=settings.mqtt_url if settings else "")
        if line is None:
            raise
        typer.echo(line, err=True)
        raise SystemExit(UNAVAILABLE) from None


if __name__ == "__main__":
    main()
