#!/usr/bin/env python
"""Benchmark ``--jobs``: work units over processes, for real and simulated.

    python bench/bench_parallel.py real [--quick]     # 1 against 2 workers, measured
    python bench/bench_parallel.py measure lastzero 14 -o costs.json   # every unit's cost
    python bench/bench_parallel.py simulate costs.json --workers 64     # a 64-worker run, simulated
    python bench/bench_parallel.py bfs [--quick]      # bfs: 1 against 2 workers, best of 3

``real`` prints one row of a Markdown table per program: one process
(Explorer, or BreadthFirst for bfs) against 2 worker processes
(racecheck/parallel.py, parallel_bfs.py): wall time, speed-up, redundancy
(executions beyond one process's, in per cent), units, and the time the
coordinator spends making the units (the rest of its time it waits). Rows:
lastzero(12) and readers(16) with dpor, the whole corpus with ``--reduction
none`` (every scenario without ranges or lock_order, summed), bfs on the
3-thread XIP fault scenario of bench_states.py, lastzero(13) with dpor, and
the two corpus scenarios that ``--reduction none`` finishes in about 10 s
(``--rows 4,5,6`` for the last three).

``measure`` explores a program's units (parallel.split for ``--units``
units) one after the other in this process and writes each unit's prefix,
executions and CPU time (time.process_time: the machine is
shared) as JSON. ``simulate`` replays those costs in a discrete-event
simulation of a coordinator and ``--workers`` workers, for two policies:

* ``fixed``: the units measured (``measure --units`` the number --jobs
  aims at for that many workers, parallel.wanted: 4 a worker, so 256 for
  64) handed out one by one in unit order to whichever worker is idle;
* ``stealing``: what --jobs does: the same units in runs that share a
  prefix (parallel.tasks), a worker exploring its run's units in order; a
  worker with nothing to do takes the next run, or the back half of the
  units still to start of the worker with the most of them.

Each message (a unit handed out, a result, a steal asked and answered)
costs ``--latency`` seconds of the coordinator's or the worker's time. It
prints the makespan, the speed-up over one worker, how busy the workers were
(exploring, over workers x makespan), units, messages and steals.

``handover`` simulates ``--workers`` workers whose units hand over part of
their subtree while they run (racecheck/handover.py): the real search, in
threads of this process that take turns one execution at a time (always
the worker whose clock is least, its clock advanced by the CPU time the
execution took); it prints the makespan, how busy the workers were, the
redundancy and the speed-up over one process's CPU time.

``bfs`` runs bfs in one process and on ``--jobs`` workers
(parallel_bfs.py), ``--repeat`` times each, on the XIP fault scenario of
bench_states.py with 3 threads (35,187 states) and with a fourth thread (2
million states, some 40 s in one process): the best wall time, the best CPU
time of the one process, of the busiest worker, of all workers summed, and
of the coordinator (this process: deciding which worker keeps each state),
and the critical path: for each phase of the search (a level's expansion,
then its adoption), the CPU time of the worker that took longest, summed,
plus the coordinator's: the wall time with a core for each worker and
nothing else running, which a shared machine does not give.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from programs import PROGRAMS  # noqa: E402

from racecheck import parallel, parallel_bfs  # noqa: E402
from racecheck.scenario import load  # noqa: E402
from racecheck.scheduler import Bounds, Explorer  # noqa: E402
from racecheck.strategies import BreadthFirst  # noqa: E402

# -- measured --------------------------------------------------------------------------------


def timed(fn):
    """(what fn returns, wall seconds, CPU seconds of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def dfs_row(name, model, reduction, jobs, bounds=None):
    bounds = bounds or Bounds()
    one, t1, c1 = timed(lambda: Explorer(model, reduction, bounds).run())
    split_s = timed(lambda: parallel.start(model, reduction, bounds, jobs))[2]
    par, tp, _ = timed(lambda: parallel.explore(model, reduction, bounds, jobs))
    assert par.outcome.verdict == one.verdict, (name, par.outcome.verdict, one.verdict)
    return (name, f"dfs {reduction}", one.stats.executions, t1, c1, par.outcome.stats.executions, tp,
            max(par.cpu_s), sum(par.cpu_s), f"{par.units} ({par.steals} steals, {par.handed} handed over)", split_s)


def scenario_row(name, reduction, jobs):
    """One scenario of scenarios/ with its own bounds, as dfs_row."""
    sc = load(ROOT / "scenarios" / f"{name}.yaml")
    return dfs_row(name, sc.model, reduction, jobs, sc.bounds)


# The corpus's longest runs that --reduction none finishes in about 10 s
LONG_NONE = ("delalloc_ordered_data_crash_fixed", "xfs_iomap_unaligned_aio_no_wait_fixed")

CORPUS_CAP_S = 10.0  # a scenario that --reduction none does not finish in this long in one process is left out


def corpus_row(jobs):
    """Every scenario without ranges or invariants across executions, with
    --reduction none, one process against ``jobs`` workers, summed (those
    one process does not finish within CORPUS_CAP_S left out)."""
    import dataclasses
    execs1 = execs2 = t1 = c1 = t2 = cmax = csum = units = split_s = 0
    left_out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load(path)
        if getattr(sc, "space", None) is not None or any(i.across is not None for i in sc.model.invariants):
            continue
        b = sc.bounds
        capped = dataclasses.replace(b, timeout=CORPUS_CAP_S)
        one, a, ca = timed(lambda: Explorer(sc.model, "none", capped).run())
        if one.verdict == "incomplete":
            left_out.append(sc.name)
            continue
        split_s += timed(lambda: parallel.start(sc.model, "none", b, jobs))[2]
        par, c, _ = timed(lambda: parallel.explore(sc.model, "none", b, jobs))
        assert par.outcome.verdict == one.verdict, (sc.name, par.outcome.verdict, one.verdict)
        execs1 += one.stats.executions
        execs2 += par.outcome.stats.executions
        t1, c1, t2, units = t1 + a, c1 + ca, t2 + c, units + par.units
        cmax, csum = cmax + max(par.cpu_s), csum + sum(par.cpu_s)
    print(f"(left out of the corpus row, over {CORPUS_CAP_S:g} s with none: {', '.join(left_out) or 'none'})",
          file=sys.stderr)
    return ("the corpus (each scenario)", "dfs none", execs1, t1, c1, execs2, t2, cmax, csum, units, split_s)


def xip_model(threads):
    """The XIP fault scenario of bench_states.py with 3 threads, or with a
    fourth: a second read fault on page 1 through a private mapping."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_states import XIP_THREE_THREADS
    text = XIP_THREE_THREADS
    if threads == 4:
        text = text.replace("invariants:", "  - name: other2\n    ops: [{op: xip_file_load, offset: 4096, "
                            "mapping: private}]\ninvariants:")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"xip_file_fault_retry_{threads}.yaml"
    tmp.write_text(text)
    return load(tmp).model


def bfs_row(jobs):
    model = xip_model(3)
    one, t1, c1 = timed(lambda: BreadthFirst(model, Bounds()).run())
    (par, cpu), tp, _ = timed(lambda: parallel_bfs.run(model, Bounds(), jobs))
    assert par.verdict == one.verdict and par.stats.distinct_states == one.stats.distinct_states
    return ("xip_file_fault_retry, 3 threads", "bfs", one.stats.distinct_states, t1, c1,
            par.stats.distinct_states, tp, max(cpu), sum(cpu), f"{par.stats.max_depth} levels", 0.0)


def bfs(args):
    """bfs in one process against ``--jobs`` workers, the best of
    ``--repeat`` runs each (wall time and CPU time apart)."""
    print(f"{os.cpu_count()} cores, {args.jobs} workers, load average {os.getloadavg()[0]:.1f} at the start; "
          f"best of {args.repeat} runs\n")
    print(f"| program | states | levels | one process: s | CPU s | {args.jobs} workers: s | speed-up | "
          "CPU s, busiest worker | CPU speed-up | CPU s, all workers | coordinator CPU s | "
          "critical path + coordinator, CPU s | its speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for threads in (3,) if args.quick else (3, 4):
        model = xip_model(threads)
        ones = [timed(lambda: BreadthFirst(model, Bounds()).run()) for _ in range(args.repeat)]
        pars = [timed_bfs(model, args.jobs) for _ in range(args.repeat)]
        one = ones[0][0]
        for (par, _, _), _, _ in pars:
            assert (par.verdict, par.stats.distinct_states) == (one.verdict, one.stats.distinct_states)
        t1, c1 = min(r[1] for r in ones), min(r[2] for r in ones)
        tp, coordinator = min(r[1] for r in pars), min(r[2] for r in pars)
        busiest, total = min(max(r[0][1]) for r in pars), min(sum(r[0][1]) for r in pars)
        path = min(r[0][2] + r[2] for r in pars)
        print(f"| xip_file_fault_retry, {threads} threads | {one.stats.distinct_states:,} | "
              f"{one.stats.max_depth} | {t1:.1f} | {c1:.1f} | {tp:.1f} | {t1 / tp:.2f}x | {busiest:.1f} | "
              f"{c1 / busiest:.2f}x | {total:.1f} | {coordinator:.2f} | {path:.1f} | {c1 / path:.2f}x |",
              flush=True)


def timed_bfs(model, jobs):
    """parallel_bfs.run timed: ((outcome, CPU s of each worker, the
    critical path: each phase's busiest worker, summed), wall s, the
    coordinator's CPU s). The critical path and the coordinator's time
    together are the wall time the run would take with a core for each
    worker, whatever else the machine runs."""
    phases = []
    (out, cpu), wall, coordinator = timed(lambda: parallel_bfs.run(model, Bounds(), jobs, phases=phases))
    path = sum(max(b - a for a, b in zip(before, after)) for before, after in zip([[0.0] * jobs] + phases, phases))
    return (out, cpu, path), wall, coordinator


def real(args):
    jobs = args.jobs
    print(f"{os.cpu_count()} cores, {jobs} workers, load average {os.getloadavg()[0]:.1f} at the start; "
          f"wall time (perf_counter) and CPU time (process_time), one run each\n")
    print(f"| program | search | one process: executions (bfs: states) | s | CPU s | {jobs} workers: "
          "executions | s | speed-up | CPU s, busiest worker | CPU speed-up | CPU s, all workers | "
          "redundancy | units | making units, CPU s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    sizes = {"lastzero": 10, "readers": 14} if args.quick else {"lastzero": 12, "readers": 16}
    rows = [lambda n=n, k=k: dfs_row(f"{k}({n})", PROGRAMS[k](n), "dpor", jobs) for k, n in sizes.items()]
    rows += [lambda: corpus_row(jobs), lambda: bfs_row(jobs)]
    rows += [lambda: dfs_row("lastzero(13)", PROGRAMS["lastzero"](13), "dpor", jobs)]
    rows += [lambda name=name: scenario_row(name, "none", jobs) for name in LONG_NONE]
    if args.rows:
        rows = [rows[int(i)] for i in args.rows.split(",")]
    for make in rows:
        name, search, e1, t1, c1, e2, t2, cmax, csum, units, split_s = make()
        extra = 100.0 * (e2 - e1) / max(e1, 1)
        cpu = (f"{cmax:.1f} | {c1 / cmax:.2f}x | {csum:.1f}" if cmax else "- | - | -")
        print(f"| {name} | {search} | {e1:,} | {t1:.1f} | {c1:.1f} | {e2:,} | {t2:.1f} | {t1 / t2:.2f}x | {cpu} | "
              f"{extra:+.1f} % | {units} | {split_s:.2f} |", flush=True)


# -- the costs of units ---------------------------------------------------------------------------


def measure(args):
    model = PROGRAMS[args.program](args.n)
    bounds = Bounds()
    found, _ = parallel.split(model, "dpor", bounds, args.units)
    out = []
    start = time.process_time()
    for u in found:
        t = time.process_time()
        o = Explorer(model, "dpor", bounds, unit=u).run()
        out.append({"prefix": list(u.prefix), "executions": o.stats.executions, "cpu_s": time.process_time() - t})
    total = time.process_time() - start
    one = None
    if args.one:
        t = time.process_time()
        one = {"executions": Explorer(model, "dpor", bounds).run().stats.executions,
               "cpu_s": time.process_time() - t}
    doc = {"program": f"{args.program}({args.n})", "units": out, "cpu_s": total, "one_process": one}
    Path(args.output).write_text(json.dumps(doc))
    said = f"; one process {one['executions']:,} executions, {one['cpu_s']:.1f} s" if one else ""
    print(f"{doc['program']}: {len(out)} units, {sum(u['executions'] for u in out):,} executions, "
          f"{total:.1f} s CPU{said}")


# -- the simulation -------------------------------------------------------------------------------


def split_for(units, workers):
    """What --jobs does for ``workers`` with the units measured (``measure
    --units`` parallel.wanted(workers)): those units, in runs of two a
    worker or more that share a prefix (parallel.tasks)."""
    longest = max(len(u["prefix"]) for u in units)
    for depth in range(1, longest):
        runs = {}
        for u in units:
            runs.setdefault(tuple(u["prefix"][:depth]), []).append(u)
        if len(runs) >= parallel.RUNS * workers:
            return list(runs.values())
    return [[u] for u in units]


def simulate_fixed(units, workers, latency):
    """The units handed out one by one, in order, to the first idle worker
    (what --jobs did before it stole work)."""
    groups = units
    idle = [(0.0, w) for w in range(workers)]
    heapq.heapify(idle)
    busy = messages = 0
    end = 0.0
    coordinator = 0.0  # the coordinator sends one message at a time
    for g in groups:
        cost = sum(u["cpu_s"] for u in g)  # (a run's units, one task)
        free, w = heapq.heappop(idle)
        coordinator = max(coordinator, free) + latency  # hand it out
        done = coordinator + latency + cost + latency  # received, explored, result sent
        busy += cost
        messages += 2
        end = max(end, done)
        heapq.heappush(idle, (done, w))
    return {"makespan": end, "busy": busy, "units": len(groups), "messages": messages, "steals": 0}


def simulate_stealing(runs, workers, latency):
    """Each worker explores its run's units in order; an idle worker takes
    the next run, or, when none is left, the back half of the units still
    to start of the worker with the most of them (racecheck/parallel.py)."""
    pending = list(runs)
    queues = {w: [] for w in range(workers)}  # fine units still to start
    clock = {w: 0.0 for w in range(workers)}
    busy = messages = steals = handed = 0
    events = [(0.0, w) for w in range(workers)]  # (time the worker is free, worker)
    heapq.heapify(events)
    end = 0.0
    while events:
        now, w = heapq.heappop(events)
        if queues[w]:
            u = queues[w].pop(0)
            busy += u["cpu_s"]
            clock[w] = now + u["cpu_s"]
            heapq.heappush(events, (clock[w], w))
            continue
        end = max(end, now)
        if pending:
            queues[w] = list(pending.pop(0))
            handed += 1
            messages += 2  # the unit out, its result back
            heapq.heappush(events, (now + 2 * latency, w))
            continue
        victim = max(queues, key=lambda v: len(queues[v]))
        if len(queues[victim]) < 2:
            continue  # nothing left to take: this worker is done
        half = len(queues[victim]) // 2
        queues[w], queues[victim] = queues[victim][half:], queues[victim][:half]
        steals += 1
        handed += 1
        messages += 4  # asked, the victim told, the subtree handed, its result back
        heapq.heappush(events, (now + 4 * latency, w))
    return {"makespan": end, "busy": busy, "units": handed, "messages": messages, "steals": steals}


def simulate(args):
    doc = json.loads(Path(args.costs).read_text())
    units = doc["units"]
    total = sum(u["cpu_s"] for u in units)
    runs = split_for(units, args.workers)
    one = doc.get("one_process") or {}
    execs = sum(u["executions"] for u in units)
    said = ""
    if one:
        said = (f"; one process {one['executions']:,} executions, {one['cpu_s']:.1f} s: redundancy "
                f"{100.0 * (execs - one['executions']) / one['executions']:+.1f} %")
    print(f"{doc['program']}: {len(units)} units measured ({execs:,} executions, {total:.1f} s CPU{said}); "
          f"for {args.workers} workers {sum(len(r) for r in runs)} units in {len(runs)} runs; "
          f"{args.latency * 1000:g} ms a message\n")
    print("| policy | makespan, s | speed-up | busy | units or runs handed out | messages | steals |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    fixed = [[u] for r in runs for u in r]
    for name, sim, work in (("fixed", simulate_fixed, fixed), ("stealing", simulate_stealing, runs)):
        r = sim(work, args.workers, args.latency)
        busy = r["busy"] / (args.workers * r["makespan"])
        print(f"| {name} | {r['makespan']:.2f} | {total / r['makespan']:.1f}x | {100 * busy:.0f} % | "
              f"{r['units']} | {r['messages']} | {r['steals']} |")


# -- hand-over, simulated with the real search -------------------------------------------------


class _Slot:
    """A simulated worker: its clock, and the unit it explores in a thread
    of its own that runs only while it holds the baton."""

    def __init__(self, n):
        self.n, self.clock, self.busy = n, 0.0, 0.0
        self.thread = None  # exploring a unit; None when idle
        self.asked = False
        self.turn = threading.Event()  # the slot may run until its next execution ends
        self.ended = None  # (outcome, ledger record) once its unit is done


def simulate_handover(args):
    """``--workers`` workers and a coordinator in one process: each unit runs
    for real (HandingExplorer), one execution at a time, always the worker
    whose clock is least, its clock advanced by the CPU time the execution
    took (time.thread_time); a message costs ``--latency``. An idle worker
    takes the next unit queued; with none queued, a busy worker is asked
    and hands over at the end of its next execution (handover.py). The
    units start from what --jobs starts from (parallel.start: the whole
    tree), or with ``--split`` from parallel.split for ``--units`` (default:
    what --jobs made for that many workers before)."""
    from racecheck.handover import HandingExplorer, Ledger

    model = PROGRAMS[args.program](args.n)
    bounds = Bounds()
    if args.split or args.units:
        found, _ = parallel.split(model, "dpor", bounds, args.units or parallel.wanted(args.workers))
    else:
        found, _ = parallel.start(model, "dpor", bounds, args.workers)
    ledger = Ledger(found)
    queue = [(0.0, u) for u in found]  # (time it can be taken, unit)
    slots = [_Slot(n) for n in range(args.workers)]
    baton = threading.Event()  # set by a slot when it gives the baton back
    lat = args.latency
    stats = {"executions": 0, "handed": 0, "asked": 0}
    violations = []

    def run(slot, unit):
        def pause(search):  # after every execution: give the baton back and wait for it
            slot.busy += time.thread_time() - slot.t0
            slot.clock += time.thread_time() - slot.t0
            if slot.asked and search.stats.executions + search.stats.blocked >= args.after:
                slot.asked = False
                new = search.hand_over()
                stats["handed"] += len(new)
                queue.extend((slot.clock + lat, u) for u in new)
                slot.clock += lat
            slot.turn.clear()
            baton.set()
            slot.turn.wait()
            slot.t0 = time.thread_time()

        slot.turn.wait()
        slot.t0 = time.thread_time()
        try:
            search = HandingExplorer(model, "dpor", bounds, unit, should_stop=pause)
            outcome = search.run()
            slot.ended = (unit, outcome, search.record())
        except BaseException as exc:  # noqa: BLE001 - the loop raises it: nothing waits for ever
            slot.ended = exc
        slot.busy += time.thread_time() - slot.t0
        slot.clock += time.thread_time() - slot.t0
        baton.set()

    start = time.process_time()
    while True:
        idle = [s for s in slots if s.thread is None]
        queue.sort(key=lambda tu: tu[0])
        for s in sorted(idle, key=lambda s: s.clock):
            if not queue:
                break
            ready, unit = queue.pop(0)
            s.clock = max(s.clock, ready) + lat
            s.thread = threading.Thread(target=run, args=(s, unit), daemon=True)
            s.thread.start()
        running = [s for s in slots if s.thread is not None]
        if not running:
            break
        if not queue and any(s.thread is None for s in slots) and not any(s.asked for s in running):
            victim = min(running, key=lambda s: s.clock)  # (the coordinator asks at once)
            victim.asked = True
            stats["asked"] += 1
        s = min(running, key=lambda s: s.clock)
        baton.clear()
        s.turn.set()
        baton.wait()
        if isinstance(s.ended, BaseException):
            raise s.ended
        if s.ended is not None:
            unit, outcome, record = s.ended
            s.ended, s.thread = None, None
            s.clock += lat  # the result sent
            stats["executions"] += outcome.stats.executions
            if outcome.violation is not None:
                violations.append(outcome.violation)
            new = ledger.add(unit, record)
            queue.extend((s.clock + lat, u) for u in new)
            stats["handed"] += len(new)
    makespan = max(s.clock for s in slots)
    busy = sum(s.busy for s in slots)
    print(f"{args.program}({args.n}): {len(found)} units split, {stats['handed']} handed over or made for "
          f"returned races, {stats['asked']} asked; {stats['executions']:,} executions, {busy:.1f} s CPU "
          f"exploring ({time.process_time() - start:.1f} s in all); {args.workers} workers, "
          f"{lat * 1000:g} ms a message")
    print(f"makespan {makespan:.2f} s, speed-up {busy / makespan:.1f}x over the same work on one worker, "
          f"busy {100 * busy / (args.workers * makespan):.0f} %")
    t = time.process_time()
    one = Explorer(model, "dpor", bounds).run()
    one_s = time.process_time() - t
    print(f"one process: {one.stats.executions:,} executions, {one_s:.1f} s CPU; redundancy "
          f"{100.0 * (stats['executions'] - one.stats.executions) / one.stats.executions:+.1f} %, "
          f"speed-up over one process {one_s / makespan:.1f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("real")
    r.add_argument("--quick", action="store_true")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--rows", help="only these rows, numbered from 0 (e.g. 2,3)")
    m = sub.add_parser("measure")
    m.add_argument("program", choices=sorted(PROGRAMS))
    m.add_argument("n", type=int)
    m.add_argument("--units", type=int, default=1024, help="the fine split: at least this many units")
    m.add_argument("--one", action="store_true", help="also one process, for the redundancy")
    m.add_argument("-o", "--output", required=True)
    s = sub.add_parser("simulate")
    s.add_argument("costs")
    s.add_argument("--workers", type=int, default=64)
    s.add_argument("--latency", type=float, default=0.001, help="seconds a message costs")
    b = sub.add_parser("bfs")
    b.add_argument("--jobs", type=int, default=2)
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--quick", action="store_true", help="the 3-thread scenario only")
    h = sub.add_parser("handover")
    h.add_argument("program", choices=sorted(PROGRAMS))
    h.add_argument("n", type=int)
    h.add_argument("--workers", type=int, default=64)
    h.add_argument("--units", type=int, help="the split's units (default: what --jobs makes)")
    h.add_argument("--split", action="store_true",
                   help="start from the split --jobs made before (parallel.split), not from the whole tree")
    h.add_argument("--latency", type=float, default=0.001, help="seconds a message costs")
    h.add_argument("--after", type=int, default=0,
                   help="executions (cut short ones included) a unit runs before it hands over")
    args = ap.parse_args()
    {"real": real, "measure": measure, "simulate": simulate, "handover": simulate_handover,
     "bfs": bfs}[args.command](args)


if __name__ == "__main__":
    main()
