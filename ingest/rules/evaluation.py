"""Grading a station's own averages by the surface-water evaluation method (地表水环境质量评价
办法（试行）, 2011), on GB 3838-2002 Table 1.

* The class is single-factor: the worst class over the graded parameters of the period's
  mean (an hour, a day, a month).
* Lakes and reservoirs: total nitrogen is evaluated separately, as a reference indicator, and
  is not in the class; their trophic state is the comprehensive trophic level index TLI(Σ)
  from chlorophyll-a, TP, TN, transparency and CODMn, over those measured.
* Data flags belong to each parameter. N is a measurement. T (over range) is at or above the
  analyser's upper limit, so the true value is *at least* the one sent: it grades a parameter
  as exceeding when even that value exceeds, and says nothing when it does not. F M S D C B
  leave out their own parameter only.

Pure: values in, a `Grade` out, which says which parameters the class covers and why the
others are not in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ingest.readings import AverageValue

from .gb3838 import PH_RANGE, CLASSIFIED_PARAMETERS, WaterBody, WaterClass, classify_parameter

NORMAL = "N"
OVER_RANGE = "T"


class TrophicState(StrEnum):
    """The TLI(Σ) bands of the method."""

    OLIGOTROPHIC = "oligotrophic"  # < 30
    MESOTROPHIC = "mesotrophic"  # 30–50
    LIGHT_EUTROPHIC = "light_eutrophic"  # 50–60
    MIDDLE_EUTROPHIC = "middle_eutrophic"  # 60–70
    HYPER_EUTROPHIC = "hyper_eutrophic"  # > 70


@dataclass(frozen=True, slots=True)
class Grade:
    """What a period's averages grade to, and from what."""

    water_class: WaterClass | None  # None: nothing gradable in the period
    worst_parameter: str | None
    value: float | None
    # A covered parameter was over range (T): its value is a lower bound, so the true class
    # is this one or worse. An exceedance stands; compliance is not shown.
    at_least: bool
    covers: tuple[str, ...]  # the parameters the class is graded from
    per_parameter: dict[str, WaterClass] = field(default_factory=dict)
    # Parameters left out of the class and why: their data flag, or "reference" (lake TN),
    # or "over_range_inconclusive" (a T value that meets the limit says nothing).
    left_out: dict[str, str] = field(default_factory=dict)
    tn_class: WaterClass | None = None  # lakes: TN evaluated on its own
    tli: float | None = None  # lakes: TLI(Σ), when chlorophyll-a was measured
    trophic_state: TrophicState | None = None
    tli_covers: tuple[str, ...] = ()  # the parameters the TLI is computed from

    def to_json(self) -> dict[str, object]:
        return {
            "class": None if self.water_class is None else self.water_class.label,
            "worst_parameter": self.worst_parameter,
            "value": self.value,
            "at_least": self.at_least,
            "covers": list(self.covers),
            "left_out": dict(self.left_out),
            "tn_class": None if self.tn_class is None else self.tn_class.label,
            "tli": None if self.tli is None else round(self.tli, 1),
            "trophic_state": None if self.trophic_state is None else str(self.trophic_state),
            "tli_covers": list(self.tli_covers),
        }


def _lower_bound_class(parameter: str, value: float, body: WaterBody) -> WaterClass | None:
    """The class of a parameter whose true value is at least `value` (a T flag), when that is
    decided by the bound alone; None when it is not."""
    graded = classify_parameter(parameter, value, body)
    if graded is None:
        return None
    if parameter == "ph":
        # At least `value`: only a bound already above the range decides (劣V).
        return WaterClass.BELOW_V if value > PH_RANGE[1] else None
    if parameter == "do_mg_l":
        # More oxygen is better: at least `value` is at least this good, and no worse. The
        # class it shows is an upper bound on how bad; take it only when it is class I.
        return graded if graded is WaterClass.I else None
    # A ceiling: the true class is the bound's class or worse, a floor on how bad it is,
    # which is what an exceedance needs (the caller marks the grade `at_least`).
    return graded


