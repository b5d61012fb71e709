"""Reference data: stations, persons and their home sensors, facilities, units, partners,
users and family links. `watchpost registry load FILE` reads a JSON or YAML document of the
shape documented in docs/registry.md and upserts it in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml
from psycopg.types.json import Jsonb

from ingest.rules import ConfigError, PersonConfig
from kernel.broker import SERVICE_PREFIX, is_reserved


class RegistryError(ValueError):
    """The registry document is malformed; the message lists every problem found."""


# section -> (table, key columns, required fields, optional fields with defaults)
# Sections whose id is a device's (or partner's) broker account, and so a topic level.
_BROKER_ACCOUNTS = ("stations", "persons", "units", "partners")
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A family contact's (or a partner's duty) phone, E.164 ("+8613800000001"); what SMS and
# calls are sent to.
_PHONE = re.compile(r"\+[1-9][0-9]{4,14}")
_CHANNELS = ("app", "sms", "voice")
_LINK_FIELDS = {"person_id", "position", "ack_timeout_s", "channels", "voice_after_s"}

_SECTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], dict[str, Any]]] = {
    "partners": ("partners", ("partner_id",), ("partner_id", "name"), {"adcode": None, "duty_contact": None, "duty_phone": None, "ack_timeout_s": 600}),
    "facilities": (
        "facilities",
        ("facility_id",),
        ("facility_id", "kind", "name", "lat", "lon"),
        {"town": None, "village": None, "duty_phone": None},
    ),
    "stations": (
        "stations",
        ("station_id",),
        ("station_id", "name", "lat", "lon"),
        {"town": None, "water_body": "river", "target_class": 3, "partner_id": None, "report_interval_s": 60, "thresholds": {},
         "category": None},
    ),
    "persons": (
        "persons",
        ("person_id",),
        ("person_id", "name", "lat", "lon"),
        {"name_pinyin": None, "address": None, "town": None, "village": None, "report_interval_s": 60, "thresholds": {},
         "conditions": [], "medications": []},
    ),
    "units": (
        "units",
        ("unit_id",),
        ("unit_id", "kind", "name"),
        {"base_facility_id": None, "town": None, "report_interval_s": 5},
    ),
    "users": ("users", ("username",), ("username", "display_name", "role"), {"phone": None, "scope_id": None}),
}
# Fields a section takes besides its table's columns, stored apart.
_EXTRA_FIELDS = {"persons": {"home_sensors"}, "users": {"persons"}, "stations": {"hj212_mn", "hj212_password"}}
# A station's HJ 212 MN, as its data logger sends it (the stations table checks the same).
_MN = re.compile(r"[^;=&,\s]{1,27}")
# How `registry load` sets a station's HJ 212 PW: derived from the deployment's secret, or
# kept as `watchpost hj212-station` set it (a logger configured with a PW of its own).
HJ212_PASSWORD_MODES = ("derived", "keep")
# Loaded in this order so that references resolve.
_ORDER = ("partners", "facilities", "stations", "persons", "units", "users")


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc}") from exc
    try:
        doc = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{path}: the registry must be a mapping of sections")
    return doc


def validate(doc: Mapping[str, Any]) -> list[str]:
    """Every problem in the document, as 'section[index].field: what is wrong'."""
    problems = [f"{name}: unknown section" for name in doc if name not in _SECTIONS]
    # Station, person, unit and partner ids are broker accounts in one namespace.
    accounts: dict[str, str] = {}
    for section, (_, key, required, optional) in _SECTIONS.items():
        items = doc.get(section, [])
        if not isinstance(items, list):
            problems.append(f"{section}: must be a list")
            continue
        seen: set[tuple] = set()
        for i, item in enumerate(items):
            where = f"{section}[{i}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: must be a mapping")
                continue
            # A person's pinyin name is for the English view; it is not stored yet.
            extra = _EXTRA_FIELDS.get(section, set())
            for f in required:
                if item.get(f) is None:
                    problems.append(f"{where}.{f}: required")
            for f in item:
                if f not in required and f not in optional and f not in extra:
                    problems.append(f"{where}.{f}: unknown field")
            ident = tuple(item.get(k) for k in key)
            if section in _BROKER_ACCOUNTS and isinstance(item.get(key[0]), str):
                account = item[key[0]]
                if not _ACCOUNT_ID.fullmatch(account):
                    problems.append(f"{where}.{key[0]}: {account!r} must be 1-64 letters, digits, '.', '_' or '-' (it is a topic level)")
                elif is_reserved(account):
                    problems.append(f"{where}.{key[0]}: {account!r} takes the {SERVICE_PREFIX!r} prefix of the platform's own accounts")
                elif account in accounts and accounts[account] != section:
                    problems.append(f"{where}.{key[0]}: {account!r} is already a broker account of {accounts[account]}")
                accounts.setdefault(account, section)
            if ident in seen:
                problems.append(f"{where}: duplicate {', '.join(key)} {ident}")
            seen.add(ident)
            if section == "persons":
                problems += _person_rule_problems(where, item)
                for f in ("conditions", "medications"):
                    if not isinstance(item.get(f, []), list) or not all(isinstance(x, str) for x in item.get(f, [])):
                        problems.append(f"{where}.{f}: must be a list of strings")
            if section == "stations":
                problems += _hj212_problems(where, item, doc)
            if section == "partners" and item.get("duty_phone") is not None and not (
                isinstance(item["duty_phone"], str) and _PHONE.fullmatch(item["duty_phone"])
            ):
                problems.append(f"{where}.duty_phone: must be an E.164 number like +862100000000")
            if section == "facilities":
                problems += _duty_phone_problems(item, where)
            if section == "users":
                problems.extend(_contact_problems(item, where))
                problems += _scope_problems(doc, item, where)
    return problems


def _hj212_problems(where: str, station: Mapping[str, Any], doc: Mapping[str, Any]) -> list[str]:
    mn, mode = station.get("hj212_mn"), station.get("hj212_password")
    if mn is None:
        return [f"{where}.hj212_password: needs hj212_mn"] if mode is not None else []
    problems = []
    if not isinstance(mn, str) or not _MN.fullmatch(mn):
        problems.append(f"{where}.hj212_mn: must be 1-27 characters, none of ; = & , or blank")
    elif sum(1 for s in doc.get("stations", []) if isinstance(s, dict) and s.get("hj212_mn") == mn) > 1:
        problems.append(f"{where}.hj212_mn: {mn!r} is the MN of more than one station")
    if mode is not None and mode not in HJ212_PASSWORD_MODES:
        problems.append(f"{where}.hj212_password: must be one of {', '.join(HJ212_PASSWORD_MODES)} (no PW is written in the registry)")
    return problems


def _contact_problems(user: Mapping[str, Any], where: str) -> list[str]:
    """A family member's phone and, per person they look after, the channels and timeouts
    of their escalation step."""
    problems = []
    phone = user.get("phone")
    if phone is not None and not (isinstance(phone, str) and _PHONE.fullmatch(phone)):
        problems.append(f"{where}.phone: must be an E.164 number like +8613800000001")
    links = user.get("persons", [])
    if not isinstance(links, list):
        return [*problems, f"{where}.persons: must be a list"]
    for n, link in enumerate(links):
        at = f"{where}.persons[{n}]"
        if not isinstance(link, dict):
            problems.append(f"{at}: must be a mapping")
            continue
        problems.extend(f"{at}.{f}: unknown field" for f in link if f not in _LINK_FIELDS)
        channels = link.get("channels", ["app"])
        if not (isinstance(channels, list) and channels and all(c in _CHANNELS for c in channels) and len(set(channels)) == len(channels)):
            problems.append(f"{at}.channels: must be a non-empty list of distinct {', '.join(_CHANNELS)}")
        elif {"sms", "voice"} & set(channels) and phone is None:
            problems.append(f"{at}.channels: sms and voice need the user's phone")
        timeout = link.get("ack_timeout_s", 120)
        voice_after = link.get("voice_after_s", 60)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            problems.append(f"{at}.ack_timeout_s: must be a positive number of seconds")
        elif isinstance(voice_after, bool) or not isinstance(voice_after, (int, float)) or not 0 <= voice_after < timeout:
            problems.append(f"{at}.voice_after_s: must be seconds from 0 up to (not including) ack_timeout_s ({timeout})")
    return problems


def _person_rule_problems(where: str, person: Mapping[str, Any]) -> list[str]:
    """A person's rule thresholds, checked now rather than when the first reading comes:
    each problem names the person and the field."""
    thresholds = person.get("thresholds") or {}
    who = f"{where} ({person.get('person_id')}).thresholds"
    if not isinstance(thresholds, Mapping):
        return [f"{who}: must be a mapping"]
    try:
        PersonConfig.from_mapping(thresholds)
    except ConfigError as exc:
        problems = str(exc).split("; ")
        return [
            f"{who}: {p.removeprefix('PersonConfig: ')}"
            if p.startswith("PersonConfig: ")
            else f"{who}.{p.removeprefix('PersonConfig.')}"
            for p in problems
        ]
    return []


def _duty_phone_problems(facility: Mapping[str, Any], where: str) -> list[str]:
    """A first-aid post's duty phone is where its doctor's alert is texted and rung: an
    E.164 number, and only a post has one (no other facility is alerted by phone)."""
    phone = facility.get("duty_phone")
    if phone is None:
        return []
    if facility.get("kind") != "first_aid_post":
        return [f"{where}.duty_phone: only a first_aid_post has a duty phone"]
    if not (isinstance(phone, str) and _PHONE.fullmatch(phone)):
        return [f"{where}.duty_phone: must be an E.164 number like +8657384000001"]
    return []


# A scoped role and what its scope names: a first-aid post, a hospital, a unit.
_SCOPES = {"first_aid": ("facilities", "first_aid_post"), "hospital": ("facilities", "hospital"), "crew": ("units", None)}


def _scope_problems(doc: Mapping[str, Any], user: Mapping[str, Any], where: str) -> list[str]:
    """A village doctor, hospital or crew user names the post, hospital or unit they serve
    (checked against the document's own facilities and units when it has them); any other
    role names none."""
    role, scope = user.get("role"), user.get("scope_id")
    if role not in _SCOPES:
        return [f"{where}.scope_id: only first_aid, hospital and crew users have a scope"] if scope is not None else []
    if not isinstance(scope, str) or not scope:
        return [f"{where}.scope_id: required for a {role} user (the {'unit' if role == 'crew' else 'facility'} they serve)"]
    section, kind = _SCOPES[role]
    items = doc.get(section)
    if not isinstance(items, list) or not items:
        return []
    key = "unit_id" if section == "units" else "facility_id"
    match = [i for i in items if isinstance(i, dict) and i.get(key) == scope]
    if not match:
        return [f"{where}.scope_id: {scope!r} is not in {section}"]
    if kind is not None and match[0].get("kind") != kind:
        return [f"{where}.scope_id: {scope!r} is a {match[0].get('kind')}, a {role} user serves a {kind}"]
    return []


def load(
    conn: psycopg.Connection, doc: Mapping[str, Any], *, hj212_digest: Callable[[str], str] | None = None
) -> dict[str, int]:
    """Upsert the document in one transaction. Records not in the document are kept.
    Returns the number of records per section.

    `hj212_digest(mn)` is the keyed digest of the PW derived for that MN (the CLI makes it
    from the deployment's secrets); without it the MNs are stored and their PWs left as
    they were."""
    problems = validate(doc)
    if problems:
        raise RegistryError("registry is invalid:\n  " + "\n  ".join(problems))
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
                    f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
                    rows,
                )
            counts[section] = len(rows)
        counts["hj212_stations"] = _store_hj212(cur, doc.get("stations", []), hj212_digest)
        sensors = [
            (p["person_id"], s["sensor_id"], s["kind"]) for p in doc.get("persons", []) for s in p.get("home_sensors", [])
        ]
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
        if links:
            cur.executemany(
                "INSERT INTO family_links (username, person_id, position, ack_timeout_s, channels, voice_after_s) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (username, person_id) DO UPDATE SET position = excluded.position, "
                "ack_timeout_s = excluded.ack_timeout_s, channels = excluded.channels, voice_after_s = excluded.voice_after_s",
                links,
            )
        counts["family_links"] = len(links)
        cur.execute("UPDATE registry_version SET version = version + 1, loaded_at = now()")
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


def _row(item: Mapping[str, Any], required: Sequence[str], optional: Mapping[str, Any]) -> tuple:
    values = [item[f] for f in required] + [item.get(f, default) for f, default in optional.items()]
    return tuple(Jsonb(v) if isinstance(v, dict) else v for v in values)

