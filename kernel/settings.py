"""Watchpost's settings: one frozen dataclass, built once by each process's entry point.

Only `load_settings` reads the environment (and, optionally, a TOML file); everything else
takes a `Settings` or the individual values it needs as arguments.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ENV_PREFIX = "WATCHPOST_"
# Variables of the same prefix that are not process settings: they steer the local
# service scripts (scripts/services.sh, scripts/timescaledb.sh), the backup's search for
# pg_dump, the compose file's image and host ports (an operator exports them in the same
# shell as runs `watchpost`) and the test fixtures.
_SCRIPT_VARIABLES = frozenset(
    {"WATCHPOST_CONFIG", "WATCHPOST_HOME", "WATCHPOST_PG_PORT", "WATCHPOST_BROKER_PORT", "WATCHPOST_TEST_DATABASE_URL",
     "WATCHPOST_PG_BIN", "WATCHPOST_PG_MAJOR", "WATCHPOST_PG_ROOTFS",
     "WATCHPOST_IMAGE", "WATCHPOST_API_PORT", "WATCHPOST_MQTT_PORT", "WATCHPOST_HJ212_PORT",
     "WATCHPOST_TEST_ALERT_CRASH_ONCE"}
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what was expected.
    `problems` lists each problem on its own."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    # The CA certificate an mqtts:// connection trusts (None: the system's CAs).
    ca_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of an mqtts:// endpoint (paho's `tls_set_context`, aiomqtt's
        `tls_context`), verifying the broker's certificate and host name; None for mqtt://."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca_file or None)

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise SettingsError(
                f"WATCHPOST_MQTT_URL must look like mqtt://user:password@host:1883, got scheme {parts.scheme!r}"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        # mqtts://…?ca_file=/path/ca.crt: the CA to trust, for a client given only a URL.
        ca_file = parse_qs(parts.query).get("ca_file", [None])[-1]
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            ca_file=ca_file,
        )


def setting(default: Any, doc: str, unit: str = "", minimum: float | None = None) -> Any:
    """A documented setting: `doc` and `unit` feed the generated configuration reference
    (docs/configuration.md), `minimum` the checks of `watchpost config check`."""
    return field(default=default, metadata={"doc": doc, "unit": unit, "minimum": minimum})


def section(cls: type, doc: str) -> Any:
    return field(default_factory=cls, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class IngestSettings:
    source: str = setting(
        "mqtt", "where ingest reads the devices' messages: mqtt (a persistent MQTT session on the broker) or amqp (a RabbitMQ "
        "quorum queue bound to the device topics, read over AMQP: docs/delivery.md, \"Reading a quorum queue\")")
    mqtt_url: str = setting("", "this process's broker URL, when it differs from the top-level one (ingest's account may only read device topics)")
    amqp_urls: str = setting(
        "", "RabbitMQ nodes the amqp source reads through, amqp://user:password@host:5672/vhost (amqps:// for TLS), separated "
        "by spaces or commas; a lost connection moves on to the next")
    amqp_queue: str = setting(
        "watchpost-ingest", "the quorum queue the amqp source declares, binds to the device topics and reads; workers reading "
        "the same queue split its messages")
    batch_max_messages: int = setting(5000, "a batch is committed when it holds this many messages… (large batches make COPY cheap)", "messages", 1)
    batch_max_wait_s: float = setting(0.02, "…or when its oldest message has waited this long (bounds the latency an alarm sees)", "s", 0.001)
    receive_maximum: int = setting(
        20000, "MQTT v5 Receive Maximum (the amqp source: its prefetch): unacknowledged messages the broker may push to one "
        "worker, at most 65535; messages are acknowledged only after commit, so this bounds a worker's memory while the "
        "database is slow", "messages", 1)
    share_group: str = setting(
        "", "shared-subscription group for several workers to split the load; empty (one worker): a plain subscription "
        "(Mosquitto 2.1 restores either from its store after a restart; 2.0 restores only a plain one)")
    client_id: str = setting("", "MQTT client id, naming the persistent session; empty: the broker account's name (the broker "
                             "uses the account name as client id, so each worker has its own account: watchpost-ingest-1, -2, …)")
    session_expiry_s: int = setting(86400, "how long the broker keeps a stopped worker's session and queues its messages", "s", 0)
    max_payload_bytes: int = setting(65536, "larger payloads are dead-lettered as oversized", "bytes", 1)
    dead_letter_max_bytes: int = setting(4096, "a dead letter keeps at most this much of its payload (the detail says how much was cut)", "bytes", 64)
    max_senml_records: int = setting(512, "larger SenML packs are dead-lettered", "records", 1)
    future_tolerance_s: float = setting(300.0, "device clock drift accepted; later timestamps are dead-lettered as time_in_future", "s", 0)
    max_age_s: float = setting(30 * 86400.0, "older measurement times are dead-lettered as time_too_old", "s", 1)
    db_retry_max_s: float = setting(10.0, "longest wait between retries of a failed commit or a lost database connection", "s", 0.1)
    registry_refresh_s: float = setting(30.0, "how often the registry version is checked (re-read only when it changed)", "s", 0.1)
    nice: int = setting(
        0, "the scheduling niceness `watchpost run` gives ingest workers (and the simulator); 0: the same priority as the rest "
        "(a higher one gave alerts no gain when measured; docs/alarms.md)", "", 0)
    rules_enabled: bool = setting(True, "run the detection rules in ingest's transactions (off only to measure bare ingest)")
    timer_interval_s: float = setting(1.0, "how often due timers (fall windows, inactivity, silent devices, escalation) are ticked", "s", 0.05)
    maintenance_interval_s: float = setting(3600.0, "how often retention drops expired chunks", "s", 1)

    def amqp_nodes(self) -> list[str]:
        """The amqp source's node URLs, in the order they are tried."""
        return self.amqp_urls.replace(",", " ").split()


