#!/usr/bin/env python
"""Soundness of racecheck's searches against an independent interpreter, on
random programs built to break reductions (tests/randprog.py: conditional
writes, compare-and-swap, branches on read values, waits, maps, mutexes in
either order, rwsems, assertions, after-step invariants the initial state may
already break, final-state invariants).

    python bench/bench_soundness.py                      # 10,000 programs
    python bench/bench_soundness.py --programs 2000 --seed 7 --jobs 4

Each program is explored to the end, past violations, with racecheck's
``none`` and ``dpor`` (stateless) and ``bfs``, and by the interpreter's
brute-force search of its own states; ``dpor`` and ``bfs`` also run once as
a user runs them, stopping at the first violation. Printed: programs, the
Mazurkiewicz traces of all of them (distinct traces of ``none``'s
executions), disagreements with the interpreter per strategy (final states,
violated invariants, the verdict; each must be 0), the traces ``dpor``
missed (beyond probes, which must be 0, and with them: a probe is a step
that touched nothing and found its lock or wait unavailable, a step that
changes nothing; a trace that differs from one dpor ran only by probes
reaches the same states), the executions ``dpor`` ran beyond one per trace,
the executions its sleep sets cut short, and the time; then the programs
per kind of disagreement. Each disagreement is printed with the program as
pseudo-code and what differed (``--quiet``: not); ``--shrink`` makes each
disagreeing program as small as it can while it still disagrees in the same
way, and the smallest program of each kind is printed at the end.

Program n of seed S is ``randprog.nth(S, n)``: ``--only N`` runs it alone.
``--max-steps`` bounds the steps of a program (default 8; none's executions
grow fast with it), ``--plain`` leaves out the features under suspicion (to
check the interpreter itself), ``--rwsems 1`` puts an rwsem in every program
(the default: one in 15 %). ``--handover`` adds dpor's work units of
``--jobs`` (the whole tree to start with), each handing part of its subtree
over after every 2 executions (racecheck/handover.py), against the
interpreter and against ``none``'s traces. Exit status 1 when anything
disagreed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import randprog

STRATEGIES = ("none", "dpor", "bfs")


def run_one(job):
    """Compare one program; a plain dict (it crosses processes)."""
    seed, n, shrink, max_steps, plain, rwsems, strategies = job
    prog = randprog.nth(seed, n, max_steps, plain, rwsems)
    try:
        c = randprog.compare(prog, strategies)
    except Exception as exc:  # racecheck itself raised: a disagreement too
        return {"n": n, "prog": prog, "crash": f"{type(exc).__name__}: {exc}", "traces": 0,
                "differences": {"racecheck": [("raised", f"{type(exc).__name__}: {exc}")]}}
    out = {"n": n, "prog": prog, "traces": c.traces, "missed": c.dpor_missed,
           "missed beyond probes": c.dpor_missed_unprobed, "extra": c.dpor_extra,
           "blocked": c.dpor_blocked, "executions": c.executions, "differences": c.differences,
           "handover missed": c.handover_missed}
    if c.differences and shrink:
        out["shrunk"] = {}
        for strategy, diffs in c.differences.items():
            for what, _ in diffs:
                if what == "traces missed (probes only)":
                    continue  # known, and not worth the time
                small = shrunk(prog, strategy, what, strategies)
                out["shrunk"][f"{strategy}: {what}"] = (small, randprog.compare(small, strategies).differences)
    return out


def shrunk(prog, strategy, what, strategies=STRATEGIES):
    """``prog`` made smaller while ``strategy`` still disagrees in the same way."""
    def fails(candidate):
        try:
            diffs = randprog.compare(candidate, strategies).differences.get(strategy, [])
        except Exception:
            return False
        return any(kind == what for kind, _ in diffs)
    return randprog.shrink(prog, fails)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=10_000)
    ap.add_argument("--seed", default="0")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-steps", type=int, default=8,
                    help="steps in a whole program at most (none's executions grow fast with it)")
    ap.add_argument("--plain", action="store_true",
                    help="leave out conditional writes, compare-and-swap, branches and always "
                         "invariants false at the start (to check the interpreter itself)")
    ap.add_argument("--rwsems", type=float, default=0.15,
                    help="the share of programs with an rwsem (default 0.15; 1: every one)")
    ap.add_argument("--shrink", action="store_true", help="shrink each disagreeing program")
    ap.add_argument("--only", type=int, help="run program number N of the seed alone, and show it")
    ap.add_argument("--quiet", action="store_true", help="do not print each disagreement")
    ap.add_argument("--handover", action="store_true",
                    help="also dpor's work units of --jobs, each handing part of its subtree over "
                         "after every 2 executions (racecheck/handover.py)")
    args = ap.parse_args(argv)
    strategies = STRATEGIES + (("handover",) if args.handover else ())

    if args.only is not None:
        jobs = [(args.seed, args.only, args.shrink, args.max_steps, args.plain, args.rwsems, strategies)]
        print(randprog.show(randprog.nth(args.seed, args.only, args.max_steps, args.plain, args.rwsems)))
    else:
        jobs = [(args.seed, n, args.shrink, args.max_steps, args.plain, args.rwsems, strategies)
                for n in range(args.programs)]
    start = time.monotonic()
    totals = Counter()
    disagreeing = Counter()  # strategy -> programs
    kinds = Counter()  # "strategy: kind" -> programs
    smallest = {}  # kind -> (size, n, prog, differences)
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.Pool(args.jobs) as pool:
            results = pool.imap(run_one, jobs, chunksize=16)
            for r in results:
                tally(r, totals, disagreeing, kinds, smallest, args.quiet)
    else:
        for r in map(run_one, jobs):
            tally(r, totals, disagreeing, kinds, smallest, args.quiet)
    elapsed = time.monotonic() - start

    print(f"\nseed {args.seed}: {totals['programs']:,} programs, {totals['traces']:,} traces, "
          f"{elapsed:.1f} s ({args.jobs} jobs)")
    for strategy in strategies:
        print(f"  {strategy:5} vs interpreter: {disagreeing[strategy]} programs disagree")
    print(f"  dpor traces missed beyond probes: {totals['missed beyond probes']} "
          f"(in {disagreeing['dpor traces']} programs); with probes: {totals['missed']} "
          f"(in {totals['programs missing traces']} programs)")
    print(f"  dpor executions beyond one per trace: {totals['extra']}")
    print(f"  dpor executions cut short (sleep sets): {totals['blocked']}")
    if args.handover:
        print(f"  handover traces missed beyond probes: {totals['handover missed']} "
              f"(in {disagreeing['handover traces']} programs)")
    print("  executions: " + ", ".join(f"{s} {totals['executions ' + s]:,}" for s in strategies))
    if disagreeing["racecheck"]:
        print(f"  racecheck raised on {disagreeing['racecheck']} programs")
    if kinds:
        print("\nprograms per kind of disagreement:")
        for what, count in sorted(kinds.items()):
            print(f"  {count:6}  {what}")
    if smallest:
        print("\nsmallest program of each kind of disagreement:")
        for what, (sz, n, prog, diffs) in sorted(smallest.items()):
            print(f"\n== {what} (program {n}, size {sz})\n{randprog.show(prog)}")
            for strategy, lines in diffs.items():
                for _, line in lines:
                    print(f"  {strategy}: {line}")
    return 1 if any(disagreeing.values()) else 0


def tally(r, totals, disagreeing, kinds, smallest, quiet):
    totals["programs"] += 1
    totals["traces"] += r["traces"]
    for key in ("missed", "missed beyond probes", "extra", "blocked", "handover missed"):
        totals[key] += r.get(key, 0)
    totals["programs missing traces"] += bool(r.get("missed"))
    for strategy, count in r.get("executions", {}).items():
        totals["executions " + strategy] += count
    for strategy, lines in r["differences"].items():
        for what in {what for what, _ in lines}:
            kinds[f"{strategy}: {what}"] += 1
    keep_smallest(r, smallest)
    # Traces missed only by a probe (a step that touched nothing and found
    # its request taken) reach the same states: a known limit, not counted.
    differences = {strategy: lines for strategy, lines in r["differences"].items()
                   if any(what != "traces missed (probes only)" for what, _ in lines)}
    for strategy in differences:
        disagreeing[strategy] += 1
    if differences and not quiet:
        print(f"-- program {r['n']} disagrees:\n{randprog.show(r['prog'])}")
        for strategy, lines in r["differences"].items():
            for _, line in lines:
                print(f"  {strategy}: {line}")


def keep_smallest(r, smallest):
    """Keep the program of ``r`` (or what --shrink made of it) for each kind
    of disagreement it shows, if it is the smallest so far."""
    candidates = dict(r.get("shrunk", {}))
    for strategy, lines in r["differences"].items():
        for what, _ in lines:
            candidates.setdefault(f"{strategy}: {what}", (r["prog"], r["differences"]))
    for what, (prog, diffs) in candidates.items():
        sz = randprog.size(prog)
        if what not in smallest or sz < smallest[what][0]:
            smallest[what] = (sz, r["n"], prog, diffs)

if __name__ == "__main__":
    sys.exit(main())
