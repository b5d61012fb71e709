"""Water class per GB 3838-2002 Table 1 (surface water environmental quality standard).

A pure table lookup: the class each parameter's value meets, and the station's class as the
worst over its parameters. Parameters the standard does not grade here (temperature,
turbidity, conductivity; TN on rivers) are simply not classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class WaterClass(IntEnum):
    """Higher is worse; BELOW_V is 劣V, anything worse than class V."""

    I = 1  # noqa: E741 - the standard's own name for the class
    II = 2
    III = 3
    IV = 4
    V = 5
    BELOW_V = 6

    @classmethod
    def _missing_(cls, value: object) -> WaterClass | None:
        # Accept the labels a registry file naturally uses: "III", "劣V".
        if isinstance(value, str):
            for member in cls:
                if value in (member.name, member.label):
                    return member
        return None

    @property
    def label(self) -> str:
        return "劣V" if self is WaterClass.BELOW_V else self.name


class WaterBody(StrEnum):
    RIVER = "river"
    LAKE = "lake"  # lakes and reservoirs share the stricter TP column and grade TN

    @classmethod
    def _missing_(cls, value: object) -> WaterBody | None:
        return cls.LAKE if value == "reservoir" else None


# mg/L ceilings a value must not exceed for classes I..V.
_CEILINGS: dict[str, tuple[float, ...]] = {
    "codmn_mg_l": (2.0, 4.0, 6.0, 10.0, 15.0),
    "cod_mg_l": (15.0, 15.0, 20.0, 30.0, 40.0),
    "nh3n_mg_l": (0.15, 0.5, 1.0, 1.5, 2.0),
}
_TP_CEILINGS: dict[WaterBody, tuple[float, ...]] = {
    WaterBody.RIVER: (0.02, 0.1, 0.2, 0.3, 0.4),
    WaterBody.LAKE: (0.01, 0.025, 0.05, 0.1, 0.2),
}
_TN_LAKE_CEILINGS: tuple[float, ...] = (0.2, 0.5, 1.0, 1.5, 2.0)
# Dissolved oxygen is a floor: more is better. (Class I also allows 90 % saturation; the
# stations report mg/L only, so the mg/L column is used.)
_DO_FLOORS: tuple[float, ...] = (7.5, 6.0, 5.0, 3.0, 2.0)
# pH has one range for classes I-V; outside it no class applies.
PH_RANGE: tuple[float, float] = (6.0, 9.0)

# Order in which ties for the worst parameter are broken, so the report is deterministic.
CLASSIFIED_PARAMETERS: tuple[str, ...] = (
    "ph",
    "do_mg_l",
    "codmn_mg_l",
    "cod_mg_l",
    "nh3n_mg_l",
    "tp_mg_l",
    "tn_mg_l",
)

_GRADED = tuple(WaterClass)[:5]


@dataclass(frozen=True, slots=True)
class Classification:
    water_class: WaterClass
    worst_parameter: str
    value: float
    per_parameter: dict[str, WaterClass]


def _ceilings(parameter: str, body: WaterBody) -> tuple[float, ...] | None:
    if parameter == "tp_mg_l":
        return _TP_CEILINGS[body]
    if parameter == "tn_mg_l":
        return _TN_LAKE_CEILINGS if body is WaterBody.LAKE else None
    return _CEILINGS.get(parameter)


def classify_parameter(parameter: str, value: float, body: WaterBody) -> WaterClass | None:
    """The best class whose limit `value` meets, or None if the parameter is not graded."""
    if parameter == "ph":
        low, high = PH_RANGE
        return WaterClass.I if low <= value <= high else WaterClass.BELOW_V
    if parameter == "do_mg_l":
        return next(
            (c for c, floor in zip(_GRADED, _DO_FLOORS, strict=True) if value >= floor),
            WaterClass.BELOW_V,
        )
    ceilings = _ceilings(parameter, body)
    if ceilings is None:
        return None
    return next(
        (c for c, ceiling in zip(_GRADED, ceilings, strict=True) if value <= ceiling),
        WaterClass.BELOW_V,
    )


def class_limit(
    parameter: str, water_class: WaterClass, body: WaterBody
) -> float | list[float] | None:
    """The limit a value must meet to be in `water_class` (a [low, high] range for pH), for
    alarm details; None for 劣V or an ungraded parameter."""
    if water_class is WaterClass.BELOW_V:
        return None
    if parameter == "ph":
        return list(PH_RANGE)
    if parameter == "do_mg_l":
        return _DO_FLOORS[water_class - 1]
    ceilings = _ceilings(parameter, body)
    return None if ceilings is None else ceilings[water_class - 1]


def classify(values: Mapping[str, float], body: WaterBody) -> Classification | None:
    """The station class of one reading: the worst class over its graded parameters, or
    None when the reading carries no graded parameter."""
    per_parameter: dict[str, WaterClass] = {}
    for parameter in CLASSIFIED_PARAMETERS:
        if parameter in values:
            graded = classify_parameter(parameter, values[parameter], body)
            if graded is not None:
                per_parameter[parameter] = graded
    if not per_parameter:
        return None
    # max() keeps the first of equal classes, i.e. CLASSIFIED_PARAMETERS order.
    worst = max(per_parameter, key=per_parameter.__getitem__)
    return Classification(
        water_class=per_parameter[worst],
        worst_parameter=worst,
        value=values[worst],
        per_parameter=per_parameter,
    )