@dataclass(frozen=True, slots=True)
class AlertSettings:
    mqtt_url: str = setting("", "the alert lane's broker URL (its account reads alerts and writes receipts)")
    share_group: str = setting("watchpost-alerts", "shared-subscription group of the alert consumers (two run, so one killed never delays an alert)")
    client_id: str = setting("", "MQTT client id; empty: the broker account's name (each consumer has its own account: "
                             "watchpost-alerts-1, -2, …)")
    session_expiry_s: int = setting(
        0, "0: a consumer's session ends with its connection, so the broker never hands an alert to a consumer that is gone "
        "(it shares a group's messages with disconnected members' sessions); the device repeats an unanswered alert", "s", 0)
    receive_maximum: int = setting(100, "unacknowledged alerts the broker may push to one consumer", "messages", 1)
    future_tolerance_s: float = setting(300.0, "an alert time further ahead is a suspect clock: the receive time is used", "s", 0)
    max_age_s: float = setting(600.0, "an alert time older than this (or before 2020) is a suspect clock: the receive time is used", "s", 1)
    db_retry_max_s: float = setting(2.0, "longest wait between retries of a failed alert commit (kept short: a life is waiting)", "s", 0.05)
    registry_refresh_s: float = setting(5.0, "how often the registry version is checked, so a new person's alerts are accepted soon", "s", 0.1)
    timer_interval_s: float = setting(
        1.0, "how often a consumer ticks the lane's own states (an alert-topic fall's cancel window; ingest's timer passes tick them too)", "s", 0.1)
    metrics_port: int = setting(0, "/metrics, /healthz and /readyz of this consumer on 127.0.0.1 (0: none)", "", 0)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    mqtt_url: str = setting("", "the dispatcher's broker URL (its account publishes orders and partner alerts)")
    client_id: str = setting("", "MQTT client id; empty: the broker account's name (each dispatcher has its own account: "
                             "watchpost-dispatch-1, -2, …)")
    redispatch_after_s: float = setting(60.0, "an order not answered with en_route by then goes to the next candidate", "s", 1)
    first_responder_margin_s: float = setting(
        120.0, "the village first-aid post is alerted when it is nearer by road than the ambulance's ETA minus this", "s", 0)
    first_responder_answer_s: float = setting(
        90.0, "a village doctor's alert not accepted or declined by then counts as no answer (nothing waits on it)", "s", 1)
    verify_answer_s: float = setting(
        120.0, "a fire or gas incident at a person's home with no verification call answer recorded by then counts as "
        "no answer: an ambulance goes too", "s", 1)
    first_responder_call_after_s: float = setting(
        30.0, "the post's duty phone gets the alert by SMS at once and, not yet accepted or declined by then, a call "
        "(keypad 1 accept, 2 decline); rung until the answer time passes", "s", 0)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    mqtt_url: str = setting("", "the API's broker URL (its account publishes manual assignments)")
    host: str = setting("127.0.0.1", "address the API listens on")
    port: int = setting(8000, "port the API listens on", "", 1)
    token_secret: str = setting("", "signing key of login tokens; empty: a random key kept in $WATCHPOST_HOME/api-secret "
                                "(every API process of an installation must share it)")
    token_ttl_s: int = setting(12 * 3600, "how long a login lasts (one shift)", "s", 60)
    db_pool_size: int = setting(10, "database connections per API process", "connections", 1)
    max_body_bytes: int = setting(65536, "larger request bodies are refused with 413 before authentication, chunked or not", "bytes", 1)
    ws_per_user: int = setting(8, "open websockets per user and API process; one more is refused with close code 4029", "sockets", 1)
    ws_recheck_s: float = setting(30.0, "how often an open websocket re-checks its token (a revoked or expired one is closed with 1008)", "s", 1)
    login_free_attempts: int = setting(5, "failed logins per user and client address before each further attempt waits (15 s, doubling)", "attempts", 1)
    login_address_free_attempts: int = setting(30, "failed logins per client address, whatever the usernames, before attempts wait", "attempts", 1)
    login_max_delay_s: float = setting(900.0, "the longest wait between login attempts (`watchpost user unlock NAME` clears a user's)", "s", 1)
    docs: bool = setting(False, "serve the OpenAPI description at /docs and /openapi.json (off: 404; for development and integrators)")
    metrics_token: str = setting("", "bearer token Prometheus sends for /metrics (empty: /metrics needs a control-room login token)")
    metrics_port: int = setting(0, "also serve /metrics, /healthz and /readyz without a token on 127.0.0.1 at this port (0: none)", "", 0)


