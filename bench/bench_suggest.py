"""Benchmark racecheck suggest-fix: for each scenario, the time it takes,
the lock placements it generates (of the sizes it searches), tries, proves
clean, rejects (by the invariant the placement still breaks) and does not
reach within its budget.

    python bench/bench_suggest.py [--depth 2] [--max-size 3] [--timeout 300] [scenarios/...]

A benchmark, not a test: the figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import time

from racecheck import suggest
from racecheck.scenario import load

SCENARIOS = [
    "scenarios/fault_vs_truncate.yaml",
    "scenarios/cow_fault_vs_truncate.yaml",
    "scenarios/unaligned_dio_zeroing.yaml",
    "scenarios/xip_read_vs_truncate.yaml",
    "scenarios/punch_hole_vs_fault.yaml",
    "scenarios/hole_page_vs_write_fault.yaml",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=SCENARIOS)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--max-size", type=int, default=3)
    ap.add_argument("--max-candidates", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    print("| scenario | time (s) | generated | tried | proven | rejected (by reason) | not reached "
          "| sizes searched | first proven |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
    total = 0.0
    for path in args.paths:
        sc = load(path)
        start = time.perf_counter()
        res = suggest.suggest(sc, depth=args.depth, timeout=args.timeout,
                              max_candidates=args.max_candidates, max_size=args.max_size)
        elapsed = time.perf_counter() - start
        total += elapsed
        if res.original.verdict != "violation":
            print(f"| {sc.name} | {elapsed:.1f} | - | - | - | not a violation ({res.original.verdict}) | - | - | - |")
            continue
        reasons = collections.Counter(t.invariant or t.verdict for t in res.tried if t.verdict != "clean")
        rejected = ", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "0"
        sizes = max((t.candidate.size for t in res.tried), default=0)
        proven = res.proven
        first = proven[0].candidate.describe() if proven else "none"
        stopped = f" (stopped: {res.stopped})" if res.stopped else ""
        print(f"| {sc.name} | {elapsed:.1f} | {res.candidates} | {len(res.tried)} | {len(proven)} "
              f"| {rejected} | {res.not_reached}{stopped} | 1-{sizes} | {first} |")
    print(f"\n{len(args.paths)} scenarios, {total:.1f} s in all")


if __name__ == "__main__":
    main()
