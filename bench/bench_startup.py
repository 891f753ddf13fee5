"""Benchmark the start-up of the command line: a whole process per run.

    python bench/bench_startup.py [--runs N] [--top K]

For each command (``racecheck run`` and ``check`` of fault_vs_truncate, and
``racecheck --help``), N fresh processes of ``python -m racecheck`` with this
checkout first on the path: the minimum wall time, the minimum processor time
(user + system, from the kernel's accounting of the child, steadier than wall
time on a shared machine) and the peak resident set. Then, for the ``run``
command, the K slowest imports by cumulative time from ``python -X
importtime`` (one run, so only a guide: importtime's own bookkeeping inflates
the figures) and the heavy libraries the run did not import. Python's own
start-up (``python -c pass``) is measured alongside as the floor. Both with
compiled modules cached between runs (as an installed package has them) and
without (``--bytecode source``: every module compiled at every start, as a
source checkout runs under PYTHONDONTWRITEBYTECODE=1). A benchmark, not a
test: the figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "scenarios/fault_vs_truncate.yaml"
# The counterexample's trace goes to a temporary directory, not the checkout's traces/.
TRACE = Path(tempfile.mkdtemp(prefix="racecheck-startup-")) / "fault_vs_truncate.json"
COMMANDS = [
    ("python -c pass", ["-c", "pass"]),
    ("racecheck run", ["-m", "racecheck", "run", SCENARIO, "--trace-out", str(TRACE)]),
    ("racecheck --help", ["-m", "racecheck", "--help"]),
    ("racecheck check", ["-m", "racecheck", "check", SCENARIO]),
]
HEAVY = ("z3", "networkx", "xml", "email", "http", "urllib", "inspect", "ast", "click", "yaml")


def environment(root, bytecode, cache_dir):
    """The child's environment: the checkout ``root`` first on the path; with
    ``bytecode``, compiled modules cached in ``cache_dir`` (as an installed
    package has them), without, every racecheck module compiled from source
    at every start (PYTHONDONTWRITEBYTECODE=1 and a source tree: how an
    editable install runs on a machine that sets that variable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache_dir
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def one_run(args, env, root):
    """(wall seconds, processor seconds, peak RSS in KiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = 0  # reaped by wait4: keep Popen from waiting again
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def measure(args, env, root, runs):
    samples = [one_run(args, env, root) for _ in range(runs)]
    return min(s[0] for s in samples), min(s[1] for s in samples), max(s[2] for s in samples)


def import_profile(env, root, top):
    """The slowest imports (cumulative microseconds) of one ``racecheck run``."""
    out = subprocess.run([sys.executable, "-X", "importtime", *COMMANDS[1][1]],
                         cwd=root, env=env, capture_output=True, text=True).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, self_us, cumulative, name = (part.strip() for part in line.replace("import time:", "|").split("|"))
        rows.append((int(cumulative), int(self_us), name))
    names = {name for _, _, name in rows}
    absent = [m for m in HEAVY if m not in names]
    return sorted(rows, reverse=True)[:top], absent


def report(env, root, runs, top):
    print("| command | wall (s) | processor (s) | peak RSS (MiB) |")
    print("| --- | --: | --: | --: |")
    for label, args in COMMANDS:
        wall, cpu, rss = measure(args, env, root, runs)
        print(f"| `{label}` | {wall:.3f} | {cpu:.3f} | {rss / 1024:.1f} |")
    rows, absent = import_profile(env, root, top)
    print(f"\n`racecheck run {SCENARIO}` under -X importtime, the {top} slowest (cumulative and own, ms):\n")
    for cumulative, self_us, name in rows:
        print(f"  {cumulative / 1000:7.1f}  {self_us / 1000:6.1f}  {name}")
    print(f"\nnot imported: {', '.join(absent) or 'none of ' + ', '.join(HEAVY)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="processes per command (the minimum is kept)")
    parser.add_argument("--top", type=int, default=15, help="imports listed from -X importtime")
    parser.add_argument("--bytecode", choices=("cached", "source", "both"), default="both",
                        help="cached: compiled modules kept between runs; source: compiled at every start")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="the racecheck tree to measure (default: this one), e.g. an older commit's")
    opts = parser.parse_args()
    root = opts.checkout.resolve()
    if (root / "racecheck" / "__pycache__").exists():
        print("note: racecheck/__pycache__ exists, so 'source' reads compiled modules too\n")
    print(f"{root}: Python {sys.version.split()[0]}, {opts.runs} processes per command, minimum of each")
    with tempfile.TemporaryDirectory(prefix="racecheck-pyc-") as cache_dir:
        for mode in (("cached", "source") if opts.bytecode == "both" else (opts.bytecode,)):
            env = environment(root, mode == "cached", cache_dir)
            if mode == "cached":
                one_run(COMMANDS[1][1], env, root)  # fills the cache
            print(f"\n### bytecode: {mode}\n")
            report(env, root, opts.runs, opts.top)
    TRACE.unlink(missing_ok=True)
    TRACE.parent.rmdir()


if __name__ == "__main__":
    main()