@dataclass(frozen=True, slots=True)
class Hj212Settings:
    login_timeout_s: float = setting(10.0, "a new station connection must send a frame with a registered MN and its PW by then, or it is closed", "s", 0.1)
    max_connections: int = setting(1000, "open station connections in all", "connections", 1)
    max_connections_per_address: int = setting(16, "open station connections from one address; more are closed at once", "connections", 1)
    lockout_after_failures: int = setting(5, "wrong passwords in a row, from one address or for one MN, before a lockout", "", 1)
    lockout_base_s: float = setting(1.0, "the first lockout; each further wrong password doubles it", "s", 0)
    lockout_max_s: float = setting(300.0, "the longest lockout (an MN's lockout spares the addresses it last logged in from)", "s", 0)
    split_timeout_s: float = setting(60.0, "a split upload (PNUM > 1) not complete by then is dropped unacknowledged; the station resends it", "s", 1)
    clock_tolerance_s: float = setting(60.0, "a station whose data is stamped further ahead of the platform than this is told the time (CN 1012)", "s", 1)
    clock_behind_tolerance_s: float = setting(1800.0, "... or whose real-time data (CN 2011) is stamped further behind than this", "s", 1)
    clock_resync_s: float = setting(3600.0, "a station is told the time unasked at most once in this interval", "s", 1)


