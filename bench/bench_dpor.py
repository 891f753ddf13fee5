#!/usr/bin/env python
"""Benchmark racecheck's DPOR on the classic programs of the DPOR literature.

    python bench/bench_dpor.py            # the default run (2-3 minutes)
    python bench/bench_dpor.py --quick    # a fast subset
    python bench/bench_dpor.py --profile  # also cProfile the biggest dpor run
    python bench/bench_dpor.py --breakdown lastzero:10 readers:12 indexer:14

For each program and N it prints one row of a Markdown table:

* none execs / none time: executions of the exhaustive search (every
  interleaving), capped at --none-cap executions or --none-timeout seconds
  ("not run" where it is hopeless; "≥ cap" where the cap stopped it);
* traces: the number of Mazurkiewicz traces, counted as distinct
  ``trace_signature`` keys over the exhaustive search's executions, when it
  finished ("-" otherwise); "expected" is the count in closed form where the
  program's structure gives one (see bench/programs.py);
* dpor execs / blocked: executions dpor ran to their end, and executions its
  sleep sets cut short as redundant; deadlocks: dpor executions that ended in
  a deadlock;
* 1 exec per trace?: whether dpor's executions are pairwise in distinct traces
  and cover every trace (against ``none`` when it finished, else against the
  expected count, else only the first half can be checked);
* probes: steps dpor ran to learn what a reversed step does in its new place
  (each a fresh execution replaying a prefix; not counted in the steps);
* steps/s, CPU and wall: steps executed (replayed prefixes included) per
  second of the dpor run's process CPU time (the machine may be shared: CPU
  time is what the run itself took), its CPU time and its wall time,
  measured without tracing (a second dpor run computes the trace
  signatures, a third one the memory);
* peak mem: tracemalloc's peak of Python memory during a dpor run under
  tracemalloc, over its first --trace-cap executions (tracemalloc makes the
  search several times slower).

Below the table: the overall dpor steps per second; for the biggest run, the
memory at each quarter of its executions under tracemalloc, over all of them,
and the Python memory blocks in use (the search is stateless: it keeps the
current execution's stack and the wakeup trees on it, which grow and shrink
with the sequences still to explore, not with the executions run); the
process's maximum resident set size; with --profile, a cProfile of the
biggest run.

--breakdown PROGRAM:N ... prints, instead, where one dpor run's CPU time
goes: the race analysis (growing the happens-before, reversing every race,
the probes), running the same schedules alone in fresh executions (the
model's own steps, no search), and the rest of the search (choice points,
sleep sets, wakeup trees followed); then what the race analysis may take at
most for the run to reach a given rate (--rate, default 150,000 steps a
second) with the rest as it is.
"""

from __future__ import annotations

import argparse
import array
import cProfile
import io
import os
import pstats
import resource
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from programs import PROGRAMS  # noqa: E402

from racecheck.execution import Execution  # noqa: E402
from racecheck.runtime import Runtime  # noqa: E402
from racecheck.scheduler import Bounds, Explorer, trace_signature  # noqa: E402

# Trace counts in closed form, valid in the given range of N (see the comments
# in programs.py). lastzero has none here: its counts fit (N+3)*2^(N-2), but
# that is fitted to dpor's own results and only checked by `none` up to N=4.
EXPECTED = {
    "readers": (lambda n: 2 ** n, range(1, 64)),
    "indexer": (lambda n: 1 if n < 12 else 8 ** (n - 11), range(1, 23)),
    "filesystem": (lambda n: 1 if n < 14 else 2 ** (n - 13), range(1, 27)),
    "philosophers": (lambda n: 2 ** n - 1, range(2, 64)),
    "philosophers_ordered": (lambda n: 2 ** n - 2, range(2, 64)),
}

# (program, N values, N values on which to run the exhaustive search)
DEFAULT = [
    ("lastzero", [2, 3, 4, 6, 8, 10], [2, 3, 4]),
    ("readers", [2, 4, 6, 10, 12, 14], [2, 4, 6]),
    ("indexer", [2, 3, 11, 12, 13, 14, 15], [2, 3]),
    ("filesystem", [2, 13, 14, 16, 18, 20], [2]),
    ("philosophers", [2, 3, 4, 6, 8], [2, 3]),
    ("philosophers_ordered", [2, 3, 4, 6, 8], [2, 3]),
]
QUICK = [
    ("lastzero", [2, 3, 6], [2, 3]),
    ("readers", [3, 8], [3]),
    ("indexer", [2, 12, 13], [2]),
    ("filesystem", [3, 13, 14, 16], [3]),
    ("philosophers", [2, 3, 5], [2, 3]),
    ("philosophers_ordered", [3, 5], [3]),
]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run_none(model, cap, timeout):
    """The exhaustive search, counting distinct traces."""
    sigs = set()

    def on_execution(execution, violation):
        sigs.add(hash(trace_signature(execution.events)))

    t0 = time.perf_counter()
    out = Explorer(model, "none", Bounds(max_executions=cap, timeout=timeout),
                   on_execution=on_execution, stop_on_violation=False).run()
    wall = time.perf_counter() - t0
    finished = out.verdict in ("clean", "violation") and out.reason is None
    return {"executions": out.stats.executions, "wall": wall, "finished": finished,
            "sigs": sigs if finished else None}


