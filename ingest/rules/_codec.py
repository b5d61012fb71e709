"""How rule state crosses the JSON boundary, and the one check every entry point makes on
the clock it is handed.

Datetimes are stored as ISO 8601 strings in UTC: the state is persisted as a JSON document
next to the readings, and a string with an explicit offset survives any JSON library.
"""

from __future__ import annotations

from datetime import UTC, datetime


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
