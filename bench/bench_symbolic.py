"""Benchmark symbolic scenarios (ranges and sets of values) against brute
force over the same space.

    python bench/bench_symbolic.py [scenario.yaml ...]

Per scenario: the assignments of values in the space; the parameter classes
that cover it (every class explored, as for a clean verdict), the z3 queries
and z3 time that took, and the whole time; then brute force, one full
interleaving search per assignment, and its time; and, as ``racecheck run``
works, the classes and time to the verdict (a run stops at the first
violating class). Every class's verdict is checked against the brute-force
verdicts of its values. A benchmark, not a test: the figures go in the README.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from racecheck import symbolic
from racecheck.ranges import instantiate
from racecheck.scenario import load
from racecheck.scheduler import Explorer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "scenarios" / f"{n}.yaml" for n in (
    "xip_io_new_block_edges_symbolic", "xip_io_new_block_edges_symbolic_fixed",
    "unaligned_dio_zeroing_symbolic", "unaligned_dio_zeroing_symbolic_fixed",
    "unaligned_dio_mixed_alignment_symbolic")] + [ROOT / "bench" / f"{n}.yaml" for n in (
    "fault_vs_truncate_sizes", "read_vs_truncate_sizes")]


def brute_force(sc):
    """Every assignment of the space, searched concretely: (verdicts, seconds)."""
    start = time.perf_counter()
    verdicts = {}
    for env in sc.space.assignments():
        out = Explorer(instantiate(sc.model, env, symbolic_values=False), sc.reduction, sc.bounds).run()
        verdicts[tuple(sorted(env.items()))] = out.verdict
    return verdicts, time.perf_counter() - start


def bench(path):
    sc = load(path)
    start = time.perf_counter()
    first = symbolic.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds)
    to_verdict = time.perf_counter() - start
    start = time.perf_counter()
    every = symbolic.explore_classes(sc.space, sc.model, sc.reduction, sc.bounds, stop_on_violation=False)
    whole = time.perf_counter() - start
    verdicts, brute_s = brute_force(sc)
    for key, verdict in verdicts.items():
        env = dict(key)
        home = [c for c in every.classes if c.contains(env)]
        assert len(home) == 1 and home[0].verdict == verdict, (path, env)
    violating = sum(1 for v in verdicts.values() if v == "violation")
    return (f"| {sc.name} | {first.verdict} | {len(verdicts)} | {violating} | {len(every.classes)} "
            f"| {every.z3_queries} | {every.z3_s:.2f} | {whole:.2f} | {brute_s:.2f} "
            f"| {len(first.classes)} | {to_verdict:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, default=DEFAULT)
    args = ap.parse_args()
    print("| scenario | verdict | assignments | violating | classes (all) | z3 queries | z3 time (s) "
          "| symbolic time, all classes (s) | brute force time (s) | classes to verdict | time to verdict (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in args.paths:
        print(bench(path), flush=True)


if __name__ == "__main__":
    main()
