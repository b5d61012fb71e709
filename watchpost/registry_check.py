"""What a registry document must be before any of it is written: every problem found at
once — fields and their values, ranges, references between records (within the document or
to records the database already holds), ids shared across kinds — each named by where it
is ('section[index].field') and, when the file is known, by its line.

Pure: the database's side comes in as `Known`, the ids it already holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ingest.rules import ConfigError, PersonConfig
from ingest.rules.water import WaterConfig
from kernel.broker import SERVICE_PREFIX, is_reserved

# section -> (table, key columns, required fields, optional fields with defaults)
SECTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], dict[str, Any]]] = {
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
EXTRA_FIELDS = {"persons": {"home_sensors"}, "users": {"persons"}, "stations": {"hj212_mn", "hj212_password"}}
# A station's HJ 212 MN, as its data logger sends it (the stations table checks the same).
_MN = re.compile(r"[^;=&,\s]{1,27}")
# How `registry load` sets a station's HJ 212 PW: derived from the deployment's secret, or
# kept as `watchpost hj212-station` set it (a logger configured with a PW of its own).
HJ212_PASSWORD_MODES = ("derived", "keep")
# Loaded in this order so that references resolve.
ORDER = ("partners", "facilities", "stations", "persons", "units", "users")
# Top-level keys that are not sections: `demo: true` marks the simulated county's registry.
DOCUMENT_FLAGS = ("demo",)

# The values the schema accepts, checked here so that a wrong one is reported with the
# others and its line rather than as the database's refusal of the whole load.
CHOICES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("facilities", "kind"): ("emergency_centre", "ambulance_station", "first_aid_post", "hospital", "patrol_base",
                             "fire_station", "gas_company"),
    ("stations", "water_body"): ("river", "lake"),
    ("stations", "category"): ("national", "provincial", "county", "cross_border"),
    ("units", "kind"): ("ambulance", "river_patrol", "fire"),
    ("users", "role"): ("operator", "dispatcher", "family", "admin", "first_aid", "hospital", "crew"),
}
HOME_SENSOR_KINDS = ("motion", "door", "smoke", "gas", "water_leak", "bed", "temperature")
# Whole seconds stored as integers, each > 0.
_POSITIVE_SECONDS = ("report_interval_s", "ack_timeout_s")
# Section -> (field, section it names): references checked against the document and the database.
_REFERENCES = {
    "stations": ("partner_id", "partners"),
    "units": ("base_facility_id", "facilities"),
}

# Section whose id is a device's (or partner's) broker account, and so a topic level.
_BROKER_ACCOUNTS = ("stations", "persons", "units", "partners")
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A family contact's (or a partner's duty) phone, E.164 ("+8613800000001"); what SMS and
# calls are sent to.
_PHONE = re.compile(r"\+[1-9][0-9]{4,14}")
_CHANNELS = ("app", "sms", "voice")
_LINK_FIELDS = {"person_id", "position", "ack_timeout_s", "channels", "voice_after_s"}


@dataclass(frozen=True)
class Known:
    """Ids the database already holds (and keeps after this load), per section: what a
    reference may name besides the document's own records."""

    ids: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def has(self, section: str, ident: Any) -> bool:
        return ident in self.ids.get(section, frozenset())


def validate(doc: Mapping[str, Any], known: Known = Known()) -> list[str]:
    """Every problem in the document, as 'section[index].field: what is wrong'."""
    problems = [f"{name}: unknown section" for name in doc if name not in SECTIONS and name not in DOCUMENT_FLAGS]
    if "demo" in doc and not isinstance(doc["demo"], bool):
        problems.append("demo: must be true or false")
    # Station, person, unit and partner ids are broker accounts in one namespace.
    accounts: dict[str, str] = {}
    ids = _document_ids(doc)
    for section, (_, key, required, optional) in SECTIONS.items():
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
            extra = EXTRA_FIELDS.get(section, set())
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
                elif other := next((s for s in _BROKER_ACCOUNTS if s != section and known.has(s, account)), None):
                    problems.append(f"{where}.{key[0]}: {account!r} is already a broker account of {other} in the database")
                accounts.setdefault(account, section)
            if ident in seen:
                problems.append(f"{where}: duplicate {', '.join(key)} {ident}")
            seen.add(ident)
            problems += _value_problems(section, item, where)
            if section in _REFERENCES:
                ref, target = _REFERENCES[section]
                value = item.get(ref)
                if value is not None and value not in ids[target] and not known.has(target, value):
                    problems.append(f"{where}.{ref}: {value!r} is not in {target} (in this file or the database)")
            if section == "stations":
                problems += _station_rule_problems(where, item)
                problems += _hj212_problems(where, item, doc)
            if section == "persons":
                problems += _person_rule_problems(where, item)
                problems += _home_sensor_problems(where, item)
                for f in ("conditions", "medications"):
                    if not isinstance(item.get(f, []), list) or not all(isinstance(x, str) for x in item.get(f, [])):
                        problems.append(f"{where}.{f}: must be a list of strings")
            if section == "partners" and item.get("duty_phone") is not None and not (
                isinstance(item["duty_phone"], str) and _PHONE.fullmatch(item["duty_phone"])
            ):
                problems.append(f"{where}.duty_phone: must be an E.164 number like +862100000000")
            if section == "facilities":
                problems += _duty_phone_problems(item, where)
            if section == "users":
                problems.extend(_contact_problems(item, where, ids["persons"], known))
                problems += _scope_problems(doc, item, where, known)
    return problems


