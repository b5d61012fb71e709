"""How rule state crosses the JSON boundary, and the one check every entry point makes on
the clock it is handed.

A state is written as JSON straight from its dataclasses by orjson: the fields are the keys,
enums their values, tuples arrays, and datetimes ISO 8601 strings with their offset (a string
with an explicit offset survives any JSON library). Each state class reads itself back with
its `from_json`. Ingest saves thousands of states a second, and building a dictionary per
state (and a string per datetime) in Python first cost three times as long as orjson's
encoding of the dataclasses themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


def encode_state(state: Any) -> bytes:
    """A rules state (a frozen dataclass) as a JSON document, for `from_json` to read back."""
    return orjson.dumps(state, option=orjson.OPT_NON_STR_KEYS)


def require_aware(value: datetime, name: str = "now") -> None:
    """Rules compare instants from devices and from the platform; a naive datetime would
    silently be read as local time, so refuse it loudly (it is a bug in the caller)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got naive {value!r}")


def dt_to_json(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat()


def dt_from_json(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    require_aware(parsed, "a stored datetime")
    return parsed


def dt_from_json_required(value: str) -> datetime:
    parsed = dt_from_json(value)
    if parsed is None:
        raise ValueError("a stored datetime is missing")
    return parsed


def check_source(expected: str, got: str, what: str) -> None:
    """State is kept per source; feeding one source's reading to another's state is a bug."""
    if expected != got:
        raise ValueError(f"{what} {got!r} given to the state of {what} {expected!r}")
