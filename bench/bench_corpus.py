"""Benchmark the scenario corpus: executions with dpor and with none (where
none finishes within its cap), steps per second and wall time per scenario,
and the time to check the whole corpus.

    python bench/bench_corpus.py [--none-cap-s 30] [--quick] [scenarios/...]

A benchmark, not a test: the figures go in the README.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from racecheck.runner import check
from racecheck.scenario import load
from racecheck.scheduler import Bounds, Explorer


def explore(sc, reduction, cap_s=None):
    bounds = sc.bounds if cap_s is None else Bounds(
        max_preemptions=sc.bounds.max_preemptions, max_steps=sc.bounds.max_steps, timeout=cap_s)
    start = time.perf_counter()
    out = Explorer(sc.model, reduction, bounds).run()
    return out, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["scenarios"])
    ap.add_argument("--none-cap-s", type=float, default=30.0,
                    help="give up on the none reduction of one scenario after this long")
    ap.add_argument("--quick", action="store_true", help="skip the none reduction")
    args = ap.parse_args()
    files = []
    for p in map(Path, args.paths):
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    print("| scenario | verdict | dpor executions | dpor blocked | dpor steps/s | dpor time (s) "
          "| none executions | none time (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for f in files:
        sc = load(f)
        if sc.space is not None:
            continue  # ranges or sets of values: bench/bench_symbolic.py
        out, dt = explore(sc, "dpor")
        rate = out.stats.steps / dt if dt else 0
        if args.quick:
            none_execs, none_time = "-", "-"
        else:
            nout, ndt = explore(sc, "none", args.none_cap_s)
            finished = nout.verdict != "incomplete"
            none_execs = f"{nout.stats.executions}" if finished else f">{nout.stats.executions}"
            none_time = f"{ndt:.2f}" if finished else f">{args.none_cap_s:.0f}"
        verdict = out.verdict + (f" ({out.violation.invariant})" if out.violation else "")
        print(f"| {sc.name} | {verdict} | {out.stats.executions} | {out.stats.blocked} | {rate:,.0f} "
              f"| {dt:.2f} | {none_execs} | {none_time} |")
    # The whole corpus as `racecheck check` runs it: dpor, minimised counterexamples.
    start = time.perf_counter()
    for f in files:
        check(load(f), save_trace=False)
    print(f"\nwhole corpus ({len(files)} scenarios) checked as `racecheck check` does, "
          f"minimisation included: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
