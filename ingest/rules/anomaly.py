"""Rolling-statistics event detection for one water parameter, in the spirit of EPA CANARY.

Three stages per value: (1) outlier — |x - mean| > k·std over a history window of recent
values; (2) binomial event discriminator — the probability that the number of outliers in
the last B values is not chance, P = BinomCDF(outliers; B, p); (3) an event while P exceeds
the raise threshold, ended (hysteresis) once P falls to the clear threshold.

Outliers are kept out of the history so that a sustained shift keeps looking abnormal long
enough to be declared; once an event is declared every value is admitted, so the baseline
re-learns the new level and the event ends by itself (CANARY's "event timeout", in effect).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from ingest.readings import WATER_PARAMETERS

from ._evolve import evolve
from ._mapping import ConfigError, config_from_mapping

_T = TypeVar("_T")

# The smallest standard deviation each parameter's history is credited with: analysers
# report a perfectly flat line between calibrations, and without a floor the first
# least-significant-digit change would be "infinitely" many sigmas away. Roughly the
# resolution of a typical station analyser.
DEFAULT_STD_FLOORS: Mapping[str, float] = MappingProxyType(
    {
        "temp_c": 0.1,
        "ph": 0.05,
        "do_mg_l": 0.1,
        "codmn_mg_l": 0.1,
        "cod_mg_l": 0.5,
        "nh3n_mg_l": 0.02,
        "tp_mg_l": 0.005,
        "tn_mg_l": 0.05,
        "turbidity_ntu": 0.5,
        "cond_us_cm": 5.0,
    }
)


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    window: int = 30  # history values per parameter
    min_history: int = 10  # values needed before a value can be judged at all
    k: float = 3.0  # outlier: further than k standard deviations from the history mean
    std_floors: Mapping[str, float] = field(default_factory=lambda: DEFAULT_STD_FLOORS)
    relative_std_floor: float = 0.01  # and at least this fraction of |mean|
    binomial_window: int = 8  # B: the last B judged values vote
    outlier_probability: float = 0.5  # p of the binomial, as in CANARY
    raise_probability: float = 0.95  # event when P exceeds this ...
    clear_probability: float = 0.5  # ... and over when P falls to this
    parameters: tuple[str, ...] = WATER_PARAMETERS

    def __post_init__(self) -> None:
        if not 2 <= self.min_history <= self.window:
            raise ConfigError(f"anomaly: need 2 <= min_history <= window, got {self}")
        if self.binomial_window < 1 or self.k <= 0:
            raise ConfigError(f"anomaly: need binomial_window >= 1 and k > 0, got {self}")
        if not 0 <= self.clear_probability <= self.raise_probability < 1:
            raise ConfigError(
                "anomaly: need 0 <= clear_probability <= raise_probability < 1, "
                f"got {self.clear_probability} and {self.raise_probability}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AnomalyConfig:
        # Overriding one parameter's floor keeps the defaults of the others.
        if isinstance(data, Mapping) and isinstance(data.get("std_floors"), Mapping):
            data = {**data, "std_floors": {**DEFAULT_STD_FLOORS, **data["std_floors"]}}
        return config_from_mapping(cls, data)

    def std_floor(self, parameter: str, mean: float) -> float:
        return max(self.std_floors.get(parameter, 0.0), self.relative_std_floor * abs(mean))


@dataclass(frozen=True, slots=True)
class ParameterHistory:
    values: tuple[float, ...] = ()  # at most `window`, oldest first
    outliers: tuple[bool, ...] = ()  # at most `binomial_window`, oldest first
    in_event: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParameterHistory:
        return cls(
            values=tuple(float(v) for v in data["values"]),
            outliers=tuple(bool(flag) for flag in data["outliers"]),
            in_event=bool(data["in_event"]),
        )


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one value looked like against its history, for alarm details."""

    outlier: bool
    mean: float | None
    std: float | None
    probability: float  # of an event, after this value


@functools.lru_cache(maxsize=1024)
def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p). A station's parameters ask for the same few (k, n, p)
    with every reading: computed once each."""
    return math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(0, min(k, n) + 1))


def observe(
    history: ParameterHistory, parameter: str, value: float, config: AnomalyConfig
) -> tuple[ParameterHistory, Judgement]:
    if len(history.values) < config.min_history:
        # Still learning the baseline: admit everything, judge nothing.
        learning = evolve(history, values=_push(history.values, value, config.window))
        return learning, Judgement(False, None, None, _event_probability(history.outliers, config))

    mean = math.fsum(history.values) / len(history.values)
    std = max(_sample_std(history.values, mean), config.std_floor(parameter, mean))
    outlier = abs(value - mean) > config.k * std
    outliers = _push(history.outliers, outlier, config.binomial_window)
    probability = _event_probability(outliers, config)
    threshold = config.clear_probability if history.in_event else config.raise_probability
    in_event = probability > threshold
    admitted = not outlier or in_event
    values = _push(history.values, value, config.window) if admitted else history.values
    return (
        ParameterHistory(values=values, outliers=outliers, in_event=in_event),
        Judgement(outlier, mean, std, probability),
    )


def _event_probability(outliers: tuple[bool, ...], config: AnomalyConfig) -> float:
    # Values not yet judged count as normal: B is fixed, so a single early outlier is never
    # "one out of one".
    return binomial_cdf(sum(outliers), config.binomial_window, config.outlier_probability)


def _push(window: tuple[_T, ...], item: _T, size: int) -> tuple[_T, ...]:
    return (*window, item)[-size:]


def _sample_std(values: tuple[float, ...] | list[float], mean: float) -> float:
    # statistics.stdev is exact (it sums Fractions) and costs ~40 µs for 30 values; every
    # water reading runs this for every parameter, and float precision is plenty here.
    deviations = [v - mean for v in values]
    return math.sqrt(math.fsum(map(operator.mul, deviations, deviations)) / (len(values) - 1))
