"""Reference data: stations, persons and their home sensors, facilities, units, partners,
users and family links. `watchpost registry load FILE` reads a JSON or YAML document of the
shape documented in docs/registry.md, checks all of it (watchpost/registry_check.py), and
upserts it in one transaction — or, with `sync`, makes the database hold exactly the file's
records, retiring the others (kept with their history, never dispatched, their devices
refused). `diff` says what a load would change without changing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml
from psycopg.types.json import Jsonb

from watchpost.registry_check import ORDER as _ORDER
from watchpost.registry_check import SECTIONS as _SECTIONS
from watchpost.registry_check import HJ212_PASSWORD_MODES, Known, line_map, node_lines, validate, with_lines

__all__ = ["HJ212_PASSWORD_MODES", "Diff", "Known", "RegistryError", "RegistryFile", "diff", "load", "read_document", "read_registry", "validate"]

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RegistryError(ValueError):
    """The registry document is malformed or cannot be loaded; the message lists every
    problem found, each with its file line when known."""


@dataclass(frozen=True)
class RegistryFile:
    """A registry document and where each of its records is in the file."""

    name: str
    doc: dict[str, Any]
    lines: dict[tuple, int] = field(default_factory=dict)


def read_registry(path: Path) -> RegistryFile:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc}") from exc
    try:
        # YAML is composed once, by libyaml where the platform has it: the nodes give the
        # lines, and the document is built from them: a county of 20,000 persons is one pass.
        if path.suffix == ".json":
            doc, lines = orjson.loads(text), line_map(text)
        else:
            loader = _YAML_LOADER(text)
            try:
                node = loader.get_single_node()
                doc = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
            lines = node_lines(node)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{path}: the registry must be a mapping of sections")
    return RegistryFile(str(path), doc, lines)


def read_document(path: Path) -> dict[str, Any]:
    return read_registry(path).doc


# --- what a load would change ----------------------------------------------------------------


@dataclass
class SectionDiff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # retired, and listed again
    unchanged: int = 0
    absent: list[str] = field(default_factory=list)  # in the database (not retired), not in the file


@dataclass
class Diff:
    """What loading a document changes, per section, and whether the database holds the
    simulated demo registry."""

    sections: dict[str, SectionDiff]
    demo_loaded: bool

    def absent_total(self) -> int:
        return sum(len(d.absent) for d in self.sections.values())

    def report(self, *, sync: bool, shown: int = 5) -> list[str]:
        """One line per section: added, changed, restored, unchanged, and what happens to
        the records the file does not list (kept, or retired with --sync)."""
        out = []
        for section, d in self.sections.items():
            parts = [f"{len(d.added)} added", f"{len(d.changed)} changed"]
            if d.restored:
                parts.append(f"{len(d.restored)} restored")
            parts.append(f"{d.unchanged} unchanged")
            parts.append(f"{len(d.absent)} {'retired' if sync else 'not in the file, kept'}")
            line = f"{section}: " + ", ".join(parts)
            for label, ids in (("added", d.added), ("changed", d.changed), ("restored", d.restored),
                               ("retired" if sync else "kept", d.absent)):
                if ids:
                    more = f" (+{len(ids) - shown} more)" if len(ids) > shown else ""
                    line += f"\n    {label}: {', '.join(ids[:shown])}{more}"
            out.append(line)
        return out


def _columns(section: str) -> tuple[str, ...]:
    _, _, required, optional = _SECTIONS[section]
    return (*required, *optional)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return bool(a == b)


def diff(conn: psycopg.Connection, doc: Mapping[str, Any]) -> Diff:
    """Compare the document with the database, record by record. Reads only."""
    sections: dict[str, SectionDiff] = {}
    for section in _ORDER:
        table, key, required, optional = _SECTIONS[section]
        columns = _columns(section)
        stored = {
            row[0]: row for row in conn.execute(f"SELECT {', '.join(columns)}, retired_at FROM {table}").fetchall()
        }
        d = SectionDiff()
        listed = set()
        for item in doc.get(section, []):
            ident = item[key[0]]
            listed.add(ident)
            row = stored.get(ident)
            values = _values(item, required, optional)
            if row is None:
                d.added.append(ident)
            elif row[-1] is not None:
                d.restored.append(ident)
            elif all(_same(a, b) for a, b in zip(values, row[:-1], strict=False)):
                d.unchanged += 1
            else:
                d.changed.append(ident)
        d.absent = sorted(i for i, row in stored.items() if i not in listed and row[-1] is None)
        sections[section] = d
    demo = conn.execute("SELECT demo FROM registry_version").fetchone()
    conn.commit()
    return Diff(sections, bool(demo and demo[0]))


def known_ids(conn: psycopg.Connection) -> Known:
    """The records the database holds and keeps (not retired), per section."""
    ids = {}
    for section in _ORDER:
        table, key, _, _ = _SECTIONS[section]
        ids[section] = frozenset(r[0] for r in conn.execute(f"SELECT {key[0]} FROM {table} WHERE retired_at IS NULL"))
    conn.commit()
    return Known(ids)


def check(conn: psycopg.Connection, registry: RegistryFile, *, sync: bool = False) -> None:
    """Every problem of the file, each with its line; references may name the database's
    records unless `sync` retires every record the file does not list."""
    problems = validate(registry.doc, Known() if sync else known_ids(conn))
    if problems:
        raise RegistryError(
            f"{registry.name}: {len(problems)} problem{'s' if len(problems) > 1 else ''}, nothing was loaded:\n  "
            + "\n  ".join(with_lines(problems, registry.lines, registry.name))
        )


def demo_guard(found: Diff, doc: Mapping[str, Any], *, sync: bool, keep_demo: bool) -> None:
    """A county's own registry is not loaded beside the simulated demo one unless asked:
    the demo's ambulances would be dispatched beside the county's."""
    if not found.demo_loaded or doc.get("demo") is True or sync or keep_demo or not found.absent_total():
        return
    stays = ", ".join(f"{len(d.absent)} {s}" for s, d in found.sections.items() if d.absent)
    raise RegistryError(
        "the database holds the simulated demo registry, and this file does not list "
        f"{stays} of it: they would stay beside yours (demo units could be dispatched). "
        "Load with --sync to retire them (their history is kept), or --keep-demo to keep them."
    )


def load(
    conn: psycopg.Connection,
    doc: Mapping[str, Any] | RegistryFile,
    *,
    sync: bool = False,
    keep_demo: bool = False,
    hj212_digest: Callable[[str], str] | None = None,
) -> dict[str, int]:
    """Check the document, then upsert it in one transaction. Records not in the document
    are kept, or with `sync` retired (and a person's home sensors and a user's family links
    that the file no longer lists are removed). Returns the number of records per section
    (and per section retired, as "retired <section>").

    `hj212_digest(mn)` is the keyed digest of the PW derived for that MN (the CLI makes it
    from the deployment's secrets); without it the MNs are stored and their PWs left as
    they were."""
    registry = doc if isinstance(doc, RegistryFile) else RegistryFile("registry", dict(doc))
    check(conn, registry, sync=sync)
    doc = registry.doc
    found = diff(conn, doc)
    demo_guard(found, doc, sync=sync, keep_demo=keep_demo)
    try:
        return _write(conn, doc, sync=sync, replaces_all=sync or not found.absent_total(), hj212_digest=hj212_digest)
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        raise  # an outage, or no schema: the command line's entry point says so
    except psycopg.Error as exc:
        # Checked above, so this is a rule the checks do not know yet: say it, no traceback.
        diag = getattr(exc, "diag", None)
        detail = (diag.message_primary if diag is not None else None) or str(exc)
        raise RegistryError(f"{registry.name}: the database refused the registry, nothing was loaded: {detail}") from exc


def _write(
    conn: psycopg.Connection, doc: Mapping[str, Any], *, sync: bool, replaces_all: bool,
    hj212_digest: Callable[[str], str] | None,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        for section in _ORDER:
            table, key, required, optional = _SECTIONS[section]
            items = doc.get(section, [])
            columns = (*required, *optional)
            rows = [_row(item, required, optional) for item in items]
            if rows:
                updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
                cur.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
                    f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}, retired_at = NULL",
                    rows,
                )
            counts[section] = len(rows)
        counts["hj212_stations"] = _store_hj212(cur, doc.get("stations", []), hj212_digest)
        if sync:
            # Last listed first: a retired facility may still be a retired unit's base.
            for section in reversed(_ORDER):
                table, key, _, _ = _SECTIONS[section]
                listed = [item[key[0]] for item in doc.get(section, [])]
                cur.execute(
                    f"UPDATE {table} SET retired_at = now() WHERE retired_at IS NULL AND NOT ({key[0]} = ANY(%s))",
                    (listed,),
                )
                counts[f"retired {section}"] = cur.rowcount
            # A user retired now loses their sessions: their tokens carry the old version.
            cur.execute("UPDATE users SET token_version = token_version + 1 WHERE retired_at = now()")
        sensors = [
            (p["person_id"], s["sensor_id"], s["kind"]) for p in doc.get("persons", []) for s in p.get("home_sensors", [])
        ]
        if sync:
            listed_persons = [p["person_id"] for p in doc.get("persons", [])]
            cur.execute(
                "DELETE FROM home_sensors WHERE person_id = ANY(%s) AND NOT ((person_id || '/' || sensor_id) = ANY(%s))",
                (listed_persons, [f"{p}/{s}" for p, s, _ in sensors]),
            )
        if sensors:
            cur.executemany(
                "INSERT INTO home_sensors (person_id, sensor_id, kind) VALUES (%s, %s, %s) "
                "ON CONFLICT (person_id, sensor_id) DO UPDATE SET kind = excluded.kind",
                sensors,
            )
        counts["home_sensors"] = len(sensors)
        links = [
            (u["username"], link["person_id"], link.get("position", n + 1), link.get("ack_timeout_s", 120),
             link.get("channels", ["app"]), link.get("voice_after_s", 60))
            for u in doc.get("users", [])
            for n, link in enumerate(u.get("persons", []))
        ]
        if sync:
            cur.execute(
                "DELETE FROM family_links WHERE NOT ((username || '/' || person_id) = ANY(%s))",
                ([f"{u}/{p}" for u, p, *_ in links],),
            )
        if links:
            cur.executemany(
                "INSERT INTO family_links (username, person_id, position, ack_timeout_s, channels, voice_after_s) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (username, person_id) DO UPDATE SET position = excluded.position, "
                "ack_timeout_s = excluded.ack_timeout_s, channels = excluded.channels, voice_after_s = excluded.voice_after_s",
                links,
            )
        counts["family_links"] = len(links)
        # The demo mark stays while records of the demo do: a file that replaces them all decides.
        cur.execute(
            "UPDATE registry_version SET version = version + 1, loaded_at = now(), "
            "demo = CASE WHEN %s THEN %s ELSE demo OR %s END",
            (replaces_all, bool(doc.get("demo")), bool(doc.get("demo"))),
        )
    return counts


def _store_hj212(cur: psycopg.Cursor, stations: Sequence[Mapping[str, Any]], digest: Callable[[str], str] | None) -> int:
    """A station's MN and its PW digest. A station without an MN in the document keeps what
    `watchpost hj212-station` may have set: the registry file need not know every logger."""
    rows = [
        (s["hj212_mn"], digest(s["hj212_mn"]) if digest and s.get("hj212_password", "derived") == "derived" else None, s["station_id"])
        for s in stations
        if s.get("hj212_mn")
    ]
    if rows:
        # Free the MNs first: two stations swapping MNs in one load must not collide.
        cur.execute("UPDATE stations SET hj212_mn = NULL WHERE station_id = ANY(%s)", ([r[2] for r in rows],))
        cur.executemany(
            "UPDATE stations SET hj212_mn = %s, hj212_password_digest = COALESCE(%s, hj212_password_digest) WHERE station_id = %s",
            rows,
        )
    return len(rows)


def _values(item: Mapping[str, Any], required: Sequence[str], optional: Mapping[str, Any]) -> list[Any]:
    return [item[f] for f in required] + [item.get(f, default) for f, default in optional.items()]


def _row(item: Mapping[str, Any], required: Sequence[str], optional: Mapping[str, Any]) -> tuple:
    return tuple(Jsonb(v) if isinstance(v, dict) else v for v in _values(item, required, optional))