def run_dpor_timed(model, timeout):
    """dpor, untraced: the time and step figures."""
    deadlocks = [0]

    def on_execution(execution, violation):
        if violation is not None and violation.invariant == "deadlock_free":
            deadlocks[0] += 1

    t0, c0 = time.perf_counter(), time.process_time()
    out = Explorer(model, "dpor", Bounds(timeout=timeout), on_execution=on_execution,
                   stop_on_violation=False).run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = out.stats
    return {"executions": s.executions, "blocked": s.blocked, "steps": s.steps, "probes": s.probes,
            "wall": wall, "cpu": cpu, "deadlocks": deadlocks[0], "verdict": out.verdict,
            "complete": out.verdict in ("clean", "violation") and out.reason is None}


def run_dpor_signatures(model, total, timeout):
    """dpor again: the trace signature of every execution, and the Python
    memory blocks in use (sys.getallocatedblocks) at each quarter of the
    executions. The signatures are kept as hashes in an array allocated
    before the run, so that keeping them does not count as growth."""
    hashes = array.array("q", bytes(8 * max(total, 1)))
    marks = {max(1, total * k // 4) for k in (1, 2, 3, 4)}
    blocks = []  # (executions so far, allocated blocks)
    count = [0]

    def on_execution(execution, violation):
        i = count[0]
        if i < total:
            hashes[i] = hash(trace_signature(execution.events))
        count[0] = i + 1
        if count[0] in marks:
            blocks.append((count[0], sys.getallocatedblocks()))

    Explorer(model, "dpor", Bounds(timeout=timeout), on_execution=on_execution,
             stop_on_violation=False).run()
    return {"sigs": list(hashes[:min(count[0], total)]), "blocks": blocks}


def run_dpor_traced(model, cap, timeout):
    """dpor under tracemalloc (slow: several times slower than untraced),
    over at most ``cap`` executions: the peak of Python memory."""
    tracemalloc.start()
    try:
        Explorer(model, "dpor", Bounds(max_executions=cap, timeout=timeout),
                 stop_on_violation=False).run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def run_dpor_growth(model, total, timeout):
    """dpor under tracemalloc over all its executions: the current and peak
    Python memory at each quarter of the executions (the peak since the
    previous quarter), to see whether memory grows with the executions."""
    marks = {max(1, total * k // 4) for k in (1, 2, 3)}
    samples = []  # (executions so far, current bytes, peak bytes since the last sample)
    count = [0]

    def on_execution(execution, violation):
        count[0] += 1
        if count[0] in marks:
            cur, peak = tracemalloc.get_traced_memory()
            samples.append((count[0], cur, peak))
            tracemalloc.reset_peak()

    tracemalloc.start()
    try:
        Explorer(model, "dpor", Bounds(timeout=timeout), on_execution=on_execution,
                 stop_on_violation=False).run()
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    samples.append((count[0], cur, peak))
    return samples


class _TimedExplorer(Explorer):
    """An Explorer that adds up the CPU time of its race analysis."""

    analysis = 0.0

    def _add_backtracks(self, pending=()):
        c0 = time.process_time()
        try:
            super()._add_backtracks(pending)
        finally:
            self.analysis += time.process_time() - c0


class _CountingExplorer(Explorer):
    """An Explorer that counts the races it reverses (untimed: the count
    costs a call a race)."""

    races = 0

    def _reverse(self, i, j, hb):
        self.races += 1
        return super()._reverse(i, j, hb)


def breakdown(model, repeat):
    """Where a dpor run's CPU time goes (the least of ``repeat`` runs of
    each part): the whole search, its race analysis, and the same schedules
    run alone in fresh executions."""
    best = None
    for _ in range(repeat):
        schedules = []
        search = _TimedExplorer(model, "dpor", stop_on_violation=False,
                                on_execution=lambda ex, v: schedules.append([e.tid for e in ex.events]))
        c0 = time.process_time()
        out = search.run()
        cpu = time.process_time() - c0
        if best is None or cpu < best["cpu"]:
            best = {"cpu": cpu, "analysis": search.analysis, "steps": out.stats.steps,
                    "executions": out.stats.executions, "schedules": schedules}
    runs = []
    for _ in range(repeat):
        c0 = time.process_time()
        for schedule in best["schedules"]:
            ex = Execution(model, gathered={}, plain_checks=None)
            for tid in schedule:
                ex.step(tid)
            ex.enabled()
        runs.append(time.process_time() - c0)
    best["alone"] = min(runs)
    counting = _CountingExplorer(model, "dpor", stop_on_violation=False)
    counting.run()
    best["races"] = counting.races
    return best


def print_breakdown(specs, rate, repeat):
    print(f"| program | dpor executions | steps | races | CPU | steps/s | race analysis (a race) "
          f"| same schedules alone | rest of the search "
          f"| race analysis allowed for {rate:,.0f} steps/s (a race) | needed speed-up of it |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for spec in specs:
        name, _, n = spec.partition(":")
        model = PROGRAMS[name](int(n))
        b = breakdown(model, repeat)
        rest = b["cpu"] - b["analysis"] - b["alone"]
        allowed = b["steps"] / rate - b["alone"] - rest
        need = f"{b['analysis'] / allowed:.1f}x" if allowed > 0 else "unreachable"
        races = max(b["races"], 1)
        print(f"| {model.name} | {b['executions']:,} | {b['steps']:,} | {b['races']:,} | {b['cpu']:.3f} s "
              f"| {b['steps'] / b['cpu']:,.0f} | {b['analysis']:.3f} s ({b['analysis'] / races * 1e6:.1f} µs) "
              f"| {b['alone']:.3f} s | {rest:.3f} s "
              f"| {max(allowed, 0):.3f} s ({max(allowed, 0) / races * 1e6:.1f} µs) | {need} |")


def verdict(dpor, signed, none, expected):
    sigs = signed["sigs"]
    distinct = set(sigs)
    repeats = len(sigs) - len(distinct)
    if none is not None and none["finished"]:
        traces = none["sigs"]
        missing = len(traces - distinct)
        extra = len(distinct - traces)
        if not repeats and not missing and not extra:
            return "yes"
        parts = []
        if missing:
            parts.append(f"misses {missing} of {len(traces)} traces")
        if repeats:
            parts.append(f"{repeats} repeated executions")
        if extra:
            parts.append(f"{extra} traces none did not see")
        return "**no**: " + ", ".join(parts)
    if expected is not None:
        if not repeats and dpor["executions"] == expected:
            return "yes (vs expected)"
        parts = []
        if repeats:
            parts.append(f"{repeats} repeated executions")
        if len(distinct) < expected:
            parts.append(f"misses {expected - len(distinct)} of {expected} traces")
        return "**no**: " + ", ".join(parts or [f"{len(distinct)} traces, {expected} expected"])
    if repeats:
        return f"**no**: {repeats} repeated executions"
    return "no repeats (traces unknown)"


def mib(nbytes):
    return f"{nbytes / 2 ** 20:.2f} MiB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a fast subset")
    ap.add_argument("--none-cap", type=int, default=None,
                    help="executions cap of the exhaustive search "
                         "(default 200000; 20000 with --quick)")
    ap.add_argument("--none-timeout", type=float, default=None,
                    help="seconds cap of the exhaustive search (default 60; 10 with --quick)")
    ap.add_argument("--dpor-timeout", type=float, default=600.0)
    ap.add_argument("--trace-cap", type=int, default=1000,
                    help="executions of the tracemalloc run that gives the peak-memory column")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the biggest dpor run and print the top functions")
    ap.add_argument("--only", nargs="*", help="only these programs")
    ap.add_argument("--breakdown", nargs="+", metavar="PROGRAM:N",
                    help="only where the CPU time of these dpor runs goes")
    ap.add_argument("--rate", type=float, default=150_000.0,
                    help="with --breakdown: the steps a second to reach")
    ap.add_argument("--repeat", type=int, default=3,
                    help="with --breakdown: runs of each part, the least taken")
    args = ap.parse_args(argv)
    if args.breakdown:
        print_breakdown(args.breakdown, args.rate, args.repeat)
        return
    plan = QUICK if args.quick else DEFAULT
    none_cap = args.none_cap or (20_000 if args.quick else 200_000)
    none_timeout = args.none_timeout or (10.0 if args.quick else 60.0)
    if args.only:
        plan = [row for row in plan if row[0] in args.only]

    started = time.perf_counter()
    rows = []
    biggest = None
    total_steps = total_time = 0.0
    for name, ns, none_ns in plan:
        for n in ns:
            model = PROGRAMS[name](n)
            nthreads = len(model.threads(model.init(Runtime())))
            log(f"{model.name}: dpor ...")
            dpor = run_dpor_timed(model, args.dpor_timeout)
            signed = run_dpor_signatures(model, dpor["executions"], args.dpor_timeout)
            peak = run_dpor_traced(model, args.trace_cap, args.dpor_timeout)
            none = None
            if n in none_ns:
                log(f"{model.name}: none ...")
                none = run_none(model, none_cap, none_timeout)
            fn, valid = EXPECTED.get(name, (None, ()))
            expected = fn(n) if fn is not None and n in valid else None
            total_steps += dpor["steps"]
            total_time += dpor["cpu"]
            row = {"name": name, "n": n, "threads": nthreads, "dpor": dpor,
                   "signed": signed, "peak": peak, "none": none, "expected": expected,
                   "check": verdict(dpor, signed, none, expected), "model": model}
            rows.append(row)
            if biggest is None or dpor["executions"] + dpor["blocked"] > \
                    biggest["dpor"]["executions"] + biggest["dpor"]["blocked"]:
                biggest = row

    print("| program | N | threads | none execs | none time | traces (none) | expected traces "
          "| dpor execs | dpor blocked | deadlocks | 1 exec per trace? | probes | steps/s | CPU | wall "
          f"| peak mem (≤ {args.trace_cap} execs) |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|")
    for r in rows:
        none, dpor = r["none"], r["dpor"]
        if none is None:
            ne, nt, tr = "not run", "-", "-"
        elif none["finished"]:
            ne, nt, tr = str(none["executions"]), f"{none['wall']:.2f} s", str(len(none["sigs"]))
        else:
            ne, nt, tr = f"≥ {none['executions']} (cap)", f"{none['wall']:.1f} s", "-"
        dex = str(dpor["executions"]) + ("" if dpor["complete"] else " (cut)")
        rate = dpor["steps"] / dpor["cpu"] if dpor["cpu"] > 0 else float("nan")
        print(f"| {r['name']} | {r['n']} | {r['threads']} | {ne} | {nt} | {tr} "
              f"| {r['expected'] if r['expected'] is not None else '-'} | {dex} "
              f"| {dpor['blocked']} | {dpor['deadlocks']} | {r['check']} | {dpor['probes']} "
              f"| {rate:,.0f} | {dpor['cpu']:.2f} s | {dpor['wall']:.2f} s | {mib(r['peak'])} |")

    print()
    print(f"dpor overall: {total_steps:,.0f} steps in {total_time:.1f} s of CPU time = "
          f"{total_steps / total_time:,.0f} steps/s (replayed prefixes included, probes not).")
    if biggest is not None:
        b = biggest
        log(f"{b['model'].name}: dpor under tracemalloc, all executions ...")
        samples = run_dpor_growth(b["model"], b["dpor"]["executions"], args.dpor_timeout)
        parts = "; ".join(f"after {k} executions: current {mib(cur)}, peak {mib(peak)}"
                          for k, cur, peak in samples)
        print(f"Memory of the biggest run, {b['model'].name} with dpor "
              f"({b['dpor']['executions']} executions + {b['dpor']['blocked']} blocked), "
              f"at each quarter of its executions (tracemalloc; peak since the previous "
              f"quarter): {parts}.")
        blocks = "; ".join(f"{k}: {v:,}" for k, v in b["signed"]["blocks"])
        print(f"Python memory blocks in use (sys.getallocatedblocks) after so many "
              f"executions of the same run: {blocks}.")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"Process maximum resident set size: {rss / 1024:.1f} MiB. "
          f"Total benchmark time: {time.perf_counter() - started:.0f} s.")

    if args.profile and biggest is not None:
        log(f"profiling {biggest['model'].name} with dpor ...")
        prof = cProfile.Profile()
        prof.enable()
        Explorer(biggest["model"], "dpor", Bounds(timeout=args.dpor_timeout),
                 stop_on_violation=False).run()
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        print()
        print(f"cProfile of {biggest['model'].name} with dpor (by own time):")
        print("```")
        print(buf.getvalue().strip())
        print("```")


if __name__ == "__main__":
    main()
