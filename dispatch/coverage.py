"""Dynamic coverage: which villages an available ambulance reaches within 8, 12 and 15
minutes (China's rural targets, DOMAIN.md), which towns are left uncovered, and the move-up
that covers them again. Pure: positions in, a picture and a recommendation out.

One multi-source Dijkstra on the *forward* graph answers "how long from the nearest available
unit to everywhere": the search starts at a virtual node joined to every unit's road edge
(each unit leaves its edge by either end, after its access leg), exactly as scene_field does
in reverse, so one search serves the whole fleet, limited to the widest band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from .roads import RoadGraph
from .snapping import MIN_LEG_S, EdgeSnap, scene_field

__all__ = ["BANDS_S", "Coverage", "MoveUp", "Site", "coverage", "recommend_move_up"]

# Rural response bands (DOMAIN.md: China's rural 10–20 km service radius, Kunshan's 12.4 min
# mean within a district): a village is green within 8 min, amber within 12, red within 15,
# and uncovered beyond.
BANDS_S: tuple[float, ...] = (480.0, 720.0, 900.0)
# A town is covered while this share of its villages is within the widest band of an
# available ambulance; below it, a move-up is recommended.
TOWN_COVERED_SHARE = 0.8
# A move-up is looked for among the units nearest the uncovered town by road: each one tried
# costs a coverage search, and a unit farther away than these would leave a longer gap.
MOVE_UP_CANDIDATES = 6


@dataclass(frozen=True, slots=True)
class Site:
    """A place coverage is measured at: a village (its first-aid post) in a town."""

    site_id: str
    town: str
    snap: EdgeSnap


@dataclass(frozen=True, slots=True)
class Coverage:
    seconds: dict[str, float]  # site -> seconds from the nearest available unit (inf: none in 15 min)
    band: dict[str, int]  # site -> 0 (≤ 8 min), 1 (≤ 12), 2 (≤ 15), 3 (beyond)
    town_share: dict[str, float]  # town -> share of its sites within the widest band
    uncovered_towns: tuple[str, ...]

    @property
    def share_within(self) -> tuple[float, ...]:
        """The share of all sites within each band (cumulative)."""
        n = max(len(self.band), 1)
        return tuple(sum(b <= k for b in self.band.values()) / n for k in range(len(BANDS_S)))

    def to_json(self) -> dict[str, object]:
        return {
            "bands_s": list(BANDS_S),
            "sites": {s: {"band": self.band[s], "seconds": None if math.isinf(t) else round(t, 1)} for s, t in self.seconds.items()},
            "towns": {t: round(share, 3) for t, share in self.town_share.items()},
            "uncovered_towns": list(self.uncovered_towns),
            "share_within": [round(x, 4) for x in self.share_within],
        }


def from_units(graph: RoadGraph, units: Sequence[EdgeSnap], *, limit_s: float = BANDS_S[-1]) -> NDArray[np.float64]:
    """Seconds from the nearest of `units` to every node (inf beyond `limit_s` or with none)."""
    n = graph.n_nodes
    if not units:
        return np.full(n, np.inf)
    ends: list[int] = []
    costs: list[float] = []
    for unit in units:
        if unit.on_node:
            ends.append(unit.u)
            costs.append(max(unit.access_s, MIN_LEG_S))
            continue
        for end, share, along in ((unit.v, 1.0 - unit.t, unit.along_s), (unit.u, unit.t, unit.back_s)):
            # To leave by `end` the unit drives the rest of its edge towards it.
            if math.isfinite(along):
                ends.append(end)
                costs.append(max(unit.access_s + share * along, MIN_LEG_S))
    fwd = graph.forward
    augmented = sp.csr_matrix(
        (np.concatenate([fwd.data, costs]), np.concatenate([fwd.indices, ends]),
         np.concatenate([fwd.indptr, [fwd.indptr[-1] + len(ends)]])),
        shape=(n + 1, n + 1),
    )
    seconds: NDArray[np.float64] = dijkstra(augmented, directed=True, indices=n, limit=limit_s)[:n]
    return seconds


def _arrive(graph: RoadGraph, seconds: NDArray[np.float64], site: EdgeSnap) -> float:
    """From the field to a site on its edge, then the walk from the road."""
    if site.on_node:
        best = float(seconds[site.u])
    else:
        via_u = float(seconds[site.u]) + _part(site.t, site.along_s)
        via_v = float(seconds[site.v]) + _part(1.0 - site.t, site.back_s)
        best = min(via_u, via_v)
    return best + site.access_s


def _part(share: float, seconds: float) -> float:
    return share * seconds if math.isfinite(seconds) else math.inf


def coverage(graph: RoadGraph, units: Sequence[EdgeSnap], sites: Sequence[Site]) -> Coverage:
    """The coverage the available units give now."""
    field = from_units(graph, units)
    seconds = {s.site_id: _arrive(graph, field, s.snap) for s in sites}
    band = {sid: next((k for k, limit in enumerate(BANDS_S) if t <= limit), len(BANDS_S)) for sid, t in seconds.items()}
    towns: dict[str, list[bool]] = {}
    for s in sites:
        towns.setdefault(s.town, []).append(seconds[s.site_id] <= BANDS_S[-1])
    share = {town: sum(v) / len(v) for town, v in sorted(towns.items())}
    uncovered = tuple(t for t, x in share.items() if x < TOWN_COVERED_SHARE)
    return Coverage(seconds, band, share, uncovered)


@dataclass(frozen=True, slots=True)
class MoveUp:
    """Reposition `unit_id` to `facility_id` (the uncovered town's station): an order with
    `kind: relocate` once a dispatcher accepts it."""

    unit_id: str
    town: str
    facility_id: str
    drive_s: float
    covered_share_after: float  # the town's share once the unit stands there
    uncovered_after: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "unit_id": self.unit_id, "town": self.town, "facility_id": self.facility_id,
            "drive_s": round(self.drive_s, 1), "covered_share_after": round(self.covered_share_after, 3),
            "uncovered_after": list(self.uncovered_after),
        }


def recommend_move_up(
    graph: RoadGraph,
    available: Mapping[str, EdgeSnap],
    sites: Sequence[Site],
    stations: Mapping[str, tuple[str, EdgeSnap]],
    current: Coverage,
) -> MoveUp | None:
    """For the least covered town (the next one if no move helps it), the available unit
    among the MOVE_UP_CANDIDATES nearest whose move to that town's station leaves the fewest
    towns uncovered, then the shortest drive, then the unit id. Only a move that covers the
    town better than now and leaves every covered town covered is recommended. `stations` is town -> (facility id, where it is)."""
    targets = [t for t in sorted(current.uncovered_towns, key=lambda t: (current.town_share[t], t)) if t in stations]
    for town in targets:  # the least covered first; a town no move can help is passed over
        move = _move_up_for(graph, available, sites, stations[town], town, current)
        if move is not None:
            return move
    return None


def _move_up_for(
    graph: RoadGraph, available: Mapping[str, EdgeSnap], sites: Sequence[Site], station: tuple[str, EdgeSnap],
    town: str, current: Coverage,
) -> MoveUp | None:
    facility_id, at = station
    drive = _drives_to(graph, available, at)
    best: tuple[tuple[int, float, str], MoveUp] | None = None
    nearest = sorted((d, uid) for uid, d in drive.items() if math.isfinite(d))[:MOVE_UP_CANDIDATES]
    for _, unit_id in nearest:
        moved = [snap for uid, snap in available.items() if uid != unit_id] + [at]
        after = coverage(graph, moved, sites)
        if after.town_share[town] <= current.town_share[town] or set(after.uncovered_towns) - set(current.uncovered_towns):
            continue  # no better for the town, or robbing a covered town to pay for it
        key = (len(after.uncovered_towns), drive[unit_id], unit_id)
        if best is None or key < best[0]:
            best = (key, MoveUp(unit_id, town, facility_id, drive[unit_id], after.town_share[town], after.uncovered_towns))
    return None if best is None else best[1]


def _drives_to(graph: RoadGraph, units: Mapping[str, EdgeSnap], target: EdgeSnap) -> dict[str, float]:
    field = scene_field(graph, target)
    return {uid: field.eta_of(graph, snap) for uid, snap in units.items()}