@dataclass(frozen=True, slots=True)
class NotifySettings:
    smpp_url: str = setting("", "the SMSC: smpp://system_id:password@host:2775 (empty: SMS is not sent over SMPP)")
    sms_webhook_url: str = setting("", "an SMS aggregator's HTTP endpoint, used instead of SMPP (docs/notifications.md shows the request)")
    sms_webhook_token: str = setting("", "bearer token sent to the SMS webhook")
    sms_sender: str = setting("Watchpost", "the SMS sender id (alphanumeric) or number")
    sip_agent: str = setting("", "the SIP user agent placing calls: the path of baresip (empty: no voice calls)")
    sip_domain: str = setting("", "the SIP trunk's domain: a call to +8613… dials sip:+8613…@domain")
    sip_account: str = setting("", "the trunk account in baresip's syntax, e.g. <sip:user@trunk>;auth_pass=…;outbound=\"sip:trunk\" "
                               "(empty: calls go straight to the domain, unregistered)")
    sip_phonebook: str = setting("", "a JSON file mapping numbers to SIP URIs, taken before the domain (the demo's simulated phones)")
    family_url: str = setting("http://127.0.0.1:8000/family", "the family page's address, linked in every SMS")
    first_aid_url: str = setting("http://127.0.0.1:8000/first-aid", "the village doctor's page, linked in a first-aid post's SMS")
    batch: int = setting(50, "notifications claimed per pass", "notifications", 1)
    max_calls: int = setting(8, "voice calls in progress at once (the trunk's channels)", "calls", 1)
    lease_s: float = setting(
        150.0, "a claimed notification belongs to this notifier this long; after a crash it is retried once the lease passes, "
        "never sooner, so a call is not placed twice in a burst (longer than the longest call)", "s", 5)
    ring_timeout_s: float = setting(30.0, "an unanswered call is given up after this (no answer)", "s", 1)
    max_attempts: int = setting(3, "attempts per notification (busy, no answer, a dead trunk or SMSC), while its step lasts", "attempts", 1)
    retry_base_s: float = setting(10.0, "wait before the second attempt; it doubles with each further one", "s", 0.1)
    poll_interval_s: float = setting(0.5, "how often due notifications are looked for (a new alarm wakes the notifier at once)", "s", 0.05)


# The simulated demo county's identity: the defaults of the region settings. A deployment
# that names another county must replace all of them (see `_region_problems`).
DEMO_REGION = {"name_zh": "嘉善", "name_en": "Jiashan", "adcode": "330421", "cap_sender": "watchpost@jiashan.gov.cn",
               "centre_lat": 30.88, "centre_lon": 120.91}