def grade(values: Mapping[str, AverageValue], body: WaterBody) -> Grade:
    """The class of one period's averages by the 2011 method (see the module docstring)."""
    per_parameter: dict[str, WaterClass] = {}
    at_least: set[str] = set()
    left_out: dict[str, str] = {}
    tn_class: WaterClass | None = None
    for parameter in CLASSIFIED_PARAMETERS:
        item = values.get(parameter)
        if item is None:
            continue
        if item.flag == NORMAL:
            graded = classify_parameter(parameter, item.avg, body)
        elif item.flag == OVER_RANGE:
            graded = _lower_bound_class(parameter, item.avg, body)
            if graded is None:
                left_out[parameter] = "over_range_inconclusive"
                continue
            at_least.add(parameter)
        else:
            left_out[parameter] = item.flag
            continue
        if graded is None:
            continue
        if parameter == "tn_mg_l" and body is WaterBody.LAKE:
            tn_class = graded
            left_out[parameter] = "reference"
            continue
        per_parameter[parameter] = graded
    tli = trophic_level_index(values) if body is WaterBody.LAKE else None
    tli_covers = tuple(_tli_usable(values)) if tli is not None else ()
    if not per_parameter:
        return Grade(None, None, None, False, (), {}, left_out, tn_class, tli, _trophic_state(tli), tli_covers)
    worst = max(per_parameter, key=per_parameter.__getitem__)
    return Grade(
        water_class=per_parameter[worst],
        worst_parameter=worst,
        value=values[worst].avg,
        at_least=bool(at_least & set(per_parameter)),
        covers=tuple(per_parameter),
        per_parameter=per_parameter,
        left_out=left_out,
        tn_class=tn_class,
        tli=tli,
        trophic_state=_trophic_state(tli),
        tli_covers=tli_covers,
    )


# --- the trophic level index --------------------------------------------------------------

# TLI(j) of each parameter (chlorophyll-a in mg/m³ = µg/L, TP and TN and CODMn in mg/L,
# transparency SD in m), and r_ij, its correlation with chlorophyll-a for Chinese lakes,
# whose square weights it: W_j = r_ij² / Σ r_ij² over the parameters measured.
_TLI: dict[str, tuple[float, float, float]] = {
    # parameter: (a, b, r) in TLI(j) = 10 (a + b ln value)
    "chla_ug_l": (2.5, 1.086, 1.0),
    "tp_mg_l": (9.436, 1.624, 0.84),
    "tn_mg_l": (5.453, 1.694, 0.82),
    "sd_m": (5.118, -1.94, 0.83),
    "codmn_mg_l": (0.109, 2.661, 0.83),
}


def trophic_level_index(values: Mapping[str, AverageValue]) -> float | None:
    """TLI(Σ) over the measured (flag N, positive) parameters; None without chlorophyll-a,
    which the index is built around. Transparency (`sd_m`) joins where measured: a clearer
    lake is a less eutrophic one, hence its negative slope."""
    usable = _tli_usable(values)
    if "chla_ug_l" not in usable:
        return None
    total_weight = sum(_TLI[name][2] ** 2 for name in usable)
    return sum(
        (_TLI[name][2] ** 2 / total_weight) * 10 * (_TLI[name][0] + _TLI[name][1] * math.log(value))
        for name, value in usable.items()
    )


def _tli_usable(values: Mapping[str, AverageValue]) -> dict[str, float]:
    """The index's parameters that were measured: flag N and a positive value (the index
    takes their logarithm). In the index's own order."""
    return {name: values[name].avg for name in _TLI if name in values and values[name].flag == NORMAL and values[name].avg > 0}


def _trophic_state(tli: float | None) -> TrophicState | None:
    if tli is None:
        return None
    if tli < 30:
        return TrophicState.OLIGOTROPHIC
    if tli <= 50:
        return TrophicState.MESOTROPHIC
    if tli <= 60:
        return TrophicState.LIGHT_EUTROPHIC
    if tli <= 70:
        return TrophicState.MIDDLE_EUTROPHIC
    return TrophicState.HYPER_EUTROPHIC
