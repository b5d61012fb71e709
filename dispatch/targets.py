"""Response targets: how fast a call must be dispatched and reached, with where each comes
from (DOMAIN.md). Defined once; the trends page, the monthly report and the simulated run's
report all measure against these. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
__all__ = ["DISPATCH", "RESPONSE", "RESPONSE_P1_MEAN", "TURNOUT", "TARGETS", "Target"]


@dataclass(frozen=True, slots=True)
class Target:
    seconds: float
    share: float | None  # the share of calls that must meet it; None: a mean, not a share
    source: str

    def met_by(self, seconds: float) -> bool:
        return seconds <= self.seconds


# From the call to the order: China's pre-hospital goal, 3 minutes for 95 % of calls.
DISPATCH = Target(180.0, 0.95, "China pre-hospital: dispatch within 3 min, 95 %")
# NFPA 1710: turnout (order to wheels rolling) 60 s, then 480 s of travel for 90 % of ALS
# responses. The console measures order to on scene against the travel figure.
TURNOUT = Target(60.0, 0.90, "NFPA 1710: turnout 60 s, 90 %")
RESPONSE = Target(480.0, 0.90, "NFPA 1710: 480 s travel, 90 %")
# England's Category 1 standard, applied to priority 1: a mean of 7 minutes.
RESPONSE_P1_MEAN = Target(420.0, None, "England Category 1: mean 7 min")

# By the names the trends API has always given them.
TARGETS: dict[str, Target] = {
    "dispatch": DISPATCH,
    "response": RESPONSE,
    "response_p1_mean": RESPONSE_P1_MEAN,
}
