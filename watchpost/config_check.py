"""`watchpost config check` beyond what loading the settings checks: the strength of the
deployment's secrets and, with `--connect`, whether the database and the broker answer.

Every problem names what to change (the environment variable, or the file) and the whole
list is reported at once, like the settings' own problems.
"""

from __future__ import annotations

import socket
import ssl
import stat
from pathlib import Path

from kernel.settings import Settings, env_name
from watchpost.outage import cause, where

# A token signing key or bearer token shorter than this, or made of few distinct characters
# (a word, "xxxx…"), can be guessed; 32 random base64 characters carry 192 bits.
MIN_SECRET_CHARS = 32
MIN_TOKEN_CHARS = 16
MIN_DISTINCT_CHARS = 10
# The secret files derive every device's MQTT password and every station's HJ 212 digest.
SECRET_FILES = ("mqtt-secret", "hj212-secret", "api-secret")
MIN_SECRET_FILE_CHARS = 32
CONNECT_TIMEOUT_S = 5.0


def _weak(value: str, minimum: int) -> str | None:
    if len(value) < minimum:
        return f"too short ({len(value)} characters; at least {minimum} random ones: head -c 32 /dev/urandom | base64)"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"too simple ({len(set(value))} distinct characters): use random bytes, e.g. head -c 32 /dev/urandom | base64"
    return None


def secret_problems(settings: Settings, home: Path) -> list[str]:
    """Weak secrets in the settings, and secret files others may read or that are too short."""
    problems = []
    for key, value, minimum in (("api.token_secret", settings.api.token_secret, MIN_SECRET_CHARS),
                                ("api.metrics_token", settings.api.metrics_token, MIN_TOKEN_CHARS),
                                ("notify.sms_webhook_token", settings.notify.sms_webhook_token, MIN_TOKEN_CHARS)):
        if value and (why := _weak(value, minimum)):
            problems.append(f"{env_name(key)} ({key}): {why}")
    for name in SECRET_FILES:
        path = home / name
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{path}: cannot be read ({exc.strerror}); it must be readable by the user Watchpost runs as")
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(f"{path}: other users may read it (mode {stat.S_IMODE(mode):o}): chmod 600 {path}")
        if len(text) < MIN_SECRET_FILE_CHARS:
            problems.append(f"{path}: too short ({len(text)} characters) to be a Watchpost secret: restore it from the backup")
    return problems


def database_problems(settings: Settings, known_version: int) -> list[str]:
    """Can the database be reached, and is its schema this Watchpost's?"""
    import psycopg

    from kernel.db import connect

    label = f"{env_name('database_url')} ({where(settings.database_url)})"
    try:
        with connect(settings.database_url, application_name="watchpost-config-check") as conn:
            has_table = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone() if has_table and has_table[0] else None
    except psycopg.Error as exc:
        return [f"{label}: cannot connect: {cause(exc)}"]
    current = version[0] if version else None
    if current is None:
        return [f"{label}: reachable, but it has no Watchpost schema: run watchpost db migrate"]
    if current < known_version:
        return [f"{label}: reachable, schema at version {current} of {known_version}: run watchpost db migrate"]
    if current > known_version:
        return [f"{label}: reachable, schema at version {current}, newer than this Watchpost ({known_version}): upgrade it"]
    return []


def broker_problems(settings: Settings) -> list[str]:
    """Does every configured broker address answer MQTT? Checked with an anonymous CONNECT,
    which a Watchpost broker refuses ("not authorised") — proof it is there — without
    logging in: the broker takes an account's name as its client id, so logging in as a
    running service's account would take over that service's session."""
    problems = []
    urls = {"mqtt_url": settings.mqtt_url, "ingest.mqtt_url": settings.ingest.mqtt_url,
            "alerts.mqtt_url": settings.alerts.mqtt_url, "dispatch.mqtt_url": settings.dispatch.mqtt_url,
            "api.mqtt_url": settings.api.mqtt_url}
    seen: set[tuple[str, int, bool]] = set()
    for key, url in urls.items():
        if not url:
            continue
        endpoint = settings.mqtt_for() if key == "mqtt_url" else settings.mqtt_for(getattr(settings, key.split(".")[0]))
        address = (endpoint.host, endpoint.port, endpoint.tls)
        if address in seen:
            continue
        seen.add(address)
        label = f"{env_name(key)} ({endpoint.host}:{endpoint.port})"
        try:
            code = _anonymous_connack(endpoint.host, endpoint.port, endpoint.ssl_context())
        except (OSError, ValueError) as exc:
            problems.append(f"{label}: the broker does not answer: {getattr(exc, 'strerror', None) or exc}")
            continue
        if code == 0:
            problems.append(f"{label}: the broker accepts clients without a password: set allow_anonymous false "
                            "(watchpost broker sync writes such a configuration)")
    return problems


def amqp_problems(settings: Settings) -> list[str]:
    """With ingest reading a RabbitMQ queue: does every node of `ingest.amqp_urls` accept
    ingest's login? (Logging in takes over nothing over AMQP: connections have no identity.)"""
    if settings.ingest.source != "amqp":
        return []
    import pika
    import pika.exceptions

    from ingest.amqp_source import node_label

    problems = []
    for url in settings.ingest.amqp_nodes():
        label = f"{env_name('ingest.amqp_urls')} ({node_label(url)})"
        try:
            params = pika.URLParameters(url)
            params.socket_timeout = params.stack_timeout = CONNECT_TIMEOUT_S
            params.connection_attempts = 1
            pika.BlockingConnection(params).close()
        except pika.exceptions.ProbableAuthenticationError:
            problems.append(f"{label}: the node refuses ingest's user name or password")
        except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
            problems.append(f"{label}: the node does not answer: {type(exc).__name__} {exc}".rstrip())
    return problems


def _anonymous_connack(host: str, port: int, context: ssl.SSLContext | None) -> int:
    """The return code of the broker's CONNACK to an MQTT 3.1.1 CONNECT without credentials
    (0 accepted, 4/5 refused: bad credentials / not authorised)."""
    body = b"\x00\x04MQTT\x04\x02\x00\x0a\x00\x00"  # protocol, level 4, clean session, keep-alive 10 s, empty client id
    packet = b"\x10" + bytes([len(body)]) + body
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as raw:
        sock = context.wrap_socket(raw, server_hostname=host) if context is not None else raw
        sock.sendall(packet)
        answer = b""
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                break
            answer += chunk
    if len(answer) < 4 or answer[0] != 0x20:
        raise ValueError(f"not an MQTT broker (answered {answer[:4]!r})")
    return answer[3]
