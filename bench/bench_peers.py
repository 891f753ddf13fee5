"""Benchmark racecheck beside two peers on the same small programs: frontrun
(a Python library that explores the interleavings of real threads by DPOR
over their bytecode) and SPIN (Promela models compiled to a C verifier).

    python bench/bench_peers.py [--frontrun-budget SECONDS] [--max-n N] [--only NAME]

The programs: lastzero(N) of bench/programs.py (correct: every tool must
explore it whole and say it holds), and fault_vs_truncate and
unaligned_dio_zeroing with their fixed twins, reduced to their locking
(bench/peers/: reduced.py for racecheck, frontrun_models.py and the .pml
files, each saying what it leaves out). All three tools run the same
program; racecheck also runs the scenario files, its full kernel models, as
``racecheck run`` does (minimisation included, no trace written), in the
last column. Executions are racecheck's and frontrun's unit of work, stored
states SPIN's.

racecheck runs in this process; frontrun in a child process under its
launcher (``python -m frontrun.cli``, which its ``explore`` requires), with
``total_timeout`` set to the budget and the child killed 30 s after it; SPIN
as ``spin -a``, ``cc -O2 -DSAFETY`` and ``./pan -w18`` in a temporary
directory (build and check timed apart). A peer that is not installed is skipped with
a message. Wall-clock times on a shared machine: best of ``--repeat`` for
racecheck and SPIN, one run for frontrun. A benchmark, not a test: the
figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(PEERS)]

import programs  # noqa: E402  (bench/programs.py)
import reduced  # noqa: E402  (bench/peers/reduced.py)

from racecheck import FinalState, Program, __version__  # noqa: E402
from racecheck.runner import check  # noqa: E402
from racecheck.scenario import load  # noqa: E402
from racecheck.scheduler import Explorer  # noqa: E402

# -- racecheck ----------------------------------------------------------------------------------


def lastzero_checked(n):
    """lastzero(n) with the property the peers check at its end: the scanner
    stopped at an index and no cell holds more than its index."""
    plain = programs.lastzero(n)

    def holds(st):
        zero = st.local["zero"].value
        return zero is not None and all(st.array.values[j] <= j for j in range(n + 1))

    return Program(plain.name, plain.init, plain._threads, [FinalState("lastzero", holds, "lastzero broken")])


def racecheck_program(model, repeat):
    """Explore ``model`` with dpor (best time of ``repeat``)."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = Explorer(model, "dpor").run()
        best = min(best or 1e9, time.perf_counter() - start)
    return {"units": out.stats.executions, "seconds": best, "verdict": str(out.verdict)}


def racecheck_scenario(name, repeat):
    """``racecheck run`` of a scenario file, minimisation included, no trace written."""
    scenario = load(ROOT / "scenarios" / f"{name}.yaml")
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        rep = check(scenario, save_trace=False)
        best = min(best or 1e9, time.perf_counter() - start)
    return {"units": rep.outcome.stats.executions, "seconds": best, "verdict": str(rep.verdict)}


# -- frontrun -----------------------------------------------------------------------------------


def frontrun_run(program, arg, budget):
    cmd = [sys.executable, "-m", "frontrun.cli", sys.executable, str(PEERS / "frontrun_models.py"),
           program, str(arg), "--budget", str(budget)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 30)
    except subprocess.TimeoutExpired:
        return {"units": None, "seconds": budget + 30, "verdict": f"killed after {budget + 30:.0f} s"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"units": None, "seconds": None, "verdict": f"failed: {tail[0][:80]}"}
    res = json.loads(lines[-1])
    verdict = {True: "holds", False: "violation", None: "inconclusive"}[res["holds"]]
    if res["seconds"] >= budget:  # frontrun still says "holds" when its time runs out
        verdict = f"{verdict} (stopped at the {budget:.0f} s budget)"
    return {"units": res["executions"], "seconds": res["seconds"], "verdict": verdict}


# -- SPIN ---------------------------------------------------------------------------------------


# pan's hash table: 2^18 slots (2 MiB), far more than these models' states.
# pan's default, -w24, allocates and clears 128 MiB at every start, which
# alone takes 0.1 to 0.3 s here and would be all that the check time measured.
HASH_BITS = 18