@dataclass(frozen=True, slots=True)
class RegionSettings:
    name_zh: str = setting(DEMO_REGION["name_zh"], "the county's name in Chinese, as the pages and reports show it")
    name_en: str = setting(DEMO_REGION["name_en"], "the county's name in English")
    adcode: str = setting(
        DEMO_REGION["adcode"], "the county's administrative division code (GB/T 2260, six digits): `watchpost region load "
        "boundary` frames the feature carrying it as the home area; it names the public CAP feed")
    boundary_file: str = setting("", "the county's boundary GeoJSON, loaded by `watchpost region load boundary` when no file is given")
    centre_lat: float = setting(DEMO_REGION["centre_lat"], "latitude (WGS84) the console map opens on, until the loaded boundary or roads frame it", "°", -90)
    centre_lon: float = setting(DEMO_REGION["centre_lon"], "longitude (WGS84) the console map opens on", "°", -180)
    zoom: int = setting(11, "the zoom level the console map opens at (1: the world, 18: a street)", "", 1)
    cap_sender: str = setting(
        DEMO_REGION["cap_sender"], "the CAP `sender` of water alerts to partners and the public feed; a partner's Ack "
        "references it, so change it only with no alert awaiting an answer")
    cap_sender_name: str = setting("", "the CAP `senderName`; empty: \"{name_en} water-quality monitoring (Watchpost)\"")
    app_name_zh: str = setting("", "the service's name in Chinese: the pages' title (family page, village doctor, hospital, crew) "
                               "and the 【signature】 of every SMS, which carriers deliver only when registered; empty: {name_zh}守望")
    app_name_en: str = setting("", "the pages' title in English; empty: Watchpost")
    control_room_zh: str = setting("", "the control room, titling the console and the shift report, in Chinese; empty: {name_zh}应急指挥")
    control_room_en: str = setting("", "the control room in English; empty: {name_en} Emergency Control Room")

    def app_name(self, lang: str) -> str:
        if lang == "zh":
            return self.app_name_zh or f"{self.name_zh}守望"
        return self.app_name_en or "Watchpost"

    def control_room(self, lang: str) -> str:
        if lang == "zh":
            return self.control_room_zh or f"{self.name_zh}应急指挥"
        return self.control_room_en or f"{self.name_en} Emergency Control Room"

    def cap_sender_label(self) -> str:
        return self.cap_sender_name or f"{self.name_en} water-quality monitoring (Watchpost)"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = setting("postgresql://watchpost@127.0.0.1:5433/watchpost", "PostgreSQL with TimescaleDB >= 2.19")
    mqtt_url: str = setting("mqtt://127.0.0.1:1884", "the broker: mqtt://user:password@host:port (mqtts:// for TLS)")
    mqtt_ca_file: str = setting("", "CA certificate that mqtts:// connections trust (empty: the system's CAs; the local "
                                "broker's CA is $WATCHPOST_HOME/mosquitto/tls/ca.crt)")
    topic_root: str = setting("jiashan", "first level of every topic")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = setting("text", "text for a terminal, json for one JSON object per line with ids as fields")
    metrics_port: int = setting(0, "/metrics, /healthz and /readyz of an ingest worker or a dispatcher on 127.0.0.1 (0: none; the API serves its own)", "", 0)
    ingest: IngestSettings = section(IngestSettings, "ingest workers")
    alerts: AlertSettings = section(AlertSettings, "the life-safety alert lane's consumers")
    dispatch: DispatchSettings = section(DispatchSettings, "dispatchers")
    api: ApiSettings = section(ApiSettings, "API processes")
    hj212: Hj212Settings = section(Hj212Settings, "the HJ 212 station gateway's listener")
    notify: NotifySettings = section(NotifySettings, "the notifier: SMS and voice calls to family contacts")
    region: RegionSettings = section(RegionSettings, "the county served: names, map, CAP sender, titles")

    def mqtt_for(self, process: IngestSettings | AlertSettings | DispatchSettings | ApiSettings | None = None) -> MqttEndpoint:
        endpoint = MqttEndpoint.parse((process.mqtt_url if process else "") or self.mqtt_url)
        if endpoint.ca_file is None and self.mqtt_ca_file:
            endpoint = dataclasses.replace(endpoint, ca_file=self.mqtt_ca_file)
        return endpoint

    def client_id_for(self, process: IngestSettings | AlertSettings | DispatchSettings) -> str:
        """The process's MQTT client id: its setting, or else its broker account's name."""
        return process.client_id or self.mqtt_for(process).username or ""