def _document_ids(doc: Mapping[str, Any]) -> dict[str, set[Any]]:
    ids: dict[str, set[Any]] = {}
    for section, (_, key, _, _) in SECTIONS.items():
        items = doc.get(section)
        ids[section] = {i.get(key[0]) for i in items if isinstance(i, dict)} if isinstance(items, list) else set()
    return ids


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _value_problems(section: str, item: Mapping[str, Any], where: str) -> list[str]:
    """Coordinates, choices, intervals and classes: what the schema would refuse (or,
    worse, store) one record at a time."""
    problems = []
    for name, limit in (("lat", 90.0), ("lon", 180.0)):
        value = item.get(name)
        if value is None:
            continue  # reported as required when it is
        if not _is_number(value):
            problems.append(f"{where}.{name}: must be a number of degrees, got {value!r}")
        elif not -limit <= value <= limit:
            problems.append(f"{where}.{name}: {value} is outside -{limit:g}..{limit:g} degrees")
    for (s, name), choices in CHOICES.items():
        value = item.get(name)
        if s == section and value is not None and value not in choices:
            problems.append(f"{where}.{name}: {value!r} is not one of {', '.join(choices)}")
    for name in _POSITIVE_SECONDS:
        if name in SECTIONS[section][3] and item.get(name) is not None:
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(f"{where}.{name}: must be a whole number of seconds above 0, got {value!r}")
    if section == "stations" and item.get("target_class") is not None:
        value = item["target_class"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            problems.append(f"{where}.target_class: must be a water quality class 1-5 (I-V), got {value!r}")
    if section == "partners" and item.get("adcode") is not None:
        value = item["adcode"]
        if isinstance(value, bool) or not isinstance(value, int) or not 100000 <= value <= 999999:
            problems.append(f"{where}.adcode: must be a six-digit administrative division code, got {value!r}")
    for name in SECTIONS[section][2] + tuple(SECTIONS[section][3]):
        value = item.get(name)
        if name in ("name", "display_name", "username", "town", "village", "address") and value is not None and not isinstance(value, str):
            problems.append(f"{where}.{name}: must be text, got {value!r}")
        if isinstance(value, str) and "\x00" in value:
            problems.append(f"{where}.{name}: contains a NUL character")
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


def _home_sensor_problems(where: str, person: Mapping[str, Any]) -> list[str]:
    sensors = person.get("home_sensors", [])
    if not isinstance(sensors, list):
        return [f"{where}.home_sensors: must be a list"]
    problems, seen = [], set()
    for n, sensor in enumerate(sensors):
        at = f"{where}.home_sensors[{n}]"
        if not isinstance(sensor, dict):
            problems.append(f"{at}: must be a mapping")
            continue
        problems += [f"{at}.{f}: unknown field" for f in sensor if f not in ("sensor_id", "kind")]
        sid = sensor.get("sensor_id")
        if not isinstance(sid, str) or not _ACCOUNT_ID.fullmatch(sid):
            problems.append(f"{at}.sensor_id: must be 1-64 letters, digits, '.', '_' or '-' (it is a topic level)")
        elif sid in seen:
            problems.append(f"{at}.sensor_id: duplicate {sid!r} in this home")
        seen.add(sid)
        if sensor.get("kind") not in HOME_SENSOR_KINDS:
            problems.append(f"{at}.kind: {sensor.get('kind')!r} is not one of {', '.join(HOME_SENSOR_KINDS)}")
    return problems


def _contact_problems(user: Mapping[str, Any], where: str, persons: set[Any], known: Known) -> list[str]:
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
        person = link.get("person_id")
        if person is None:
            problems.append(f"{at}.person_id: required")
        elif person not in persons and not known.has("persons", person):
            problems.append(f"{at}.person_id: {person!r} is not in persons (in this file or the database)")
        position = link.get("position", n + 1)
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= 100:
            problems.append(f"{at}.position: must be a whole number 1-100, got {position!r}")
        channels = link.get("channels", ["app"])
        if not (isinstance(channels, list) and channels and all(c in _CHANNELS for c in channels) and len(set(channels)) == len(channels)):
            problems.append(f"{at}.channels: must be a non-empty list of distinct {', '.join(_CHANNELS)}")
        elif {"sms", "voice"} & set(channels) and phone is None:
            problems.append(f"{at}.channels: sms and voice need the user's phone")
        timeout = link.get("ack_timeout_s", 120)
        voice_after = link.get("voice_after_s", 60)
        if not _is_number(timeout) or timeout <= 0:
            problems.append(f"{at}.ack_timeout_s: must be a positive number of seconds")
        elif not _is_number(voice_after) or not 0 <= voice_after < timeout:
            problems.append(f"{at}.voice_after_s: must be seconds from 0 up to (not including) ack_timeout_s ({timeout})")
    return problems


def _config_problems(who: str, error: ConfigError, prefix: str) -> list[str]:
    return [
        f"{who}: {p.removeprefix(prefix + ': ')}" if p.startswith(prefix + ": ") else f"{who}.{p.removeprefix(prefix + '.')}"
        for p in str(error).split("; ")
    ]


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
        return _config_problems(who, exc, "PersonConfig")
    return []


def _station_rule_problems(where: str, station: Mapping[str, Any]) -> list[str]:
    """A station's water rule settings, as the rules will read them."""
    thresholds = station.get("thresholds") or {}
    who = f"{where} ({station.get('station_id')}).thresholds"
    if not isinstance(thresholds, Mapping):
        return [f"{who}: must be a mapping"]
    if not thresholds:
        return []
    clash = sorted({"water_body", "target_class"} & set(thresholds))
    if clash:
        return [f"{who}.{name}: is the station's own field, not a threshold" for name in clash]
    base = {k: station[k] for k in ("water_body", "target_class") if station.get(k) is not None}
    try:
        WaterConfig.from_mapping({**base, **thresholds})
    except ConfigError as exc:
        return _config_problems(who, exc, "WaterConfig")
    except (TypeError, ValueError) as exc:  # an enum the station's own fields already name wrongly
        return [f"{who}: {exc}"]
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


def _scope_problems(doc: Mapping[str, Any], user: Mapping[str, Any], where: str, known: Known) -> list[str]:
    """A village doctor, hospital or crew user names the post, hospital or unit they serve
    (checked against the document's own facilities and units, or the database's); any other
    role names none."""
    role, scope = user.get("role"), user.get("scope_id")
    if role not in _SCOPES:
        return [f"{where}.scope_id: only first_aid, hospital and crew users have a scope"] if scope is not None else []
    if not isinstance(scope, str) or not scope:
        return [f"{where}.scope_id: required for a {role} user (the {'unit' if role == 'crew' else 'facility'} they serve)"]
    section, kind = _SCOPES[role]
    items = doc.get(section)
    key = "unit_id" if section == "units" else "facility_id"
    match = [i for i in items if isinstance(i, dict) and i.get(key) == scope] if isinstance(items, list) else []
    if not match:
        if known.has(section, scope):
            return []  # the database's record; its kind was checked when it was loaded
        return [f"{where}.scope_id: {scope!r} is not in {section} (in this file or the database)"]
    if kind is not None and match[0].get("kind") != kind:
        return [f"{where}.scope_id: {scope!r} is a {match[0].get('kind')}, a {role} user serves a {kind}"]
    return []


# --- where in the file ---------------------------------------------------------------------

_WHERE = re.compile(r"^(?P<section>\w+)(?:\[(?P<index>\d+)\])?(?:\s\([^)]*\))?(?:\.(?P<field>\w+))?(?:\[(?P<sub>\d+)\])?")


def line_map(text: str | bytes) -> dict[tuple, int]:
    """The 1-based line of each section, record, field and list entry of a YAML (or JSON:
    YAML reads it too) document, by path: ('persons', 3, 'lat') -> 42. Empty when the text
    cannot be composed (then problems are reported without lines)."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    return node_lines(root)


def node_lines(root: yaml.Node | None) -> dict[tuple, int]:
    """`line_map` of an already composed document."""
    lines: dict[tuple, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, section_node in root.value:
        section = key_node.value
        lines[(section,)] = key_node.start_mark.line + 1
        if not isinstance(section_node, yaml.SequenceNode):
            continue
        for i, record in enumerate(section_node.value):
            lines[(section, i)] = record.start_mark.line + 1
            if not isinstance(record, yaml.MappingNode):
                continue
            for field_key, value in record.value:
                lines[(section, i, field_key.value)] = field_key.start_mark.line + 1
                if isinstance(value, yaml.SequenceNode):
                    for n, entry in enumerate(value.value):
                        lines[(section, i, field_key.value, n)] = entry.start_mark.line + 1
    return lines


def line_of(problem: str, lines: Mapping[tuple, int]) -> int | None:
    """The line a problem ('persons[3].lat: …') is about: the most precise one known."""
    match = _WHERE.match(problem)
    if match is None:
        return None
    path: tuple = (match["section"],)
    candidates = [path]
    if match["index"] is not None:
        path += (int(match["index"]),)
        candidates.append(path)
        if match["field"] is not None:
            path += (match["field"],)
            candidates.append(path)
            if match["sub"] is not None:
                candidates.append((*path, int(match["sub"])))
    for candidate in reversed(candidates):
        if candidate in lines:
            return lines[candidate]
    return None


def with_lines(problems: list[str], lines: Mapping[tuple, int], name: str) -> list[str]:
    """Each problem prefixed by 'file:line: ' (or 'file: ' when its line is unknown), in
    the order of the file."""
    located = sorted(((line_of(p, lines), n, p) for n, p in enumerate(problems)), key=lambda t: (t[0] or 0, t[1]))
    return [f"{name}:{line}: {p}" if line is not None else f"{name}: {p}" for line, _, p in located]
