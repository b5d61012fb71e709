"""Dispatch ETA benchmark: one-to-all road travel times (one Dijkstra on the reversed graph
from the incident's node) on road-like graphs of 10k, 100k and 1M nodes.

    python bench/dispatch_eta.py [--sizes 10000 100000 1000000] [--sources 50]

Prints figures, not pass/fail. Graphs are jittered grids with village roads, a county road
every 10th line and a main road every 50th, ~8 % of village segments missing — built with
numpy through RoadGraph, the type the dispatcher loads. Measured in the same run:

* one-to-all: `eta_to` from random incident nodes — median and p99 over `--sources`;
* with a 20-minute limit: the same search bounded as a dispatcher bounds it;
* with paths: the predecessor tree kept too (every unit's route to the scene);
* baseline: a pure-Python heapq Dijkstra on the 10k graph, and the ratio to `eta_to`;
* per-unit design: one forward search from each of 22 ambulances (the county's fleet) per
  incident, against the single reversed search, on the 100k graph.

With `--jiashan GEOJSON`, adds the synthetic Jiashan network (simulators.jiashan_roads).
Target: one-to-all ≤ 20 ms at 100k nodes.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dispatch.eta import eta_from, eta_to
from dispatch.geometry import LocalProjection, haversine_m
from dispatch.roads import ROAD_CLASS_CODE, RoadGraph

SPACING_M = 150.0
TARGET_MS_AT_100K = 20.0
LIMIT_S = 20 * 60.0
FLEET = 22  # Jiashan's ambulances at one per 30,000 residents


def grid_graph(n_nodes: int, seed: int = 1) -> RoadGraph:
    rng = np.random.default_rng(seed)
    side = round(math.sqrt(n_nodes))
    i, j = np.divmod(np.arange(side * side), side)
    x = j * SPACING_M + rng.uniform(-0.2, 0.2, side * side) * SPACING_M
    y = i * SPACING_M + rng.uniform(-0.2, 0.2, side * side) * SPACING_M
    lat, lon = LocalProjection(30.85, 120.90).to_latlon(x - x.mean(), y - y.mean())
    idx = np.arange(side * side).reshape(side, side)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    line = np.concatenate(
        [np.repeat(np.arange(side), side - 1), np.tile(np.arange(side), side - 1)]
    )
    cls = np.where(
        line % 50 == 0,
        ROAD_CLASS_CODE["primary"],
        np.where(line % 10 == 0, ROAD_CLASS_CODE["tertiary"], ROAD_CLASS_CODE["residential"]),
    )
    keep = (cls != ROAD_CLASS_CODE["residential"]) | (rng.random(len(a)) > 0.08)
    a, b, cls = a[keep], b[keep], cls[keep]
    src, dst, cls = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([cls, cls])
    length = haversine_m(lat[src], lon[src], lat[dst], lon[dst]) * 1.04
    return RoadGraph.from_edges(lat, lon, src, dst, length, cls.astype(np.int8))


def heapq_dijkstra_to(incoming: list[list[tuple[int, float]]], target: int) -> list[float]:
    best = [math.inf] * len(incoming)
    best[target] = 0.0
    heap = [(0.0, target)]
    while heap:
        d, v = heapq.heappop(heap)
        if d > best[v]:
            continue
        for u, t in incoming[v]:
            nd = d + t
            if nd < best[u]:
                best[u] = nd
                heapq.heappush(heap, (nd, u))
    return best


def timed_ms(fn, sources) -> list[float]:
    out = []
    for s in sources:
        t0 = time.perf_counter()
        fn(int(s))
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), float(np.percentile(samples, 99))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--baseline-sources", type=int, default=10)
    parser.add_argument(
        "--jiashan", type=Path, help="region GeoJSON: also time the synthetic Jiashan network"
    )
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}"
    )
    rng = np.random.default_rng(42)
    graphs: list[tuple[str, RoadGraph, float]] = []
    if args.jiashan:
        from simulators.jiashan_roads import build_jiashan_network

        t0 = time.perf_counter()
        graphs.append(
            (
                "Jiashan synthetic",
                build_jiashan_network(args.jiashan).graph,
                time.perf_counter() - t0,
            )
        )
    for n in args.sizes:
        t0 = time.perf_counter()
        graph = grid_graph(n)
        graphs.append((f"grid {n // 1000}k", graph, time.perf_counter() - t0))

    rows = []
    scipy_10k = scipy_100k = None
    for name, graph, build_s in graphs:
        sources = rng.integers(0, graph.n_nodes, args.sources)
        eta_to(graph, int(sources[0]))  # warm-up: first call pays imports and allocation
        full = summary(timed_ms(lambda s, g=graph: eta_to(g, s), sources))
        limited = summary(timed_ms(lambda s, g=graph: eta_to(g, s, limit_s=LIMIT_S), sources))
        paths = summary(timed_ms(lambda s, g=graph: eta_to(g, s, with_paths=True), sources))
        rows.append((name, graph.n_nodes, graph.n_edges, build_s, full, limited, paths))
        if name == "grid 10k":
            scipy_10k = (graph, full[0], sources)
        if name == "grid 100k":
            scipy_100k = (graph, full[0], sources)

    print()
    print(
        "| graph | nodes | directed edges | build (s) | one-to-all median (ms) | p99 (ms) "
        "| 20-min limit median (ms) | with paths median (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, m, build_s, full, limited, paths in rows:
        print(
            f"| {name} | {n:,} | {m:,} | {build_s:.2f} | {full[0]:.2f} | {full[1]:.2f} | {limited[0]:.2f} | {paths[0]:.2f} |"
        )

    if scipy_10k is not None:
        graph, scipy_ms, sources = scipy_10k
        incoming: list[list[tuple[int, float]]] = [[] for _ in range(graph.n_nodes)]
        for u, v, t in zip(
            graph.edge_from.tolist(), graph.edge_to.tolist(), graph.travel_s.tolist(), strict=True
        ):
            incoming[v].append((u, t))
        base = summary(
            timed_ms(lambda s: heapq_dijkstra_to(incoming, s), sources[: args.baseline_sources])
        )
        check = heapq_dijkstra_to(incoming, int(sources[0]))
        assert np.allclose(check, eta_to(graph, int(sources[0])).seconds), (
            "baseline and eta_to disagree"
        )
        print()
        print("| baseline on grid 10k | median (ms) | p99 (ms) | eta_to is faster by |")
        print("|---|---:|---:|---:|")
        print(
            f"| pure-Python heapq Dijkstra | {base[0]:.1f} | {base[1]:.1f} | {base[0] / scipy_ms:.0f}x |"
        )

    if scipy_100k is not None:
        graph, scipy_ms, sources = scipy_100k
        fleet = rng.integers(0, graph.n_nodes, FLEET)
        per_unit = summary(
            timed_ms(lambda s: [eta_from(graph, int(u))[s] for u in fleet], sources[:10])
        )
        print()
        print(
            f"| per incident on grid 100k, {FLEET} units | median (ms) | p99 (ms) | one reversed search is faster by |"
        )
        print("|---|---:|---:|---:|")
        print(
            f"| one forward search per unit | {per_unit[0]:.1f} | {per_unit[1]:.1f} | {per_unit[0] / scipy_ms:.0f}x |"
        )

    at_100k = [r for r in rows if r[0] == "grid 100k"]
    if at_100k:
        median = at_100k[0][4][0]
        verdict = "met" if median <= TARGET_MS_AT_100K else "NOT met"
        print(
            f"\ntarget one-to-all <= {TARGET_MS_AT_100K:g} ms at 100k nodes: {verdict} ({median:.2f} ms median)"
        )


if __name__ == "__main__":
    main()
