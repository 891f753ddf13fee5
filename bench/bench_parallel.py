#!/usr/bin/env python
"""Benchmark ``--jobs``: dfs split into work units over processes.

    python bench/bench_parallel.py            # lastzero(12), readers(16), two corpus scenarios
    python bench/bench_parallel.py --quick    # lastzero(10), readers(14)

For each program it prints one row of a Markdown table: the executions and
wall time of one process (``Explorer``), then of ``--jobs 1`` split into the
same work units in one process (what the split costs by itself), and of 2
worker processes (racecheck/parallel.py); the speed-up of 2 workers over one
process; the redundancy (executions beyond one process's, in per cent); the
number of work units and their depth. Every row also checks that the
verdicts agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from programs import PROGRAMS  # noqa: E402

from racecheck import parallel  # noqa: E402
from racecheck.scheduler import Bounds, Explorer  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def split_in_one_process(model, reduction, bounds, jobs):
    """The units explored one after the other here: the split's own cost."""
    found, _ = parallel.split(model, reduction, bounds, jobs)
    executions = 0
    for unit in found:
        executions += Explorer(model, reduction, bounds, unit=unit).run().stats.executions
    return executions


def row(name, model, reduction, jobs):
    bounds = Bounds()
    one, t1 = timed(lambda: Explorer(model, reduction, bounds).run())
    split, ts = timed(lambda: split_in_one_process(model, reduction, bounds, jobs))
    par, tp = timed(lambda: parallel.explore(model, reduction, bounds, jobs))
    assert par.outcome.verdict == one.verdict, (name, par.outcome.verdict, one.verdict)
    extra = 100.0 * (par.outcome.stats.executions - one.stats.executions) / max(one.stats.executions, 1)
    print(f"| {name} | {reduction} | {one.stats.executions:,} | {t1:.1f} | {split:,} | {ts:.1f} | "
          f"{par.outcome.stats.executions:,} | {tp:.1f} | {t1 / tp:.2f}x | {extra:+.1f} % | "
          f"{par.units} | {par.depth} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    sizes = {"lastzero": 10, "readers": 14} if args.quick else {"lastzero": 12, "readers": 16}
    print(f"{os.cpu_count()} cores, --jobs {args.jobs}\n")
    print("| program | reduction | one process: execs | s | units in one process: execs | s | "
          f"{args.jobs} workers: execs | s | speed-up | redundancy | units | depth |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n in sizes.items():
        row(f"{name}({n})", PROGRAMS[name](n), "dpor", args.jobs)
    if not args.quick:
        from racecheck.scenario import load
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios")
        for scen, red in (("ext4_dax_fault_deadlock_fixed", "dpor"), ("cow_fault_vs_truncate_fixed", "none")):
            sc = load(os.path.join(root, f"{scen}.yaml"))
            row(scen, sc.model, red, args.jobs)


if __name__ == "__main__":
    main()
