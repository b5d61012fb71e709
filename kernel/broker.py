"""The project's Mosquitto configuration: listener, persistence, password file and ACL, and
where this machine's Mosquitto is.

Devices authenticate with the id that appears in their topics (a station with its station
id, a person's wearable and home hub with the person id, an ambulance with its unit id) and
the ACL lets each write only under that id. Passwords are derived from one deployment
secret (HMAC), so the registry never stores device passwords and a device's password can
be handed to its installer with `watchpost broker password ID`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kernel.topics import ANY, Kind, Topics

# Service accounts. The listeners set `use_username_as_clientid`: a client's id IS its
# account name, so no password (a wearable's, say) can take over another account's session.
# Every process that holds a connection of its own therefore has its own account, numbered
# per role (`watchpost-ingest-1`, `-2`, …), each with its own password derived from the
# deployment secret; the settings' client id defaults to the account name.
SERVICE_PREFIX = "watchpost-"
INGEST_ROLE = "ingest"  # reads device topics, writes nothing
DISPATCH_ROLE = "dispatch"  # reads unit reports, writes orders, partner alerts, receipts
API_ROLE = "api"  # writes manual orders only
HJ212_ROLE = "hj212"  # the HJ 212 station gateway: writes water topics only
SIMULATOR_ROLE = "simulator"  # the county simulator and benchmarks: any device's topics
ALERTS_ROLE = "alerts"  # the life-safety alert lane: reads alerts, writes receipts
SERVICE_ROLES = (INGEST_ROLE, ALERTS_ROLE, DISPATCH_ROLE, API_ROLE, HJ212_ROLE, SIMULATOR_ROLE)
# Accounts written per role; a deployment running more processes of a role raises it.
DEFAULT_INSTANCES = 8


def service_account(role: str, instance: int = 1) -> str:
    """The broker account (and so the client id) of one process of a role."""
    return f"{SERVICE_PREFIX}{role}-{instance}"


INGEST_USER = service_account(INGEST_ROLE)
DISPATCH_USER = service_account(DISPATCH_ROLE)
API_USER = service_account(API_ROLE)
GATEWAY_USER = service_account(HJ212_ROLE)
SIMULATOR_USER = service_account(SIMULATOR_ROLE)
ALERTS_USER = service_account(ALERTS_ROLE)


def service_users(instances: int = DEFAULT_INSTANCES) -> list[str]:
    return [service_account(r, n) for r in SERVICE_ROLES for n in range(1, instances + 1)]


def is_reserved(identifier: str) -> bool:
    """True for names the platform's own accounts use: no registry id may take one."""
    return identifier.lower().startswith(SERVICE_PREFIX)


# Roles whose numbered accounts share one password (see password_for).
_POOLED_ROLES = (SIMULATOR_ROLE, ALERTS_ROLE)
# In an ACL pattern, Mosquitto puts the connecting account's username here.
_ACL_USERNAME = "%u"
# Mosquitto 2's password file format: PBKDF2-SHA512, 101 iterations, 12-byte salt.
_PBKDF2_ITERATIONS = 101


