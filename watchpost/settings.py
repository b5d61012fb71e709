"""Watchpost's settings: one frozen dataclass, built once by each process's entry point.

Only `load_settings` reads the environment (and, optionally, a TOML file); everything else
takes a `Settings` or the individual values it needs as arguments.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ENV_PREFIX = "WATCHPOST_"
# Variables of the same prefix that are not process settings: they steer the local
# service scripts (scripts/services.sh, scripts/timescaledb.sh) and the test fixtures.
_SCRIPT_VARIABLES = frozenset(
    {"WATCHPOST_CONFIG", "WATCHPOST_HOME", "WATCHPOST_PG_PORT", "WATCHPOST_BROKER_PORT", "WATCHPOST_TEST_DATABASE_URL"}
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what was expected."""


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise SettingsError(
                f"WATCHPOST_MQTT_URL must look like mqtt://user:password@host:1883, got scheme {parts.scheme!r}"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


@dataclass(frozen=True, slots=True)
class IngestSettings:
    # This process's broker URL when it differs from the top-level one (each process has
    # its own broker account: ingest may only read device topics).
    mqtt_url: str = ""
    # A batch is committed when it holds this many messages or its oldest message has
    # waited this long, whichever comes first: large batches make COPY cheap, the wait
    # bounds the latency an alarm sees.
    batch_max_messages: int = 5000
    batch_max_wait_s: float = 0.02
    # MQTT v5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may push
    # to one ingest worker. Messages are acknowledged only after their batch commits, so
    # this is also the bound on what a worker holds in memory while the database is slow.
    receive_maximum: int = 20000
    share_group: str = "watchpost-ingest"
    client_id: str = "watchpost-ingest-1"
    # How long the broker keeps this worker's session (and queues its messages) while the
    # worker is down. A day covers a weekend outage of a county deployment.
    session_expiry_s: int = 86400
    max_payload_bytes: int = 65536
    max_senml_records: int = 512
    # Device clocks drift; beyond this a timestamp from the future is a device fault.
    future_tolerance_s: float = 300.0
    # Devices buffer while offline; older than this is a stale clock, not a late reading.
    max_age_s: float = 30 * 86400.0
    # Longest wait between retries of a failed commit or a lost database connection.
    db_retry_max_s: float = 10.0
    registry_refresh_s: float = 30.0
    # Detection rules run in ingest's transactions; off only for measuring bare ingest.
    rules_enabled: bool = True
    # How often due timers (fall windows, inactivity, silent devices, escalation) are ticked.
    timer_interval_s: float = 1.0
    maintenance_interval_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    mqtt_url: str = ""  # as for ingest; the dispatcher's account may publish orders
    client_id: str = "watchpost-dispatch-1"
    # A unit that has not reported en_route this long after its order counts as refusing.
    redispatch_after_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ApiSettings:
    mqtt_url: str = ""  # the API's broker account publishes manual assignments
    host: str = "127.0.0.1"
    port: int = 8000
    # Signing key of the API's tokens; empty: a random one kept in $WATCHPOST_HOME/api-secret
    # (every API process of an installation must share it).
    token_secret: str = ""
    token_ttl_s: int = 12 * 3600  # one shift
    db_pool_size: int = 10


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "postgresql://watchpost@127.0.0.1:5433/watchpost"
    mqtt_url: str = "mqtt://127.0.0.1:1884"
    topic_root: str = "jiashan"
    log_level: str = "INFO"
    metrics_port: int = 0  # 0: no metrics endpoint for this process
    ingest: IngestSettings = field(default_factory=IngestSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    api: ApiSettings = field(default_factory=ApiSettings)

    def mqtt_for(self, process: IngestSettings | DispatchSettings | ApiSettings) -> MqttEndpoint:
        return MqttEndpoint.parse(process.mqtt_url or self.mqtt_url)


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
    return _build(Settings, values, "")


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(prefix + u for u in unknown)}")
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(raw, Mapping):
                raise SettingsError(f"{prefix}{name} must be a section, got {raw!r}")
            kwargs[name] = _build(type(default), raw, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(f"{prefix}{name}", raw, type(default))
    return cls(**kwargs)


def _coerce(name: str, raw: Any, kind: type) -> Any:
    try:
        if kind is bool and isinstance(raw, str):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
