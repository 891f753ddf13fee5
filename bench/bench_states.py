#!/usr/bin/env python
"""Benchmark breadth-first search over states (racecheck/strategies.py).

    python bench/bench_states.py            # everything (a few minutes)
    python bench/bench_states.py --quick    # the corpus and the examples only

For each model, one row of a Markdown table: distinct states, states
generated (successors computed, TLC's "states generated"), how many of those
came from the transition cache (racecheck/transitions.py: no step run), depth,
the executions run (replays: a state's schedule is re-run from the initial
state when a step not learned yet has to run there), steps run (replays
included), wall time, and distinct states per second. Each search runs to the end (it does not stop at a
violation), measured without tracemalloc.

Then, for the largest run, what a stored state costs: the visited set of
64-bit fingerprints (the set's table and its int objects, by sys.getsizeof),
the node arrays that give each state's schedule (parent, thread, depth), and
tracemalloc's peak for the whole search divided by the states (the queue and
the executions kept with queued states included), measured in a second run
under tracemalloc. Last, where the time goes in the largest run: replays, and
learning (fingerprinting what a step that ran changed), wall time around each
call.

Models: every corpus scenario bfs can check (those whose invariants compare
executions, and those with ranges of values, are left out), the examples
(Peterson, Dekker, Peterson with the writes swapped), the old XIP fault with
a third thread (a read fault on page 1 through a private mapping), and
Peterson's filter lock for three threads (each waits at two levels, spinning).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from racecheck.invariants import Invariant  # noqa: E402
from racecheck.model import Program  # noqa: E402
from racecheck.scenario import load  # noqa: E402
from racecheck.scheduler import Bounds  # noqa: E402
from racecheck.strategies import BreadthFirst, StrategyError  # noqa: E402
from racecheck.transitions import Transitions  # noqa: E402

XIP_THREE_THREADS = """
name: xip_file_fault_retry_3
filesystem: ext2-filemap-xip
file: {size: 8192, blocks: [hole, hole]}
threads:
  - name: writer
    ops: [{op: xip_file_store, offset: 0}]
  - name: reader
    ops:
      - {op: xip_file_load, offset: 0, mapping: shared2}
      - {op: xip_file_load, offset: 0, mapping: shared2}
  - name: other
    ops: [{op: xip_file_load, offset: 4096, mapping: private}]
