"""An operator command meets a database or broker that is down: one line that says which
service, where, and why — never a traceback, which hides the cause in 30 lines of frames.

The command line's entry point (`watchpost.cli.main`) passes every exception that escapes a
command through `describe`; the ones it recognises become that line and exit code
`UNAVAILABLE` (a database without the schema too: it is as unusable, and as fixable),
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Distinct from 1 (the command failed: bad input, a refused migration) and 2 (usage or
# configuration): a script can tell "try again later" from "fix something".
UNAVAILABLE = 3


def where(url: str) -> str:
    """host:port of a URL, without its credentials (a message must not print a password)."""
    try:
        parts = urlsplit(url)
        if parts.hostname:
            return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    except ValueError:
        pass
    return "the configured address"


def cause(exc: BaseException) -> str:
    """The cause in an error's text, on one line: libpq's `connection to server at "h",
    port p failed: Connection refused` + a hint line becomes `Connection refused`."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0].rsplit(" failed: ", 1)[-1]


def describe(exc: BaseException, *, database_url: str = "", mqtt_url: str = "") -> str | None:
    """The one-line cause of an outage, or None when `exc` is not one (a bug: let it show)."""
    import psycopg

    if isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)):
        # Not an outage but as common a first-day mistake: a database nobody migrated yet.
        return (f"the database at {where(database_url)} has no Watchpost schema, or an older one ({cause(exc)}): "
                "run `watchpost db migrate`")
    if isinstance(exc, psycopg.OperationalError):
        # libpq's text names the server and the cause ("connection refused", "password
        # authentication failed", "database … does not exist", "server closed the connection").
        return f"the database at {where(database_url)} is unavailable: {cause(exc)} (WATCHPOST_DATABASE_URL)"
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - the pool ships with the API's dependencies
        PoolTimeout = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(exc, PoolTimeout):
        return f"the database at {where(database_url)} did not answer in time (WATCHPOST_DATABASE_URL)"
    try:
        import aiomqtt
    except ImportError:  # pragma: no cover
        aiomqtt = None  # type: ignore[assignment]
    if aiomqtt is not None and isinstance(exc, aiomqtt.MqttError):
        return f"the broker at {where(mqtt_url)} is unavailable: {cause(exc)} (WATCHPOST_MQTT_URL)"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        # A plain socket error escapes only from a broker client (paho) or an HTTP probe.
        return f"the broker at {where(mqtt_url)} is unavailable: {cause(exc)} (WATCHPOST_MQTT_URL)"
    return None
