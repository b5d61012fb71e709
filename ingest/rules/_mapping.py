"""Building frozen config dataclasses from the plain mappings a registry file holds.

Each config class calls `config_from_mapping(cls, data)`: every key must name a field, and
each value is converted to the field's declared type, so that a typo in the registry fails
at load time with the field's name instead of silently running on a default.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from datetime import time
from enum import Enum
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """A registry mapping does not describe a valid rules config."""


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A config class's field types, resolved once: resolving them evaluates every
    annotation, which cost ~1 ms a record — most of checking a registry of 20,000 persons."""
    return get_type_hints(cls)


def config_from_mapping(cls: type[T], data: Mapping[str, Any]) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(names))}"
        )
    hints = _type_hints(cast(type, cls))
    # Every field's conversion is tried, so that all wrong values are reported at once.
    kwargs: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in data.items():
        try:
            kwargs[name] = convert(hints[name], value, f"{cls.__name__}.{name}")
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("; ".join(errors))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return convert(inner, value, where)
    if tp is bool:
        return _expect(value, bool, where)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        return _expect(value, str, where)
    if tp is time:
        return parse_clock(value, where)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in tp)
            raise ConfigError(f"{where}: expected one of {allowed}, got {value!r}") from None
    if origin is tuple:
        (item_type, _ellipsis) = get_args(tp)
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(convert(item_type, item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin in (dict, Mapping):
        key_type, value_type = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return types.MappingProxyType(
            {
                convert(key_type, k, f"{where} key"): convert(value_type, v, f"{where}[{k!r}]")
                for k, v in value.items()
            }
        )
    parse = getattr(tp, "from_mapping", None) or getattr(tp, "parse", None)
    if parse is not None:
        if isinstance(value, tp):
            return value
        try:
            return parse(value)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    raise TypeError(f"{where}: no conversion for field type {tp!r}")  # a bug in a config class


def parse_clock(value: Any, where: str = "time") -> time:
    """'HH:MM' or 'HH:MM:SS' local wall-clock time."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a time 'HH:MM', got {value!r}")
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a time 'HH:MM', got {value!r}") from None
    if parsed.tzinfo is not None:
        raise ConfigError(f"{where}: a window is local wall-clock time, got an offset in {value!r}")
    return parsed


def _expect(value: Any, tp: type, where: str) -> Any:
    if not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value