invariants: [no_lost_write, no_stale_data, no_freed_block_mapped]
"""


# -- Peterson's filter lock for n threads -----------------------------------------------------


class AtMostOne(Invariant):
    name = "mutual_exclusion"

    def watches(self, st):
        return [st.critical]

    def after_step(self, st, execution):
        if sum(st.critical.values) > 1:
            return "two threads in their critical sections"
        return None


def filter_lock(n):
    """Each thread, forever: for level 1..n-1: level[i] = L; victim[L] = i;
    spin while some other thread k has level[k] >= L and victim[L] == i;
    then the critical section; level[i] = 0. Each read is a step."""

    def init(rt):
        return SimpleNamespace(level=rt.array("level", [0] * n), victim=rt.array("victim", [0] * n),
                               critical=rt.array("critical", [0] * n))

    def thread(i):
        def body(st):
            while True:
                for lv in range(1, n):
                    yield f"level[{i}] = {lv}"
                    st.level.set(i, lv)
                    yield f"victim[{lv}] = {i}"
                    st.victim.set(lv, i)
                    while True:
                        waiting = False
                        for k in range(n):
                            if k == i:
                                continue
                            yield f"level[{k}] >= {lv}?"
                            if st.level.get(k) >= lv:
                                yield f"victim[{lv}] == {i}?"
                                if st.victim.get(lv) == i:
                                    waiting = True
                                    break
                        if not waiting:
                            break
                yield "critical section"
                st.critical.set(i, 1)
                yield "leave"
                st.critical.set(i, 0)
                yield f"level[{i}] = 0"
                st.level.set(i, 0)
        return body

    return Program(f"filter({n})", init, [(f"T{i}", thread(i)) for i in range(n)], [AtMostOne()])


def example(name):
    return load(ROOT / "examples" / f"{name}.yaml").model


def models(quick):
    out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load(path)
        if getattr(sc, "space", None) is not None:
            continue
        out.append((sc.name, sc.model, sc.bounds))
    for name in ("peterson", "dekker", "peterson_swapped"):
        out.append((f"examples/{name}", example(name), Bounds()))
    if not quick:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "xip_file_fault_retry_3.yaml"
        tmp.write_text(XIP_THREE_THREADS)
        out.append(("xip_file_fault_retry, 3 threads", load(tmp).model, Bounds()))
        out.append(("filter lock, 3 threads", filter_lock(3), Bounds()))
    return out


def run(model, bounds):
    search = BreadthFirst(model, bounds, stop_on_violation=False)
    start = time.perf_counter()
    out = search.run()
    return search, out, time.perf_counter() - start


def set_bytes(search):
    visited = search.visited
    table = sys.getsizeof(visited)
    ints = sum(sys.getsizeof(x) for x in visited)
    arrays = sum(a.itemsize * len(a) for a in (search.parent, search.via, search.depth_of))
    return table, ints, arrays


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print("| model | distinct states | generated | from the cache | depth | executions | steps | time "
          "| states/s |")
    print("| --- | --: | --: | --: | --: | --: | --: | --: | --: |")
    rows = []
    for name, model, bounds in models(args.quick):
        try:
            search, out, elapsed = run(model, bounds)
        except StrategyError:
            print(f"| {name} | (compares executions: dfs only) | | | | | | | |")
            continue
        s = out.stats
        rows.append((name, model, bounds, s, elapsed))
        print(f"| {name} | {s.distinct_states:,} | {s.states_generated:,} | {s.cached_steps:,} | "
              f"{s.max_depth} | "
              f"{s.executions:,} | {s.steps:,} | {elapsed:.2f} s | {s.distinct_states / elapsed:,.0f} |",
              flush=True)
    total = sum(r[3].distinct_states for r in rows)
    seconds = sum(r[4] for r in rows)
    corpus = [r for r in rows if not r[0].startswith(("examples/", "xip_file_fault_retry,", "filter"))]
    cs, ct = sum(r[3].distinct_states for r in corpus), sum(r[4] for r in corpus)
    print(f"\nall rows: {total:,} distinct states in {seconds:.1f} s, {total / seconds:,.0f} states/s; "
          f"the corpus alone: {cs:,} in {ct:.1f} s, {cs / ct:,.0f} states/s")

    name, model, bounds, stats, _ = max(rows, key=lambda r: r[3].distinct_states)
    search, out, _ = run(model, bounds)
    table, ints, arrays = set_bytes(search)
    n = len(search.visited)
    print(f"\nlargest run: {name}, {n:,} states")
    print(f"  fingerprint set: {table / n:.1f} bytes/state for the table + {ints / n:.1f} for the ints "
          f"= {(table + ints) / n:.1f} bytes/state")
    print(f"  node arrays (parent, thread, depth): {arrays / n:.1f} bytes/state")
    tracemalloc.start()
    search, out, _ = run(model, bounds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  tracemalloc peak of the whole search: {peak / 2**20:.1f} MiB, {peak / n:,.0f} bytes/state")

    spent = timed(model, bounds)
    whole = spent.pop("search")
    print(f"  time ({whole:.1f} s): " + ", ".join(f"{k} {v / whole:.0%}" for k, v in spent.items())
          + ", the rest: new steps and their checks, the cache's lookups, the queue")


def timed(model, bounds):
    """Wall time in the replays and in learning steps (perf_counter around
    each call; cProfile would inflate the many small calls of fingerprints)."""
    spent = {"replays": 0.0, "learning": 0.0}

    def wrap(cls, name, what):
        inner = getattr(cls, name)

        def outer(*a, **k):
            start = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                spent[what] += time.perf_counter() - start
        setattr(cls, name, outer)
        return inner

    replay = wrap(BreadthFirst, "_replay", "replays")
    learn = wrap(Transitions, "learn", "learning")
    try:
        _, _, spent["search"] = run(model, bounds)
    finally:
        BreadthFirst._replay, Transitions.learn = replay, learn
    return spent


if __name__ == "__main__":
    main()