def spin_run(model, defines, repeat):
    with tempfile.TemporaryDirectory(prefix="racecheck-spin-") as tmp:
        shutil.copy(PEERS / model, tmp)
        start = time.perf_counter()
        subprocess.run(["spin", "-a", *defines, model], cwd=tmp, check=True, capture_output=True)
        subprocess.run(["cc", "-O2", "-DSAFETY", "-o", "pan", "pan.c"], cwd=tmp, check=True, capture_output=True)
        build = time.perf_counter() - start
        best = None
        for _ in range(repeat):
            start = time.perf_counter()
            out = subprocess.run(["./pan", f"-w{HASH_BITS}"], cwd=tmp, capture_output=True, text=True).stdout
            best = min(best or 1e9, time.perf_counter() - start)
    errors = int(re.search(r"errors: (\d+)", out).group(1))
    states = int(re.search(r"(\d+) states, stored", out).group(1))
    if errors == 0:
        verdict = "holds"
    elif "assertion violated" in out:
        verdict = "violation"
    else:
        verdict = "error: " + (re.search(r"pan:1: ([^(\n]*)", out) or re.search(r"(.*)", out)).group(1).strip()
    return {"units": states, "seconds": best, "verdict": verdict, "build": build}


# -- the table ----------------------------------------------------------------------------------


def cases(max_n):
    """(name, racecheck on the peers' program, racecheck on the scenario file
    or None, frontrun's arguments, SPIN's model and defines)."""
    for n in range(2, max_n + 1):
        yield (f"lastzero({n})", lambda r, n=n: racecheck_program(lastzero_checked(n), r), None,
               ("lastzero", n), ("lastzero.pml", [f"-DN={n}"]))
    for race in ("fault_vs_truncate", "unaligned_dio_zeroing"):
        for fixed in (False, True):
            name = race + ("_fixed" if fixed else "")
            yield (name, lambda r, race=race, fixed=fixed: racecheck_program(getattr(reduced, race)(fixed), r),
                   lambda r, name=name: racecheck_scenario(name, r),
                   (race, "fixed" if fixed else "buggy"), (f"{race}.pml", ["-DFIXED"] if fixed else []))


def versions(have_frontrun, have_spin):
    out = [f"racecheck {__version__}", f"Python {sys.version.split()[0]}"]
    if have_frontrun:
        out.append(f"frontrun {importlib.metadata.version('frontrun')}")
    if have_spin:
        spin = subprocess.run(["spin", "-V"], capture_output=True, text=True).stdout.strip()
        cc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        out += [spin, cc]
    return out


def cell(res, key="units"):
    if res is None:
        return "-"
    value = res.get(key)
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value * 1000:,.1f}"


def ratio(a, b, key):
    if a is None or b is None or not a.get(key) or not b.get(key):
        return "-"
    return f"{a[key] / b[key]:,.0f}x" if a[key] / b[key] >= 10 else f"{a[key] / b[key]:.1f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frontrun-budget", type=float, default=60.0, help="seconds per frontrun run")
    parser.add_argument("--max-n", type=int, default=4, help="lastzero(2) .. lastzero(N)")
    parser.add_argument("--repeat", type=int, default=5, help="racecheck and SPIN runs per case (best kept)")
    parser.add_argument("--only", help="only the cases whose name contains this")
    opts = parser.parse_args()
    have_frontrun = importlib.util.find_spec("frontrun") is not None
    have_spin = shutil.which("spin") is not None and shutil.which("cc") is not None
    if not have_frontrun:
        print("frontrun is not installed (python3 -m pip install frontrun): its columns are skipped")
    if not have_spin:
        print("spin or a C compiler is not installed (apt-get install spin gcc): its columns are skipped")
    print("; ".join(versions(have_frontrun, have_spin)))
    print()
    print("| program | racecheck executions | frontrun executions | SPIN states | racecheck ms | frontrun ms "
          "| SPIN check ms | SPIN build ms | frontrun / racecheck executions | frontrun / racecheck time "
          "| SPIN / racecheck time | verdicts: racecheck, frontrun, SPIN | racecheck on the scenario file |")
    print("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- | --- |")
    for name, ours, scenario, fr_args, spin_args in cases(opts.max_n):
        if opts.only and opts.only not in name:
            continue
        rc = ours(opts.repeat)
        fr = frontrun_run(*fr_args, opts.frontrun_budget) if have_frontrun else None
        sp = spin_run(*spin_args, opts.repeat) if have_spin else None
        verdicts = ", ".join(r["verdict"] if r else "skipped" for r in (rc, fr, sp))
        full = "-"
        if scenario is not None:
            sc = scenario(opts.repeat)
            full = f"{sc['units']:,} executions, {sc['seconds'] * 1000:,.1f} ms, {sc['verdict']}"
        print(f"| {name} | {cell(rc)} | {cell(fr)} | {cell(sp)} | {cell(rc, 'seconds')} | {cell(fr, 'seconds')} "
              f"| {cell(sp, 'seconds')} | {cell(sp, 'build')} | {ratio(fr, rc, 'units')} "
              f"| {ratio(fr, rc, 'seconds')} | {ratio(sp, rc, 'seconds')} | {verdicts} | {full} |", flush=True)

if __name__ == "__main__":
    main()
