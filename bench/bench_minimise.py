#!/usr/bin/env python
"""Benchmark the minimiser (racecheck/minimise.py): per program, the
counterexample dpor finds first (preemptions, steps), the minimised one, the
minimiser's time (process CPU time and wall time, each the least of
``--repeat`` runs: the machine may be shared) and its note when its budget
ran out.

    python bench/bench_minimise.py [--budget-s 20] [--quick] [--repeat 3]

Programs: philosophers(10, 12, 14) (bench/programs.py), whose deadlock needs
one preemption, and the corpus scenarios with the longest searches.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from programs import philosophers  # noqa: E402

from racecheck.minimise import minimise  # noqa: E402
from racecheck.scenario import load  # noqa: E402
from racecheck.scheduler import Bounds, Explorer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["dax_fault_no_entry_wait", "ext4_dax_fault_deadlock", "dax_writeback_no_entry_lock",
             "hole_page_vs_write_fault", "punch_hole_no_i_mutex", "truncate_no_i_mutex_vs_write"]


def models(quick):
    for n in (10, 12) if quick else (10, 12, 14):
        yield f"philosophers({n})", philosophers(n), Bounds()
    for name in SCENARIOS[:2] if quick else SCENARIOS:
        sc = load(ROOT / "scenarios" / f"{name}.yaml")
        yield name, sc.model, sc.bounds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each minimisation (the least time is shown)")
    args = ap.parse_args()
    print("| program | found: preemptions, steps | minimised: preemptions, steps "
          "| CPU (s) | wall (s) | note |")
    print("|---|---|---|---|---|---|")
    for name, model, bounds in models(args.quick):
        found = Explorer(model, "dpor", bounds).run().violation
        cpu = wall = float("inf")
        for _ in range(args.repeat):
            notes = []
            c, w = time.process_time(), time.monotonic()
            best = minimise(model, found, bounds, budget_s=args.budget_s, notes=notes)
            cpu, wall = min(cpu, time.process_time() - c), min(wall, time.monotonic() - w)
        print(f"| {name} | {found.preemptions}, {len(found.schedule)} | {best.preemptions}, "
              f"{len(best.schedule)} | {cpu:.2f} | {wall:.2f} | {'; '.join(notes)} |", flush=True)


if __name__ == "__main__":
    main()