def device_password(secret: bytes, username: str) -> str:
    digest = hmac.new(secret, username.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def password_for(secret: bytes, username: str) -> str:
    """The password of any account. The simulator's and the alert lane's accounts are pools
    of numbered connections that share one password per role, so that one URL can open
    several (the simulator's connections; the alert consumers `watchpost run` starts side by
    side); every other account's password is its own."""
    for role in _POOLED_ROLES:
        if username.startswith(f"{SERVICE_PREFIX}{role}-"):
            return device_password(secret, f"{SERVICE_PREFIX}{role}")
    return device_password(secret, username)


def pool_account(username: str, offset: int) -> str:
    """The account `offset` places after a numbered one (`watchpost-simulator-1` + 2 →
    `watchpost-simulator-3`); an unnumbered account stays itself."""
    base, _, number = username.rpartition("-")
    return f"{base}-{int(number) + offset}" if base and number.isdigit() and offset else username


def password_line(username: str, password: str, salt: bytes) -> str:
    hashed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"{username}:$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(hashed).decode()}"


def _device_writes(topics: Topics, device: str) -> list[str]:
    """What a device (or the simulator standing in for devices: `device` is then `+`) publishes."""
    return [
        topics.water_telemetry(device),
        topics.water_averages(device),
        topics.online(Kind.WATER, device),
        topics.wearable(device),
        topics.home(device, ANY),
        topics.alert(device),
        topics.online(Kind.ELDER, device),
        topics.unit_gps(device),
        topics.unit_status(device),
        topics.unit_patient(device),
        topics.online(Kind.UNIT, device),
    ]


def device_acl(topics: Topics, device: str) -> list[tuple[str, str]]:
    """(access, topic) pairs of one device (or, with `%u`, of every device): it writes only under
    its own id and reads only what is addressed to it — a crew its orders, a person's devices
    their receipts, a partner its water alerts."""
    return [("write", t) for t in _device_writes(topics, device)] + [
        ("read", topics.order(device)),
        ("read", topics.receipt(device)),
        ("read", topics.water_alert(device)),
        ("write", topics.water_ack(device)),
    ]


def role_acl(topics: Topics, role: str) -> list[tuple[str, str]]:
    """(access, topic) pairs of one service role: what it consumes and what it sends, no more."""
    if role == INGEST_ROLE:
        return [("read", f) for f in topics.ingest_filters()]
    if role == DISPATCH_ROLE:
        return [
            ("read", topics.unit_status(ANY)),
            ("read", topics.unit_gps(ANY)),
            ("read", topics.water_ack(ANY)),
            ("write", topics.order(ANY)),
            ("write", topics.water_alert(ANY)),
            ("write", topics.receipt(ANY)),
        ]
    if role == API_ROLE:
        # Manual orders; and the crew terminal's statuses and patient reports, which the API
        # sends on the crew's unit topics only for a crew user scoped to that unit
        # (dashboard/tiers.py), so that they take the crews' own path.
        return [("write", topics.order(ANY)), ("write", topics.unit_status(ANY)), ("write", topics.unit_patient(ANY))]
    if role == HJ212_ROLE:
        # Which station a frame may speak for is the gateway's check (its MN and PW).
        return [
            ("write", topics.water_telemetry(ANY)),
            ("write", topics.water_averages(ANY)),
            ("write", topics.online(Kind.WATER, ANY)),
        ]
    if role == SIMULATOR_ROLE:
        return [("write", t) for t in _device_writes(topics, ANY)] + [("read", topics.order(ANY)), ("read", topics.receipt(ANY))]
    if role == ALERTS_ROLE:
        return [("read", topics.alert(ANY)), ("write", topics.receipt(ANY))]
    raise ValueError(f"unknown service role {role!r}")


def acl_text(root: str, instances: int = DEFAULT_INSTANCES) -> str:
    topics = Topics(root)
    blocks = []
    for role in SERVICE_ROLES:
        rules = "\n".join(f"topic {access} {topic}" for access, topic in role_acl(topics, role))
        users = [service_account(role, n) for n in range(1, instances + 1)]
        blocks += [f"user {user}\n{rules}\n" for user in users]
    devices = "\n".join(f"pattern {access} {t}" for access, t in device_acl(topics, _ACL_USERNAME))
    services = "\n".join(blocks)
    return f"""# Watchpost broker ACL (generated by kernel.broker; do not edit by hand).
# Platform services: each account reads what it consumes and writes what it sends.
{services}
# Devices write only under their own id (%u is the username, and with
# use_username_as_clientid also the client id); each reads only what is addressed to it:
# a crew its orders, a person's devices their receipts, a partner its water alerts.
{devices}
"""


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    config: Path
    password_file: Path
    acl_file: Path
    data_dir: Path


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The TLS listener's certificate chain: the CA clients trust, the server's certificate
    and its private key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


# Mosquitto 2.1's SQLite persistence writes every change as it is made (flush period 0), so a
# message is on disk before the broker acknowledges it and a kill -9, an OOM kill or a host
# crash loses nothing it acknowledged. Mosquitto 2.0 only snapshots its memory every
# `autosave_interval` seconds: measured, a kill -9 with 20,000 queued readings lost all of
# them (docs/delivery.md).
PERSIST_PLUGIN = "mosquitto_persist_sqlite.so"
_HOST_PLUGIN_DIRS = (Path("/usr/lib/x86_64-linux-gnu/mosquitto"), Path("/usr/lib/aarch64-linux-gnu/mosquitto"),
                     Path("/usr/lib/mosquitto"), Path("/usr/local/lib"))
# Where `scripts/mosquitto.sh` puts a Mosquitto 2.1 under the Watchpost home when the host's
# is older (Debian 12 has 2.0): a Debian root, run through its own loader, no chroot.
MOSQUITTO_ROOT = "mosquitto-root"


@dataclass(frozen=True, slots=True)
class Mosquitto:
    """How to start this machine's Mosquitto, and its SQLite persistence plugin if it has one."""

    command: tuple[str, ...]
    persist_plugin: Path | None


def find_mosquitto(home: Path) -> Mosquitto:
    """The Mosquitto 2.1 under `home` if it was installed there, else the host's, with its
    persistence plugin when the host's has one."""
    root = home / MOSQUITTO_ROOT
    if (root / "run-mosquitto").is_file():
        plugin = root / "usr/lib/x86_64-linux-gnu/mosquitto" / PERSIST_PLUGIN
        return Mosquitto((str(root / "run-mosquitto"),), plugin if plugin.is_file() else None)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return Mosquitto((binary,), next((d / PERSIST_PLUGIN for d in _HOST_PLUGIN_DIRS if (d / PERSIST_PLUGIN).is_file()), None))


def _persistence(data_dir: Path, plugin: Path | None) -> str:
    if plugin is not None:
        return f"""# Persistent sessions and every queued message, written to SQLite as they change and
# before the PUBACK: a crash of the broker loses nothing it acknowledged (docs/delivery.md).
persistence_location {data_dir}/
global_plugin {plugin}
plugin_opt_flush_period 0
plugin_opt_sync normal"""
    return f"""# This Mosquitto has no SQLite persistence plugin (Mosquitto 2.1 or later has): it snapshots
# its state every autosave_interval seconds and on a clean shutdown, so a crash loses what
# it accepted since the last snapshot. scripts/mosquitto.sh installs one that does not.
persistence true
persistence_location {data_dir}/
autosave_interval 30"""


def _listener(port: int, bind: str) -> str:
    return f"""listener {port} {bind}
# A client's id is its username: one account cannot take over another's session.
use_username_as_clientid true"""


def mosquitto_config(*, port: int, files: BrokerFiles, bind: str = "127.0.0.1",
                     tls_port: int = 0, tls: TlsFiles | None = None, persist_plugin: Path | None = None) -> str:
    tls_listener = ""
    if tls_port and tls is not None:
        tls_listener = f"""
# TLS (mqtts://): the same accounts and ACL, encrypted.
{_listener(tls_port, bind)}
cafile {tls.ca_file}
certfile {tls.cert_file}
keyfile {tls.key_file}
tls_version tlsv1.2
"""
    return f"""# Watchpost's Mosquitto configuration (generated by kernel.broker).
per_listener_settings false
allow_anonymous false
password_file {files.password_file}
acl_file {files.acl_file}

{_listener(port, bind)}
{tls_listener}
{_persistence(files.data_dir, persist_plugin)}

# Messages queued for an offline persistent session (an ingest worker being restarted).
# Mosquitto's default of 1000 would silently drop the rest; a county produces a few
# thousand messages per second, so allow hours of backlog, bounded by memory.
max_queued_messages 5000000
max_queued_bytes 0
# Outgoing QoS 1 window per client: MQTT v5 clients set their own Receive Maximum,
# which Mosquitto honours; this is the cap for MQTT 3.1.1 clients.
max_inflight_messages 1000
# Oversized payloads reach ingest (which dead-letters them with a reason) up to this size;
# larger packets are refused by the broker and never accepted.
max_packet_size 2097152
set_tcp_nodelay true
log_type error
log_type warning
log_type notice
"""


def write_broker_files(
    directory: Path, *, port: int, root: str, secret: bytes, device_users: Iterable[str], bind: str = "127.0.0.1",
    instances: int = DEFAULT_INSTANCES, tls_port: int = 0, tls: TlsFiles | None = None, persist_plugin: Path | None = None,
) -> BrokerFiles:
    """Write config, password file and ACL for the services and the given devices. With a
    `tls_port`, a TLS listener serves `tls` (by default a local CA's certificates made by
    `local_tls_files` in `directory/tls`)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(
        config=directory / "mosquitto.conf",
        password_file=directory / "passwd",
        acl_file=directory / "acl",
        data_dir=directory / "data",
    )
    files.data_dir.mkdir(exist_ok=True)
    if tls_port and tls is None:
        tls = local_tls_files(directory / "tls")
    reserved = sorted(u for u in device_users if is_reserved(u))
    if reserved:
        raise ValueError(f"device ids {reserved} take the {SERVICE_PREFIX!r} prefix of the platform's own accounts")
    lines = [
        password_line(user, password_for(secret, user), os.urandom(12))
        for user in sorted({*service_users(instances), *device_users})
    ]
    _write_private(files.password_file, "\n".join(lines) + "\n")
    _write_private(files.acl_file, acl_text(root, instances))
    _write_private(files.config, mosquitto_config(port=port, files=files, bind=bind, tls_port=tls_port, tls=tls,
                                                  persist_plugin=persist_plugin))
    _hand_to_broker_user(directory)
    return files


def local_tls_files(directory: Path, hosts: Iterable[str] = ("localhost", "127.0.0.1")) -> TlsFiles:
    """A local certificate authority and a server certificate it signed, made once with the
    `openssl` command (kept when present). For a real deployment, give the broker
    certificates of the site's own CA instead (docs/security.md)."""
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    if files.ca_file.exists() and files.cert_file.exists() and files.key_file.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(ca_key), "-out", str(files.ca_file), "-days", "3650", "-subj", "/CN=Watchpost local CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    csr = directory / "server.csr"
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(files.key_file), "-out", str(csr), "-subj", "/CN=watchpost-broker")
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(files.ca_file), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(files.cert_file), "-days", "825", "-extfile", str(ext))
    for path in (ca_key, files.key_file):
        path.chmod(0o600)
    csr.unlink()
    ext.unlink()
    return files


def _hand_to_broker_user(directory: Path) -> None:
    """Mosquitto started as root drops to the `mosquitto` user, which must then read these
    files and write its persistence."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in (directory, *directory.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def load_or_create_secret(path: Path) -> bytes:
    """The deployment's broker secret; created (random, mode 600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, base64.b64encode(os.urandom(32)).decode())
    return base64.b64decode(path.read_text().strip())
