#!/usr/bin/env python
"""Soundness of the minimiser's search over states (racecheck/fewest.py)
against exhaustive search, on random programs (tests/randprog.py).

    python bench/bench_fewest.py                    # 2,000 programs
    python bench/bench_fewest.py --programs 5000 --seed 7 --max-steps 10 --rwsems 1

For every program and every invariant it has (``always``, ``final``,
``assertion``, ``deadlock_free``), the cheapest violation within 2
preemptions, as (preemptions, steps), is found three times: by randprog's
interpreter (its own states and steps, sharing no code with racecheck),
running every schedule with at most 2 preemptions; by racecheck's stateless
search without reduction under preemption bounds 0, 1 and 2, each keeping
the shortest schedule it meets (``Explorer("none", shortest=True)``); and by
``FewestPreemptions`` below (3, 0). In all three a schedule ends at its
first violation, as a replay does. They must agree, and the schedule found
must replay to the invariant with the preemptions it claims. Printed: the
programs, the (program, invariant) pairs compared, those broken within each
bound, the disagreements (must be 0) and the time. Exit status 1 when any
disagreed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import randprog  # noqa: E402

from racecheck.fewest import FewestPreemptions  # noqa: E402
from racecheck.scheduler import Explorer, preemptions, replay  # noqa: E402
from racecheck.search import Bounds  # noqa: E402

INVARIANTS = ("always", "final", "assertion", "deadlock_free")
BOUND = 2


def interpreted(prog, bound=BOUND):
    """invariant -> (preemptions, steps) of the cheapest schedule with at
    most ``bound`` preemptions that ends in its violation, by running every
    such schedule on randprog's interpreter (no state is cached: each
    schedule runs on its own). A preemption is a switch away from a thread
    that could still run."""
    it = randprog.Interpreter(prog)
    always, final = prog["always"], prog["final"]
    best = {}

    def reached(invariant, cost):
        if invariant not in best or cost < best[invariant]:
            best[invariant] = cost

    def run(state, last, p, d):
        runnable = it.runnable(state)
        if not runnable:
            if any(t is not None for t in state[1]):
                reached("deadlock_free", (p, d))
            elif final and not it.holds(final, state[0]):
                reached("final", (p, d))
            return
        for tid in runnable:
            q = p + (last is not None and tid != last and last in runnable)
            if q > bound:
                continue
            after, failed, _ = it.step(state, tid)
            broken = ["assertion"] if failed else []
            if always and not it.holds(always["forbid"], after[0]):
                broken.append("always")
            for invariant in broken:
                reached(invariant, (q, d + 1))
            if not broken:
                run(after, tid, q, d + 1)

    start = it.initial()
    if always and not it.holds(always["forbid"], start[0]):
        return {"always": (0, 0)}  # every schedule replays to it
    run(start, None, 0, 0)
    return best


def exhaustive(model, invariant, bound=BOUND):
    """(preemptions, steps) of the cheapest schedule that ends in a violation
    of ``invariant`` with at most ``bound`` preemptions, by the stateless
    search without reduction; None if there is none."""
    for k in range(bound + 1):
        ex = Explorer(model, "none", Bounds(max_preemptions=k), target=invariant)
        ex.shortest = True
        found = ex.run().violation
        if found is not None:
            return (k, len(found.schedule))
    return None


def by_states(model, invariant, bound=BOUND):
    """The same by FewestPreemptions: (cost, schedule), or (None, None);
    raises if its search did not finish."""
    search = FewestPreemptions(model, invariant, (bound + 1, 0), Bounds())
    search.exact = True  # whole states as keys: no digest collision can merge two
    out = search.run()
    if out.error is not None or out.reason is not None:
        raise AssertionError(f"the search did not finish: {out.error or out.reason}")
    if out.violation is None:
        return None, None
    return (out.violation.preemptions, len(out.violation.schedule)), out.violation.schedule


def compare(prog):
    """What differs between the two for ``prog`` (a list of sentences), and
    the cheapest cost exhaustive search found for each invariant."""
    model = randprog.build(prog)
    out, costs = [], {}
    brute = interpreted(prog)
    for invariant in INVARIANTS:
        want = costs[invariant] = brute.get(invariant)
        again = exhaustive(model, invariant)
        got, schedule = by_states(model, invariant)
        if not got == again == want:
            out.append(f"{invariant}: interpreter {want}, exhaustive {again}, fewest {got}")
        elif schedule is not None:
            again = replay(model, schedule)
            broken = {v.invariant for v in [again.violation, *again.violation.also]} if again.violation else set()
            if invariant not in broken or again.mismatch or preemptions(model, schedule) != got[0]:
                out.append(f"{invariant}: the schedule {schedule} does not replay to it with "
                           f"{got[0]} preemptions ({again.mismatch or broken})")
    return out, costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=2000)
    ap.add_argument("--seed", default="fewest")
    ap.add_argument("--max-steps", type=int, default=8, help="steps of a program, at most")
    ap.add_argument("--rwsems", type=float, default=0.15, help="the share of programs with an rwsem")
    args = ap.parse_args()
    start = time.process_time()
    pairs, broken, bad = 0, [0] * (BOUND + 1), 0
    programs = randprog.programs(args.seed, args.programs, args.max_steps, rwsems=args.rwsems)
    for n, prog in enumerate(programs):
        found, costs = compare(prog)
        for cost in costs.values():
            pairs += 1
            if cost is not None:
                broken[cost[0]] += 1
        if found:
            bad += 1
            print(f"program {n}:\n{randprog.show(prog)}\n  " + "\n  ".join(found), flush=True)
    print(f"programs {args.programs} (seed {args.seed}, at most {args.max_steps} steps), "
          f"(program, invariant) pairs {pairs}, "
          f"cheapest violation at 0, 1, 2 preemptions: {', '.join(map(str, broken))}; "
          f"programs that disagree: {bad}; CPU {time.process_time() - start:.1f} s")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
