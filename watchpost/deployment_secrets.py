"""The deployment's secret files in $WATCHPOST_HOME, guarded by the database.

`mqtt-secret` derives every device's and service account's MQTT password; `hj212-secret`
keys every station's HJ 212 password digest; `api-secret` signs login tokens when no
`api.token_secret` is set. Lose one and every device must be re-provisioned, every station
re-keyed. So:

* the database keeps a fingerprint of each secret it has data derived from (an HMAC of a
  fixed label keyed by the secret: it proves which secret, and reveals nothing of it);
* a command that needs a secret and finds its file missing creates a new one only when
  the database has none on record (a new installation); otherwise it refuses — a mistyped
  `WATCHPOST_HOME` must not silently mint new passwords — and says how to restore it;
* a file that does not match the fingerprint is refused the same way;
* `watchpost secrets export` / `import` (and `watchpost db backup`, which writes them next
  to the dump) carry the files to a backup and back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

import orjson
import psycopg

from kernel.broker import load_or_create_secret

MQTT_SECRET = "mqtt-secret"
HJ212_SECRET = "hj212-secret"
API_SECRET = "api-secret"
SECRET_NAMES = (MQTT_SECRET, HJ212_SECRET, API_SECRET)
_LABEL = b"watchpost secret fingerprint v1"


class SecretRefused(RuntimeError):
    """A secret file is missing or different from the one the database's data was derived
    from; the message says which, and how to put the right one back."""


def fingerprint(secret: bytes) -> str:
    return hmac.new(secret, _LABEL, hashlib.sha256).hexdigest()[:32]


def _recorded(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute("SELECT fingerprint FROM secret_fingerprints WHERE name = %s", (name,)).fetchone()
    return str(row[0]) if row else None


def _derived_data_exists(conn: psycopg.Connection, name: str) -> bool:
    """Data derived from the secret before fingerprints were kept (an older installation)."""
    if name == HJ212_SECRET:
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM stations WHERE hj212_password_digest IS NOT NULL)").fetchone()
        return bool(row and row[0])
    return False


def guarded_secret(conn: psycopg.Connection, home: Path, name: str) -> bytes:
    """The secret `home/name`, checked against the database's fingerprint (recorded on first
    use); created only for a database that has none on record."""
    path = home / name
    table = conn.execute("SELECT to_regclass('secret_fingerprints') IS NOT NULL").fetchone()
    if not (table and table[0]):
        raise SecretRefused("the database has no secret_fingerprints table yet: run `watchpost db migrate` first")
    recorded = _recorded(conn, name)
    if not path.exists() and (recorded is not None or _derived_data_exists(conn, name)):
        raise SecretRefused(
            f"{path} is missing, but this database holds passwords derived from a {name}: is WATCHPOST_HOME "
            f"({home}) the right directory? Restore the file with `watchpost secrets import` from a backup; "
            "a new secret would make every derived password wrong"
        )
    secret = load_or_create_secret(path)
    found = fingerprint(secret)
    if recorded is None:
        with conn.transaction():
            conn.execute(
                "INSERT INTO secret_fingerprints (name, fingerprint) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, found),
            )
        recorded = _recorded(conn, name)
    if recorded != found:
        raise SecretRefused(
            f"{path} is not the {name} this database's passwords were derived from (fingerprint {found}, the database "
            f"expects {recorded}): is WATCHPOST_HOME ({home}) the right directory? Restore the file from a backup"
        )
    return secret


def export_secrets(home: Path) -> dict[str, str]:
    """The secret files present in `home`, by name, as their text."""
    return {name: (home / name).read_text().strip() for name in SECRET_NAMES if (home / name).exists()}


def write_export(path: Path, home: Path) -> list[str]:
    """Write the secrets of `home` to `path` (JSON, mode 600); the names written."""
    found = export_secrets(home)
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps({"watchpost_secrets": 1, "secrets": found}, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return sorted(found)


def import_secrets(path: Path, home: Path, *, replace: bool = False) -> list[str]:
    """Put the secrets of an export back into `home` (mode 600). A different secret already
    there is refused unless `replace`: it may be the one the database expects."""
    try:
        doc = orjson.loads(path.read_bytes())
        secrets = doc["secrets"]
        if doc.get("watchpost_secrets") != 1 or not isinstance(secrets, dict):
            raise ValueError("not a Watchpost secrets export")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SecretRefused(f"cannot read {path}: {exc}") from None
    unknown = set(secrets) - set(SECRET_NAMES)
    if unknown:
        raise SecretRefused(f"{path}: unknown secrets {sorted(unknown)}")
    for name, text in secrets.items():
        if name != API_SECRET:
            try:
                base64.b64decode(text, validate=True)
            except ValueError:
                raise SecretRefused(f"{path}: {name} is not base64") from None
        target = home / name
        if target.exists() and target.read_text().strip() != text and not replace:
            raise SecretRefused(f"{target} exists with a different secret; move it away first, or pass --replace")
    home.mkdir(parents=True, exist_ok=True)
    for name, text in secrets.items():
        tmp = home / f".{name}.partial"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text + "\n")
        tmp.replace(home / name)
    return sorted(secrets)