def load_settings(environ: Mapping[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Settings from an optional TOML file, overridden by WATCHPOST_* environment variables.

    Nested sections map to double underscores: `[ingest] batch_max_messages = 2000` or
    `WATCHPOST_INGEST__BATCH_MAX_MESSAGES=2000`. Unknown names are errors, so a typo in a
    deployment never passes silently.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = toml_path or (Path(environ["WATCHPOST_CONFIG"]) if "WATCHPOST_CONFIG" in environ else None)
    if path is not None:
        try:
            values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read configuration file {path}: {exc}") from exc
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key in _SCRIPT_VARIABLES:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if "__" in name:
            section, sub = name.split("__", 1)
            values.setdefault(section, {})[sub] = raw
        else:
            values[name] = raw
    problems: list[str] = []
    settings = _build(Settings, values, "", problems)
    problems += _semantic_problems(settings)
    if problems:
        raise SettingsError("; ".join(problems), problems)
    return settings


def _section(f: dataclasses.Field[Any]) -> type:
    """The dataclass of a section: a section field is built by its class."""
    assert isinstance(f.default_factory, type), f"{f.name} is not a section"
    return f.default_factory


def env_name(key: str) -> str:
    """The environment variable of a dotted setting name: api.port -> WATCHPOST_API__PORT."""
    return ENV_PREFIX + key.upper().replace(".", "__")


def _label(key: str) -> str:
    """How a problem names a setting: as the variable an operator sets, and its TOML key."""
    return f"{env_name(key)} ({key})"


def setting_names() -> list[str]:
    """Every setting's dotted name (api.port, ingest.batch_max_messages, …)."""
    names: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if "minimum" not in f.metadata:
                walk(_section(f), f"{prefix}{f.name}.")
            else:
                names.append(f"{prefix}{f.name}")

    walk(Settings, "")
    return names


def _unknown(key: str) -> str:
    """An unknown setting, with the closest known variable when there is one (a typo)."""
    import difflib

    candidates = [env_name(n) for n in setting_names()] + sorted(_SCRIPT_VARIABLES)
    close = difflib.get_close_matches(env_name(key), candidates, n=1, cutoff=0.75)
    return f"{_label(key)}: unknown setting" + (f", did you mean {close[0]}?" if close else "")


def _build(cls: type, values: Mapping[str, Any], prefix: str, problems: list[str]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    problems += [_unknown(f"{prefix}{u}") for u in sorted(set(values) - set(known))]
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        f = known.get(name)
        if f is None:
            continue
        if "minimum" not in f.metadata:  # a section
            if not isinstance(raw, Mapping):
                problems.append(f"{_label(prefix + name)}: must be a section, got {raw!r}")
                continue
            kwargs[name] = _build(_section(f), raw, f"{prefix}{name}.", problems)
            continue
        value = _coerce(_label(f"{prefix}{name}"), raw, type(f.default), problems)
        if value is None:
            continue
        if problem := _out_of_range(name, value, f.metadata["minimum"], f.metadata["unit"]):
            problems.append(f"{_label(prefix + name)}: {problem}")
            continue
        kwargs[name] = value
    return cls(**kwargs)


# The highest TCP port; a port setting of 0 means "none" where its minimum allows it.
MAX_PORT = 65535


def _out_of_range(name: str, value: Any, minimum: float | None, unit: str) -> str | None:
    """Why a number is out of its setting's range: below its minimum, not finite (an `inf`
    or `nan` duration would turn a wait into forever or never), or a port above 65535."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if minimum is not None and not isinstance(value, bool) and isinstance(value, int | float) and value < minimum:
        return f"must be at least {minimum:g}{unit and ' ' + unit}, got {value}"
    if name.endswith("port") and isinstance(value, int) and value > MAX_PORT:
        return f"must be a TCP port, 1-{MAX_PORT}, got {value}"
    return None


def _coerce(name: str, raw: Any, kind: type, problems: list[str]) -> Any:
    try:
        if kind is bool and isinstance(raw, str):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError):
        what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, kind.__name__)
        problems.append(f"{name}: must be {what}, got {raw!r}")
        return None


def _semantic_problems(settings: Settings) -> list[str]:
    problems = []
    for name, url in (("mqtt_url", settings.mqtt_url), ("ingest.mqtt_url", settings.ingest.mqtt_url), ("alerts.mqtt_url", settings.alerts.mqtt_url),
                      ("dispatch.mqtt_url", settings.dispatch.mqtt_url), ("api.mqtt_url", settings.api.mqtt_url)):
        if url:
            try:
                MqttEndpoint.parse(url)
            except SettingsError as exc:
                problems.append(f"{_label(name)}: {exc}")
    if not settings.database_url.startswith(("postgresql://", "postgres://")) and "dbname=" not in settings.database_url:
        problems.append(f"{_label('database_url')}: must be a postgresql:// URL or a libpq connection string")
    problems += _ingest_source_problems(settings.ingest)
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"{_label('log_level')}: must be DEBUG, INFO, WARNING or ERROR, got {settings.log_level!r}")
    if settings.log_format not in ("text", "json"):
        problems.append(f"{_label('log_format')}: must be text or json, got {settings.log_format!r}")
    if not settings.topic_root or "#" in settings.topic_root or "+" in settings.topic_root:
        problems.append(f"{_label('topic_root')}: must be a topic level without wildcards, got {settings.topic_root!r}")
    return problems + _region_problems(settings.region)


INGEST_SOURCES = ("mqtt", "amqp")


def _ingest_source_problems(ingest: IngestSettings) -> list[str]:
    if ingest.source not in INGEST_SOURCES:
        return [f"{_label('ingest.source')}: must be mqtt or amqp, got {ingest.source!r}"]
    problems = []
    urls = ingest.amqp_nodes()
    if ingest.source == "amqp" and not urls:
        problems.append(f"{_label('ingest.amqp_urls')}: ingest.source is amqp, so at least one amqp:// URL is needed")
    for url in urls:
        if urlsplit(url).scheme not in ("amqp", "amqps"):
            problems.append(f"{_label('ingest.amqp_urls')}: must be amqp:// or amqps:// URLs, got {url!r}")
    if ingest.source == "amqp" and not ingest.amqp_queue:
        problems.append(f"{_label('ingest.amqp_queue')}: must name a queue")
    return problems


# CAP 1.2: a sender "MUST NOT include spaces, commas or restricted characters (< and &)".
_CAP_SENDER_FORBIDDEN = frozenset(" ,<&\t\n")


def _region_problems(region: RegionSettings) -> list[str]:
    problems = []
    for name in ("name_zh", "name_en"):
        if not getattr(region, name).strip():
            problems.append(f"{_label('region.' + name)}: must not be empty")
    if region.adcode and not (len(region.adcode) == 6 and region.adcode.isdigit()):
        problems.append(f"{_label('region.adcode')}: must be six digits (GB/T 2260) or empty, got {region.adcode!r}")
    if not -90 <= region.centre_lat <= 90:
        problems.append(f"{_label('region.centre_lat')}: must be between -90 and 90, got {region.centre_lat}")
    if not -180 <= region.centre_lon <= 180:
        problems.append(f"{_label('region.centre_lon')}: must be between -180 and 180, got {region.centre_lon}")
    if region.zoom > 18:
        problems.append(f"{_label('region.zoom')}: must be at most 18, got {region.zoom}")
    if not region.cap_sender or _CAP_SENDER_FORBIDDEN & set(region.cap_sender):
        problems.append(f"{_label('region.cap_sender')}: must be non-empty, without spaces, commas, < or &, got {region.cap_sender!r}")
    # Another county's name with the demo's code, sender or map would send partners alerts
    # signed by the demo county and open the map on it: all of them change, or none.
    if region.name_zh != DEMO_REGION["name_zh"] or region.name_en != DEMO_REGION["name_en"]:
        stale = [k for k, v in DEMO_REGION.items() if getattr(region, k) == v]
        if stale:
            variables = ", ".join(f"{ENV_PREFIX}REGION__{k.upper()}" for k in stale)
            problems.append(f"region: the county is not the simulated demo's, but {', '.join(stale)} still "
                            f"{'is' if len(stale) == 1 else 'are'} the demo's (set {variables})")
    return problems


def reference() -> str:
    """The configuration reference, generated from the settings themselves (so it cannot
    drift): docs/configuration.md is this text, and a test keeps it so."""
    lines = [
        "# Configuration reference",
        "",
        "Generated by `watchpost config reference` from `kernel/settings.py`; do not edit by hand.",
        "Every setting is an environment variable, or a key of the TOML file given with `--config` or",
        "`WATCHPOST_CONFIG` (sections as `[ingest]`, `[alerts]`, `[dispatch]`, `[api]`, `[hj212]`, `[notify]`, `[region]`); the environment wins.",
        "`watchpost config check` validates a configuration and reports every problem at once.",
        "",
        "| environment variable | TOML key | default | unit | meaning |",
        "|---|---|---|---|---|",
    ]

    def rows(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if "minimum" not in f.metadata:
                rows(_section(f), f"{prefix}{f.name}.")
                continue
            key = f"{prefix}{f.name}"
            env = ENV_PREFIX + key.upper().replace(".", "__")
            default = f.default if f.default != "" else "(empty)"
            lines.append(f"| `{env}` | `{key}` | `{default}` | {f.metadata['unit']} | {f.metadata['doc']} |")

    rows(Settings, "")
    return "\n".join(lines) + "\n"
